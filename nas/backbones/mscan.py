"""MSCAN (SegNeXt's encoder, Guo et al. 2022) as a skip-less backbone, with a light decoder.

Encoder, as SegNeXt's official ``mmseg/models/backbones/mscan.py`` defines it (MSCAN-tiny:
embed dims 32/64/160/256, depths 3/3/5/2, MLP ratios 8/8/4/4):

- stage 1 starts with a stem of two 3x3 stride-2 convs (3 -> C1/2, BatchNorm, GELU, -> C1,
  BatchNorm); stages 2..N with an overlapping patch embedding (3x3 stride-2 conv + BatchNorm);
- each block: ``x + s1 * SA(BN(x))`` then ``x + s2 * MLP(BN(x))`` with per-channel layer scales
  (init 1e-2); SA = 1x1 conv, GELU, multi-scale convolutional attention (MSCA), 1x1 conv, plus
  its own input; MSCA = a 5x5 depthwise conv, three depthwise strip branches (1x7/7x1,
  1x11/11x1, 1x21/21x1) summed with it, a 1x1 conv, multiplied onto its input; MLP = 1x1 conv
  (C -> ratio*C), 3x3 depthwise conv, GELU, 1x1 conv;
- each stage ends with a LayerNorm over channels. Stage outputs E1..EN lie at strides 4..2**(N+1).

Stochastic depth (drop path 0.1 in SegNeXt's configs) is a training regulariser, left out.

Contract mapping (see ``base.Backbone``): ``stem`` is stage 1's stem, so E_i is at
``H / (4 * 2**(i-1))`` (``stage_strides``) and inputs are padded to ``size_multiple`` = E_N's
stride. MSCAN has no stage below E_N: the middle runs at E_N's resolution. The light decoder:

- ``downs[N-1]``: its entry, a 1x1 conv + BatchNorm + GELU on E_N (a new map, so a skip that
  keeps E_N holds memory of its own); ``middle``: nothing more;
- ``ups[i]``: 1x1 conv to ``4 * C_i`` + pixel shuffle x2 (``ups[N-1]`` is the identity);
- ``merge``: adds the skip; ``decoders[i]``: a residual depthwise-separable block (3x3 dw conv,
  BatchNorm, GELU, 1x1 conv);
- ``head``: D1 (stride 4) -> 1x1 conv + pixel shuffle x4 to ``head_channels`` at full
  resolution, GELU, concatenated with the input image, 3x3 conv to ``out_channels`` (1: an alpha
  matte; 3 with ``residual``: a restored image, plus the input).
"""

from __future__ import annotations

import dataclasses
import math

import torch
from torch import nn

from nas.backbones.base import Backbone, BackboneConfigBase
from nas.config import bool_field, check, int_field, ints_field, set_fields
from nas.registry import BACKBONE_PRESETS, BACKBONES, replayable

STEM_STRIDE = 4  # E1 of MSCAN is at a quarter of the input resolution


