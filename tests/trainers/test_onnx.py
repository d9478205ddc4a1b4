"""trainers.onnx_export: a real ONNX export, checked with onnxruntime."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest

from nas import (
    ArchConfig,
    FullSkipsConfig,
    NAFNetConfig,
    SubsetSkipsConfig,
    UNetConfig,
    UNetMMConfig,
    build_model,
)
from nas.backbones import MSCANConfig
from trainers.config import Recipe, TrainConfig
from trainers.onnx_export import OPSET, OnnxUnsupported, check_onnx, export_onnx
from trainers.train import train


@pytest.mark.parametrize("which", ["unetmm", "unet", "mscan"])
def test_export_matches_pytorch(tmp_path: Path, tiny_unetmm: ArchConfig, which: str) -> None:
    arch = {
        "unetmm": tiny_unetmm,
        "unet": ArchConfig(UNetConfig(width=4, depth=3), SubsetSkipsConfig(stages=(1, 3))),
        "mscan": ArchConfig(MSCANConfig((8, 16, 24, 32), (1, 1, 1, 1), (2, 2, 2, 2)),
                            UNetMMConfig(ratios=(0.25,) * 4, aggregated_channels=64)),
    }[which]  # fmt: skip
    model = build_model(arch)
    path = export_onnx(model, tmp_path / "m.onnx")
    proto = onnx.load(str(path))
    assert proto.opset_import[0].version == OPSET
    report = check_onnx(path, model)
    assert report.max_abs_diff < 1e-4
    assert len(report.shapes) == 2 and report.shapes[1][0] == 2  # batch 2, sizes not multiples


def test_nafnet_local_is_refused_with_the_reason(tmp_path: Path) -> None:
    arch = ArchConfig(NAFNetConfig(8, (1, 1), 1, (1, 1), tlc_train_size=(32, 32)), FullSkipsConfig())
    with pytest.raises(OnnxUnsupported, match="tlc_train_size"):
        export_onnx(build_model(arch), tmp_path / "m.onnx")


def test_train_with_onnx_writes_and_checks_the_model(
    tmp_path: Path, tiny_unetmm: ArchConfig
) -> None:
    recipe = Recipe(iterations=5, batch=2, crop=32, val_crop=64, threads=1)
    config = TrainConfig(arch=tiny_unetmm, recipe=recipe, out_dir=str(tmp_path / "run"))
    result = train(config, onnx=True, progress=False)
    assert result.onnx == tmp_path / "run" / "model.onnx" and result.onnx.is_file()
    assert result.onnx_max_abs_diff is not None and result.onnx_max_abs_diff < 1e-4
