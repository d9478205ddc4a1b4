"""Costs under the tiled executor: the executor itself (``nas.tiling``), traced.

``predict_tiled`` runs the tiled executor on ``meta`` tensors under the same live-storage trace
as ``trace_forward`` (bytes at the requested bit width): one tile of each class of equal region
shapes, its MACs counted once per tile of the class, its repeated blocks replayed, and the last
pass only. Every tile of a phase starts from the same live bytes (the executor allocates what a
phase keeps when the phase starts), so one tile per class reaches every peak the phase reaches;
a gathering pass runs a prefix of the last pass's work without its pushes, and its statistic is
no larger than what the last pass computes at that step, so it never holds more. Its MACs are
the last pass's up to each whole-map step (``_TraceObserver.reached``). ``measure_tiled`` runs the
same executor on real tensors, every tile, under the same trace: its measured peak and MACs equal
the prediction (``tests/nas/test_tiling.py`` checks it on every backbone x skip family).

The input and output images are external memory (not counted); see ``nas.tiling.executor`` for
what is. ``macs`` counts every op the tiled run performs with fvcore's rules, gathering passes and
halo overlaps included; the recomputation is ``macs`` minus the layer-by-layer forward's count.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
from collections.abc import Iterator

import torch

from nas.config import ArchConfig
from nas.cost.trace import _Tally, tracking
from nas.errors import ConfigError
from nas.model import META_LOCK, SkipUNet, build_meta_model
from nas.tiling.executor import Observer, Split, TiledRun
from nas.tiling.plan import TilingPlan, plan_tiling, valid_splits

@dataclasses.dataclass(frozen=True)
class TiledCost:
    """The tiled executor's costs for one plan (bytes at ``bits`` per element)."""

    tile: int
    split: int
    bits: int
    peak_bytes: int
    peak_at: str  # "tiles E1-E2", "E3", ..., "M", ..., "tiles D2-D1"
    macs: int  # fvcore's rules, over every op the tiled run performs


class _TraceObserver(Observer):
    """Names the running stage, keeps the output image off the chip, and, for a shape-only
    run of one tile per class and the last pass only, counts what the skipped tiles and passes
    would have added: ``extra_macs``."""

    def __init__(self, tally: _Tally, last_pass_only: bool) -> None:
        self.tally, self.last_pass_only = tally, last_pass_only
        self.extra_macs = 0
        self.times, self.tile_start = 1, 0
        self.pushes: list[tuple[int, int]] = []  # MAC totals before and after each push

    @contextlib.contextmanager
    def untracked(self) -> Iterator[None]:
        self.tally.mode.paused = True
        try:
            yield
        finally:
            self.tally.mode.paused = False

    def stage(self, label: str) -> None:
        self.tally.live.stage = label

    @contextlib.contextmanager
    def repeat(self, times: int) -> Iterator[None]:
        rules, tally = self.tally.rules, self.tally
        by_op, uncounted, paper = rules.by_op.copy(), rules.uncounted.copy(), tally.paper
        self.times, self.tile_start, self.pushes = times, rules.total, []
        first_mark = len(tally.marks)
        try:
            yield
        finally:
            for total, pooling in tally.marks[first_mark:]:  # the gathering passes' work
                pushed = sum(b - a for a, b in self.pushes if b <= total)
                self.extra_macs += times * (total - self.tile_start - pushed + pooling)
            del tally.marks[first_mark:]
            more_ops, more_uncounted = rules.by_op - by_op, rules.uncounted - uncounted
            for _ in range(times - 1):
                rules.by_op.update(more_ops)
                rules.uncounted.update(more_uncounted)
            tally.paper += (times - 1) * (tally.paper - paper)

    @contextlib.contextmanager
    def pushing(self) -> Iterator[None]:
        before = self.tally.rules.total
        try:
            yield
        finally:
            self.pushes.append((before, self.tally.rules.total))

    def reached(self, module: torch.nn.Module, x: torch.Tensor) -> None:
        """A gathering pass runs the tile as the last pass does up to here, skipping pushes;
        a pooling module then counts its input, as fvcore counts a pooling. Marked on the
        tally, so a replayed block (``nas.cost.replay``) marks its steps again."""
        if self.last_pass_only:
            pooling = x.numel() if isinstance(module, torch.nn.AdaptiveAvgPool2d) else 0
            self.tally.marks.append((self.tally.rules.total, pooling))