@BACKBONES.register("mscan")
@dataclasses.dataclass(frozen=True)
class MSCANConfig(BackboneConfigBase):
    """MSCAN encoder + light decoder. Defaults: MSCAN-tiny with a 1-channel (alpha) head."""

    name = "mscan"
    embed_dims: tuple[int, ...] = (32, 64, 160, 256)
    depths: tuple[int, ...] = (3, 3, 5, 2)
    mlp_ratios: tuple[int, ...] = (8, 8, 4, 4)
    in_channels: int = 3
    out_channels: int = 1
    residual: bool = False
    head_channels: int = 8

    def __post_init__(self) -> None:
        set_fields(
            self,
            embed_dims=ints_field(self.embed_dims, "backbone.embed_dims", 2),
            depths=ints_field(self.depths, "backbone.depths", 0),
            mlp_ratios=ints_field(self.mlp_ratios, "backbone.mlp_ratios", 1),
            in_channels=int_field(self.in_channels, "backbone.in_channels", 1),
            out_channels=int_field(self.out_channels, "backbone.out_channels", 1),
            residual=bool_field(self.residual, "backbone.residual"),
            head_channels=int_field(self.head_channels, "backbone.head_channels", 1),
        )
        n = len(self.embed_dims)
        check(n >= 1, "backbone.embed_dims", "needs at least one stage")
        for field in ("depths", "mlp_ratios"):
            count = len(getattr(self, field))
            check(count == n, f"backbone.{field}",
                   f"needs {n} entries (one per stage, as embed_dims), got {count}")  # fmt: skip
        check(
            not self.residual or self.in_channels == self.out_channels,
            "backbone.residual",
            "needs in_channels == out_channels; set residual: false for an alpha head",
        )

    @property
    def stage_channels(self) -> tuple[int, ...]:
        return self.embed_dims

    @property
    def stage_strides(self) -> tuple[int, ...]:
        return tuple(STEM_STRIDE * 2**i for i in range(len(self.embed_dims)))

    @property
    def size_multiple(self) -> int:
        return self.stage_strides[-1]

    supernet = True  # merges by addition

    def build(self, skip_present: tuple[bool, ...]) -> MSCAN:
        return MSCAN(self, skip_present)

    def proxy(self) -> MSCANConfig:
        """Half the channels (at least 2), one block a stage; the same head and MLP ratios."""
        dims = tuple(max(2, c // 2) for c in self.embed_dims)
        return dataclasses.replace(self, embed_dims=dims, depths=(1,) * len(dims))


@BACKBONE_PRESETS.register("mscan-tiny")
def mscan_tiny() -> MSCANConfig:
    """MSCAN-tiny (SegNeXt-T's encoder) with an alpha-matte head: the paper's Table 7 model."""
    return MSCANConfig()


def _bn_conv(cin: int, cout: int, kernel: int, stride: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, kernel, stride, kernel // 2), nn.BatchNorm2d(cout)]


class PatchEmbed(nn.Module):
    """Overlapping patch embedding: 3x3 stride-2 conv + BatchNorm, ``(N, Cin, H, W) ->
    (N, Cout, H/2, W/2)``."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.proj, self.norm = _bn_conv(cin, cout, 3, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.proj(x))


class MSCA(nn.Module):
    """Multi-scale convolutional attention: depthwise 5x5 + strip branches, 1x1, times input."""

    # the tiled executor's halo (nas.tiling): the 5x5 conv (2) then the widest strip branch
    # (1x21 and 21x1: 10), which run side by side, not one after the other
    tile_halo = 2 + 10

    def __init__(self, dim: int) -> None:
        super().__init__()

        def dw(kh: int, kw: int) -> nn.Conv2d:
            return nn.Conv2d(dim, dim, (kh, kw), padding=(kh // 2, kw // 2), groups=dim)

        self.conv0 = dw(5, 5)
        self.conv0_1, self.conv0_2 = dw(1, 7), dw(7, 1)
        self.conv1_1, self.conv1_2 = dw(1, 11), dw(11, 1)
        self.conv2_1, self.conv2_2 = dw(1, 21), dw(21, 1)
        self.conv3 = nn.Conv2d(dim, dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        attn = self.conv0(x)
        a0 = self.conv0_2(self.conv0_1(attn))
        a1 = self.conv1_2(self.conv1_1(attn))
        a2 = self.conv2_2(self.conv2_1(attn))
        return self.conv3(attn + a0 + a1 + a2) * x


class SpatialAttention(nn.Module):
    """1x1 conv, GELU, MSCA, 1x1 conv, plus the input."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.proj_1 = nn.Conv2d(dim, dim, 1)
        self.activation = nn.GELU()
        self.spatial_gating_unit = MSCA(dim)
        self.proj_2 = nn.Conv2d(dim, dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj_2(self.spatial_gating_unit(self.activation(self.proj_1(x)))) + x


class Mlp(nn.Module):
    """1x1 conv (C -> hidden), 3x3 depthwise conv, GELU, 1x1 conv (hidden -> C)."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(dim, hidden, 1)
        self.dwconv = nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Conv2d(hidden, dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.dwconv(self.fc1(x))))


@replayable
class MSCABlock(nn.Module):
    """One MSCAN block (channel count and resolution preserved)."""

    def __init__(self, dim: int, mlp_ratio: int, layer_scale: float = 1e-2) -> None:
        super().__init__()
        self.norm1 = nn.BatchNorm2d(dim)
        self.attn = SpatialAttention(dim)
        self.norm2 = nn.BatchNorm2d(dim)
        self.mlp = Mlp(dim, dim * mlp_ratio)
        self.layer_scale_1 = nn.Parameter(torch.full((dim,), layer_scale))
        self.layer_scale_2 = nn.Parameter(torch.full((dim,), layer_scale))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.layer_scale_1.view(1, -1, 1, 1) * self.attn(self.norm1(x))
        return x + self.layer_scale_2.view(1, -1, 1, 1) * self.mlp(self.norm2(x))


class MSCANStage(nn.Module):
    """A stage's blocks, then LayerNorm over channels: ``(N, C, H, W) -> (N, C, H, W)``."""

    def __init__(self, dim: int, depth: int, mlp_ratio: int) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(MSCABlock(dim, mlp_ratio) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        # (N, C, H, W) -> (N, H, W, C) -> norm -> (N, C, H, W)
        return self.norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2).contiguous()


@replayable
class DecoderBlock(nn.Module):
    """The light decoder's stage: ``x + 1x1(GELU(BN(dw3x3(x))))``."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dw = nn.Conv2d(dim, dim, 3, padding=1, groups=dim)
        self.norm = nn.BatchNorm2d(dim)
        self.act = nn.GELU()
        self.pw = nn.Conv2d(dim, dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.pw(self.act(self.norm(self.dw(x))))


class MSCAN(Backbone):
    """MSCAN encoder + light decoder; skips are merged by addition."""

    def __init__(self, cfg: MSCANConfig, skip_present: tuple[bool, ...]) -> None:
        super().__init__()
        dims = cfg.embed_dims
        self.stage_channels = dims
        self.in_channels, self.out_channels = cfg.in_channels, cfg.out_channels
        self.residual = cfg.residual
        self.skip_present = skip_present
        self._size_multiple = cfg.size_multiple
        half = max(1, dims[0] // 2)
        # (N, 3, H, W) -> (N, C1/2, H/2, W/2) -> (N, C1, H/4, W/4)
        stem = _bn_conv(cfg.in_channels, half, 3, 2) + [nn.GELU()] + _bn_conv(half, dims[0], 3, 2)
        self.stem_convs = nn.Sequential(*stem)
        for i, (c, depth, ratio) in enumerate(zip(dims, cfg.depths, cfg.mlp_ratios)):
            self.encoders.append(MSCANStage(c, depth, ratio))
            if i + 1 < len(dims):
                self.downs.append(PatchEmbed(c, dims[i + 1]))
            else:  # the decoder's entry at E_N's resolution
                self.downs.append(nn.Sequential(nn.Conv2d(c, c, 1), nn.BatchNorm2d(c), nn.GELU()))
        self._init_encoder()
        for i, c in enumerate(dims):
            if i + 1 < len(dims):
                self.ups.append(
                    nn.Sequential(nn.Conv2d(dims[i + 1], 4 * c, 1, bias=False), nn.PixelShuffle(2))
                )
            else:
                self.ups.append(nn.Identity())
            self.decoders.append(DecoderBlock(c))
        h = cfg.head_channels
        # (N, C1, H/4, W/4) -> (N, 16 h, H/4, W/4) -> (N, h, H, W)
        self.head_up = nn.Sequential(
            nn.Conv2d(dims[0], 16 * h, 1), nn.PixelShuffle(STEM_STRIDE), nn.GELU()
        )
        self.head_out = nn.Conv2d(h + cfg.in_channels, cfg.out_channels, 3, padding=1)

    @property
    def size_multiple(self) -> int:
        return self._size_multiple

    @torch.no_grad()
    def _init_encoder(self) -> None:
        """SegNeXt's initialisation of a backbone trained from scratch: convs N(0, 2 / fan_out)
        with zero bias, LayerNorm weight 1 and bias 0 (BatchNorm keeps PyTorch's 1 and 0)."""
        for module in [self.stem_convs, *self.encoders, *self.downs[:-1]]:
            for m in module.modules():
                if isinstance(m, nn.Conv2d):
                    fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels // m.groups
                    nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / fan_out))
                    if m.bias is not None:
                        nn.init.zeros_(m.bias)
                elif isinstance(m, nn.LayerNorm):
                    nn.init.ones_(m.weight)
                    nn.init.zeros_(m.bias)

    def stem(self, x: torch.Tensor) -> torch.Tensor:
        return self.stem_convs(x)

    def middle(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def merge(self, i: int, x: torch.Tensor, skip: torch.Tensor | None) -> torch.Tensor:
        return x if skip is None else x + skip

    def head(self, x: torch.Tensor, inp: torch.Tensor) -> torch.Tensor:
        y = self.head_out(torch.cat([self.head_up(x), inp], dim=1))
        return y + inp if self.residual else y
