"""One instrumented forward pass: skip memory at every stage boundary, peak live activations and
MAC counts, measured on the real module code (on ``meta`` tensors by default: same shapes and
bytes, no arithmetic).

Live memory is tracked per storage: every op output's storage is counted from the moment it is
created until Python frees it (a weakref finalizer), so views and in-place ops are not counted
twice, and parameters (which ops only view) are not counted at all. Bytes are reported at the
requested bit width: ``elements * bits / 8``.

What the traced skip memory samples:

- ``skip_timeline`` (the traced M_sc): at each stage boundary (after E1..EN, M, DN..D1, where
  ``SkipUNet`` calls its boundary hooks; no stage's temporaries are alive then), the bytes of
  every live activation storage except the main path's (the input, the padded input and the map
  handed to the next stage). It reads nothing of the skip design's own bookkeeping (``held``),
  so a tensor the design keeps anywhere is charged to it.
- ``skip_transient_bytes``: the most the skip design holds at any moment, inside ``push``
  included: the bytes at the boundary before each push plus the peak of bytes allocated during
  it. MSIAM's last push briefly holds every part, their concatenation and E' at once (3x the
  paper design's M_sc), which boundaries alone miss. ``pull`` is not metered: IEM's header
  temporaries turn E' into the decoder's input, like a decoder stage's own temporaries, and
  count only in ``peak_activation_bytes``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import weakref
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from nas.cost.counters import FvcoreRules, paper_macs
from nas.cost.replay import BlockRecord, Replayer
from nas.model import META_LOCK, SkipUNet
from nas.skips.base import SkipContext, SkipDesign

T = TypeVar("T")


@dataclasses.dataclass
class ForwardTrace:
    """What one traced forward pass measured (bytes at ``bits`` per element)."""

    bits: int
    skip_timeline: list[tuple[str, int]]  # (boundary label, bytes held off the main path)
    skip_transient_bytes: int  # peak of what the skips hold, inside push included
    peak_activation_bytes: int  # peak of all live activations, input included
    peak_at: str  # the stage running when that peak happened ("E1".."EN", "M", "DN".."D1", "head")
    macs_fvcore_rules: int
    macs_by_op: dict[str, int]  # as fvcore's by_operator()
    macs_paper: int
    uncounted_ops: dict[str, int]  # as fvcore's unsupported_ops()


class _LiveStorages:
    """Bytes of live activation storages, with the running peak (overall, and in each open
    window: ``open_window`` ... ``close_window``)."""

    def __init__(self, bits: int, exclude: set[int]) -> None:
        self.bits = bits
        self.exclude = exclude  # storage keys of parameters and buffers
        self.live: dict[int, int] = {}
        self.current = 0
        self.peak = 0
        self.peak_at = ""
        self.stage = "E1"  # the stage running now
        self.windows: list[int] = []  # peaks of the open windows, innermost last

    def _bytes(self, t: torch.Tensor) -> int:
        return t.untyped_storage().nbytes() // t.element_size() * self.bits // 8

    def add(self, t: torch.Tensor) -> None:
        storage = t.untyped_storage()
        key = storage._cdata
        if key in self.live or key in self.exclude:
            return
        size = self._bytes(t)
        self.live[key] = size
        self.current += size
        weakref.finalize(storage, self._release, key)
        self.reach(self.current)

    def reach(self, level: int) -> None:
        """Live bytes were ``level`` for a moment: raise every peak that is lower."""
        self.windows = [max(w, level) for w in self.windows]
        if level > self.peak:
            self.peak, self.peak_at = level, self.stage

    def _release(self, key: int) -> None:
        self.current -= self.live.pop(key, 0)

    def open_window(self) -> None:
        """Start tracking the peak of live bytes from now (a push, a recorded block)."""
        self.windows.append(self.current)

    def close_window(self) -> int:
        """The peak since the matching ``open_window``."""
        return self.windows.pop()

    def bytes_except(self, tensors: tuple[torch.Tensor, ...]) -> int:
        """Live bytes outside the storages of ``tensors``."""
        keys = {t.untyped_storage()._cdata for t in tensors}
        return self.current - sum(self.live.get(k, 0) for k in keys)


class _TraceMode(TorchDispatchMode):
    def __init__(self, live: _LiveStorages, rules: FvcoreRules) -> None:
        super().__init__()
        self.live, self.rules = live, rules
        self.paused = False  # ops run untraced (a replayed block's output)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        out = func(*args, **(kwargs or {}))
        if self.paused:
            return out
        self.rules.count(func, args, out)
        if "batch_norm" in func.overloadpacket.__name__:
            out_tensors = [out[0]]  # saved statistics differ by device; not activations
        else:
            out_tensors = tree_leaves(out)
        for t in out_tensors:
            if isinstance(t, torch.Tensor) and t.is_floating_point():
                self.live.add(t)
        return out


class _Tally:
    """The counts of one trace, as ``replay.Tally`` reads and replays them."""

    def __init__(self, live: _LiveStorages, mode: _TraceMode) -> None:
        self.live, self.mode, self.rules = live, mode, mode.rules
        self.by_op, self.uncounted = self.rules.by_op, self.rules.uncounted
        self.paper = 0
        self.marks: list[tuple[int, int]] = []  # see ``nas.cost.tiled._TraceObserver``

    @property
    def current(self) -> int:
        return self.live.current

    def open_window(self) -> None:
        self.live.open_window()

    def close_window(self) -> int:
        return self.live.close_window()

    def reach(self, level: int) -> None:
        self.live.reach(level)

    def held_by(self, t: torch.Tensor) -> int:
        return self.live.live.get(t.untyped_storage()._cdata, 0)

    def new_output(self, like: BlockRecord, device: torch.device) -> torch.Tensor:
        self.mode.paused = True
        try:
            out = torch.empty_strided(like.shape, like.stride, dtype=like.dtype, device=device)
        finally:
            self.mode.paused = False
        self.live.add(out)
        return out


class _SkipMeter:
    """The skip memory of one forward: boundary samples and the transient inside push."""

    def __init__(self, live: _LiveStorages, num_stages: int) -> None:
        self.live, self.num_stages = live, num_stages
        self.timeline: list[tuple[str, int]] = []
        self.transient = 0

    def boundary(self, label: str, main: tuple[torch.Tensor, ...]) -> None:
        held = self.live.bytes_except(main)
        self.timeline.append((label, held))
        self.transient = max(self.transient, held)
        self.live.stage = _next_stage(label, self.num_stages)

    def call(self, fn: Callable[[], T]) -> T:
        """Run a push; the skips hold the last boundary's bytes plus what it allocates."""
        held = self.timeline[-1][1] if self.timeline else 0
        start = self.live.current
        self.live.open_window()
        try:
            result = fn()
        finally:
            peak = self.live.close_window()
        self.transient = max(self.transient, held + peak - start)
        return result


