"""Registered skip designs (see ``base`` for the contract)."""

from nas.skips.base import SkipContext, SkipDesign, boundary_labels, stage_sizes
from nas.skips.direct import DirectSkips, FullSkipsConfig, NoSkipsConfig, SubsetSkipsConfig
from nas.skips.unetmm import PAPER_RATIOS, UNetMMConfig, UNetMMSkips

__all__ = [
    "PAPER_RATIOS",
    "DirectSkips",
    "FullSkipsConfig",
    "NoSkipsConfig",
    "SkipContext",
    "SkipDesign",
    "SubsetSkipsConfig",
    "UNetMMConfig",
    "UNetMMSkips",
    "boundary_labels",
    "stage_sizes",
]
