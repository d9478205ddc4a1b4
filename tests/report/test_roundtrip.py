"""Export -> ``unetmm train`` (a few steps) -> ONNX, checked here again with onnxruntime."""

from __future__ import annotations

import json

import numpy as np
import onnxruntime as ort
import torch

import nas
from studies.cli import main


def test_export_train_onnx_round_trip(built_study, tmp_path, capsys) -> None:
    runs = tmp_path / "runs"
    rc = main(["export", str(built_study.path), "--max-m-sc", "32KiB", "--rule", "knee",
               "--out", str(tmp_path / "export"), "--runs", str(runs),
               "--iterations", "3", "--batch", "2", "--crop", "32"])  # fmt: skip
    assert rc == 0
    (config_path,) = sorted(p for p in (tmp_path / "export").glob("*.yaml")
                            if not p.name.endswith(".tiling.yaml"))  # fmt: skip
    capsys.readouterr()

    assert main(["train", str(config_path), "--onnx", "--quiet", "--threads", "1"]) == 0
    out_dir = runs / config_path.stem
    result = json.loads((out_dir / "result.json").read_text())
    assert result["steps"] == 3 and result["onnx"]["max_abs_diff"] < 1e-3

    # Independently of the trainer's own check: the checkpoint's weights in the model that
    # nas builds from the exported YAML give what onnxruntime gives, at a size the export
    # never saw.
    arch = nas.load_config(config_path)
    model = nas.build_model(arch).eval()
    state = torch.load(out_dir / result["checkpoint"], map_location="cpu", weights_only=True)
    model.load_state_dict(state["model"])
    x = torch.rand(1, 3, 45, 70)
    with torch.no_grad():
        expected = model(x).numpy()
    session = ort.InferenceSession(str(out_dir / "model.onnx"), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    assert got.shape == (1, 3, 45, 70)
    assert np.abs(got - expected).max() < 1e-3
