"""UNet-- skips (Yin et al.): MSIAM aggregates all encoder outputs into one slim map, IEM expands
it back into one enhanced skip per decoder stage.

Reading of the paper implemented here (Sec. 3.3, Sec. 4 "Details of NAFNet with UNet--"):

- MSIAM, on push of E_i: a 1x1 conv (with bias) reduces C_i to c_i channels, where
  c_i = max(1, round_half_up(C_i * r_i)) or an absolute ``reduced_channels[i]``; the result is
  pixel-unshuffled (shallower than the target stage) or pixel-shuffled (deeper) to the target
  stage's resolution and held. When the last participating stage is pushed, the parts are
  concatenated (shallowest first) and a 1x1 conv (with bias) makes E' with
  ``aggregated_channels`` channels; only E' is held from then on.
- IEM, on pull of stage i: E' is pixel-shuffled (or unshuffled) to stage i's resolution *as a
  whole* (A / 4**(t-i) channels), passed through ``iem_depth`` ConvNeXt V2 blocks at that width,
  then a separable conv (depthwise ``sep_kernel`` x ``sep_kernel`` + 1x1) to C_i. After the
  shallowest participating stage is pulled, E' is released.

Initialisation (the paper does not state one): with ``identity_init`` (default) the aggregating
1x1 conv starts as the identity on its first min(in, out) channels and every IEM ConvNeXt V2 block
starts with a zero last layer (its residual branch adds nothing). Because parts are concatenated
shallowest first, pixel-shuffling E' back to stage i then hands header i exactly its own reduced
map RC(E_i) in one channel block: at step 0 the design is a reduced-width skip, not a scramble.
On the width-16 proxy (denoise sigma 25, 300 steps) this lifts the paper's design from 21.85 to
23.8 dB PSNR, and at 1200 steps from 27.0 to 28.0 dB (full skips: 27.1 and 28.9 dB).

This is the most literal reading of the text ("pixel shuffle ... to restore the resolution ... then
four enhancement header blocks ... on the input single-scale feature maps and the newly generated
feature maps"). On NAFNet-w32 at 256x256 with the paper's knobs it gives 29.895 M params and
17.23 G MACs (paper convention) against the paper's 29.98 M and 17.52 G (-0.3%, -1.7%); no reading
tried (splitting E' per stage, a 1x1 expand before the header, 3x3 separable/7x7 variants) fits
both numbers better, and the M_sc (0.25 MiB) is the same for all of them.
"""

from __future__ import annotations

import dataclasses
import math
from fractions import Fraction
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from nas.blocks import ConvNeXtV2Block, SeparableConv
from nas.config import (
    bool_field,
    check,
    int_field,
    ints_field,
    reals_field,
    set_fields,
)
from nas.registry import SKIP_DESIGNS
from nas.skips.base import Size, SkipConfigBase, SkipDesign
from nas.tiling.geometry import Box, take

PAPER_RATIOS = (1 / 16, 1 / 16, 1 / 16, 1 / 8)


def round_half_up(x: float) -> int:
    return int(math.floor(x + 0.5))


def shuffled_channels(channels: int, src: int, dst: int) -> int:
    """Channels of a map moved from stage ``src``'s resolution to stage ``dst``'s by ``resize``:
    x4 per stage deeper (pixel unshuffle), /4 per stage shallower (pixel shuffle); 0 where the
    channels do not split into 4**k (the move is impossible)."""
    k = 4 ** abs(dst - src)
    if dst >= src:
        return channels * k
    return channels // k if channels % k == 0 else 0


