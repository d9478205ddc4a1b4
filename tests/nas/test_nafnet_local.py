"""NAFNetLocal (test-time local pooling): equal to NAFNet up to 1.5x the training size, local
above it; the pooling itself against a direct window mean."""

from __future__ import annotations

import pytest
import torch

from nas import ArchConfig, ConfigError, FullSkipsConfig, NAFNetConfig, build_model, measure_cost
from nas.backbones import nafnet_gopro
from nas.blocks import LocalAvgPool2d

PLAIN = NAFNetConfig(8, (1, 1, 1), 1, (1, 1, 1))
LOCAL = NAFNetConfig(8, (1, 1, 1), 1, (1, 1, 1), tlc_train_size=(64, 64))


def _pair() -> tuple[torch.nn.Module, torch.nn.Module]:
    torch.manual_seed(0)
    plain = build_model(ArchConfig(PLAIN, FullSkipsConfig())).eval()
    local = build_model(ArchConfig(LOCAL, FullSkipsConfig())).eval()
    with torch.no_grad():  # non-zero block scales, so channel attention reaches the output
        for name, p in plain.named_parameters():
            if name.endswith(("beta", "gamma")):
                p.fill_(0.5)
    local.load_state_dict(plain.state_dict())  # same parameters: weights load either way
    return plain, local


@pytest.mark.parametrize("size", [(64, 64), (96, 96), (50, 90)])
def test_equal_to_global_pooling_up_to_one_and_a_half_training_sizes(size) -> None:
    plain, local = _pair()
    x = torch.rand(1, 3, *size)
    with torch.no_grad():
        assert torch.equal(plain(x), local(x))


@pytest.mark.parametrize("size", [(128, 128), (64, 200)])
def test_different_above_it(size) -> None:
    plain, local = _pair()
    x = torch.rand(1, 3, *size)
    with torch.no_grad():
        diff = (plain(x) - local(x)).abs().max()
    assert diff > 1e-4


def test_local_pool_is_the_window_mean_with_replicated_borders() -> None:
    x = torch.arange(2 * 6 * 7, dtype=torch.float64).reshape(1, 2, 6, 7) ** 1.5
    out = LocalAvgPool2d((3, 4))(x)
    assert out.shape == x.shape
    # valid windows start at (i, j), i < 4, j < 4; the map is shifted by (1, 1) and replicated
    expected = torch.empty(1, 2, 4, 4, dtype=torch.float64)
    for i in range(4):
        for j in range(4):
            expected[..., i, j] = x[..., i : i + 3, j : j + 4].mean(dim=(-2, -1))
    torch.testing.assert_close(out[..., 1:5, 1:5], expected)
    torch.testing.assert_close(out[..., 0, 1:5], expected[..., 0, :])  # top row replicated
    torch.testing.assert_close(out[..., 1:5, 6], expected[..., :, 3])  # right column (pad 2)
    assert LocalAvgPool2d((6, 7))(x).shape == (1, 2, 1, 1)  # the window covers the map: global


def test_window_follows_the_official_converter() -> None:
    """Official NAFNetLocal (train_size 256): base 384 = 1.5 x 256, scaled to each map."""
    cfg = nafnet_gopro(local=True)
    assert [cfg.pool_kernel(s) for s in (1, 2, 4, 8, 16)] == [
        (384, 384), (192, 192), (96, 96), (48, 48), (24, 24)]  # fmt: skip
    assert nafnet_gopro().pool_kernel(1) is None


def test_config_round_trip_and_unchanged_plain_dict() -> None:
    assert "tlc_train_size" not in PLAIN.to_dict()  # plain configs hash as before the option
    again = ArchConfig.from_dict({"backbone": LOCAL.to_dict(), "skip": {"name": "full"}})
    assert again.backbone == LOCAL and again.backbone.tlc_train_size == (64, 64)
    with pytest.raises(ConfigError, match="backbone.tlc_train_size: needs"):
        NAFNetConfig(tlc_train_size=(256,))


def test_costs_at_the_training_size_equal_plain_nafnet() -> None:
    plain = measure_cost(ArchConfig(PLAIN, FullSkipsConfig()), (64, 64), engine="meta")
    local = measure_cost(ArchConfig(LOCAL, FullSkipsConfig()), (64, 64), engine="meta")
    skip = {"arch", "arch_key", "seconds"}
    assert {k: v for k, v in plain.to_dict().items() if k not in skip} == {
        k: v for k, v in local.to_dict().items() if k not in skip}  # fmt: skip
