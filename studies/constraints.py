"""Study constraints such as ``m_sc <= 0.25 MiB`` or ``psnr >= 28 dB``: parsing and values.

A constraint's Optuna value (``Trial.set_constraint(name, value)``; feasible when <= 0) is the
amount by which the measurement breaks the limit, in the constraint's own unit:
``measured - limit`` for ``<=``, ``limit - measured`` for ``>=``. Cost constraints (m_sc, macs,
params, peak_memory) are known before training and are *hard*: a trial that breaks one is not
trained. Accuracy constraints (psnr, ssim) are checked after training.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from nas.errors import ConfigError
from studies.units import BYTE_UNITS, COUNT_UNITS

# name -> (user-attr key, kind); kind picks the units it accepts
METRICS: dict[str, tuple[str, str]] = {
    "m_sc": ("m_sc_bytes", "bytes"),
    "peak_memory": ("peak_activation_bytes", "bytes"),
    "macs": ("macs", "count"),
    "macs_paper": ("macs_paper", "count"),
    "params": ("params", "count"),
    "psnr": ("psnr", "db"),
    "ssim": ("ssim", "ratio"),
}
COST_METRICS = ("m_sc", "peak_memory", "macs", "macs_paper", "params")

# unit (lower case) -> its size in the attribute's unit; the byte and count units are
# ``studies.units``' (what report/export budgets accept), so a limit reads the same everywhere
UNITS: dict[str, dict[str, float]] = {
    "bytes": {"": 1, **BYTE_UNITS},
    "count": dict(COUNT_UNITS),
    "db": {"": 1, "db": 1},
    "ratio": {"": 1},
}

_PATTERN = re.compile(r"^\s*([a-z_]+)\s*(<=|>=)\s*([0-9.eE+-]+)\s*([A-Za-z]*)\s*$")


@dataclasses.dataclass(frozen=True)
class Constraint:
    """``metric op limit unit``; ``scale`` turns the attribute's value into ``unit``."""

    metric: str
    op: str
    limit: float
    unit: str
    scale: float

    @property
    def key(self) -> str:
        """The trial user-attribute this constraint reads."""
        return METRICS[self.metric][0]

    @property
    def is_cost(self) -> bool:
        return self.metric in COST_METRICS

    @property
    def name(self) -> str:
        """The constraint's name in Optuna (``set_constraint``): its own text, normalised, with
        the limit written exactly (two limits never share a name): ``params <= 29159715``."""
        return f"{self.metric} {self.op} {_exact(self.limit)}{' ' + self.unit if self.unit else ''}"

    def value(self, measured: float) -> float:
        """How far ``measured`` (in the attribute's unit) breaks the limit; <= 0 is feasible."""
        x = measured / self.scale
        return x - self.limit if self.op == "<=" else self.limit - x

    @classmethod
    def parse(cls, text: str, where: str = "constraints") -> Constraint:
        m = _PATTERN.match(text) if isinstance(text, str) else None
        if m is None:
            raise ConfigError(
                f"{where}: {text!r} is not a constraint; write e.g. 'm_sc <= 0.25 MiB', "
                "'macs <= 18 G' or 'psnr >= 28'"
            )
        metric, op, number, unit = m.groups()
        if metric not in METRICS:
            raise ConfigError(f"{where}: unknown metric {metric!r}; choose one of {list(METRICS)}")
        try:
            limit = float(number)
        except ValueError:
            raise ConfigError(f"{where}: {number!r} is not a number") from None
        units = UNITS[METRICS[metric][1]]
        if unit.lower() not in units:
            shown = [u for u in _display_units(metric) if u]
            raise ConfigError(
                f"{where}: unit {unit!r} does not fit {metric}; use one of {shown or ['none']}"
            )
        return cls(metric, op, limit, unit, units[unit.lower()])


def _exact(x: float) -> str:
    """``x`` in the fewest digits that read back as ``x``: 4, 0.25, 29159715, 1e-05, 1e+20."""
    return str(int(x)) if x.is_integer() and abs(x) < 1e15 else repr(x)


def _display_units(metric: str) -> list[str]:
    kind = METRICS[metric][1]
    return {"bytes": ["B", "kB", "MB", "GB", "KiB", "MiB", "GiB"], "count": ["k", "M", "G", "T"],
            "db": ["dB"], "ratio": [""]}[kind]  # fmt: skip


def constraint_values(
    constraints: tuple[Constraint, ...], attrs: dict[str, Any]
) -> dict[str, float]:
    """``{constraint name: value}`` for those whose metric is in ``attrs``."""
    return {
        c.name: c.value(float(attrs[c.key])) for c in constraints if attrs.get(c.key) is not None
    }


def broken(values: dict[str, float]) -> list[str]:
    """Names of the constraints with a positive (infeasible) value."""
    return [name for name, v in values.items() if v > 0]