@SKIP_DESIGNS.register("unetmm")
@dataclasses.dataclass(frozen=True)
class UNetMMConfig(SkipConfigBase):
    """UNet-- knobs. Stages are 1-based (E1 is the shallowest). Defaults = the paper's design.

    - ``ratios``: per-stage channel-reduction ratio r_i (one per backbone stage), or
    - ``reduced_channels``: absolute c_i per stage (takes precedence; used to carry a target
      design's skip-path widths onto a narrower proxy backbone);
    - ``target_stage``: aggregation resolution = that of E_t (None: the deepest stage; Fig. 3a);
    - ``aggregated_channels``: channels of E', the one map held between encoder and decoder;
    - ``iem_depth``: ConvNeXt V2 blocks per IEM header (0 allowed);
    - ``stages``: stages that take part (None: all); the others get no skip;
    - ``sep_kernel``: kernel of the header's depthwise conv;
    - ``identity_init``: start MSIAM's aggregation as the identity and IEM blocks as identities
      (see the module docstring); False: PyTorch's default initialisation throughout.
    """

    name = "unetmm"
    ratios: tuple[float, ...] | None = PAPER_RATIOS
    reduced_channels: tuple[int, ...] | None = None
    target_stage: int | None = None
    aggregated_channels: int = 256
    iem_depth: int = 1
    stages: tuple[int, ...] | None = None
    sep_kernel: int = 3
    identity_init: bool = True

    def __post_init__(self) -> None:
        def optional(check, name, *args):  # type: ignore[no-untyped-def]
            value = getattr(self, name)
            return None if value is None else check(value, f"skip.{name}", *args)

        set_fields(
            self,
            ratios=optional(reals_field, "ratios"),
            reduced_channels=optional(ints_field, "reduced_channels", 1),
            target_stage=optional(int_field, "target_stage", 1),
            aggregated_channels=int_field(self.aggregated_channels, "skip.aggregated_channels", 1),
            iem_depth=int_field(self.iem_depth, "skip.iem_depth", 0),
            stages=optional(ints_field, "stages"),
            sep_kernel=int_field(self.sep_kernel, "skip.sep_kernel", 1),
            identity_init=bool_field(self.identity_init, "skip.identity_init"),
        )
        check(
            self.ratios is not None or self.reduced_channels is not None,
            "skip.ratios",
            "set ratios (e.g. [0.0625, 0.0625, 0.0625, 0.125]) or reduced_channels",
        )
        if self.reduced_channels is None:
            check(
                all(0 < r <= 1 for r in self.ratios or ()),
                "skip.ratios",
                f"each ratio must be in (0, 1], got {list(self.ratios or ())}",
            )
        check(self.sep_kernel % 2 == 1, "skip.sep_kernel", f"must be odd, got {self.sep_kernel}")
        if self.stages is not None:
            check(len(self.stages) >= 1, "skip.stages", "needs at least one stage (or use 'none')")
            check(len(set(self.stages)) == len(self.stages), "skip.stages", "lists a stage twice")
            object.__setattr__(self, "stages", tuple(sorted(self.stages)))

    # -- derived quantities (1-based stage numbers) -------------------------------------------
    def skip_stages(self, num_stages: int) -> tuple[int, ...]:
        return self.stages if self.stages is not None else tuple(range(1, num_stages + 1))

    def target(self, num_stages: int) -> int:
        return self.target_stage if self.target_stage is not None else num_stages

    def reduced(self, stage_channels: tuple[int, ...]) -> tuple[int, ...]:
        """c_i for every stage (also those that do not take part)."""
        if self.reduced_channels is not None:
            return self.reduced_channels
        assert self.ratios is not None
        return tuple(max(1, round_half_up(c * r)) for c, r in zip(stage_channels, self.ratios))

    def header_channels(self, stage: int, num_stages: int) -> int:
        """Channels of E' after resizing it to ``stage``'s resolution."""
        return shuffled_channels(self.aggregated_channels, self.target(num_stages), stage)

    def part_channels(self, stage: int, stage_channels: tuple[int, ...]) -> int:
        """Channels of the reduced E_stage after resizing it to the target resolution."""
        c = self.reduced(stage_channels)[stage - 1]
        return shuffled_channels(c, stage, self.target(len(stage_channels)))

    def validate(self, stage_channels: tuple[int, ...]) -> None:
        n = len(stage_channels)
        if self.reduced_channels is not None:
            field, count = "skip.reduced_channels", len(self.reduced_channels)
        else:
            field, count = "skip.ratios", len(self.ratios or ())
        check(count == n, field, f"needs {n} entries (one per backbone stage), got {count}")
        t = self.target(n)
        check(1 <= t <= n, "skip.target_stage", f"must be in 1..{n}, got {t}")
        bad = [s for s in self.skip_stages(n) if not 1 <= s <= n]
        check(not bad, "skip.stages", f"{bad} out of range; the backbone has stages 1..{n}")
        reduced = self.reduced(stage_channels)
        for s in self.skip_stages(n):
            k = 4 ** abs(s - t)
            if s > t:  # pixel shuffle up to the target: channels must split into 4**k
                check(
                    shuffled_channels(reduced[s - 1], s, t) > 0,
                    field,
                    f"stage {s} keeps {reduced[s - 1]} channels, which pixel shuffle to target "
                    f"stage {t} cannot split (needs a multiple of {k}); raise that stage's "
                    f"channels or choose a deeper target_stage",
                )
            if s < t:  # IEM pixel-shuffles E' up to stage s
                check(
                    shuffled_channels(self.aggregated_channels, t, s) > 0,
                    "skip.aggregated_channels",
                    f"{self.aggregated_channels} cannot be pixel-shuffled from target stage {t} "
                    f"to stage {s} (needs a multiple of {k})",
                )

    def held_elements(self, stage_channels: tuple[int, ...], sizes: list[Size]) -> list[int]:
        """Analytic M_sc timeline in elements per image: parts until aggregation, then E'."""
        n = len(stage_channels)
        p = self.skip_stages(n)
        reduced = self.reduced(stage_channels)
        th, tw = sizes[self.target(n) - 1]
        agg = self.aggregated_channels * th * tw
        timeline, held = [], 0
        for s in range(1, n + 1):
            if s in p:
                h, w = sizes[s - 1]
                held = agg if s == max(p) else held + reduced[s - 1] * h * w
            timeline.append(held)
        timeline.append(held)  # after the middle
        for s in range(n, 0, -1):
            timeline.append(0 if s == min(p) or held == 0 else held)
            held = timeline[-1]
        return timeline

    def with_absolute_channels(self, stage_channels: tuple[int, ...]) -> UNetMMConfig:
        """The same design with c_i and the target stage spelled out, for another backbone."""
        return self.replace(
            ratios=None,
            reduced_channels=self.reduced(stage_channels),
            target_stage=self.target(len(stage_channels)),
        )

    def build(self, stage_channels: tuple[int, ...]) -> UNetMMSkips:
        return UNetMMSkips(self, stage_channels)

    @classmethod
    def paper(cls, num_stages: int = 4, first_channels: int = 32) -> UNetMMConfig:
        """The paper's point for any depth and width: r = 1/16 per stage but 1/8 for the
        deepest, E' of 8 x C1 channels at the deepest stage (C1: E1's channels; 256 on NAFNet-w32,
        512 on KBNet-w64: Table 4's 0.25 and 0.5 MB), one ConvNeXt V2 block per header."""
        return cls(ratios=(1 / 16,) * (num_stages - 1) + (1 / 8,),
                   aggregated_channels=8 * first_channels)  # fmt: skip


