"""KBNet_s (``nas.backbones.kbnet``): the official parameter count and names, the kernel basis
attention against the convolution it stands for, the paper's Table 4 KBNet numbers, official
weights. (Outputs and gradients equal the official code's, ``KBNet_s`` with ``KBAFunction``, to
1e-14 in float64: checked in a throwaway copy of zhangyi-3/KBNet, never committed.)"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nas import ArchConfig, FullSkipsConfig, NAFNetConfig, UNetMMConfig, build_model, measure_cost
from nas.backbones.kbnet import GROUP, KBA, NSET, KBNetConfig
from nas.checkpoints import load_official, official_config
from nas.errors import ConfigError
from nas.presets import backbone_preset
from tests.nas.official_nafnet import official_shapes as nafnet_official_shapes

SMALL = KBNetConfig(8, (1, 0, 2), 1, (2, 1, 0))  # uneven counts: a wrong index map shows


def official_shapes(cfg: KBNetConfig) -> dict[str, tuple[int, ...]]:
    """Name -> shape of the official ``KBNet_s(img_channel, width, middle_blk_num, enc_blk_nums,
    dec_blk_nums, lightweight=, ffn_scale=)`` state dict, written from its source."""

    def block(c: int) -> dict[str, tuple[int, ...]]:
        inter, ffn = min(c, 32), int(cfg.ffn_scale * c)
        second = (c, 1, 3, 3) if cfg.lightweight else (c, 4, 5, 5)
        shapes = {
            "w": (1, 32, c * 4 * 9), "b": (1, 32, c), "ga1": (1, c, 1, 1),
            "attgamma": (1, 32, 1, 1), "beta": (1, c, 1, 1), "gamma": (1, c, 1, 1),
            "norm1.weight": (c,), "norm1.bias": (c,), "norm2.weight": (c,), "norm2.bias": (c,),
            "sca.1.weight": (c, c, 1, 1), "sca.1.bias": (c,),
            "conv11.0.weight": (c, c, 1, 1), "conv11.0.bias": (c,),
            "conv11.1.weight": second, "conv11.1.bias": (c,),
            "conv1.weight": (c, c, 1, 1), "conv1.bias": (c,),
            "conv21.weight": (c, 1, 3, 3), "conv21.bias": (c,),
            "conv2.0.weight": (inter, c // inter, 3, 3), "conv2.0.bias": (inter,),
            "conv2.2.weight": (32, inter // 2, 1, 1), "conv2.2.bias": (32,),
            "conv211.weight": (32, c, 1, 1), "conv211.bias": (32,),
            "conv3.weight": (c, c, 1, 1), "conv3.bias": (c,),
            "conv4.weight": (ffn, c, 1, 1), "conv4.bias": (ffn,),
            "conv5.weight": (c, ffn // 2, 1, 1), "conv5.bias": (c,),
        }  # fmt: skip
        return shapes

    return nafnet_official_shapes(cfg, block)


def official_state(cfg: KBNetConfig, seed: int = 0) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return {k: 0.1 * torch.randn(s, generator=gen) for k, s in official_shapes(cfg).items()}


def _params(cfg: KBNetConfig, kinds: tuple[type, ...] = (nn.Module,)) -> int:
    with torch.device("meta"):
        model = build_model(ArchConfig(cfg, FullSkipsConfig()))
    return sum(p.numel() for m in model.modules() if isinstance(m, kinds)
               for p in m.parameters(recurse=False))  # fmt: skip


# -- the module ------------------------------------------------------------------------------
def test_presets_have_the_official_parameter_counts() -> None:
    """``KBNet_s()`` has 141,966,659 parameters, ``KBNet_s(lightweight=True, ffn_scale=1.5)``
    (the SIDD config) 128,403,395; the KBNet paper's 104.93 M (and UNet--'s Table 4) count the
    convolutions only: 104,925,251, without the kernel bases and the per-channel scales."""
    assert _params(backbone_preset("kbnet-s")) == 141_966_659
    sidd = backbone_preset("kbnet-s-light")
    assert sidd == KBNetConfig(lightweight=True, ffn_scale=1.5)
    assert _params(sidd) == 128_403_395
    assert _params(sidd, (nn.Conv2d,)) == 104_925_251


def test_kba_is_a_grouped_convolution_with_a_kernel_mixed_per_pixel() -> None:
    """With the same attention at every pixel, KBA is the grouped 3x3 convolution whose
    weights and bias are the attention-weighted sums of the bases; with varying attention,
    each pixel is that convolution with its own mix."""
    gen = torch.Generator().manual_seed(0)
    c, n = 8, 2
    kba = KBA(3, c // GROUP, c)
    x = torch.randn(n, c, 7, 9, generator=gen, dtype=torch.float64)
    w = torch.randn(1, NSET, c * GROUP * 9, generator=gen, dtype=torch.float64)
    b = torch.randn(1, NSET, c, generator=gen, dtype=torch.float64)
    mix = torch.randn(n, NSET, generator=gen, dtype=torch.float64)
    got = kba(x, mix[:, :, None, None].expand(n, NSET, 7, 9), w, b)
    for i in range(n):
        weight = (mix[i] @ w[0]).reshape(c, GROUP, 3, 3)
        want = F.conv2d(x[i:i + 1], weight, mix[i] @ b[0], padding=1, groups=c // GROUP)
        torch.testing.assert_close(got[i:i + 1], want)
    att = torch.randn(n, NSET, 7, 9, generator=gen, dtype=torch.float64)
    got = kba(x, att, w, b)
    for y, xx in [(0, 0), (3, 4), (6, 8)]:
        mixed = att[1, :, y, xx]
        weight = (mixed @ w[0]).reshape(c, GROUP, 3, 3)
        want = F.conv2d(x[1:2], weight, mixed @ b[0], padding=1, groups=c // GROUP)
        torch.testing.assert_close(got[1, :, y, xx], want[0, :, y, xx])


def test_bad_configs_name_the_field() -> None:
    with pytest.raises(ConfigError, match=r"^backbone.width: width 6 .* multiple of 4"):
        KBNetConfig(width=6)
    with pytest.raises(ConfigError, match=r"^backbone.ffn_scale: must be > 0"):
        KBNetConfig(ffn_scale=0)
    with pytest.raises(ConfigError, match=r"^backbone.lightweight: must be true or false"):
        KBNetConfig(lightweight="yes")


def test_proxy_is_narrow_and_shallow_with_the_same_blocks() -> None:
    proxy = backbone_preset("kbnet-s-light").proxy()
    assert proxy == KBNetConfig(16, (1, 1, 1, 1), 1, (1, 1, 1, 1), lightweight=True,
                                ffn_scale=1.5)  # fmt: skip


# -- the paper's Table 4 ---------------------------------------------------------------------
def test_table4_kbnet_rows() -> None:
    """KBNet (the SIDD config) at 1x3x256x256, 8 bit: M_sc 7.5 MB and 58.19 G MACs exactly as
    Table 4 (MACs in the paper's module-hook convention, which does not see KBA's matmuls:
    fvcore counts 106.46 G). UNet-- with E' of 512 channels (8 x C1, as 256 for NAFNet-w32)
    gives Table 4's 0.5 MB (-93.3%); MACs and convolution parameters fall short of the
    paper's 63.11 G and 108.12 M by the same -1.7% and -0.3% as on NAFNet."""
    sidd = backbone_preset("kbnet-s-light")
    full = measure_cost(ArchConfig(sidd, FullSkipsConfig()), (256, 256), engine="meta")
    paper = UNetMMConfig.paper(4, first_channels=64)
    assert paper.aggregated_channels == 512
    unetmm = measure_cost(ArchConfig(sidd, paper), (256, 256), engine="meta")
    assert full.m_sc_bytes == 7.5 * 2**20 and unetmm.m_sc_bytes == 0.5 * 2**20
    assert 1 - unetmm.m_sc_bytes / full.m_sc_bytes == pytest.approx(0.933, abs=5e-4)
    assert full.macs_paper == pytest.approx(58.19e9, abs=0.005e9)
    assert full.macs == pytest.approx(106.46e9, abs=0.005e9)
    assert unetmm.macs_paper / 63.11e9 - 1 == pytest.approx(-0.017, abs=0.001)
    added = _params(ArchConfig(sidd, paper).backbone, (nn.Conv2d,))  # the backbone's part
    with torch.device("meta"):
        model = build_model(ArchConfig(sidd, paper))
    conv = sum(p.numel() for m in model.modules() if isinstance(m, nn.Conv2d | nn.Linear)
               for p in m.parameters(recurse=False))  # fmt: skip
    assert added == 104_925_251 and conv / 108.12e6 - 1 == pytest.approx(-0.003, abs=0.0005)


