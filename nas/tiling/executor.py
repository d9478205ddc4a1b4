"""The tiled executor: runs a built ``SkipUNet`` tile by tile, as a streaming device would.

``tiled_forward(model, x, tile=64, split="auto")`` returns what ``model(x)`` returns (float32:
within 1e-4; the sums of whole-map statistics are added in another order). The phases are those
of ``nas.tiling.plan``: encoder tiles, the deep stages whole, decoder tiles.

Memory. The input and output images stay in external memory: a tile copies its input region in
and writes its owned output back. On chip (what ``nas.cost`` meters) are the tile's working set,
the assembled map ``X``, the deep stages' working set, the deep decoder output, the per-channel
statistics, and what the skip design holds: full and subset skips a full-size buffer of each
tiled stage's E_i, filled tile by tile and freed when the last output tile is written; UNet-- its
E' (filled per tile when every taking-part stage is tiled and the tile aligns with the target
stage), else its reduced parts until aggregation. Everything a phase keeps is allocated when the
phase starts, so every tile of a phase starts from the same live bytes.

Whole-map steps (NAFNet's channel-attention pooling, ConvNeXt V2's GRN in IEM, NAFNetLocal's
pooling where its window covers the map) stay exact by extra passes: with ``G`` such steps in a
phase, pass ``k`` runs every tile up to step ``k``, adds the tile's owned part of that step's
per-channel statistic (a sum, or a sum of squares), and stops the tile; the last pass runs every
tile to the end with all statistics known. The work those passes and the tiles' overlapping halos
add is the tiled executor's recomputation (``nas.cost`` reports it in MACs).
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import functools
from collections.abc import Callable, Iterator
from fractions import Fraction
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from nas.blocks import GRN
from nas.errors import ConfigError
from nas.model import SkipUNet
from nas.skips.base import SkipContext
from nas.tiling.geometry import Box, Step, take
from nas.tiling.plan import DecoderTile, EncoderTile, TilingPlan, plan_tiling

Split = int | Literal["auto"]


class _TileDone(Exception):
    """A gathering pass has what it needs from this tile."""


@dataclasses.dataclass(frozen=True)
class _Geometry:
    """Where the local maps of the running call lie: ``origin`` of element [0, 0], the full
    ``size`` of the map at this resolution, and the running tile's ``owned`` box."""

    origin: tuple[int, int]
    size: tuple[int, int]
    owned: Box


class Observer:
    """What a tracer may want to know of a run (``nas.cost.tiled``); the default does nothing."""

    def untracked(self) -> contextlib.AbstractContextManager[None]:
        """Tensors made inside lie in external memory (the output image)."""
        return contextlib.nullcontext()

    def stage(self, label: str) -> None:
        """What runs from now on (for naming where the peak happened)."""

    def repeat(self, times: int) -> contextlib.AbstractContextManager[None]:
        """The tile run inside stands for ``times`` tiles of the same shapes."""
        return contextlib.nullcontext()

    def pushing(self) -> contextlib.AbstractContextManager[None]:
        """The skip design stores a tile's part (the last pass only)."""
        return contextlib.nullcontext()

    def reached(self, module: nn.Module, x: torch.Tensor) -> None:
        """The last pass reached whole-map step ``module`` (input ``x``): a gathering pass
        would have run the tile up to here."""