def resize(x: torch.Tensor, src: int, dst: int) -> torch.Tensor:
    """Move a map from stage ``src``'s resolution to stage ``dst``'s by pixel (un)shuffle."""
    if dst > src:  # deeper: (N, C, H, W) -> (N, C * 4**k, H / 2**k, W / 2**k)
        return F.pixel_unshuffle(x, 2 ** (dst - src))
    if dst < src:  # shallower: (N, C, H, W) -> (N, C / 4**k, H * 2**k, W * 2**k)
        return F.pixel_shuffle(x, 2 ** (src - dst))
    return x


class UNetMMSkips(SkipDesign):
    """MSIAM (reducers + aggregate) and IEM (headers); holds parts, then only E'."""

    def __init__(self, cfg: UNetMMConfig, stage_channels: tuple[int, ...]) -> None:
        super().__init__(cfg, stage_channels)
        n = len(stage_channels)
        self.target = cfg.target(n)
        self.part_stages = cfg.skip_stages(n)
        reduced = cfg.reduced(stage_channels)
        self.reducers = nn.ModuleDict(
            {str(s): nn.Conv2d(stage_channels[s - 1], reduced[s - 1], 1) for s in self.part_stages}
        )
        concat = sum(cfg.part_channels(s, stage_channels) for s in self.part_stages)
        self.aggregate = nn.Conv2d(concat, cfg.aggregated_channels, 1)
        self.headers = nn.ModuleDict()
        for s in self.part_stages:
            ch = cfg.header_channels(s, n)
            blocks = [ConvNeXtV2Block(ch) for _ in range(cfg.iem_depth)]
            self.headers[str(s)] = nn.Sequential(
                *blocks, SeparableConv(ch, stage_channels[s - 1], cfg.sep_kernel)
            )
        if cfg.identity_init:
            self._identity_init()

    @torch.no_grad()
    def _identity_init(self) -> None:
        """E' = the concatenated parts (first min(in, out) channels); IEM blocks = identity."""
        w = self.aggregate.weight  # (A, concat, 1, 1)
        n = min(w.shape[0], w.shape[1])
        w.zero_()
        w[:n, :n, 0, 0] = torch.eye(n)
        nn.init.zeros_(self.aggregate.bias)
        for module in self.headers.modules():
            if isinstance(module, ConvNeXtV2Block):
                nn.init.zeros_(module.pwconv2.weight)
                nn.init.zeros_(module.pwconv2.bias)

    def push(self, held: dict[str, torch.Tensor], i: int, e: torch.Tensor) -> None:
        s = i + 1
        if s not in self.part_stages:
            return
        held[f"part{s}"] = resize(self.reducers[str(s)](e), s, self.target)
        if s == self.part_stages[-1]:
            parts = [held.pop(f"part{p}") for p in self.part_stages]
            held["agg"] = self.aggregate(torch.cat(parts, dim=1))

    def pull(self, held: dict[str, torch.Tensor], i: int) -> torch.Tensor | None:
        s = i + 1
        if s not in self.part_stages:
            return None
        agg = held["agg"] if s != self.part_stages[0] else held.pop("agg")
        return self.headers[str(s)](resize(agg, self.target, s))

    # -- tiled ------------------------------------------------------------------------------
    # E' is filled tile by tile when every taking-part stage is tiled and a tile covers whole
    # pixels of the target stage; otherwise each tiled stage's reduced map is held at its own
    # resolution (as many elements as after the resize) until the parts are aggregated.
    def _tiled_stages(self, tiling: Any) -> list[int]:
        return [s for s in self.part_stages if s <= tiling.split]

    def _per_tile(self, tiling: Any) -> bool:
        return (max(self.part_stages) <= tiling.split
                and tiling.tile % tiling.stride(self.target - 1) == 0)  # fmt: skip

    def tile_calls(self, sizes: list[Size], batch: int
                   ) -> dict[int, tuple[nn.Module, torch.Tensor]]:  # fmt: skip
        device = self.aggregate.weight.device
        out = {}
        for s in self.part_stages:
            ch = self.cfg.header_channels(s, len(self.stage_channels))  # type: ignore[attr-defined]
            inp = torch.empty(batch, ch, *sizes[s - 1], device=device)
            out[s - 1] = (self.headers[str(s)], inp)
        return out

    def tile_begin(self, held: dict[str, torch.Tensor], like: torch.Tensor, tiling: Any) -> None:
        if self._per_tile(tiling):
            held["agg"] = tiling.empty(like, self.target - 1, self.aggregate.out_channels)
            return
        for s in self._tiled_stages(tiling):
            held[f"buf{s}"] = tiling.empty(like, s - 1, self.reducers[str(s)].out_channels)

    def push_tile(self, held: dict[str, torch.Tensor], i: int, e: torch.Tensor,
                  origin: tuple[int, int], owned: Box, tiling: Any) -> None:  # fmt: skip
        s = i + 1
        if s not in self.part_stages:
            return
        part = self.reducers[str(s)](take(e, origin, owned))  # 1x1: the owned pixels only
        if not self._per_tile(tiling):
            ys, xs = owned.slices((0, 0))
            held[f"buf{s}"][..., ys, xs] = part
            return
        held[f"tile{s}"] = resize(part, s, self.target)
        del part
        if s == self.part_stages[-1]:
            parts = [held.pop(f"tile{p}") for p in self.part_stages]
            agg = self.aggregate(torch.cat(parts, dim=1))
            del parts
            at = owned.scaled(Fraction(tiling.stride(i), tiling.stride(self.target - 1)))
            ys, xs = at.slices((0, 0))
            held["agg"][..., ys, xs] = agg

    def tile_encoder_done(self, held: dict[str, torch.Tensor], tiling: Any) -> None:
        tiled = self._tiled_stages(tiling)
        if self._per_tile(tiling) or not tiled:
            return
        for s in tiled:
            held[f"part{s}"] = resize(held.pop(f"buf{s}"), s, self.target)
        if max(self.part_stages) <= tiling.split:  # every part is here: aggregate, as push does
            parts = [held.pop(f"part{p}") for p in self.part_stages]
            held["agg"] = self.aggregate(torch.cat(parts, dim=1))

    def pull_tile(self, held: dict[str, torch.Tensor], i: int, box: Box,
                  tiling: Any) -> torch.Tensor | None:  # fmt: skip
        s, t = i + 1, self.target
        if s not in self.part_stages:
            return None
        need = tiling.footprint(i).need(box)  # the header's input region at stage s
        agg = held["agg"]
        if s < t:  # pixel shuffle E' up to stage s: whole pixels of E', then the needed part
            r = 2 ** (t - s)
            src = need.scaled(Fraction(1, r))
            x = take(resize(take(agg, (0, 0), src), t, s), (src.y0 * r, src.x0 * r), need)
        else:  # s > t: pixel unshuffle down; s == t: the region itself
            src = need.scaled(2 ** (s - t))
            x = resize(take(agg, (0, 0), src), t, s)
        origin = (need.y0, need.x0)
        y = tiling.call(self.headers[str(s)], x, origin, i)
        del x
        return take(y, origin, box)

    def tile_end(self, held: dict[str, torch.Tensor], tiling: Any) -> None:
        if min(self.part_stages) <= tiling.split:
            held.pop("agg", None)
