"""Tiled (patch-based) execution of a U-Net: the memory a streaming device needs.

``tiled_forward(model, x, tile=64, split="auto")`` runs a built model tile by tile and returns
what ``model(x)`` returns; ``plan_tiling`` says how (tiles, split, halos), without tensors.
``nas.cost`` predicts the peak memory and the recomputed MACs of that run.
"""

from nas.tiling.executor import Observer, TiledRun, make_plan, tiled_forward
from nas.tiling.geometry import Box, Footprint, Step
from nas.tiling.plan import TilingPlan, check_tiling, plan_tiling, record_calls, valid_splits

__all__ = [
    "Box",
    "Footprint",
    "Observer",
    "Step",
    "TiledRun",
    "TilingPlan",
    "check_tiling",
    "make_plan",
    "plan_tiling",
    "record_calls",
    "tiled_forward",
    "valid_splits",
]
