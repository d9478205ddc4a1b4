"""The skip-design contract: how encoder outputs reach the decoder, and what that holds in memory.

A skip design has two halves:

- a frozen ``Config`` (registered by name) that knows, without building anything, which decoder
  stages get a skip (``delivers``), whether it fits a backbone (``validate``), and how many
  elements it holds at every stage boundary (``held_elements``: the analytic M_sc timeline);
- an ``nn.Module`` (``SkipDesign``) with ``push(held, i, E_i)`` called after encoder stage ``i``
  and ``pull(held, i)`` called before decoder stage ``i`` (0-based, deepest pulled first). ``held``
  is a per-forward dict owned by ``SkipContext``: exactly the tensors the design keeps alive
  between encoder and decoder. ``pull`` returns ``S_i`` with ``stage_channels[i]`` channels, or
  ``None`` where ``delivers()[i]`` is False, and drops from ``held`` what it no longer needs.

Under the tiled executor (``nas.tiling``) the design is driven tile by tile instead, by the
methods of the ``Tiled execution`` section of ``SkipDesign``: ``tile_begin`` allocates what the
design holds for the tiled stages (so every tile starts from the same live bytes),
``push_tile`` stores the tile's owned part of E_i, ``tile_encoder_done`` finishes what needs the
whole map before the deep stages run, ``pull_tile`` returns S_i for one region, and ``tile_end``
frees the tiled stages' state. Stages deeper than the split still use ``push``/``pull``.

``held`` is the design's own bookkeeping, and ``held_elements`` must describe it; the cost
tracer does not trust it, though: it charges to the skips every live activation that is not on
the backbone's main path (see ``nas.cost.trace``), so a tensor kept anywhere else is caught.
Boundaries are labelled ``E1..EN`` (after encoder stage ``i``), ``M`` (after the middle) and
``DN..D1`` (after decoder stage ``i``), the x-axis of the paper's Fig. 1b.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from nas.config import ConfigBase
from nas.errors import ConfigError
from nas.protocols import Size


class SkipConfigBase(ConfigBase):
    """Defaults of ``nas.protocols.SkipConfig``: ``delivers`` from ``skip_stages`` (the 1-based
    stages whose decoder gets a skip), and widths that need no spelling out."""

    def skip_stages(self, num_stages: int) -> tuple[int, ...]:
        raise NotImplementedError

    def delivers(self, num_stages: int) -> tuple[bool, ...]:
        kept = set(self.skip_stages(num_stages))
        return tuple(i + 1 in kept for i in range(num_stages))

    def with_absolute_channels(self, stage_channels: tuple[int, ...]) -> SkipConfigBase:
        return self


def boundary_labels(num_stages: int) -> list[str]:
    """``['E1', .., 'EN', 'M', 'DN', .., 'D1']``."""
    enc = [f"E{i}" for i in range(1, num_stages + 1)]
    return [*enc, "M", *(f"D{i}" for i in range(num_stages, 0, -1))]


def stage_sizes(height: int, width: int, strides: Sequence[int]) -> list[Size]:
    """Spatial size of E_1..E_N for a (padded) ``height x width`` input, E_i at ``strides[i-1]``
    (the backbone config's ``stage_strides``: 1, 2, 4, .. for NAFNet; 4, 8, 16, 32 for MSCAN)."""
    return [(height // s, width // s) for s in strides]


def keep_until_pulled(
    elements: Sequence[int], kept: Sequence[bool]
) -> list[int]:
    """Timeline of a design that holds ``elements[i]`` from push ``i`` until pull ``i``."""
    n = len(elements)
    timeline, held = [], 0
    for i in range(n):
        held += elements[i] if kept[i] else 0
        timeline.append(held)
    timeline.append(held)  # after the middle
    for i in reversed(range(n)):
        held -= elements[i] if kept[i] else 0
        timeline.append(held)
    return timeline


class SkipDesign(nn.Module):
    """Base module of a skip design; see the module docstring for the contract."""

    def __init__(self, cfg: object, stage_channels: tuple[int, ...]) -> None:
        super().__init__()
        self.cfg = cfg
        self.stage_channels = stage_channels

    def push(self, held: dict[str, torch.Tensor], i: int, e: torch.Tensor) -> None:
        raise NotImplementedError

    def pull(self, held: dict[str, torch.Tensor], i: int) -> torch.Tensor | None:
        raise NotImplementedError

    # -- tiled execution (``nas.tiling``; ``tiling`` is the running ``TiledRun``) ------------
    def tile_calls(self, sizes: list[Size], batch: int
                   ) -> dict[int, tuple[nn.Module, torch.Tensor]]:  # fmt: skip
        """Modules the design runs per tile at stage ``i`` (0-based) with an input like the
        given (full-size, on this module's device): their footprints go into the plan."""
        return {}

    def tile_begin(self, held: dict[str, torch.Tensor], like: torch.Tensor, tiling: Any) -> None:
        raise ConfigError(f"tiling: skip design {getattr(self.cfg, 'name', self)!r} has no tiled "
                          "form; use the layer executor")  # fmt: skip

    def push_tile(self, held: dict[str, torch.Tensor], i: int, e: torch.Tensor,
                  origin: tuple[int, int], owned: Any, tiling: Any) -> None:  # fmt: skip
        """Store the tile's ``owned`` box of E_{i+1} from the local map ``e`` at ``origin``."""
        raise NotImplementedError

    def tile_encoder_done(self, held: dict[str, torch.Tensor], tiling: Any) -> None:
        """After the last encoder tile, before the deep stages."""

    def pull_tile(self, held: dict[str, torch.Tensor], i: int, box: Any,
                  tiling: Any) -> torch.Tensor | None:  # fmt: skip
        """S_{i+1} for exactly ``box`` (global, at stage ``i``'s resolution), or None."""
        raise NotImplementedError

    def tile_end(self, held: dict[str, torch.Tensor], tiling: Any) -> None:
        """After the last decoder tile: drop the tiled stages' state."""


class SkipContext:
    """The skip state of one forward pass: what the design holds between encoder and decoder."""

    def __init__(self, design: SkipDesign) -> None:
        self.design = design
        self.held: dict[str, torch.Tensor] = {}

    def push(self, i: int, e: torch.Tensor) -> None:
        self.design.push(self.held, i, e)

    def pull(self, i: int) -> torch.Tensor | None:
        return self.design.pull(self.held, i)
