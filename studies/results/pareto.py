"""Pareto fronts of a unetmm study, constraint-aware: what the report draws and export picks from.

A trial enters a front only if it is *eligible*: Optuna state COMPLETE, schema status
``complete`` (never ``stopped`` early by the scheduler, never ``infeasible``), every constraint
value <= 0 (Optuna 5's ``Trial.set_constraint``, stored as ``constraints:<name>`` system
attributes; read back by name with ``schema.trial_constraints``), and a finite score for every
objective.
Objectives are metric names of ``studies.metrics`` (``psnr``, ``m_sc``, ``macs``, ...); values
come from the trial's user attributes, so the front does not depend on the order of the study's
objective values (nor on the worst-score values an infeasible trial holds for Optuna's samplers).

A front lists *designs*, not trials: eligible trials of one design (the same target
architecture, ``arch``) form one ``DesignRow``, standing at its first measurement (its earliest
trial that is not a copy), with every trial of it counted (copies of its result, repeats).
``distinct_designs``/``distinct_front`` are the one grouping the report's table, the export, the
search's summary and its progress line count with.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import optuna

from nas.config import arch_key
from nas.errors import ConfigError
from studies import schema
from studies.artifacts import study_data
from studies.constraints import Constraint
from studies.metrics import METRICS, Metric, by_optuna_name

DEFAULT_OBJECTIVES = ("psnr", "m_sc", "macs")
REFERENCE_LABELS = {"full": "full skips", "none": "no skips", "unetmm": "UNet-- (paper)"}


@dataclasses.dataclass(frozen=True)
class TrialPoint:
    """One Optuna trial as the report sees it (immutable snapshot of a ``FrozenTrial``)."""

    number: int
    state: str  # Optuna TrialState name: COMPLETE, FAIL, PRUNED, RUNNING, WAITING
    attrs: Mapping[str, Any]
    params: Mapping[str, Any]
    constraints: Mapping[str, float]

    def __post_init__(self) -> None:  # attributes under current keys (``schema.current``)
        object.__setattr__(self, "attrs", schema.current(self.attrs))

    @classmethod
    def from_trial(
        cls, trial: optuna.trial.FrozenTrial, data: Mapping[str, Any] | None = None
    ) -> TrialPoint:
        """``data``: everything the trial stored (``studies.artifacts.study_data``); default:
        its user attributes only."""
        return cls(
            trial.number,
            trial.state.name,
            dict(data) if data is not None else schema.current(trial.user_attrs),
            dict(trial.params),
            schema.trial_constraints(trial),
        )

    @property
    def status(self) -> str | None:
        return self.attrs.get(schema.ATTR_STATUS)

    @property
    def reference(self) -> str | None:
        return self.attrs.get(schema.ATTR_REFERENCE)

    @property
    def design(self) -> str:
        label = self.attrs.get(schema.ATTR_DESIGN) or f"trial {self.number}"
        if self.reference:
            return f"{REFERENCE_LABELS.get(self.reference, self.reference)}: {label}"
        return str(label)

    @property
    def feasible(self) -> bool:
        """All constraint values <= 0 and not marked infeasible by the search."""
        return self.status != schema.STATUS_INFEASIBLE and all(
            v <= 0 for v in self.constraints.values()
        )

    def value(self, objective: str) -> float | None:
        """The objective's raw value (e.g. PSNR in dB, M_sc in bytes), or None if not measured."""
        raw = self.attrs.get(objective_key(objective))
        if raw is None:
            return None
        value = float(raw)
        return value if math.isfinite(value) else None

    def eligible(self, objectives: Iterable[str] = ("psnr",)) -> bool:
        """May this trial be in a front over ``objectives``?"""
        return (
            self.state == "COMPLETE"
            and self.status == schema.STATUS_COMPLETE
            and self.feasible
            and all(self.value(o) is not None for o in objectives)
        )


def _row(objective: str) -> Metric:
    if objective not in METRICS:
        raise ConfigError(f"objective {objective!r} is not known; use one of {METRICS.names()}")
    return METRICS.get(objective)


def objective_key(objective: str) -> str:
    """User-attribute key of a metric name (``m_sc`` -> ``m_sc_bytes``)."""
    return _row(objective).key


def maximized(objective: str) -> bool:
    return _row(objective).maximized


def load_points(study: optuna.Study) -> list[TrialPoint]:
    """Every trial of ``study`` (all states), in trial-number order, with all it stored."""
    trials = study.get_trials(deepcopy=False)
    data = study_data(study, trials)
    return [TrialPoint.from_trial(t, data[t.number]) for t in trials]


