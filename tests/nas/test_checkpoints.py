"""nas.checkpoints: official NAFNet checkpoints (BasicSR layout) in unetmm models.

State dicts in the official layout with random values (``tests.nas.official_nafnet``) run
through a functional forward written from the official one: our model with the loaded weights
must give the same outputs.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from nas import (
    ArchConfig,
    FullSkipsConfig,
    NAFNetConfig,
    UNetConfig,
    UNetMMConfig,
    build_model,
    nafnet_w32,
)
from nas.checkpoints import load_official, official_config
from nas.errors import ConfigError
from tests.nas.official_nafnet import official_forward, official_state

SMALL = NAFNetConfig(8, (1, 0, 2), 1, (2, 1, 0))  # uneven counts: a wrong index map shows


# -- tests ------------------------------------------------------------------------------------
GOPRO_LIKE_LOCAL = NAFNetConfig(8, (1, 1, 1, 3), 1, (1, 1, 1, 1), tlc_train_size=(64, 64))


@pytest.mark.parametrize("cfg", [nafnet_w32(), SMALL, GOPRO_LIKE_LOCAL],
                         ids=["sidd-width32", "small", "gopro-like-local"])  # fmt: skip
def test_official_checkpoint_loads_and_gives_the_official_outputs(
    cfg: NAFNetConfig, tmp_path: Path
) -> None:
    state = official_state(cfg)
    path = tmp_path / "NAFNet.pth"
    torch.save({"params": state}, path)  # as BasicSR saves it
    if cfg == nafnet_w32():  # the published NAFNet-SIDD-width32 has 29.16 M parameters
        assert sum(v.numel() for v in state.values()) / 1e6 == pytest.approx(29.16, abs=0.005)
    assert official_config(state) == cfg.replace(tlc_train_size=None)  # not in the tensors
    torch.manual_seed(1)
    model = build_model(ArchConfig(cfg, FullSkipsConfig())).eval()
    report = load_official(model, path)
    assert report.new == () and len(report.loaded) == len(state) == len(model.state_dict())
    assert report.summary() == (f"loaded {len(state)} tensors (backbone: {len(state)}) of an "
                                "official NAFNet checkpoint")  # fmt: skip
    ours = model.state_dict()
    n = len(cfg.enc_blk_nums)
    assert all(torch.equal(ours[_to_ours(k, n)], v) for k, v in state.items())
    # padded inside; below 1.5x the local model's training size its pooling is the global one
    x = torch.rand(2, 3, 21, 27, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        expected = official_forward(state, cfg, x)
        got = model(x)
    assert got.shape == x.shape
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)
    assert (expected - x).abs().mean() > 0.05  # the network does something: a real comparison


def _to_ours(key, n):
    return NAFNetConfig(8, (1,) * n, 1, (1,) * n).official_to_ours(key)


def test_key_map_follows_the_official_names() -> None:
    assert _to_ours("ups.0.0.weight", 4) == "backbone.ups.3.0.weight"
    assert _to_ours("decoders.3.1.conv1.bias", 4) == "backbone.decoders.0.1.conv1.bias"
    assert _to_ours("encoders.1.0.sca.1.weight", 4) == (
        "backbone.encoders.1.0.sca.conv.weight")  # fmt: skip
    assert _to_ours("middle_blks.11.beta", 4) == "backbone.middle_blks.11.beta"
    assert _to_ours("intro.weight", 4) == "backbone.intro.weight"


def test_warm_start_loads_the_backbone_and_keeps_the_skips_new() -> None:
    state = official_state(SMALL)
    arch = ArchConfig(SMALL, UNetMMConfig(ratios=None, reduced_channels=(2, 4, 4),
                                          aggregated_channels=16))  # fmt: skip
    torch.manual_seed(3)
    model = build_model(arch)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(ConfigError, match=r"^init: \d+ of the model's tensors are not in the "
                                          r"checkpoint \(first: 'skip\."):  # fmt: skip
        load_official(model, {"params": state}, field="init")
    report = load_official(model, {"params": state}, strict=False)
    skip_keys = [k for k in before if k.startswith("skip.")]
    assert skip_keys and list(report.new) == skip_keys
    assert set(report.loaded) == {k for k in before if k.startswith("backbone.")}
    after = model.state_dict()
    assert all(torch.equal(after[k], before[k]) for k in skip_keys)  # as initialised
    assert all(torch.equal(after[_to_ours(k, 3)], v) for k, v in state.items())
    assert f"; {len(skip_keys)} new (skip: {len(skip_keys)})" in report.summary()


def test_unetmm_layout_and_dataparallel_prefix_load_too(tmp_path: Path) -> None:
    arch = ArchConfig(SMALL, FullSkipsConfig())
    src = build_model(arch)
    torch.save({"arch": arch.to_dict(), "model": src.state_dict()}, tmp_path / "model.pt")
    dst = build_model(arch)
    report = load_official(dst, tmp_path / "model.pt")
    assert report.layout == "unetmm" and not report.new
    assert all(torch.equal(a, b) for a, b in zip(src.state_dict().values(),
                                                 dst.state_dict().values()))  # fmt: skip
    official = {f"module.{k}": v for k, v in official_state(SMALL, seed=5).items()}
    report = load_official(dst, {"params_ema": official})
    assert report.layout == "NAFNet" and len(report.loaded) == len(official)


def test_mismatches_are_one_line_and_change_nothing(tmp_path: Path) -> None:
    model = build_model(ArchConfig(SMALL, FullSkipsConfig()))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    wide = official_state(NAFNetConfig(16, (1, 0, 2), 1, (2, 1, 0)))
    deeper = official_state(NAFNetConfig(8, (1, 0, 3), 1, (2, 1, 0)))
    bent = official_state(SMALL)
    bent["decoders.0.1.conv3.weight"] = torch.zeros(8, 8, 1, 1)
    extra = {**official_state(SMALL), "head.weight": torch.zeros(3)}
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    cases = [
        (wide, "checkpoint: the checkpoint's NAFNet has width 16, the model's backbone.width is 8"),
        (deeper, ("checkpoint: the checkpoint's NAFNet has enc_blk_nums [1, 0, 3], the model's "
                  "backbone.enc_blk_nums is [1, 0, 2]")),
        (bent, ("checkpoint: decoders.0.1.conv3.weight has shape (8, 8, 1, 1), the model's "
                "backbone.decoders.2.1.conv3.weight (32, 32, 1, 1)")),
        (extra, ("checkpoint: 1 tensor(s) of the checkpoint have no place in the model "
                 "(first: 'head.weight')")),
        ({"params": {"conv.weight": torch.zeros(1)}},
         "checkpoint: not an official checkpoint of NAFNet, KBNet (first name 'conv.weight')"),
        (tmp_path / "missing.pth", f"checkpoint: no checkpoint file '{tmp_path}/missing.pth'"),
        ({"params": {"step": 3}}, "checkpoint: holds no tensors"),
    ]  # fmt: skip
    for source, message in cases:
        with pytest.raises(ConfigError) as info:
            load_official(model, source)
        assert str(info.value).startswith(message) and "\n" not in str(info.value)
    with pytest.raises(ConfigError, match=r"^checkpoint: cannot read .*junk\.pth"):
        load_official(model, tmp_path / "junk.pth")
    assert all(torch.equal(model.state_dict()[k], v) for k, v in before.items())
    unet = build_model(ArchConfig(UNetConfig(width=8, depth=3), FullSkipsConfig()))
    with pytest.raises(ConfigError, match="needs a nafnet backbone, the model's is 'unet'"):
        load_official(unet, official_state(SMALL))
