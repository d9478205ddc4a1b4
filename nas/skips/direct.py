"""Direct skips: E_i goes to D_i unchanged, for all stages (``full``), none (``none``) or a chosen
set (``subset``, the paper's Table 1 ablation). One module serves all three."""

from __future__ import annotations

import dataclasses
from typing import Any

import torch

from nas.config import check, ints_field, set_fields
from nas.registry import SKIP_DESIGNS
from nas.skips.base import Size, SkipConfigBase, SkipDesign, keep_until_pulled
from nas.tiling.geometry import Box, take


class _DirectConfig(SkipConfigBase):
    """Shared behaviour: which stages (1-based) keep their E_i for the decoder."""

    def validate(self, stage_channels: tuple[int, ...]) -> None:
        n = len(stage_channels)
        bad = [s for s in self.skip_stages(n) if not 1 <= s <= n]
        check(not bad, "skip.stages", f"{bad} out of range; the backbone has stages 1..{n}")

    def held_elements(self, stage_channels: tuple[int, ...], sizes: list[Size]) -> list[int]:
        elements = [c * h * w for c, (h, w) in zip(stage_channels, sizes)]
        return keep_until_pulled(elements, self.delivers(len(stage_channels)))

    def build(self, stage_channels: tuple[int, ...]) -> DirectSkips:
        return DirectSkips(self, stage_channels)


@SKIP_DESIGNS.register("full")
@dataclasses.dataclass(frozen=True)
class FullSkipsConfig(_DirectConfig):
    """Every E_i is kept until D_i: the ordinary U-Net."""

    name = "full"

    def skip_stages(self, num_stages: int) -> tuple[int, ...]:
        return tuple(range(1, num_stages + 1))


@SKIP_DESIGNS.register("none")
@dataclasses.dataclass(frozen=True)
class NoSkipsConfig(_DirectConfig):
    """No skip connections at all (M_sc = 0)."""

    name = "none"

    def skip_stages(self, num_stages: int) -> tuple[int, ...]:
        return ()


@SKIP_DESIGNS.register("subset")
@dataclasses.dataclass(frozen=True)
class SubsetSkipsConfig(_DirectConfig):
    """Only the listed stages (1-based, e.g. ``(2,)`` is Table 1's Model-2) keep their skip."""

    name = "subset"
    stages: tuple[int, ...] = (1,)

    def __post_init__(self) -> None:
        set_fields(self, stages=ints_field(self.stages, "skip.stages"))
        check(
            len(set(self.stages)) == len(self.stages),
            "skip.stages",
            f"lists a stage twice: {list(self.stages)}",
        )
        object.__setattr__(self, "stages", tuple(sorted(self.stages)))

    def skip_stages(self, num_stages: int) -> tuple[int, ...]:
        return self.stages


class DirectSkips(SkipDesign):
    """Holds E_i itself between push and pull for the stages its config keeps."""

    def __init__(self, cfg: _DirectConfig, stage_channels: tuple[int, ...]) -> None:
        super().__init__(cfg, stage_channels)
        self.kept = cfg.delivers(len(stage_channels))

    def push(self, held: dict[str, torch.Tensor], i: int, e: torch.Tensor) -> None:
        if self.kept[i]:
            held[f"E{i + 1}"] = e

    def pull(self, held: dict[str, torch.Tensor], i: int) -> torch.Tensor | None:
        return held.pop(f"E{i + 1}") if self.kept[i] else None

    # -- tiled: a full-size buffer of each kept tiled stage, filled tile by tile
    def tile_begin(self, held: dict[str, torch.Tensor], like: torch.Tensor, tiling: Any) -> None:
        for i in range(tiling.split):
            if self.kept[i]:
                held[f"E{i + 1}"] = tiling.empty(like, i, self.stage_channels[i])

    def push_tile(self, held: dict[str, torch.Tensor], i: int, e: torch.Tensor,
                  origin: tuple[int, int], owned: Box, tiling: Any) -> None:  # fmt: skip
        if self.kept[i]:
            ys, xs = owned.slices((0, 0))
            held[f"E{i + 1}"][..., ys, xs] = take(e, origin, owned)

    def pull_tile(self, held: dict[str, torch.Tensor], i: int, box: Box,
                  tiling: Any) -> torch.Tensor | None:  # fmt: skip
        return take(held[f"E{i + 1}"], (0, 0), box) if self.kept[i] else None

    def tile_end(self, held: dict[str, torch.Tensor], tiling: Any) -> None:
        for i in range(tiling.split):
            held.pop(f"E{i + 1}", None)