def study_objectives(study: optuna.Study) -> tuple[str, ...]:
    """The study's objective names: its ``objectives`` user attribute (written by the search),
    else its metric names (``"PSNR [dB]"`` or ``"psnr"``), when they are metrics; else
    ``DEFAULT_OBJECTIVES``."""
    named = [(m.name if (m := by_optuna_name(n)) else n) for n in study.metric_names or ()]
    for names in (study.user_attrs.get(schema.STUDY_ATTR_OBJECTIVES), named):
        if isinstance(names, list) and names and all(
                isinstance(n, str) and n in METRICS for n in names):  # fmt: skip
            return tuple(names)
    return DEFAULT_OBJECTIVES


def _loss(point: TrialPoint, objectives: Sequence[str]) -> tuple[float, ...]:
    """The point's objectives, all turned into "lower is better"."""
    values = [(o, point.value(o)) for o in objectives]
    return tuple(-v if maximized(o) else v for o, v in values)  # type: ignore[operator]


def _dominates(a: Sequence[float], b: Sequence[float]) -> bool:
    return all(x <= y for x, y in zip(a, b)) and any(x < y for x, y in zip(a, b))


@dataclasses.dataclass(frozen=True)
class DesignRow:
    """One design: ``point`` stands for it (its first measurement); ``trials`` are all its
    eligible trials in number order (``point`` among them: repeats measured again), ``copies``
    the trials that copied a result of it instead of training (``copy_of``; PRUNED since the
    search tells them so, COMPLETE in studies from before)."""

    point: TrialPoint
    trials: tuple[TrialPoint, ...]
    copies: tuple[TrialPoint, ...] = ()

    @property
    def count(self) -> int:
        """Trials that measured or copied the design."""
        return len(self.trials) + len(self.copies)


def design_key(p: TrialPoint) -> str:
    """What makes two trials one design: the target architecture (a trial without one is its
    own design)."""
    if p.attrs.get(schema.ATTR_ARCH_KEY):  # ``ArchConfig.key()``; old trials: from their arch
        return str(p.attrs[schema.ATTR_ARCH_KEY])
    arch = p.attrs.get(schema.ATTR_ARCH)
    return arch_key(arch) if isinstance(arch, Mapping) else f"trial {p.number}"


def distinct_designs(points: Iterable[TrialPoint], objectives: Sequence[str]) -> list[DesignRow]:
    """The eligible trials over ``objectives`` grouped by design, in order of first trial; the
    copies of a design's results (any state) counted with it."""
    points = sorted(points, key=lambda p: p.number)
    copies: dict[int, list[TrialPoint]] = {}
    for p in points:
        source = p.attrs.get(schema.ATTR_COPY_OF)
        if source is not None and not p.eligible(objectives):
            copies.setdefault(int(source), []).append(p)
    groups: dict[str, list[TrialPoint]] = {}
    for p in points:
        if p.eligible(objectives):
            groups.setdefault(design_key(p), []).append(p)
    rows = []
    for trials in groups.values():
        originals = [p for p in trials if schema.ATTR_COPY_OF not in p.attrs]
        copied = tuple(q for p in trials for q in copies.get(p.number, ()))
        rows.append(DesignRow((originals or trials)[0], tuple(trials), copied))
    return rows


def distinct_front(points: Iterable[TrialPoint], objectives: Sequence[str]) -> list[DesignRow]:
    """The designs no other design dominates over ``objectives`` (each at its ``point``),
    sorted by the first minimised objective."""
    rows = distinct_designs(points, objectives)
    losses = [_loss(r.point, objectives) for r in rows]
    front = [r for r, lr in zip(rows, losses) if not any(_dominates(q, lr) for q in losses)]
    costs = [o for o in objectives if not maximized(o)] or list(objectives)
    front.sort(key=lambda r: (_loss(r.point, costs), r.point.number))
    return front


def pareto_front(
    points: Iterable[TrialPoint], objectives: Sequence[str], repeats: bool = False
) -> list[TrialPoint]:
    """The trials standing for the ``distinct_front`` designs. ``repeats=True`` adds, right
    after each, the design's trials with the same scores (copies of its result: what the plots
    draw with the front); a repeat measured with other scores is not added."""
    objectives = tuple(objectives)
    front = distinct_front(points, objectives)
    if not repeats:
        return [r.point for r in front]
    same = [(r.point, [q for q in r.trials if q is not r.point and _same(q, r.point)])
            for r in front]  # fmt: skip
    return [q for p, repeated in same for q in (p, *repeated)]


def _same(a: TrialPoint, b: TrialPoint) -> bool:
    """``a`` copies ``b``'s result or measured exactly the same values."""
    same_values = all(a.value(n) == b.value(n) for n in METRICS.names())
    return a.attrs.get(schema.ATTR_COPY_OF) == b.number or same_values


# -- hypervolume ----------------------------------------------------------------------------


