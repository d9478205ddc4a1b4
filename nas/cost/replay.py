"""Replaying a repeated block's trace instead of running its ops again on ``meta`` tensors.

A shape-only trace runs every op's meta kernel in Python (~0.2 ms an op), and NAFNet-w32's 36
backbone blocks are ~90% of a costing's ops, the same in every skip design. A block of a
replayable class (``nas.registry.replayable``: fixed ops, no state: its effect on a trace
depends only on its structure and its input's layout) runs once per process for each
(structure, input layout, bit width, executor) and is recorded: the MACs it adds (fvcore
rules by op, ops fvcore skips, the paper's count), the most live bytes it reaches above those
live when it started, and its output's layout.
Later calls add the same counts, raise the peaks the same way and return an empty ``meta``
tensor of that layout, without running an op.

A call is recorded only if it leaves exactly one new live storage behind, its output's (a
residual block's intermediates die inside it); otherwise that block runs every time. Only
``meta`` inputs are replayed. ``tests/nas/test_costs.py`` checks that a replayed trace equals
a plain one, field by field, on every registered backbone x skip design.
"""

from __future__ import annotations

import collections
import dataclasses
import weakref
from collections.abc import Callable, Iterator
from typing import Any, Protocol

import torch
from torch import nn

import nas.backbones  # noqa: F401  (their modules mark their blocks)
from nas.registry import REPLAYABLE_BLOCKS


class Tally(Protocol):
    """What a trace counts, as ``trace_forward`` keeps it."""

    by_op: collections.Counter[str]  # fvcore-rule MACs by op
    uncounted: collections.Counter[str]  # ops fvcore skips, by name
    paper: int  # MACs in the paper's convention
    current: int  # live activation bytes now
    marks: list[tuple[int, int]]  # (MAC total then, MACs it adds): see ``nas.cost.tiled``

    def open_window(self) -> None: ...  # start tracking the peak of live bytes
    def close_window(self) -> int: ...  # the peak since the matching open
    def reach(self, level: int) -> None: ...  # live bytes were ``level`` for a moment
    def held_by(self, t: torch.Tensor) -> int: ...  # live bytes of t's storage (0: untracked)
    def new_output(self, like: BlockRecord, device: torch.device) -> torch.Tensor: ...


@dataclasses.dataclass(frozen=True)
class BlockRecord:
    """What one block call did to a trace (bytes at the trace's bit width)."""

    macs_by_op: dict[str, int]
    uncounted: dict[str, int]
    macs_paper: int
    peak_above_start: int
    marks: tuple[tuple[int, int], ...]  # marks made inside, MAC totals relative to the start
    shape: tuple[int, ...]
    stride: tuple[int, ...]
    dtype: torch.dtype


_RECORDS: dict[tuple[Any, ...], BlockRecord | None] = {}  # None: its call is not replayable
# a block's structure, once per block instance (``build_meta_model`` shares backbone blocks)
_STRUCTURES: weakref.WeakKeyDictionary[nn.Module, str] = weakref.WeakKeyDictionary()


def clear_records() -> None:
    """Forget every recorded block (tests)."""
    _RECORDS.clear()


def replayable_blocks(model: nn.Module) -> Iterator[nn.Module]:
    kinds = tuple(REPLAYABLE_BLOCKS)
    return (m for m in model.modules() if isinstance(m, kinds))


class Replayer:
    """Wraps the replayable blocks of one traced model (``wrap``) until ``unwrap``."""

    def __init__(self, tally: Tally, bits: int,
                 variant: Callable[[nn.Module], str | None] | None = None) -> None:  # fmt: skip
        self.tally, self.bits = tally, bits
        # a key part naming how the block runs now (another executor may run other ops in
        # it); None: this call runs plainly, neither recorded nor replayed
        self.variant = variant or (lambda block: "")
        self.wrapped: list[nn.Module] = []

    def wrap(self, model: nn.Module) -> None:
        """Wrap each replayable block that runs its class's ``forward`` (one given its own
        ``forward`` attribute is left alone: its record would not be its class's)."""
        for block in replayable_blocks(model):
            if "forward" in vars(block):
                continue
            forward = block.forward
            block.forward = lambda *a, _f=forward, _b=block, **k: self._call(_b, _f, a, k)
            self.wrapped.append(block)

    def unwrap(self) -> None:
        for block in self.wrapped:
            del block.forward  # the instance attribute: the class's forward again
        self.wrapped.clear()

    @staticmethod
    def _structure(block: nn.Module) -> str:
        """The block's class, repr (every submodule's settings) and parameter shapes."""
        if block not in _STRUCTURES:
            shapes = [(n, tuple(p.shape)) for n, p in block.named_parameters()]
            _STRUCTURES[block] = f"{type(block).__qualname__}{block!r}{shapes}"
        return _STRUCTURES[block]

    def _call(self, block: nn.Module, forward: Callable[..., Any], args: tuple[Any, ...],
              kwargs: dict[str, Any]) -> Any:  # fmt: skip
        x = args[0] if len(args) == 1 and not kwargs else None
        if not isinstance(x, torch.Tensor) or x.device.type != "meta":
            return forward(*args, **kwargs)
        variant = self.variant(block)
        if variant is None:
            return forward(x)
        key = (self._structure(block), tuple(x.shape), x.stride(), x.dtype, self.bits, variant)
        if key not in _RECORDS:
            return self._record(key, forward, x)
        record = _RECORDS[key]
        return forward(x) if record is None else self._replay(record, x.device)

    def _record(self, key: tuple[Any, ...], forward: Callable[..., Any], x: torch.Tensor) -> Any:
        t = self.tally
        by_op, uncounted, paper, start = t.by_op.copy(), t.uncounted.copy(), t.paper, t.current
        n_marks, macs = len(t.marks), sum(t.by_op.values())
        t.open_window()
        try:
            out = forward(x)
        finally:
            peak = t.close_window()
        ok = (isinstance(out, torch.Tensor) and out.is_floating_point()
              and out.untyped_storage()._cdata != x.untyped_storage()._cdata
              and out.storage_offset() == 0  # the whole storage: not a view into a bigger one
              and out.untyped_storage().nbytes() == out.numel() * out.element_size()
              and t.held_by(out) == t.current - start > 0)  # fmt: skip
        _RECORDS[key] = BlockRecord(
            macs_by_op=dict(t.by_op - by_op),
            uncounted=dict(t.uncounted - uncounted),
            macs_paper=t.paper - paper,
            peak_above_start=peak - start,
            marks=tuple((m - macs, extra) for m, extra in t.marks[n_marks:]),
            shape=tuple(out.shape),
            stride=out.stride(),
            dtype=out.dtype,
        ) if ok else None  # fmt: skip
        return out

    def _replay(self, record: BlockRecord, device: torch.device) -> torch.Tensor:
        t = self.tally
        macs = sum(t.by_op.values())
        t.marks.extend((macs + m, extra) for m, extra in record.marks)
        t.by_op.update(record.macs_by_op)
        t.uncounted.update(record.uncounted)
        t.paper += record.macs_paper
        t.reach(t.current + record.peak_above_start)
        return t.new_output(record, device)