class _MeteredContext(SkipContext):
    def __init__(self, design: SkipDesign, meter: _SkipMeter) -> None:
        super().__init__(design)
        self.meter = meter

    def push(self, i: int, e: torch.Tensor) -> None:
        self.meter.call(lambda: SkipContext.push(self, i, e))


def _storage_keys(module: nn.Module) -> set[int]:
    tensors = [*module.parameters(), *module.buffers()]
    return {t.untyped_storage()._cdata for t in tensors}


@contextlib.contextmanager
def tracking(
    model: nn.Module, bits: int, external: tuple[torch.Tensor, ...] = (), replay: bool = True,
    variant: Callable[[nn.Module], str | None] | None = None,
) -> Iterator[_Tally]:
    """Live bytes and MACs of every op run inside (eval, no_grad, on the model's device): the
    one instrument both traces use. Parameters, buffers and ``external`` tensors' storages are
    not activations. On ``meta``, ``replay`` replays the model's repeated blocks, keyed also by
    ``variant(block)`` (how the block runs now: another executor may run other ops in it;
    None: run this call plainly). Holds ``META_LOCK``."""
    with META_LOCK:  # hooks, modes and wrappers on modules ``build_meta_model`` shares
        device = next(model.parameters()).device
        exclude = _storage_keys(model) | {t.untyped_storage()._cdata for t in external}
        live = _LiveStorages(bits, exclude)
        rules = FvcoreRules()
        mode = _TraceMode(live, rules)
        tally = _Tally(live, mode)
        replayer = Replayer(tally, bits, variant)

        def on_leaf(module: nn.Module, inputs: tuple[Any, ...], output: Any) -> None:
            if output is not None:  # None: the call raised (a tiled pass stopped a tile)
                tally.paper += paper_macs(module, inputs, output)
            rules.leave(module, inputs)

        leaves = [m for m in model.modules() if not list(m.children())]
        handles = [m.register_forward_hook(on_leaf, always_call=True) for m in leaves]
        handles += [m.register_forward_pre_hook(lambda m, _: rules.enter(m)) for m in leaves]
        was_training = model.training
        model.eval()
        try:
            if replay and device.type == "meta":
                replayer.wrap(model)
            with torch.no_grad(), mode:
                yield tally
        finally:
            replayer.unwrap()
            model.train(was_training)
            for h in handles:
                h.remove()


def trace_forward(
    model: SkipUNet, input_shape: tuple[int, int, int, int], bits: int = 8, replay: bool = True
) -> ForwardTrace:
    """Run ``model`` once (eval, no_grad) on a zero input of ``input_shape`` on the model's device.

    A model built under ``torch.device("meta")`` costs little to trace; with ``replay`` its
    repeated blocks are traced once per process and replayed after (``nas.cost.replay``: the
    same result, ~10x faster for NAFNet-w32).
    """
    model.check_input(input_shape)
    device = next(model.parameters()).device
    meter: _SkipMeter | None = None
    with META_LOCK:
        context = model.skip_context
        try:
            with tracking(model, bits, replay=replay) as tally:
                live, rules = tally.live, tally.rules
                meter = _SkipMeter(live, model.backbone.num_stages)
                model.boundary_hooks.append(meter.boundary)
                model.skip_context = functools.partial(_MeteredContext, meter=meter)
                x = torch.zeros(input_shape, device=device)
                live.add(x)
                model(x)
                del x
        finally:
            model.skip_context = context
            if meter is not None:
                model.boundary_hooks.remove(meter.boundary)
    return ForwardTrace(
        bits=bits,
        skip_timeline=meter.timeline,
        skip_transient_bytes=meter.transient,
        peak_activation_bytes=live.peak,
        peak_at=live.peak_at,
        macs_fvcore_rules=rules.total,
        macs_by_op={k: v for k, v in rules.by_op.items() if v},
        macs_paper=tally.paper,
        uncounted_ops=dict(rules.uncounted),
    )


def _next_stage(label: str, num_stages: int) -> str:
    """The stage that runs after boundary ``label`` (for naming where the peak happened)."""
    if label == "M":
        return f"D{num_stages}"
    kind, i = label[0], int(label[1:])
    if kind == "E":
        return f"E{i + 1}" if i < num_stages else "M"
    return f"D{i - 1}" if i > 1 else "head"
