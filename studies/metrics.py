"""The one table of metrics: every name a study, a constraint, a plot, a report or an export uses.

A ``Metric`` row says everything a reader needs: the trial user-attribute ``key`` its value is
stored under (with its unit where it could be mistaken: ``psnr_db``, ``macs_fvcore``), its name
in Optuna's ``study.metric_names`` (``optuna_name``: ``"PSNR [dB]"``), its Optuna
``direction``, its ``unit`` kind (how limits are written and values shown), its axis ``label``, whether it is a ``cost`` (known from the target model before any
training: a constraint on it is *hard*, checked before a trial trains) and whether it may be an
``objective``. A cost metric may carry ``from_cost``, which reads it off a ``nas.CostReport``
(what the worker stores for the trial), and ``from_shapes`` when it is known from the
architecture's shapes alone (M_sc: what the sampler's prefilter checks); a score metric only some proxy tasks measure names them
in ``tasks`` (matting's ``sad``, SAD / 1000 over the whole image as the Adobe and P3M scripts
print it, and ``mse`` in [0, 1] units: the paper's Table 7 prints MSE x 1e3).

Adding a metric is one ``register_metric(Metric(...))`` call; objectives, constraints, plots,
report tables, export budgets and trial attributes all read ``METRICS``.

Peak memory depends on how the model is executed (``nas.tiling``): ``peak_memory`` is the
layer-by-layer peak (PyTorch, ONNX Runtime), ``peak_tiled`` the tiled executor's for the study's
``target.tiling``; ``executor`` names it on each such row.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any, Literal

from nas.errors import ConfigError
from nas.registry import Registry
from studies.units import BYTE_UNITS, COUNT_UNITS, format_bytes, format_count

UnitKind = Literal["bytes", "count", "db", "ratio"]
Direction = Literal["maximize", "minimize"]

# unit kind -> {unit as written (lower case) -> its size in the attribute's unit}
UNITS: dict[str, dict[str, float]] = {
    "bytes": {"": 1, **BYTE_UNITS},
    "count": dict(COUNT_UNITS),
    "db": {"": 1, "db": 1},
    "ratio": {"": 1},
}
# unit kind -> how a raw stored value is counted (names of objectives in Optuna)
RAW_UNITS: dict[str, str] = {"bytes": "bytes", "count": "", "db": "dB", "ratio": ""}
# unit kind -> the spellings shown in messages
SHOWN_UNITS: dict[str, tuple[str, ...]] = {
    "bytes": ("B", "kB", "MB", "GB", "KiB", "MiB", "GiB"),
    "count": ("k", "M", "G", "T"),
    "db": ("dB",),
    "ratio": (),
}


@dataclasses.dataclass(frozen=True)
class Metric:
    """One row of the table (see the module docstring)."""

    name: str  # as written in objectives and constraints: "m_sc"
    key: str  # trial user-attribute key: "m_sc_bytes"
    direction: Direction
    unit: UnitKind
    label: str  # axis label, without the unit: "skip memory M_sc"
    short: str  # in sentences and budgets: "M_sc <= 256 KiB"
    cost: bool  # known before training (hard constraint)
    objective: bool = True  # may be an objective of a study
    from_cost: Callable[[Any], float] | None = None  # CostReport -> value (cost metrics)
    # (ArchConfig, input size, batch, bits) -> value, for a cost known from shapes alone
    from_shapes: Callable[[Any, tuple[int, int], int, int], float] | None = None
    tasks: tuple[str, ...] | None = None  # proxy tasks that measure it (None: every task)
    executor: str | None = None  # a peak memory: the executor it is measured under

    @property
    def maximized(self) -> bool:
        return self.direction == "maximize"

    @property
    def optuna_name(self) -> str:
        """The objective's name in Optuna (``study.set_metric_names``), label and raw unit:
        ``"PSNR [dB]"``, ``"skip memory M_sc [bytes]"``, ``"MACs (fvcore)"``."""
        unit = RAW_UNITS[self.unit]
        return f"{self.label} [{unit}]" if unit else self.label

    def format(self, value: float) -> str:
        """``262144`` -> ``"256 KiB"``; ``16.06e9`` -> ``"16.1 G"``; ``29.5`` -> ``"29.500 dB"``."""
        if self.unit == "bytes":
            return format_bytes(value)
        if self.unit == "count":
            return format_count(value)
        if self.unit == "db":
            return f"{value:.3f} dB"
        return f"{value:.4f}"

    def display_unit(self, values: Sequence[float]) -> tuple[str, float]:
        """``(unit name, scale)`` to draw ``values`` with: MiB for megabytes, G for 1e9, ..."""
        top = max((abs(v) for v in values), default=0.0)
        steps = {
            "bytes": (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)),
            "count": (("G", 1e9), ("M", 1e6), ("k", 1e3)),
        }.get(self.unit, ())
        for name, scale in steps:
            if top >= scale:
                return name, float(scale)
        return ("bytes", 1.0) if self.unit == "bytes" else ("", 1.0)


METRICS: Registry[Metric] = Registry("metric")


def register_metric(metric: Metric) -> Metric:
    """Add ``metric`` to the table (its name must be new)."""
    METRICS.register(metric.name)(metric)
    return metric


def get_metric(name: str, where: str = "metric") -> Metric:
    """The row of ``name``; an unknown name is a ``ConfigError`` listing the known ones."""
    if name not in METRICS:
        raise ConfigError(f"{where}: unknown metric {name!r}; choose one of {METRICS.names()}")
    return METRICS.get(name)


def objective_names() -> list[str]:
    return [n for n in METRICS.names() if METRICS.get(n).objective]


def cost_metrics() -> list[Metric]:
    return [METRICS.get(n) for n in METRICS.names() if METRICS.get(n).cost]


def score_metrics() -> list[Metric]:
    """Metrics measured by training (PSNR, SSIM): what a trial must train for."""
    return [METRICS.get(n) for n in METRICS.names() if not METRICS.get(n).cost]


def by_optuna_name(name: str) -> Metric | None:
    """The metric whose ``optuna_name`` (or, in older studies, name) is ``name``."""
    return next((METRICS.get(n) for n in METRICS.names()
                 if name in (n, METRICS.get(n).optuna_name)), None)  # fmt: skip


def by_key(key: str) -> Metric | None:
    """The metric stored under trial attribute ``key`` (None: not a metric)."""
    return next((METRICS.get(n) for n in METRICS.names() if METRICS.get(n).key == key), None)


SCORE = "psnr"  # the accuracy a study ranks by when none of its objectives is measured by training


def study_score(objectives: Sequence[str] = ()) -> Metric:
    """The accuracy a study's report (knee, trade-off plots) and export rank by: its first
    objective that training measures (``psnr``, or ``sad`` in a matting study optimising it),
    else ``SCORE``. Unknown names raise ``ConfigError``."""
    rows = [get_metric(name, "objectives") for name in objectives]
    return next((m for m in rows if not m.cost), get_metric(SCORE))


def _m_sc_from_shapes(arch: Any, size: tuple[int, int], batch: int, bits: int) -> float:
    from nas.cost import skip_memory_peak, skip_memory_timeline

    return skip_memory_peak(skip_memory_timeline(arch, size[0], size[1], batch, bits))


for _row in (
    Metric("psnr", "psnr_db", "maximize", "db", "PSNR", "PSNR", cost=False),
    Metric("ssim", "ssim", "maximize", "ratio", "SSIM", "SSIM", cost=False),
    Metric("sad", "sad_thousands", "minimize", "ratio", "alpha SAD (thousands)", "SAD",
           cost=False, tasks=("matting",)),
    Metric("mse", "mse", "minimize", "ratio", "alpha MSE", "MSE", cost=False,
           tasks=("matting",)),
    Metric("m_sc", "m_sc_bytes", "minimize", "bytes", "skip memory M_sc", "M_sc", cost=True,
           from_cost=lambda r: r.m_sc_bytes, from_shapes=_m_sc_from_shapes),
    Metric("macs", "macs_fvcore", "minimize", "count", "MACs (fvcore)", "MACs", cost=True,
           from_cost=lambda r: r.macs),
    Metric("params", "params", "minimize", "count", "parameters", "params", cost=True,
           from_cost=lambda r: r.params),
    Metric("peak_memory", "peak_activation_bytes", "minimize", "bytes",
           "peak activation memory", "layer-by-layer peak", cost=True,
           from_cost=lambda r: r.peak_activation_bytes, executor="layer"),
    Metric("peak_tiled", "peak_tiled_bytes", "minimize", "bytes", "peak memory (tiled)",
           "tiled peak", cost=True, from_cost=lambda r: r.peak_tiled_bytes, executor="tiled"),
    Metric("recompute_macs", "recompute_macs", "minimize", "count",
           "recomputed MACs (tiled)", "recomputed MACs", cost=True,
           from_cost=lambda r: r.recompute_macs, executor="tiled"),
    Metric("macs_paper", "macs_paper", "minimize", "count", "MACs (paper convention)",
           "paper MACs", cost=True, objective=False, from_cost=lambda r: r.macs_paper),
):  # fmt: skip
    register_metric(_row)
