"""The tiled executor (``nas.tiling``) against the plain forward, and its cost prediction against
its measured run: every backbone x skip family, every split, square, non-square and
non-multiple sizes; then the plan, the errors, and the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from nas import ArchConfig, NAFNetConfig, build_model, measure_cost
from nas.cost.tiled import measure_tiled, predict_tiled, trace_tiled
from nas.errors import ConfigError
from nas.model import randomize
from nas.tiling import plan_tiling, tiled_forward, valid_splits
from tests.nas.designs import skip_designs, small_backbones

BACKBONES = {
    **small_backbones(),
    # NAFNetLocal with a small training size: its pooling is local (a 24-pixel window at E1)
    # on these inputs, global on the deep stages
    "nafnet-local": NAFNetConfig(8, (1, 1, 1, 1), 1, (1, 1, 1, 1), tlc_train_size=(16, 16)),
}
CASES = [(b, s) for b, bb in BACKBONES.items() for s in skip_designs(len(bb.stage_channels))]


def _model(arch: ArchConfig) -> nn.Module:
    """A model with no identity-initialised part (NAFNet's and IEM's blocks start as ones)."""
    return randomize(build_model(arch)).eval()


def _sizes(backbone: str) -> list[tuple[int, int]]:
    """A square multiple and a non-square non-multiple (MSCAN's E1 is at stride 4: larger)."""
    return [(64, 64), (50, 70)] if not backbone.startswith("mscan") else [(96, 96), (70, 100)]


@pytest.mark.parametrize(("backbone", "design"), CASES)
def test_tiled_equals_plain_and_its_measured_peak_equals_the_prediction(backbone, design):
    bb = BACKBONES[backbone]
    arch = ArchConfig(bb, skip_designs(len(bb.stage_channels))[design])
    model = _model(arch)
    runs = 0
    for size, batch in zip(_sizes(backbone), (2, 1)):
        x = torch.rand(batch, 3, *size)
        with torch.no_grad():
            plain = model(x)
        tile = 32
        for split in valid_splits(arch, size, tile):
            plan = plan_tiling(arch, size, tile, split, batch=batch)
            measured, out = trace_tiled(model, plan, x, bits=8)  # real tensors, every tile
            assert out.shape == plain.shape
            assert (out - plain).abs().max() <= 1e-4, (size, split)
            predicted = predict_tiled(arch, size, tile, split, batch=batch, bits=8)  # meta
            assert (measured.peak_bytes, measured.macs) == (predicted.peak_bytes,
                                                           predicted.macs), (size, split)
            runs += 1
    assert runs >= 4


def test_tiling_holds_less_than_layer_by_layer_and_m_sc_sets_it() -> None:
    """NAFNet-w32 at 256x256, 8 bit, 64-pixel tiles: layer by layer every design peaks at
    14.31 MiB; tiled, full skips hold their 3.5 MiB of tiled-stage buffers on top of the tile,
    the paper's UNet-- its 0.25 MiB E' (its deep IEM header then sets its peak)."""
    from nas import FullSkipsConfig, NoSkipsConfig, UNetMMConfig, nafnet_w32

    mib = 2**20
    r = {name: measure_cost(ArchConfig(nafnet_w32(), skip), engine="meta", tile=64)
         for name, skip in (("full", FullSkipsConfig()), ("none", NoSkipsConfig()),
                            ("paper", UNetMMConfig.paper(4)))}  # fmt: skip
    assert {round(c.peak_activation_bytes / mib, 2) for c in r.values()} == {14.31}
    assert (r["full"].split, r["none"].split, r["paper"].split) == (3, 3, 3)
    held = r["full"].peak_tiled_bytes - r["none"].peak_tiled_bytes
    assert held == (2 + 1 + 0.5) * mib  # E1..E3 of NAFNet-w32 at 8 bit: the tiled stages' skips
    assert r["none"].peak_tiled_bytes < r["paper"].peak_tiled_bytes < r["full"].peak_tiled_bytes
    assert r["paper"].peak_tiled_stage == "D4"  # the IEM header of the deep stage, run whole
    assert r["full"].recompute_macs > 0


def test_plan_records_tile_split_halos_and_the_tiles() -> None:
    from nas import FullSkipsConfig, nafnet_w32

    plan = plan_tiling(ArchConfig(nafnet_w32(), FullSkipsConfig()), (256, 256), 64, 3)
    d = plan.to_dict()
    assert (d["tile"], d["split"], d["padded_size"]) == (64, 3, [256, 256])
    assert d["encoder_tiles"] == d["decoder_tiles"] == 16
    # 2 + 2 + 4 NAFBlocks (one 3x3 halo each) and the 3x3 intro: 1 + 2*1 + 2*2 + 4*4 pixels
    assert d["halo"]["encoder_input_px"] == 1 + 2 + 4 + 16
    # every NAFBlock's channel attention in the tiled stages: encoders 2 + 2 + 4, decoders 2 x 3
    assert d["whole_map_steps"] == 14
    assert all(t.owned_x.shape == (8, 8) for t in plan.encoder_tiles)


@pytest.mark.parametrize(("tile", "split", "needle"), [
    (24, 4, "tile: 24 is not a multiple of 16"),
    (512, 2, "tile: 512 is larger than the input"),
    (0, 2, "tile: must be a whole number of pixels >= 1"),
    (64, 5, "split: must be a stage 1..4"),
    (64, "deep", "split: must be a stage 1..4"),
])  # fmt: skip
def test_bad_tile_or_split_is_a_config_error_before_any_work(tile, split, needle) -> None:
    from nas import FullSkipsConfig, nafnet_w32

    with pytest.raises(ConfigError, match=needle):
        plan_tiling(ArchConfig(nafnet_w32(), FullSkipsConfig()), (256, 256), tile, split)


def test_a_module_that_cannot_be_tiled_exactly_is_named() -> None:
    """InstanceNorm normalises over the whole map: no halo makes a tile's outputs exact."""
    from nas import FullSkipsConfig

    arch = ArchConfig(BACKBONES["nafnet-w8"], FullSkipsConfig())
    model = build_model(arch)
    model.backbone.intro = nn.Sequential(model.backbone.intro, nn.InstanceNorm2d(8))
    from nas.tiling.geometry import Recorder

    x = torch.zeros(1, 3, 32, 32)
    with Recorder(model.backbone, "backbone.") as rec, pytest.raises(ConfigError) as err:
        rec.call(lambda: model.backbone.stem(x), x)
    assert "backbone.intro.1 (InstanceNorm2d) cannot be tiled exactly" in str(err.value)


def test_measure_tiled_and_tiled_forward_resolve_auto() -> None:
    from nas import UNetMMConfig

    arch = ArchConfig(BACKBONES["nafnet-w8"], UNetMMConfig(ratios=(0.25,) * 4,
                                                           aggregated_channels=64))  # fmt: skip
    model = _model(arch)
    x = torch.rand(1, 3, 64, 96)
    cost, out = measure_tiled(model, x, tile=32)
    assert cost.split in valid_splits(arch, (64, 96), 32)
    assert cost.peak_bytes == measure_cost(arch, (64, 96), engine="meta", tile=32).peak_tiled_bytes
    with torch.no_grad():
        assert (tiled_forward(model, x, tile=32) - model(x)).abs().max() <= 1e-4
        assert (out - model(x)).abs().max() <= 1e-4


def test_cli_measure_runs_the_tiled_executor_on_an_image(tmp_path) -> None:
    import numpy as np
    import skimage.io

    from nas import FullSkipsConfig, save_config

    img = tmp_path / "img.png"
    skimage.io.imsave(img, (np.random.default_rng(0).random((40, 56, 3)) * 255).astype(np.uint8))
    save_config(ArchConfig(BACKBONES["nafnet-w8"], FullSkipsConfig()), tmp_path / "a.yaml")
    proc = subprocess.run(
        [sys.executable, "-m", "studies.cli", "measure", "--engine", "meta", "--size", "40x56",
         "--backbone", "nafnet-w16", "--config", "a.yaml", "--tile", "16", "--image", img.name],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    row = next(line for line in proc.stdout.splitlines() if "a.yaml" in line and "yes" in line)
    assert "e-0" in row  # the output's largest difference from the plain forward, e.g. 4.8e-07


@pytest.mark.parametrize(("args", "needle"), [
    (["--tile", "24", "--split", "4"], "error: --tile: 24 is not a multiple of 16"),
    (["--tile", "300"], "error: --tile: 300 is larger than the input"),
    (["--split", "9"], "error: --split: must be a stage 1..4"),
    (["--split", "deep"], "error: --split: 'deep' is not a stage"),
    (["--executor", "gpu"], "argument --executor: invalid choice: 'gpu'"),
    (["--image", "/nonexistent.png"], "error: --image: cannot read '/nonexistent.png'"),
])  # fmt: skip
def test_cli_bad_tiling_input_is_one_line(args, needle) -> None:
    proc = subprocess.run([sys.executable, "-m", "studies.cli", "measure", "--engine", "meta",
                           *args], capture_output=True, text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], lines