def hypervolume(points: Sequence[Sequence[float]], ref: Sequence[float]) -> float:
    """Exact hypervolume (every objective minimised) dominated by ``points`` up to ``ref``."""
    ref = tuple(ref)
    points = [tuple(p) for p in points if all(x < r for x, r in zip(p, ref))]
    if not points:
        return 0.0
    if len(ref) == 1:
        return ref[0] - min(p[0] for p in points)
    if len(ref) == 2:  # sweep in x, keeping the lowest y so far
        volume, best_y = 0.0, ref[1]
        for x, y in sorted(points):
            if y < best_y:
                volume += (ref[0] - x) * (best_y - y)
                best_y = y
        return volume
    points.sort(key=lambda p: p[-1])  # slice along the last axis
    volume = 0.0
    for i, p in enumerate(points):
        top = points[i + 1][-1] if i + 1 < len(points) else ref[-1]
        if top > p[-1]:
            volume += (top - p[-1]) * hypervolume([q[:-1] for q in points[: i + 1]], ref[:-1])
    return volume


@dataclasses.dataclass(frozen=True)
class HypervolumeHistory:
    """Hypervolume of the eligible front after each trial, normalised to [0, 1].

    Objectives are scaled to [0, 1] between the best and worst eligible values of the whole
    study (lower is better after the scaling), and the reference point is 1.1 on every axis;
    the volume is divided by 1.1**d, so 1.0 would be a single trial best in everything.
    """

    objectives: tuple[str, ...]
    numbers: tuple[int, ...]
    values: tuple[float, ...]


def hypervolume_history(
    points: Sequence[TrialPoint], objectives: Sequence[str]
) -> HypervolumeHistory:
    objectives = tuple(objectives)
    pool = [p for p in points if p.eligible(objectives)]
    if not pool:
        return HypervolumeHistory(objectives, (), ())
    losses = [_loss(p, objectives) for p in pool]
    low = [min(col) for col in zip(*losses)]
    span = [max(col) - lo or 1.0 for col, lo in zip(zip(*losses), low)]
    scaled = {
        p.number: tuple((v - lo) / s for v, lo, s in zip(lp, low, span))
        for p, lp in zip(pool, losses)
    }
    ref = (1.1,) * len(objectives)
    numbers, values, front, hv = [], [], [], 0.0
    for point in sorted(points, key=lambda p: p.number):
        new = scaled.get(point.number)
        if new is not None and not any(q == new or _dominates(q, new) for q in front):
            front = [q for q in front if not _dominates(new, q)] + [new]  # only the front counts
            hv = hypervolume(list(front), ref) / 1.1 ** len(objectives)
        numbers.append(point.number)
        values.append(hv)
    return HypervolumeHistory(objectives, tuple(numbers), tuple(values))


# -- knee -----------------------------------------------------------------------------------


def knee_ranking(
    front: Sequence[TrialPoint], x: str = "m_sc", y: str = "psnr"
) -> list[tuple[TrialPoint, float]]:
    """Front points ranked by knee-ness: distance above the chord between the front's extremes.

    Both axes are scaled to [0, 1] over the 2-D front of ``(x, y)`` among ``front`` (so units do
    not matter), each scaled to "higher is better"; the chord joins the two extreme points (best
    x, best y) and a point's score is its perpendicular distance above it. The first entry is the
    knee. Fronts of one or two points have no knee: every score is 0 and ties go to the best y.
    """
    pts = pareto_front(front, (y, x))
    if not pts:
        return []

    def gain(p: TrialPoint, o: str) -> float:  # higher is better
        v = p.value(o) or 0.0
        return v if maximized(o) else -v

    gx, gy = [gain(p, x) for p in pts], [gain(p, y) for p in pts]
    sx = [(v - min(gx)) / ((max(gx) - min(gx)) or 1.0) for v in gx]
    sy = [(v - min(gy)) / ((max(gy) - min(gy)) or 1.0) for v in gy]
    a = max(range(len(pts)), key=lambda i: (sx[i], sy[i]))  # best x
    b = max(range(len(pts)), key=lambda i: (sy[i], sx[i]))  # best y
    dx, dy = sx[b] - sx[a], sy[b] - sy[a]
    norm = math.hypot(dx, dy)
    scores = [
        0.0 if norm == 0 else max(0.0, (dy * (sx[i] - sx[a]) - dx * (sy[i] - sy[a])) / norm)
        for i in range(len(pts))
    ]
    order = sorted(range(len(pts)), key=lambda i: (-scores[i], -sy[i], pts[i].number))
    return [(pts[i], scores[i]) for i in order]


# -- constraints ----------------------------------------------------------------------------


def constraint_limits(points: Iterable[TrialPoint]) -> dict[str, Constraint]:
    """Every constraint of the study's trials, read back (``Constraint.read_back``)."""
    points = list(points)
    names = dict.fromkeys(n for p in points for n in p.constraints)
    pairs = [(p.attrs, p.constraints) for p in points]
    return {name: Constraint.read_back(name, pairs) for name in names}
