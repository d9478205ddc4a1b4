"""Analytic skip memory (M_sc): what a skip design holds at every stage boundary, from shapes alone.

This is the Fig. 1b timeline of the paper: for full skips on NAFNet-w32 at 256x256 it rises to
15/8 x M_E1 at the end of E4 (3,932,160 bytes at 8 bit) and falls back to 0 after D1.
"""

from __future__ import annotations

from nas.backbones.base import padded_size
from nas.config import ArchConfig
from nas.errors import ConfigError
from nas.skips.base import boundary_labels, stage_sizes

BIT_WIDTHS = (4, 8, 16, 32)


def check_bits(bits: int) -> None:
    if bits not in BIT_WIDTHS:
        raise ConfigError(f"bits: {bits} is not supported; use one of {list(BIT_WIDTHS)}")


def skip_memory_timeline(
    arch: ArchConfig, height: int, width: int, batch: int = 1, bits: int = 8
) -> list[tuple[str, int]]:
    """``[(boundary label, bytes held by the skip design), ...]`` for ``E1..EN, M, DN..D1``."""
    check_bits(bits)
    if batch < 1:
        raise ConfigError(f"batch: must be >= 1, got {batch}")
    channels = arch.backbone.stage_channels
    arch.skip.validate(channels)
    sizes = stage_sizes(*padded_size(arch.backbone, height, width), arch.backbone.stage_strides)
    elements = arch.skip.held_elements(channels, sizes)
    labels = boundary_labels(len(channels))
    return [(label, e * batch * bits // 8) for label, e in zip(labels, elements)]


def skip_memory_peak(timeline: list[tuple[str, int]]) -> int:
    return max((b for _, b in timeline), default=0)
