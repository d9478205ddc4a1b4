"""Costs of an architecture: skip memory (analytic and traced), peak activations, MACs, params."""

from nas.cost.macs import FvcoreCount, count_params, fvcore_macs
from nas.cost.memory import BIT_WIDTHS, skip_memory_peak, skip_memory_timeline
from nas.cost.report import MIB, CostReport, clear_memory_cache, measure_cost
from nas.cost.trace import ForwardTrace, trace_forward

__all__ = [
    "BIT_WIDTHS",
    "MIB",
    "CostReport",
    "ForwardTrace",
    "FvcoreCount",
    "clear_memory_cache",
    "count_params",
    "fvcore_macs",
    "measure_cost",
    "skip_memory_peak",
    "skip_memory_timeline",
    "trace_forward",
]