def trace_tiled(model: SkipUNet, plan: TilingPlan, x: torch.Tensor | None = None,
                bits: int = 8) -> tuple[TiledCost, torch.Tensor]:  # fmt: skip
    """Run ``plan`` on ``model`` under the trace: on ``x`` (real tensors, every tile), or on a
    zero ``meta`` input (one tile per class). Returns the costs and the output."""
    shape_only = x is None
    if x is None:
        device = next(model.parameters()).device
        x = torch.zeros(plan.batch, model.backbone.in_channels, *plan.input_size, device=device)
    runs: list[TiledRun] = []
    with tracking(model, bits, external=(x,),
                  variant=lambda block: runs[0].replay_variant(block)) as tally:  # fmt: skip
        observer = _TraceObserver(tally, last_pass_only=shape_only)
        runs.append(TiledRun(model, plan, observer, once_per_class=shape_only,
                             last_pass_only=shape_only))  # fmt: skip
        out = runs[0].run(x)
        cost = TiledCost(plan.tile, plan.split, bits, tally.live.peak, tally.live.peak_at,
                         tally.rules.total + observer.extra_macs)  # fmt: skip
    return cost, out


@functools.lru_cache(maxsize=512)
def predict_tiled(arch: ArchConfig, input_size: tuple[int, int], tile: int, split: int,
                  batch: int = 1, bits: int = 8) -> TiledCost:  # fmt: skip
    """The tiled executor's peak and MACs for ``arch`` (shape only, milliseconds to ~1 s)."""
    plan = plan_tiling(arch, input_size, tile, split, batch)
    with META_LOCK:
        return trace_tiled(build_meta_model(arch), plan, None, bits)[0]


def best_split(arch: ArchConfig, input_size: tuple[int, int], tile: int, batch: int = 1,
               bits: int = 8) -> int:  # fmt: skip
    """The split with the least predicted peak for ``tile`` (then the fewest MACs, then the
    shallowest). Raises ``ConfigError`` when ``tile`` suits no split."""
    splits = valid_splits(arch, input_size, tile)
    if not splits:
        from nas.tiling.plan import record_calls

        calls = record_calls(arch, *input_size)
        step = calls.padded[0] // calls.down[0].out_size[0]
        raise ConfigError(f"tile: {tile} suits no split of this model; use a multiple of {step}")

    def rank(s: int) -> tuple[int, int, int]:
        c = predict_tiled(arch, input_size, tile, s, batch, bits)
        return (c.peak_bytes, c.macs, s)

    return min(splits, key=rank)


def resolve_tiled(arch: ArchConfig, input_size: tuple[int, int], tile: int, split: Split,
                  batch: int = 1, bits: int = 8) -> TiledCost:  # fmt: skip
    """``predict_tiled`` with ``split="auto"`` resolved."""
    s = best_split(arch, input_size, tile, batch, bits) if split == "auto" else split
    return predict_tiled(arch, input_size, tile, s, batch, bits)  # type: ignore[arg-type]


def measure_tiled(model: SkipUNet, x: torch.Tensor, tile: int = 64, split: Split = "auto",
                  bits: int = 8) -> tuple[TiledCost, torch.Tensor]:  # fmt: skip
    """Run ``model`` on ``x`` under the tiled executor and measure its peak live bytes (real
    tensors, every tile) and its MACs; returns them and the output (= ``model(x)``)."""
    from nas.tiling.executor import make_plan

    size = (int(x.shape[-2]), int(x.shape[-1]))
    plan = make_plan(model.arch, size, tile, split, int(x.shape[0]), bits)
    return trace_tiled(model, plan, x, bits)
