"""trainers.onnx_export: a real ONNX export, checked with onnxruntime."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest

from nas import ArchConfig, SubsetSkipsConfig, UNetConfig, build_model
from trainers.config import Recipe, TrainConfig
from trainers.onnx_export import OPSET, check_onnx, export_onnx
from trainers.train import train


@pytest.mark.parametrize("which", ["unetmm", "unet"])
def test_export_matches_pytorch(tmp_path: Path, tiny_unetmm: ArchConfig, which: str) -> None:
    arch = tiny_unetmm if which == "unetmm" else ArchConfig(
        UNetConfig(width=4, depth=3), SubsetSkipsConfig(stages=(1, 3))
    )
    model = build_model(arch)
    path = export_onnx(model, tmp_path / "m.onnx")
    proto = onnx.load(str(path))
    assert proto.opset_import[0].version == OPSET
    report = check_onnx(path, model)
    assert report.max_abs_diff < 1e-4
    assert len(report.shapes) == 2 and report.shapes[1][0] == 2  # batch 2, sizes not multiples


def test_train_with_onnx_writes_and_checks_the_model(
    tmp_path: Path, tiny_unetmm: ArchConfig
) -> None:
    recipe = Recipe(iterations=5, batch=2, crop=32, val_crop=64, threads=1)
    config = TrainConfig(arch=tiny_unetmm, recipe=recipe, out_dir=str(tmp_path / "run"))
    result = train(config, onnx=True, progress=False)
    assert result.onnx == tmp_path / "run" / "model.onnx" and result.onnx.is_file()
    assert result.onnx_max_abs_diff is not None and result.onnx_max_abs_diff < 1e-4
