"""One instrumented forward pass: skip memory at every stage boundary, peak live activations and
MAC counts, measured on the real module code (on ``meta`` tensors by default: same shapes and
bytes, no arithmetic).

Live memory is tracked per storage: every op output's storage is counted from the moment it is
created until Python frees it (a weakref finalizer), so views and in-place ops are not counted
twice, and parameters (which ops only view) are not counted at all. Bytes are reported at the
requested bit width: ``elements * bits / 8``.
"""

from __future__ import annotations

import dataclasses
import weakref
from collections import Counter
from typing import Any

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from nas.cost.counters import FvcoreRules, paper_macs
from nas.model import SkipUNet
from nas.skips.base import SkipContext


@dataclasses.dataclass
class ForwardTrace:
    """What one traced forward pass measured (bytes at ``bits`` per element)."""

    bits: int
    skip_timeline: list[tuple[str, int]]  # (boundary label, bytes the skip design holds)
    peak_activation_bytes: int  # peak of all live activations, input included
    peak_at: str  # the stage running when that peak happened ("E1".."EN", "M", "DN".."D1", "head")
    macs_fvcore_rules: int
    macs_paper: int
    uncounted_ops: dict[str, int]


class _LiveStorages:
    """Bytes of live activation storages, with the running peak."""

    def __init__(self, bits: int, exclude: set[int]) -> None:
        self.bits = bits
        self.exclude = exclude  # storage keys of parameters and buffers
        self.live: dict[int, int] = {}
        self.current = 0
        self.peak = 0
        self.peak_at = ""
        self.stage = "E1"  # the stage running now

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
        if self.current > self.peak:
            self.peak, self.peak_at = self.current, self.stage

    def _release(self, key: int) -> None:
        self.current -= self.live.pop(key, 0)


class _TraceMode(TorchDispatchMode):
    def __init__(self, live: _LiveStorages, rules: FvcoreRules) -> None:
        super().__init__()
        self.live, self.rules = live, rules

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        out = func(*args, **(kwargs or {}))
        self.rules.count(func, args, out)
        if "batch_norm" in func.overloadpacket.__name__:
            out_tensors = [out[0]]  # saved statistics differ by device; not activations
        else:
            out_tensors = tree_leaves(out)
        for t in out_tensors:
            if isinstance(t, torch.Tensor) and t.is_floating_point():
                self.live.add(t)
        return out


def _storage_keys(module: nn.Module) -> set[int]:
    tensors = [*module.parameters(), *module.buffers()]
    return {t.untyped_storage()._cdata for t in tensors}


def trace_forward(
    model: SkipUNet, input_shape: tuple[int, int, int, int], bits: int = 8
) -> ForwardTrace:
    """Run ``model`` once (eval, no_grad) on a zero input of ``input_shape`` on the model's device.

    A model built under ``torch.device("meta")`` costs almost nothing to trace.
    """
    model.check_input(input_shape)
    device = next(model.parameters()).device
    live = _LiveStorages(bits, _storage_keys(model))
    rules = FvcoreRules()
    paper: Counter[str] = Counter()
    skip_timeline: list[tuple[str, int]] = []

    def on_boundary(label: str, ctx: SkipContext) -> None:
        held = {t.untyped_storage()._cdata: live._bytes(t) for t in ctx.held_tensors()}
        skip_timeline.append((label, sum(held.values())))
        live.stage = _next_stage(label, model.backbone.num_stages)

    def on_leaf(module: nn.Module, inputs: tuple[Any, ...], output: Any) -> None:
        paper["total"] += paper_macs(module, inputs, output)
        rules.module_macs(module, inputs)

    handles = [m.register_forward_hook(on_leaf) for m in model.modules() if not list(m.children())]
    model.boundary_hooks.append(on_boundary)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), _TraceMode(live, rules):
            x = torch.zeros(input_shape, device=device)
            live.add(x)
            model(x)
            del x
    finally:
        model.train(was_training)
        model.boundary_hooks.remove(on_boundary)
        for h in handles:
            h.remove()
    return ForwardTrace(
        bits=bits,
        skip_timeline=skip_timeline,
        peak_activation_bytes=live.peak,
        peak_at=live.peak_at,
        macs_fvcore_rules=rules.total,
        macs_paper=paper["total"],
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
