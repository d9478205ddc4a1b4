"""Study constraints such as ``m_sc <= 0.25 MiB`` or ``psnr >= 28 dB``: the one parser, and values.

A constraint's Optuna value (``Trial.set_constraint(name, value)``; feasible when <= 0) is the
amount by which the measurement breaks the limit, in the constraint's own unit:
``measured - limit`` for ``<=``, ``limit - measured`` for ``>=``. Constraints on cost metrics
(``studies.metrics``: m_sc, macs, params, peak_memory, ...) are known before training and are
*hard*: a trial that breaks one is not trained. Accuracy constraints (psnr, ssim) are checked
after training. ``Constraint.parse`` reads both what users write and the names the search
stores (the limit exact, or rounded; ``_`` or ``,`` between digits).
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Iterable
from typing import Any

from nas.errors import ConfigError
from studies.metrics import METRICS, SHOWN_UNITS, UNITS, Metric, by_key, get_metric

_PATTERN = re.compile(r"^\s*([a-z_]+)\s*(<=|>=)\s*([0-9.+-][0-9_,.eE+-]*)\s*([A-Za-z]*)\s*$")


@dataclasses.dataclass(frozen=True)
class Constraint:
    """``metric op limit unit``; ``scale`` turns the attribute's value into ``unit``."""

    metric: str
    op: str
    limit: float
    unit: str
    scale: float
    attr: str | None = None
    """Only for a constraint read back from a study another tool wrote (``read_back``): the
    user attribute it limits (``metric`` is then its stored name; ``limit`` in the attribute's
    unit, NaN when no trial tells it)."""
    text: str | None = dataclasses.field(default=None, compare=False)
    """The text it was parsed from, as written (what ``describe`` shows)."""

    @property
    def row(self) -> Metric:
        return get_metric(self.metric)

    @property
    def key(self) -> str | None:
        """The trial user-attribute this constraint reads (None: a read-back name that says
        nothing of it)."""
        if self.attr is not None or self.metric not in METRICS:
            return self.attr
        return self.row.key

    def describe(self) -> str:
        """``"m_sc <= 40 KiB"``: as written, else its name, op and limit."""
        if self.text is not None:
            return self.text
        if self.key is None or math.isnan(self.limit):
            return self.metric
        row = by_key(self.key)
        shown = row.format(self.limit_in_key_unit) if row else f"{self.limit:g}"
        return f"{self.metric} {self.op} {shown}"

    @property
    def is_cost(self) -> bool:
        return self.row.cost

    @property
    def limit_in_key_unit(self) -> float:
        """The limit in the attribute's own unit (bytes, MACs, dB)."""
        return self.limit * self.scale

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
        row = get_metric(metric, where)
        try:
            limit = float(number.replace("_", "").replace(",", ""))
        except ValueError:
            raise ConfigError(f"{where}: {number!r} is not a number") from None
        units = UNITS[row.unit]
        if unit.lower() not in units:
            shown = list(SHOWN_UNITS[row.unit])
            raise ConfigError(
                f"{where}: unit {unit!r} does not fit {metric}; use one of {shown or ['none']}"
            )
        return cls(metric, op, limit, unit, units[unit.lower()], text=text)

    @classmethod
    def read_back(cls, name: str, trials: Iterable[tuple[dict[str, Any], dict[str, float]]]
                  ) -> Constraint:  # fmt: skip
        """The constraint a stored study names ``name``, from ``(user attrs, constraint
        values)`` of its trials. Names the search writes (``"m_sc <= 40 KiB"``) say everything;
        any other is taken as ``name <= limit`` on the metric or user attribute of that name,
        its value being ``measured - limit`` in the attribute's unit, the limit read off the
        first trial that has both (NaN if none does)."""
        try:
            return cls.parse(name)
        except ConfigError:
            pass
        attr = METRICS.get(name).key if name in METRICS else name
        for attrs, values in trials:
            measured = attrs.get(attr)
            if (name in values and isinstance(measured, int | float)
                    and not isinstance(measured, bool)):  # fmt: skip
                return cls(name, "<=", float(measured) - float(values[name]), "", 1.0, attr=attr)
        return cls(name, "<=", math.nan, "", 1.0, attr=attr if name in METRICS else None)


    def check(self, where: str) -> None:
        """``ConfigError`` for a constraint that can mean nothing as a user's limit: a bound
        below zero on a cost (no design has negative memory or MACs), or a lower bound on a
        cost (it asks for a bigger model; costs are limited from above)."""
        if self.is_cost and self.op == ">=":
            raise ConfigError(f"{where}: {self.metric} >= ... puts a lower bound on a cost, which "
                              f"only asks for a bigger model; limit it with <=, e.g. "
                              f"'{self.metric} <= ...'")  # fmt: skip
        if self.row.unit in ("bytes", "count") and self.limit < 0:
            raise ConfigError(f"{where}: {self.metric} <= {_exact(self.limit)} is below zero: no "
                              "design can meet it; give a limit >= 0")  # fmt: skip


def _exact(x: float) -> str:
    """``x`` in the fewest digits that read back as ``x``: 4, 0.25, 29159715, 1e-05, 1e+20."""
    return str(int(x)) if x.is_integer() and abs(x) < 1e15 else repr(x)


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
