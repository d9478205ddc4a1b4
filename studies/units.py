"""Budgets as people write them: ``0.25MiB``, ``256 KiB``, ``262144`` (bytes); ``18G`` (counts).

Bytes: a number with an optional unit ``B``, ``KiB``/``MiB``/``GiB``/``TiB`` (powers of 1024) or
``kB``/``KB``/``MB``/``GB``/``TB`` (powers of 1000, as IEC defines them). A bare ``K``/``M``/``G``
is refused for bytes because it is ambiguous; the error says which two spellings to pick.
Counts (MACs, params): a number with an optional ``k``/``K``, ``M``, ``G``, ``T`` (powers of 1000).
Both take ``_`` or ``,`` as digit separators and scientific notation; results are rounded to
integers. Every mistake raises ``ConfigError`` naming ``field``.
"""

from __future__ import annotations

import math
import re

from nas.errors import ConfigError
from nas.units import format_bytes, format_count  # noqa: F401  (shown as studies.units.*)

BYTE_UNITS: dict[str, int] = {
    "b": 1,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "tb": 10**12,
}
COUNT_UNITS: dict[str, int] = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12}

_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:e[-+]?\d+)?"
_NUMBER_UNIT = re.compile(rf"^\s*({_NUMBER})\s*([a-z]*)\s*$", re.IGNORECASE)


def _split(text: str | float, field: str, example: str) -> tuple[float, str]:
    if isinstance(text, bool):
        raise ConfigError(f"{field}: {text!r} is not a number; write e.g. {example}")
    if isinstance(text, (int, float)):
        value, unit = float(text), ""
    else:
        match = _NUMBER_UNIT.match(str(text).replace("_", "").replace(",", ""))
        if not match:
            raise ConfigError(
                f"{field}: {text!r} is not a number with a unit; write e.g. {example}"
            )
        value, unit = float(match.group(1)), match.group(2)
    if not math.isfinite(value) or value < 0:
        raise ConfigError(f"{field}: {text!r} must be a finite number >= 0; write e.g. {example}")
    return value, unit


def parse_bytes(text: str | float, field: str = "bytes") -> int:
    """``"0.25MiB"``, ``"256 KiB"`` and ``"262144"`` -> 262144; ``"1MB"`` -> 10**6."""
    value, unit = _split(text, field, "0.25MiB, 256KiB or 262144 (bytes)")
    key = unit.lower() or "b"
    if key in ("k", "m", "g", "t"):
        raise ConfigError(
            f"{field}: {text!r} has an ambiguous unit {unit!r}; write {unit.upper()}iB "
            f"(powers of 1024) or {unit.upper()}B (powers of 1000)"
        )
    if key not in BYTE_UNITS:
        raise ConfigError(
            f"{field}: unknown byte unit {unit!r} in {text!r}; use B, KiB, MiB, GiB, kB, MB or GB"
        )
    return round(value * BYTE_UNITS[key])


def parse_count(text: str | float, field: str = "count") -> int:
    """``"18G"`` -> 18_000_000_000; also ``"17.52 G"``, ``"250k"``, ``"1.5e9"`` (powers of 1000)."""
    value, unit = _split(text, field, "18G, 250k or 1.5e9")
    key = unit.lower()
    if key not in COUNT_UNITS:
        raise ConfigError(f"{field}: unknown unit {unit!r} in {text!r}; use k, M, G or T (x1000)")
    return round(value * COUNT_UNITS[key])