# -- official weights ------------------------------------------------------------------------
def test_our_names_and_shapes_are_the_official_ones() -> None:
    for cfg in (SMALL, SMALL.replace(lightweight=True, ffn_scale=1.5)):
        model = build_model(ArchConfig(cfg, FullSkipsConfig()))
        ours = {k: tuple(v.shape) for k, v in model.state_dict().items()}
        mapped = {cfg.official_to_ours(k): s for k, s in official_shapes(cfg).items()}
        assert mapped == ours
    assert SMALL.official_to_ours("decoders.0.1.sca.1.bias") == "backbone.decoders.2.1.sca.1.bias"


def test_official_weights_load_and_are_told_from_nafnet(tmp_path) -> None:
    cfg = SMALL.replace(lightweight=True, ffn_scale=1.5)
    state = official_state(cfg)
    torch.save({"params": state}, tmp_path / "KBNet.pth")  # as BasicSR saves it
    assert official_config(state) == cfg
    model = build_model(ArchConfig(cfg, FullSkipsConfig())).eval()
    report = load_official(model, tmp_path / "KBNet.pth")
    assert report.layout == "KBNet" and report.new == () and len(report.loaded) == len(state)
    ours = model.state_dict()
    assert all(torch.equal(ours[cfg.official_to_ours(k)], v) for k, v in state.items())
    nafnet = build_model(ArchConfig(NAFNetConfig(8, (1, 0, 2), 1, (2, 1, 0)), FullSkipsConfig()))
    with pytest.raises(ConfigError, match=r"^checkpoint: an official KBNet checkpoint needs a "
                                          r"kbnet backbone, the model's is 'nafnet'$"):
        load_official(nafnet, state)
    with pytest.raises(ConfigError, match=r"^checkpoint: the checkpoint's KBNet has lightweight "
                                          r"False, the model's backbone.lightweight is True$"):
        load_official(model, official_state(SMALL))  # the other second branch
    broken = {k: v for k, v in state.items() if not k.endswith("conv4.weight")}
    with pytest.raises(ConfigError, match=r"^checkpoint: not a whole official KBNet checkpoint"):
        load_official(model, broken)
