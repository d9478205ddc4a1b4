"""NAFNet (Chen et al., "Simple Baselines for Image Restoration", 2022) as a skip-less backbone.

Stages double the channels and halve the resolution with a stride-2 2x2 conv; the decoder goes
back up with a point-wise conv + pixel shuffle and fuses a skip by addition. The input is padded
to a multiple of ``2**N`` and the output cropped back; a global residual adds the input.

``tlc_train_size`` (the training crop, e.g. ``[256, 256]``) makes it NAFNetLocal, as the official
GoPro test configs build it: every block's channel attention pools over a window of 1.5x its
map's size at the training size; on inputs up to 1.5x the training size that is the global
pooling of plain NAFNet (same outputs), above it a local mean (``nas.blocks.LocalAvgPool2d``).
The parameters are the same, so weights load either way.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any, ClassVar

import torch
from torch import nn

from nas.backbones.base import PROXY_WIDTH, Backbone, BackboneConfigBase
from nas.blocks import NAFBlock
from nas.config import check, int_field, ints_field, set_fields
from nas.errors import ConfigError
from nas.registry import BACKBONE_PRESETS, BACKBONES

_INDEXED = re.compile(r"^(encoders|decoders|middle_blks|downs|ups)\.(\d+)(?:\.(\d+))?\.")


@BACKBONES.register("nafnet")
@dataclasses.dataclass(frozen=True)
class NAFNetConfig(BackboneConfigBase):
    """NAFNet hyper-parameters; ``dec_blk_nums`` is listed deepest stage first, as in NAFNet."""

    name = "nafnet"
    official_name = "NAFNet"  # megvii-research/NAFNet, BasicSR layout
    official_shape_fields = ("width", "img_channels", "enc_blk_nums", "middle_blk_num",
                             "dec_blk_nums")  # tlc_train_size shapes no tensor  # fmt: skip
    supernet = True  # merges by addition
    width: int = 32
    enc_blk_nums: tuple[int, ...] = (2, 2, 4, 8)
    middle_blk_num: int = 12
    dec_blk_nums: tuple[int, ...] = (2, 2, 2, 2)
    img_channels: int = 3
    tlc_train_size: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        tlc = self.tlc_train_size
        set_fields(
            self,
            width=int_field(self.width, "backbone.width", 1),
            enc_blk_nums=ints_field(self.enc_blk_nums, "backbone.enc_blk_nums", 0),
            middle_blk_num=int_field(self.middle_blk_num, "backbone.middle_blk_num", 0),
            dec_blk_nums=ints_field(self.dec_blk_nums, "backbone.dec_blk_nums", 0),
            img_channels=int_field(self.img_channels, "backbone.img_channels", 1),
            tlc_train_size=None if tlc is None else ints_field(tlc, "backbone.tlc_train_size", 1),
        )
        check(
            self.tlc_train_size is None or len(self.tlc_train_size) == 2,
            "backbone.tlc_train_size",
            f"needs [height, width] of the training crops (e.g. [256, 256]), got {tlc!r}",
        )
        check(len(self.enc_blk_nums) >= 1, "backbone.enc_blk_nums", "needs at least one stage")
        check(
            len(self.dec_blk_nums) == len(self.enc_blk_nums),
            "backbone.dec_blk_nums",
            f"needs {len(self.enc_blk_nums)} entries (one per encoder stage), "
            f"got {len(self.dec_blk_nums)}",
        )

    def to_dict(self) -> dict[str, Any]:
        """As ``ConfigBase.to_dict``, without ``tlc_train_size`` when it is unset, so configs
        (and the arch keys and study fingerprints hashing them) read as before the option."""
        out = super().to_dict()
        if self.tlc_train_size is None:
            del out["tlc_train_size"]
        return out

    def pool_kernel(self, stride: int) -> tuple[int, int] | None:
        """NAFNetLocal's channel-attention window at a map of ``stride`` (None: global pooling):
        1.5x the map's size at the training size, as the official ``Local_Base.convert``."""
        if self.tlc_train_size is None:
            return None
        return tuple(t // stride * int(1.5 * t) // t for t in self.tlc_train_size)  # type: ignore[return-value]

    @property
    def in_channels(self) -> int:
        return self.img_channels

    @property
    def out_channels(self) -> int:
        return self.img_channels

    @property
    def stage_channels(self) -> tuple[int, ...]:
        return tuple(self.width * 2**i for i in range(len(self.enc_blk_nums)))

    def build(self, skip_present: tuple[bool, ...]) -> NAFNet:
        return NAFNet(self, skip_present)

    def proxy(self) -> NAFNetConfig:
        """Width 16, one block a stage, middle 1."""
        n = len(self.enc_blk_nums)
        return NAFNetConfig(PROXY_WIDTH, (1,) * n, 1, (1,) * n, self.img_channels)

    # -- the published weights (``nas.checkpoints``). Their names differ from ours in two ways
    # besides our ``backbone.`` prefix: ``ups.k``/``decoders.k`` count from the deepest stage
    # there (k = 0 follows the middle blocks), from the shallowest here; and ``official_renames``
    # inside a block: NAFNet's channel attention is ``sca.1`` there (an ``nn.Sequential(pool,
    # conv)``), ``sca.conv`` here.
    official_renames: ClassVar[tuple[tuple[str, str], ...]] = ((".sca.1.", ".sca.conv."),)
    @classmethod
    def detects_official(cls, state: Mapping[str, Any]) -> bool:
        kbnet = any(k.endswith(".attgamma") for k in state)  # NAFNet's layout, KBNet's blocks
        return "intro.weight" in state and "ending.weight" in state and not kbnet

    @classmethod
    def from_official(cls, state: Mapping[str, Any], field: str) -> NAFNetConfig:
        """Width and channels from ``intro``, block counts from the indices (``dec_blk_nums``
        deepest first as in NAFNet)."""
        intro = state.get("intro.weight")
        if intro is None or intro.ndim != 4:
            raise ConfigError(f"{field}: not an official NAFNet checkpoint (no 'intro.weight'; "
                              f"first name {next(iter(state))!r})")  # fmt: skip
        blocks: dict[str, dict[int, set[int]]] = {}
        for key in state:
            m = _INDEXED.match(key)
            if m:
                inner = blocks.setdefault(m.group(1), {}).setdefault(int(m.group(2)), set())
                if m.group(3) is not None:
                    inner.add(int(m.group(3)))
        n = len(blocks.get("downs", {}))

        def counts(part: str) -> tuple[int, ...]:
            found = blocks.get(part, {})
            return tuple(max(found[i]) + 1 if found.get(i) else 0 for i in range(n))

        middle = blocks.get("middle_blks", {})
        return cls(width=int(intro.shape[0]), enc_blk_nums=counts("encoders"),
                   middle_blk_num=max(middle) + 1 if middle else 0,
                   dec_blk_nums=counts("decoders"), img_channels=int(intro.shape[1]))  # fmt: skip

    def official_to_ours(self, key: str) -> str:
        """``ups.0.0.weight`` -> ``backbone.ups.3.0.weight`` (4 stages),
        ``encoders.1.0.sca.1.bias`` -> ``backbone.encoders.1.0.sca.conv.bias``."""
        parts = key.split(".")
        if parts[0] in ("ups", "decoders") and len(parts) > 1 and parts[1].isdigit():
            parts[1] = str(len(self.enc_blk_nums) - 1 - int(parts[1]))
        key = "backbone." + ".".join(parts)
        for theirs, ours in self.official_renames:
            key = key.replace(theirs, ours)
        return key


@BACKBONE_PRESETS.register("nafnet-w32")
def nafnet_w32() -> NAFNetConfig:
    """The paper's SIDD denoising NAFNet: width 32, enc [2,2,4,8], middle 12, dec [2,2,2,2]."""
    return NAFNetConfig(32, (2, 2, 4, 8), 12, (2, 2, 2, 2))


nafnet_sidd = nafnet_w32  # its name in 0.1


def nafnet_gopro(local: bool = False) -> NAFNetConfig:
    """The GoPro deblurring NAFNet: width 64, enc [1,1,1,28], middle 1, dec [1,1,1,1]; with
    ``local``, NAFNetLocal as the official GoPro test configs build it (trained on 256 crops)."""
    return NAFNetConfig(64, (1, 1, 1, 28), 1, (1, 1, 1, 1),
                        tlc_train_size=(256, 256) if local else None)  # fmt: skip


BACKBONE_PRESETS.register("nafnet-gopro")(nafnet_gopro)
BACKBONE_PRESETS.register("nafnet-gopro-local")(lambda: nafnet_gopro(local=True))
BACKBONE_PRESETS.alias("nafnet-sidd", "nafnet-w32")  # its name in 0.1 (stored studies use it)
BACKBONE_PRESETS.register("nafnet-w16")(lambda: NAFNetConfig(16, (1, 1, 1, 1), 1, (1, 1, 1, 1)))


class NAFNet(Backbone):
    """NAFNet encoder/middle/decoder; skips are merged by addition. A subclass with other
    blocks in the same layout (KBNet) overrides ``block``."""

    def block(self, cfg: NAFNetConfig, channels: int, pool_kernel: tuple[int, int] | None
              ) -> nn.Module:  # fmt: skip
        return NAFBlock(channels, pool_kernel=pool_kernel)

    def _blocks(self, cfg: NAFNetConfig, channels: int, count: int,
                pool_kernel: tuple[int, int] | None) -> nn.Sequential:  # fmt: skip
        return nn.Sequential(*(self.block(cfg, channels, pool_kernel) for _ in range(count)))

    def __init__(self, cfg: NAFNetConfig, skip_present: tuple[bool, ...]) -> None:
        super().__init__()
        self.stage_channels = cfg.stage_channels
        self.in_channels = self.out_channels = cfg.img_channels
        self.intro = nn.Conv2d(cfg.img_channels, cfg.width, 3, padding=1)
        strides = cfg.stage_strides
        for c, n, s in zip(self.stage_channels, cfg.enc_blk_nums, strides):
            self.encoders.append(self._blocks(cfg, c, n, cfg.pool_kernel(s)))
            self.downs.append(nn.Conv2d(c, 2 * c, 2, stride=2))
        self.middle_blks = self._blocks(cfg, 2 * self.stage_channels[-1], cfg.middle_blk_num,
                                        cfg.pool_kernel(cfg.size_multiple))  # fmt: skip
        # ups[i] / decoders[i] serve stage i (0 = shallowest); dec_blk_nums is deepest first.
        for c, n, s in zip(self.stage_channels, reversed(cfg.dec_blk_nums), strides):
            self.ups.append(nn.Sequential(nn.Conv2d(2 * c, 4 * c, 1, bias=False), nn.PixelShuffle(2)))
            self.decoders.append(self._blocks(cfg, c, n, cfg.pool_kernel(s)))
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

