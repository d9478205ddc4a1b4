"""KBNet_s (Zhang et al., "KBNet: Kernel Basis Network for Image Restoration", 2023): NAFNet's
layout (``nas.backbones.nafnet``) with KBNet's blocks, as the UNet-- paper's other backbone.

A ``KBBlock`` (the official ``KBBlock_s``, ``basicsr/models/archs/kbnet_s_arch.py`` of
zhangyi-3/KBNet) is NAFNet's block with kernel basis attention (``KBA``) in its first half:
32 learned kernel bases (3x3 convolutions in groups of 4 channels) mixed at every pixel by
weights predicted from the input, times a second branch (1x1 + 5x5 conv in groups of 4, or a
3x3 depthwise conv when ``lightweight``) and a channel attention. The official KBA is a custom
autograd ``Function`` with its own backward; ``KBA`` here computes the same in plain ops
(``F.unfold`` and batched matmuls) and lets autograd differentiate them (outputs and gradients
match the official code's; see ``tests/nas/test_kbnet.py`` and the issue's note).

Presets: ``kbnet-s`` (the official defaults: width 64, enc [2, 2, 4, 8], middle 12, dec
[2, 2, 2, 2], FFN x2) and ``kbnet-s-light`` (``Denoising/Options/sidd.yml``: ``lightweight``,
FFN x1.5). Official weights (BasicSR ``params``) load with NAFNet's renaming of stage indices.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from nas.backbones.base import PROXY_WIDTH
from nas.backbones.nafnet import NAFNet, NAFNetConfig
from nas.blocks import LayerNorm2d, LocalAvgPool2d, SimpleGate
from nas.config import bool_field, check, real_field, set_fields
from nas.errors import ConfigError
from nas.registry import BACKBONE_PRESETS, BACKBONES, replayable

NSET, KERNEL, GROUP = 32, 3, 4  # kernel bases, their size, channels per group (official values)


class KBA(nn.Module):
    """Kernel basis attention on ``x`` (N, C, H, W): every pixel filtered by its own grouped
    k x k kernel (``groups`` groups), the mix of the ``nset`` bases ``w`` (1, nset, C * C/groups
    * k * k) by that pixel's weights ``att`` (N, nset, H, W), plus the same mix of the biases
    ``b`` (1, nset, C). A leaf for the tiled executor: it reads a k x k window
    (``tile_halo``). Shapes are reshaped with constants only, so fvcore's traced count and the
    meta engine's see the same ops."""

    def __init__(self, k: int, groups: int, channels: int) -> None:
        super().__init__()
        self.k, self.groups, self.per_group = k, groups, channels // groups
        self.tile_halo = k // 2

    def forward(self, x: torch.Tensor, att: torch.Tensor, w: torch.Tensor,
                b: torch.Tensor) -> torch.Tensor:  # fmt: skip
        n, g, cg, kk = x.shape[0], self.groups, self.per_group, self.k * self.k
        att = att.flatten(2).transpose(-2, -1)  # (N, HW, nset)
        kernels = (att @ w).reshape(n, -1, g, cg, cg * kk)  # (N, HW, g, C/g, C/g * k*k)
        cols = F.unfold(x, self.k, padding=self.k // 2).reshape(n, g, cg * kk, -1)
        y = (kernels @ cols.permute(0, 3, 1, 2).unsqueeze(-1)).flatten(2)  # (N, HW, C)
        return (y + att @ b).transpose(-2, -1).reshape(x.shape)


@replayable
class KBBlock(nn.Module):
    """KBNet's block (``KBBlock_s``) on ``c`` channels; its parameter names are the official
    ones. ``pool_kernel``: a local window for the channel attention (None: global)."""

    def __init__(self, c: int, ffn_scale: float = 2.0, lightweight: bool = False,
                 pool_kernel: tuple[int, int] | None = None) -> None:  # fmt: skip
        super().__init__()
        self.w = nn.Parameter(torch.zeros(1, NSET, c * GROUP * KERNEL * KERNEL))
        self.b = nn.Parameter(torch.zeros(1, NSET, c))
        nn.init.kaiming_uniform_(self.w, a=math.sqrt(5))  # as the official ``init_p``
        bound = 1 / math.sqrt(nn.init._calculate_fan_in_and_fan_out(self.w)[0])
        nn.init.uniform_(self.b, -bound, bound)
        self.norm1, self.norm2 = LayerNorm2d(c), LayerNorm2d(c)
        pool = nn.AdaptiveAvgPool2d(1) if pool_kernel is None else LocalAvgPool2d(pool_kernel)
        self.sca = nn.Sequential(pool, nn.Conv2d(c, c, 1))
        second = (nn.Conv2d(c, c, 3, padding=1, groups=c) if lightweight
                  else nn.Conv2d(c, c, 5, padding=2, groups=c // GROUP))  # fmt: skip
        self.conv11 = nn.Sequential(nn.Conv2d(c, c, 1), second)
        self.conv1 = nn.Conv2d(c, c, 1)
        self.conv21 = nn.Conv2d(c, c, 3, padding=1, groups=c)
        inter = min(c, 32)
        self.conv2 = nn.Sequential(nn.Conv2d(c, inter, 3, padding=1, groups=inter), SimpleGate(),
                                   nn.Conv2d(inter // 2, NSET, 1))  # fmt: skip
        self.conv211 = nn.Conv2d(c, NSET, 1)
        self.conv3 = nn.Conv2d(c, c, 1)
        ffn = int(ffn_scale * c)
        self.conv4 = nn.Conv2d(c, ffn, 1)
        self.conv5 = nn.Conv2d(ffn // 2, c, 1)
        self.ga1 = nn.Parameter(torch.full((1, c, 1, 1), 1e-2))
        self.attgamma = nn.Parameter(torch.full((1, NSET, 1, 1), 1e-2))
        self.beta = nn.Parameter(torch.full((1, c, 1, 1), 1e-2))
        self.gamma = nn.Parameter(torch.full((1, c, 1, 1), 1e-2))
        self.sg = SimpleGate()
        self.kba = KBA(KERNEL, c // GROUP, c)

    def forward(self, inp: torch.Tensor) -> torch.Tensor:
        x = self.norm1(inp)
        sca = self.sca(x)
        x1 = self.conv11(x)
        att = self.conv2(x) * self.attgamma + self.conv211(x)
        uf = self.conv21(self.conv1(x))
        x = self.kba(uf, att, self.w, self.b) * self.ga1 + uf
        y = inp + self.conv3(x * x1 * sca) * self.beta
        return y + self.conv5(self.sg(self.conv4(self.norm2(y)))) * self.gamma


@BACKBONES.register("kbnet")
@dataclasses.dataclass(frozen=True)
class KBNetConfig(NAFNetConfig):
    """KBNet_s: NAFNet's fields (``dec_blk_nums`` deepest first) with KBNet's width 64, plus
    ``lightweight`` (a 3x3 depthwise second branch instead of 5x5 convolutions in groups of 4
    channels) and ``ffn_scale`` (the FFN's width over the stage's). The kernel bases are the
    official ones: 32 bases of 3x3 convolutions in groups of 4 channels."""

    name = "kbnet"
    official_name = "KBNet"  # zhangyi-3/KBNet (KBNet_s), BasicSR layout
    official_shape_fields = (*NAFNetConfig.official_shape_fields, "lightweight", "ffn_scale")
    official_renames = ()  # a KBBlock keeps the official tensor names (``sca.1`` included)
    width: int = 64
    lightweight: bool = False
    ffn_scale: float = 2.0

    def __post_init__(self) -> None:
        super().__post_init__()
        set_fields(self, lightweight=bool_field(self.lightweight, "backbone.lightweight"),
                   ffn_scale=real_field(self.ffn_scale, "backbone.ffn_scale"))  # fmt: skip
        check(self.ffn_scale > 0, "backbone.ffn_scale", f"must be > 0, got {self.ffn_scale}")
        bad = [c for c in self.stage_channels if int(self.ffn_scale * c) % 2 or c % GROUP]
        check(not bad, "backbone.width", f"width {self.width} with ffn_scale {self.ffn_scale} "
              f"gives stages of {bad[:1]} channels; each stage needs a multiple of {GROUP} "
              "channels and an even FFN width (its gate halves it)")  # fmt: skip

    def build(self, skip_present: tuple[bool, ...]) -> KBNet:
        return KBNet(self, skip_present)

    def proxy(self) -> KBNetConfig:
        """Width 16, one block a stage, middle 1; the same blocks."""
        n = len(self.enc_blk_nums)
        return self.replace(width=PROXY_WIDTH, enc_blk_nums=(1,) * n, middle_blk_num=1,
                            dec_blk_nums=(1,) * n, tlc_train_size=None)  # fmt: skip

    @classmethod
    def detects_official(cls, state: Mapping[str, Any]) -> bool:
        return "intro.weight" in state and any(k.endswith(".attgamma") for k in state)

    @classmethod
    def from_official(cls, state: Mapping[str, Any], field: str) -> KBNetConfig:
        """NAFNet's reading of the layout; ``lightweight`` and ``ffn_scale`` off a block."""
        base = NAFNetConfig.from_official(state, field)
        block = next(k.rsplit(".", 1)[0] for k in state if k.endswith(".attgamma"))
        try:
            c = state[f"{block}.conv1.weight"].shape[0]
            lightweight = state[f"{block}.conv11.1.weight"].shape[-1] == 3
            ffn_scale = state[f"{block}.conv4.weight"].shape[0] / c
        except (KeyError, AttributeError, IndexError) as exc:
            raise ConfigError(f"{field}: not a whole official KBNet checkpoint (block {block!r} "
                              f"has no {exc})") from None  # fmt: skip
        return cls(width=base.width, enc_blk_nums=base.enc_blk_nums,
                   middle_blk_num=base.middle_blk_num, dec_blk_nums=base.dec_blk_nums,
                   img_channels=base.img_channels, lightweight=lightweight,
                   ffn_scale=ffn_scale)  # fmt: skip


class KBNet(NAFNet):
    """KBNet_s: NAFNet's encoder/middle/decoder with KBBlocks; skips merged by addition."""

    def block(self, cfg: KBNetConfig, channels: int,  # type: ignore[override]
              pool_kernel: tuple[int, int] | None) -> nn.Module:  # fmt: skip
        return KBBlock(channels, cfg.ffn_scale, cfg.lightweight, pool_kernel)


BACKBONE_PRESETS.register("kbnet-s")(lambda: KBNetConfig())
BACKBONE_PRESETS.register("kbnet-s-light")(lambda: KBNetConfig(lightweight=True, ffn_scale=1.5))
BACKBONE_PRESETS.alias("kbnet-s-sidd", "kbnet-s-light")  # its earlier name
