"""MACs with fvcore (one multiply-add counts once) on a real CPU forward pass, and params."""

from __future__ import annotations

import dataclasses
import logging

import torch
from torch import nn


@dataclasses.dataclass
class FvcoreCount:
    total: int
    by_op: dict[str, int]
    uncounted_ops: dict[str, int]  # ops fvcore saw but has no rule for (elementwise, GELU, ...)


def fvcore_macs(model: nn.Module, input_shape: tuple[int, ...]) -> FvcoreCount:
    """Count ``model``'s MACs with ``fvcore.nn.FlopCountAnalysis`` in eval mode on zeros."""
    from fvcore.nn import FlopCountAnalysis

    logging.getLogger("fvcore").setLevel(logging.ERROR)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            analysis = FlopCountAnalysis(model, torch.zeros(input_shape))
            analysis.unsupported_ops_warnings(False)
            analysis.uncalled_modules_warnings(False)
            analysis.tracer_warnings("none")
            total = int(analysis.total())
            by_op = {k: int(v) for k, v in analysis.by_operator().items()}
            uncounted = dict(analysis.unsupported_ops())
    finally:
        model.train(was_training)
    return FvcoreCount(total, by_op, uncounted)


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