class TiledRun:
    """One tiled forward of ``model`` under ``plan`` (``run(x)``). With ``once_per_class``, each
    class of tiles with the same region shapes (and alignments) runs once, inside
    ``observer.repeat(count)``; with ``last_pass_only`` the gathering passes are skipped (the
    observer hears where each would have stopped: ``reached``). Both are for shape-only
    (``meta``) costing, where values do not matter."""

    def __init__(self, model: SkipUNet, plan: TilingPlan, observer: Observer | None = None,
                 once_per_class: bool = False, last_pass_only: bool = False) -> None:  # fmt: skip
        self.model, self.plan = model, plan
        self.observer = observer or Observer()
        self.once_per_class = once_per_class
        self.last_pass_only = last_pass_only  # shape-only costing: statistics taken as known
        self.steps: dict[str, Step] = {s.path: s for fp in _footprints(plan) for s in fp.steps}
        self.active = False  # inside a tiled phase
        self.geometry: _Geometry | None = None
        self.owned: dict[int, Box] = {}  # the running decoder tile's owned box by stage
        self.stats: dict[str, torch.Tensor] = {}
        self.known: set[str] = set()  # statistics complete
        self.gathering: str | None = None  # the statistic this pass gathers (None: last pass)
        self._paths = {m: p for p, m in model.named_modules()}
        self._globals_in: dict[nn.Module, list[str]] = {}

    # -- what skip designs use (``SkipDesign.push_tile`` and friends) --------------------------
    @property
    def split(self) -> int:
        return self.plan.split

    @property
    def tile(self) -> int:
        return self.plan.tile

    def stride(self, i: int) -> int:
        """Input pixels per pixel of E_{i+1}."""
        return self.plan.stride(i)

    def stage_size(self, i: int) -> tuple[int, int]:
        return self.plan.calls.stage_size(i)

    def empty(self, like: torch.Tensor, i: int, channels: int) -> torch.Tensor:
        """A full-size map of stage ``i`` (a held buffer), on ``like``'s device and dtype."""
        return like.new_empty(like.shape[0], channels, *self.stage_size(i))

    def footprint(self, i: int) -> Any:
        """The footprint of the skip design's per-tile call at stage ``i`` (``tile_calls``)."""
        return self.plan.calls.skip[i]

    def call(self, module: nn.Module, x: torch.Tensor, origin: tuple[int, int],
             i: int) -> torch.Tensor:  # fmt: skip
        """``module(x)`` for a local map ``x`` of stage ``i`` at ``origin`` (whole-map steps
        inside see the running decoder tile's owned box)."""
        with self._at(origin, self.stage_size(i), self.owned[i]):
            return module(x)

    def replay_variant(self, module: nn.Module) -> str | None:
        """How ``module`` runs now, for a tracer that replays repeated blocks from records:
        ``"tiled-deep"`` in the deep stages, ``"tiled-tile"`` in a tile with every whole-map
        step inside it known (the ops of the last pass), None while one is still gathered."""
        if not self.active:
            return "tiled-deep"
        inside = self._globals_in.get(module)
        if inside is None:
            prefix = self._paths.get(module, "") + "."
            inside = [p for p, s in self.steps.items() if s.kind == "global"
                      and p.startswith(prefix)]  # fmt: skip
            self._globals_in[module] = inside
        return "tiled-tile" if all(p in self.known for p in inside) else None

    # -- the run ---------------------------------------------------------------------------
    def run(self, x: torch.Tensor) -> torch.Tensor:
        model = self.model
        model.check_input(x.shape)
        was_training = model.training
        model.eval()
        self._wrap()
        try:
            with torch.no_grad():
                return self._run(x)
        finally:
            self._unwrap()
            model.train(was_training)

    def _run(self, x: torch.Tensor) -> torch.Tensor:
        plan, bb, skip = self.plan, self.model.backbone, self.model.skip
        calls, s, n = plan.calls, plan.split, plan.calls.num_stages
        ctx = SkipContext(skip)
        held = ctx.held
        # encoder tiles: X and the skip buffers exist from the start of the phase
        self.observer.stage(f"tiles E1-E{s}")
        xmap = x.new_empty(x.shape[0], calls.down[s - 1].out_channels, *plan.x_size)
        skip.tile_begin(held, x, self)
        self._phase(plan.encoder_tiles, plan.encoder_globals(),
                    functools.partial(self._encoder_tile, x, xmap=xmap, held=held))  # fmt: skip
        skip.tile_encoder_done(held, self)
        # the deep stages, whole, layer by layer
        y = xmap
        del xmap
        for i in range(s, n):
            self.observer.stage(f"E{i + 1}")
            e = bb.encoders[i](y)
            del y
            ctx.push(i, e)
            y = bb.downs[i](e)
            del e
        self.observer.stage("M")
        y = bb.middle(y)
        for i in reversed(range(s, n)):
            self.observer.stage(f"D{i + 1}")
            y = bb.ups[i](y)
            sk = ctx.pull(i)
            y = bb.merge(i, y, sk)
            del sk
            y = bb.decoders[i](y)
        deep = y
        del y
        # decoder tiles, written to the output image in external memory
        self.observer.stage(f"tiles D{s}-D1")
        with self.observer.untracked():
            out = x.new_empty(x.shape[0], calls.head.out_channels, *x.shape[-2:])
        decode = functools.partial(self._decoder_tile, x, deep=deep, held=held, out=out)
        self._phase(plan.decoder_tiles, plan.decoder_globals(), decode)
        skip.tile_end(held, self)
        return out

    def _phase(self, tiles: tuple[Any, ...], paths: tuple[str, ...],
               run_tile: Callable[[Any], None]) -> None:  # fmt: skip
        """Gathering passes (one per whole-map step, in call order), then the last pass."""
        x_like = next(iter(self.model.parameters()))
        batch = self.plan.batch
        self.stats = {p: x_like.new_zeros(batch, self.steps[p].channels, dtype=torch.float32)
                      for p in paths}  # fmt: skip
        self.known = set(paths) if self.last_pass_only else set()
        self.active = True
        try:
            for k in range(len(paths) + 1):
                if k < len(paths) and self.last_pass_only:
                    continue
                self.gathering = paths[k] if k < len(paths) else None
                for tile, times in self._schedule(tiles):
                    with self.observer.repeat(times):
                        try:
                            run_tile(tile)
                        except _TileDone:
                            pass
                if self.gathering is not None:
                    self.known.add(self.gathering)
        finally:
            self.active, self.gathering, self.geometry = False, None, None
            self.stats = {}

    def _schedule(self, tiles: tuple[Any, ...]) -> Iterator[tuple[Any, int]]:
        if not self.once_per_class:
            yield from ((t, 1) for t in tiles)
            return
        period = self.stride(self.plan.calls.num_stages - 1)
        classes: dict[tuple[Any, ...], list[Any]] = collections.defaultdict(list)
        for t in tiles:
            boxes = [v for f in dataclasses.fields(t) for v in _boxes(getattr(t, f.name))]
            classes[tuple((b.shape, b.y0 % period, b.x0 % period) for b in boxes)].append(t)
        yield from ((members[0], len(members)) for members in classes.values())

    @contextlib.contextmanager
    def _at(self, origin: tuple[int, int], size: tuple[int, int], owned: Box) -> Iterator[None]:
        saved = self.geometry
        self.geometry = _Geometry(origin, size, owned)
        try:
            yield
        finally:
            self.geometry = saved

    def _read(self, x: torch.Tensor, box: Box) -> torch.Tensor:
        """A copy of the padded input's region ``box`` (zeros beyond the image)."""
        region = x.new_zeros(*x.shape[:-2], *box.shape)
        h = min(box.y1, int(x.shape[-2])) - box.y0
        w = min(box.x1, int(x.shape[-1])) - box.x0
        if h > 0 and w > 0:
            region[..., :h, :w] = x[..., box.y0:box.y0 + h, box.x0:box.x0 + w]
        return region

    def _encoder_tile(self, x: torch.Tensor, t: EncoderTile, xmap: torch.Tensor,
                      held: dict[str, torch.Tensor]) -> None:  # fmt: skip
        calls, bb, final = self.plan.calls, self.model.backbone, self.gathering is None
        y = bb.stem(self._read(x, t.x0))
        origin = _scale((t.x0.y0, t.x0.x0), calls.stem.ratio)
        for i in range(self.plan.split):
            box = t.enc_in[i]
            y = take(y, origin, box)
            origin = (box.y0, box.x0)
            with self._at(origin, self.stage_size(i), t.owned[i]):
                y = bb.encoders[i](y)
            if final:
                with self.observer.pushing():
                    self.model.skip.push_tile(held, i, y, origin, t.owned[i], self)
            box = t.down_in[i]
            y = bb.downs[i](take(y, origin, box))
            origin = _scale((box.y0, box.x0), calls.down[i].ratio)
        if final:
            ys, xs = t.owned_x.slices((0, 0))
            xmap[..., ys, xs] = take(y, origin, t.owned_x)

    def _decoder_tile(self, x: torch.Tensor, t: DecoderTile, deep: torch.Tensor,
                      held: dict[str, torch.Tensor], out: torch.Tensor) -> None:  # fmt: skip
        calls, bb, skip = self.plan.calls, self.model.backbone, self.model.skip
        y, origin = take(deep, (0, 0), t.deep), (t.deep.y0, t.deep.x0)
        self.owned = dict(enumerate(t.owned))
        for i in reversed(range(self.plan.split)):
            y = bb.ups[i](y)
            origin = _scale(origin, calls.up[i].ratio)
            box = t.dec_in[i]
            y = take(y, origin, box)
            origin = (box.y0, box.x0)
            sk = skip.pull_tile(held, i, box, self)
            y = bb.merge(i, y, sk)
            del sk
            with self._at(origin, self.stage_size(i), t.owned[i]):
                y = bb.decoders[i](y)
        y = take(y, origin, t.head_in)
        f1 = calls.head.ratio
        inp = self._read(x, t.head_in.scaled(f1))
        y = bb.head(y, inp)
        del inp
        origin = _scale((t.head_in.y0, t.head_in.x0), f1)
        if self.gathering is None:
            h, w = int(out.shape[-2]), int(out.shape[-1])
            box = Box(t.out.y0, min(t.out.y1, h), t.out.x0, min(t.out.x1, w))
            if box.y1 > box.y0 and box.x1 > box.x0:
                ys, xs = box.slices((0, 0))
                out[..., ys, xs] = take(y, origin, box)

    # -- whole-map and windowed steps ----------------------------------------------------------
    def _wrap(self) -> None:
        self._wrapped: list[nn.Module] = []
        for path, step in self.steps.items():
            if step.kind not in ("global", "local_pool"):
                continue
            module = self.model.get_submodule(path)
            if "forward" in vars(module):
                continue  # one module seen at two sizes: wrapped once
            handler = self._global if step.kind == "global" else self._local_pool
            module.forward = functools.partial(handler, module, path, module.forward)
            self._wrapped.append(module)

    def _unwrap(self) -> None:
        for module in self._wrapped:
            del module.forward
        self._wrapped = []

    def _global(self, module: nn.Module, path: str, plain: Callable[..., Any],
                x: torch.Tensor) -> torch.Tensor:  # fmt: skip
        if not self.active:
            return plain(x)
        g = self.geometry
        if g is None or self.steps[path].in_size != g.size:
            raise ConfigError(f"tiling: {path} reads the whole map inside a call that changes "
                              "resolution; this model cannot be tiled exactly")  # fmt: skip
        grn = isinstance(module, GRN)
        if path in self.known:
            if self.gathering is None:
                self.observer.reached(module, x)
            acc = self.stats[path]
            if grn:  # (N, C) sums of squares -> the L2 norm over space, (N, 1, 1, C)
                return module.from_norm(x, acc.sqrt().view(acc.shape[0], 1, 1, -1).to(x.dtype))
            h, w = g.size  # (N, C) sums -> the mean, (N, C, 1, 1)
            return (acc / (h * w)).view(*acc.shape, 1, 1).to(x.dtype)
        if path != self.gathering:
            raise AssertionError(f"tiling: whole-map step {path} ran before {self.gathering}")
        if grn:  # (N, H, W, C): space is dims 1, 2
            ys, xs = g.owned.slices(g.origin)
            part = torch.linalg.vector_norm(x[:, ys, xs, :], dim=(1, 2)).square()
        else:
            part = take(x, g.origin, g.owned).sum(dim=(-2, -1))
        self.stats[path].add_(part)
        raise _TileDone

    def _local_pool(self, module: nn.Module, path: str, plain: Callable[..., Any],
                    x: torch.Tensor) -> torch.Tensor:  # fmt: skip
        """NAFNetLocal's windowed mean, for a local map: each output position averages the
        window the whole-map pooling gives it (clipped at the map's border)."""
        if not self.active:
            return plain(x)
        g, step = self.geometry, self.steps[path]
        if g is None or step.in_size != g.size:
            raise ConfigError(f"tiling: {path} pools a window inside a call that changes "
                              "resolution; this model cannot be tiled exactly")  # fmt: skip
        kh, kw = step.kernel
        means = F.avg_pool2d(x, (kh, kw), stride=1)  # row q: the window starting at origin + q
        rows = _window_starts(g.origin[0], int(x.shape[-2]), g.size[0], kh, int(means.shape[-2]))
        cols = _window_starts(g.origin[1], int(x.shape[-1]), g.size[1], kw, int(means.shape[-1]))
        return means.index_select(-2, rows.to(x.device)).index_select(-1, cols.to(x.device))


