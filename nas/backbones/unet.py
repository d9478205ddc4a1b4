"""The classic U-Net (Ronneberger et al. 2015) as a skip-less backbone.

Each stage is two 3x3 convs (+ BatchNorm) + ReLU; max-pooling goes down, a 2x2 transposed conv
goes up and halves the channels, and a skip is fused by concatenation before the stage's double
conv. Convs are padded ("same"), so with ``pad_input`` any input size works.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from nas.backbones.base import PROXY_WIDTH, Backbone, BackboneConfigBase
from nas.blocks import DoubleConv
from nas.config import bool_field, check, int_field, set_fields
from nas.registry import BACKBONE_PRESETS, BACKBONES


@BACKBONES.register("unet")
@dataclasses.dataclass(frozen=True)
class UNetConfig(BackboneConfigBase):
    """Classic U-Net: ``depth`` encoder stages of ``width * 2**i`` channels, then a bottleneck.

    ``depth=4, width=64`` is Ronneberger's network (64..512 + a 1024-channel bottleneck).
    ``residual`` adds the input to the output (restoration); set it False for other heads
    (e.g. segmentation with ``out_channels`` classes). Without ``pad_input`` the input height and
    width must be multiples of ``2**depth``.
    """

    name = "unet"
    width: int = 64
    depth: int = 4
    in_channels: int = 3
    out_channels: int = 3
    batch_norm: bool = True
    residual: bool = True
    pad_input: bool = True

    def __post_init__(self) -> None:
        set_fields(
            self,
            width=int_field(self.width, "backbone.width", 1),
            depth=int_field(self.depth, "backbone.depth"),
            in_channels=int_field(self.in_channels, "backbone.in_channels", 1),
            out_channels=int_field(self.out_channels, "backbone.out_channels", 1),
            batch_norm=bool_field(self.batch_norm, "backbone.batch_norm"),
            residual=bool_field(self.residual, "backbone.residual"),
            pad_input=bool_field(self.pad_input, "backbone.pad_input"),
        )
        check(3 <= self.depth <= 5, "backbone.depth", f"must be 3, 4 or 5, got {self.depth}")
        check(
            not self.residual or self.in_channels == self.out_channels,
            "backbone.residual",
            "needs in_channels == out_channels; set residual: false for other heads",
        )

    @property
    def stage_channels(self) -> tuple[int, ...]:
        return tuple(self.width * 2**i for i in range(self.depth))

    def build(self, skip_present: tuple[bool, ...]) -> UNet:
        return UNet(self, skip_present)

    def proxy(self) -> UNetConfig:
        """Width 16, padding any input."""
        return dataclasses.replace(self, width=PROXY_WIDTH, pad_input=True)


BACKBONE_PRESETS.register("unet")(lambda: UNetConfig())
BACKBONE_PRESETS.register("unet-w32-d3")(lambda: UNetConfig(width=32, depth=3))
BACKBONE_PRESETS.register("unet-w32-d5")(lambda: UNetConfig(width=32, depth=5))


class UNet(Backbone):
    """Classic U-Net; a stage without a skip gets a narrower double conv (no concatenation)."""

    def __init__(self, cfg: UNetConfig, skip_present: tuple[bool, ...]) -> None:
        super().__init__()
        self.stage_channels = cfg.stage_channels
        self.in_channels, self.out_channels = cfg.in_channels, cfg.out_channels
        self.pads_input = cfg.pad_input
        self.residual = cfg.residual
        self.skip_present = skip_present
        cin = cfg.in_channels
        for c in self.stage_channels:
            self.encoders.append(DoubleConv(cin, c, cfg.batch_norm))
            self.downs.append(nn.MaxPool2d(2))
            cin = c
        deepest = self.stage_channels[-1]
        self.bottleneck = DoubleConv(deepest, 2 * deepest, cfg.batch_norm)
        for c, has_skip in zip(self.stage_channels, skip_present):
            self.ups.append(nn.ConvTranspose2d(2 * c, c, 2, stride=2))
            self.decoders.append(DoubleConv(c * (2 if has_skip else 1), c, cfg.batch_norm))
        self.out = nn.Conv2d(cfg.width, cfg.out_channels, 1)

    def stem(self, x: torch.Tensor) -> torch.Tensor:
        return x  # the first double conv takes the image itself

    def middle(self, x: torch.Tensor) -> torch.Tensor:
        return self.bottleneck(x)

    def merge(self, i: int, x: torch.Tensor, skip: torch.Tensor | None) -> torch.Tensor:
        if skip is None:
            return x
        return torch.cat([skip, x], dim=1)  # (B, C, h, w) + (B, C, h, w) -> (B, 2C, h, w)

    def head(self, x: torch.Tensor, inp: torch.Tensor) -> torch.Tensor:
        y = self.out(x)
        return y + inp if self.residual else y
