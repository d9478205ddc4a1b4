"""How sizes and counts are shown: ``format_bytes`` (powers of 1024) and ``format_count`` (of 1000).

Shared by ``CostReport.summary`` and everything in ``studies`` that prints a cost.
"""

from __future__ import annotations


def format_bytes(n: float) -> str:
    """``262144`` -> ``"256 KiB"``, ``3932160`` -> ``"3.75 MiB"`` (3 significant digits)."""
    for unit, size in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if abs(n) >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n:.0f} B"


def format_count(n: float) -> str:
    """``16_065_000_000`` -> ``"16.1 G"``, ``29_159_715`` -> ``"29.2 M"`` (1000 base)."""
    for unit, size in (("T", 10**12), ("G", 10**9), ("M", 10**6), ("k", 10**3)):
        if abs(n) >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n:.0f}"
