"""NAFNet (Chen et al., "Simple Baselines for Image Restoration", 2022) as a skip-less backbone.

Stages double the channels and halve the resolution with a stride-2 2x2 conv; the decoder goes
back up with a point-wise conv + pixel shuffle and fuses a skip by addition. The input is padded
to a multiple of ``2**N`` and the output cropped back; a global residual adds the input.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from nas.backbones.base import Backbone, BackboneConfigBase
from nas.blocks import NAFBlock
from nas.config import check, int_field, ints_field, set_fields
from nas.registry import BACKBONES


@BACKBONES.register("nafnet")
@dataclasses.dataclass(frozen=True)
class NAFNetConfig(BackboneConfigBase):
    """NAFNet hyper-parameters; ``dec_blk_nums`` is listed deepest stage first, as in NAFNet."""

    name = "nafnet"
    width: int = 32
    enc_blk_nums: tuple[int, ...] = (2, 2, 4, 8)
    middle_blk_num: int = 12
    dec_blk_nums: tuple[int, ...] = (2, 2, 2, 2)
    img_channels: int = 3

    def __post_init__(self) -> None:
        set_fields(
            self,
            width=int_field(self.width, "backbone.width", 1),
            enc_blk_nums=ints_field(self.enc_blk_nums, "backbone.enc_blk_nums", 0),
            middle_blk_num=int_field(self.middle_blk_num, "backbone.middle_blk_num", 0),
            dec_blk_nums=ints_field(self.dec_blk_nums, "backbone.dec_blk_nums", 0),
            img_channels=int_field(self.img_channels, "backbone.img_channels", 1),
        )
        check(len(self.enc_blk_nums) >= 1, "backbone.enc_blk_nums", "needs at least one stage")
        check(
            len(self.dec_blk_nums) == len(self.enc_blk_nums),
            "backbone.dec_blk_nums",
            f"needs {len(self.enc_blk_nums)} entries (one per encoder stage), "
            f"got {len(self.dec_blk_nums)}",
        )

    @property
    def stage_channels(self) -> tuple[int, ...]:
        return tuple(self.width * 2**i for i in range(len(self.enc_blk_nums)))

    @property
    def in_channels(self) -> int:
        return self.img_channels

    def build(self, skip_present: tuple[bool, ...]) -> NAFNet:
        return NAFNet(self, skip_present)


def nafnet_sidd() -> NAFNetConfig:
    """The paper's SIDD denoising NAFNet: width 32, enc [2,2,4,8], middle 12, dec [2,2,2,2]."""
    return NAFNetConfig(32, (2, 2, 4, 8), 12, (2, 2, 2, 2))


def nafnet_gopro() -> NAFNetConfig:
    """The GoPro deblurring NAFNet: width 64, enc [1,1,1,28], middle 1, dec [1,1,1,1]."""
    return NAFNetConfig(64, (1, 1, 1, 28), 1, (1, 1, 1, 1))


def _blocks(channels: int, count: int) -> nn.Sequential:
    return nn.Sequential(*(NAFBlock(channels) for _ in range(count)))


class NAFNet(Backbone):
    """NAFNet encoder/middle/decoder; skips are merged by addition."""

    def __init__(self, cfg: NAFNetConfig, skip_present: tuple[bool, ...]) -> None:
        super().__init__()
        self.stage_channels = cfg.stage_channels
        self.in_channels = self.out_channels = cfg.img_channels
        self.intro = nn.Conv2d(cfg.img_channels, cfg.width, 3, padding=1)
        for c, n in zip(self.stage_channels, cfg.enc_blk_nums):
            self.encoders.append(_blocks(c, n))
            self.downs.append(nn.Conv2d(c, 2 * c, 2, stride=2))
        self.middle_blks = _blocks(2 * self.stage_channels[-1], cfg.middle_blk_num)
        # ups[i] / decoders[i] serve stage i (0 = shallowest); dec_blk_nums is deepest first.
        for c, n in zip(self.stage_channels, reversed(cfg.dec_blk_nums)):
            self.ups.append(nn.Sequential(nn.Conv2d(2 * c, 4 * c, 1, bias=False), nn.PixelShuffle(2)))
            self.decoders.append(_blocks(c, n))
        self.ending = nn.Conv2d(cfg.width, cfg.img_channels, 3, padding=1)
        self.skip_present = skip_present

    def stem(self, x: torch.Tensor) -> torch.Tensor:
        return self.intro(x)

    def middle(self, x: torch.Tensor) -> torch.Tensor:
        return self.middle_blks(x)

    def merge(self, i: int, x: torch.Tensor, skip: torch.Tensor | None) -> torch.Tensor:
        return x if skip is None else x + skip

    def head(self, x: torch.Tensor, inp: torch.Tensor) -> torch.Tensor:
        return self.ending(x) + inp