def _window_starts(origin: int, length: int, full: int, k: int, have: int) -> torch.Tensor:
    """For each local position, the local index of its window's start (clamped into what the
    local map has: positions near the tile's edge are outside what it needs)."""
    pos = torch.arange(origin, origin + length)
    start = (pos - (k - 1) // 2).clamp(0, full - k) - origin
    return start.clamp(0, max(have - 1, 0))


def _boxes(value: Any) -> list[Box]:
    if isinstance(value, Box):
        return [value]
    if isinstance(value, tuple):
        return [b for v in value for b in _boxes(v)]
    return []


def _scale(corner: tuple[int, int], ratio: Fraction) -> tuple[int, int]:
    """The global origin of a call's output whose input's element [0, 0] lay at ``corner``."""
    y, x = corner[0] * ratio, corner[1] * ratio
    if y.denominator != 1 or x.denominator != 1:
        raise AssertionError(f"tiling: a region at {corner} is not aligned to the call's stride")
    return (int(y), int(x))


def _footprints(plan: TilingPlan) -> list[Any]:
    c = plan.calls
    return [c.stem, *c.enc, *c.down, *c.up, *c.dec, c.head, *c.skip.values()]


def tiled_forward(model: SkipUNet, x: torch.Tensor, tile: int = 64, split: Split = "auto",
                  bits: int = 8) -> torch.Tensor:  # fmt: skip
    """``model(x)`` computed tile by tile (see the module docstring). ``split="auto"``: the split
    with the least predicted peak for this tile (``nas.cost.tiled.best_split``; ``bits`` only
    breaks no tie, it scales every split alike). Raises ``ConfigError`` for a tile or split the
    model cannot run with, before any work."""
    plan = make_plan(model.arch, (int(x.shape[-2]), int(x.shape[-1])), tile, split,
                     int(x.shape[0]), bits)  # fmt: skip
    return TiledRun(model, plan).run(x)


def make_plan(arch: Any, input_size: tuple[int, int], tile: int, split: Split, batch: int = 1,
              bits: int = 8) -> TilingPlan:  # fmt: skip
    """``plan_tiling`` with ``split="auto"`` resolved by the cost engine."""
    if split == "auto":
        from nas.cost.tiled import best_split

        split = best_split(arch, input_size, tile, batch, bits)
    return plan_tiling(arch, input_size, tile, split, batch)  # type: ignore[arg-type]
