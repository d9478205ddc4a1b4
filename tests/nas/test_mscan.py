"""MSCAN-tiny (SegNeXt's encoder) + light decoder: shapes, parameter count, skip memory."""

from __future__ import annotations

import pytest
import torch

from nas import ArchConfig, ConfigError, FullSkipsConfig, NoSkipsConfig, UNetMMConfig, build_model
from nas.backbones import MSCANConfig, mscan_tiny
from nas.cost import skip_memory_timeline, trace_forward
from nas.presets import BACKBONE_PRESETS, backbone_preset
from tests.nas.designs import skip_designs, small_backbones

# SegNeXt's official MSCAN (mmseg/models/backbones/mscan.py at commit 53a190d of
# Visual-Attention-Network/SegNeXt) built with the tiny config (embed dims 32/64/160/256, depths
# 3/3/5/2, MLP ratios 8/8/4/4, BatchNorm) has 3,903,584 parameters; with its state dict loaded,
# our encoder's E1..E4 equal the official outputs bit for bit (checked in a throwaway folder with
# stubs for mmcv/mmseg/timm, never committed).
OFFICIAL_MSCAN_TINY_PARAMS = 3_903_584


def _encoder_modules(model):
    bb = model.backbone
    return [bb.stem_convs, *bb.encoders, *bb.downs[:-1]]  # downs[-1] is the decoder's entry


def test_encoder_parameter_count_equals_official_mscan_tiny() -> None:
    model = build_model(ArchConfig(mscan_tiny(), FullSkipsConfig()))
    count = sum(p.numel() for m in _encoder_modules(model) for p in m.parameters())
    assert count == OFFICIAL_MSCAN_TINY_PARAMS


def test_stage_outputs_at_strides_4_to_32_and_full_resolution_alpha() -> None:
    cfg = mscan_tiny()
    model = build_model(ArchConfig(cfg, FullSkipsConfig())).eval()
    shapes = []
    hooks = [e.register_forward_hook(lambda m, i, o: shapes.append(tuple(o.shape)))
             for e in model.backbone.encoders]  # fmt: skip
    with torch.no_grad():
        out = model(torch.rand(2, 3, 100, 75))  # padded to 128 x 96
    for h in hooks:
        h.remove()
    assert out.shape == (2, 1, 100, 75)
    assert cfg.stage_strides == (4, 8, 16, 32) and cfg.size_multiple == 32
    assert shapes == [(2, c, 128 // s, 96 // s) for c, s in zip((32, 64, 160, 256), (4, 8, 16, 32))]


@pytest.mark.parametrize("name", sorted({*small_backbones(), *BACKBONE_PRESETS.names()}))
def test_config_states_what_the_module_does(name: str) -> None:
    """``stage_strides`` / ``size_multiple`` of a config (read by the analytic M_sc) match the
    built module: E_i's measured stride and the padding multiple."""
    cfg = small_backbones().get(name) or backbone_preset(name)
    with torch.device("meta"):
        model = build_model(ArchConfig(cfg, NoSkipsConfig()))
    m = cfg.size_multiple
    assert model.backbone.size_multiple == m
    sizes = []
    hooks = [e.register_forward_hook(lambda mod, i, o: sizes.append(o.shape[-2:]))
             for e in model.backbone.encoders]  # fmt: skip
    with torch.no_grad():
        model(torch.zeros(1, model.backbone.in_channels, 2 * m, 3 * m, device="meta"))
    for h in hooks:
        h.remove()
    assert [tuple(s) for s in sizes] == [(2 * m // s, 3 * m // s) for s in cfg.stage_strides]


DESIGNS = {**skip_designs(4), "unetmm-paper": UNetMMConfig.paper(4)}


@pytest.mark.parametrize("design", sorted(DESIGNS))
@pytest.mark.parametrize("size", [(64, 64), (96, 160), (100, 75)])  # square, wide, padded
def test_traced_m_sc_equals_analytic_on_mscan_tiny(design: str, size: tuple[int, int]) -> None:
    arch = ArchConfig(mscan_tiny(), DESIGNS[design])
    with torch.device("meta"):
        model = build_model(arch)
    traced = trace_forward(model, (1, 3, *size), bits=8).skip_timeline
    assert traced == skip_memory_timeline(arch, *size, bits=8)


def test_full_skips_hold_3_875_elements_per_padded_pixel() -> None:
    """E1..E4 of MSCAN-tiny: 32/16 + 64/64 + 160/256 + 256/1024 = 3.875 elements per pixel."""
    arch = ArchConfig(mscan_tiny(), FullSkipsConfig())
    peak = max(b for _, b in skip_memory_timeline(arch, 100, 75, bits=8))
    assert peak == 3.875 * 128 * 96


@pytest.mark.parametrize(
    ("fields", "match"),
    [
        ({"depths": (1, 1)}, "backbone.depths: needs 4 entries"),
        ({"mlp_ratios": (4, 4, 4)}, "backbone.mlp_ratios: needs 4 entries"),
        ({"embed_dims": (32, 1, 160, 256)}, "backbone.embed_dims"),
        ({"residual": True}, "backbone.residual: needs in_channels == out_channels"),
    ],
)
def test_bad_fields_name_the_field(fields: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        MSCANConfig(**fields)
