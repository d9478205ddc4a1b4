"""Figure data of a study: small view tuples computed from the trials, drawn by ``plotly`` (the
HTML report) and ``matplotlib`` (the PNGs) beside this module.

``scatter_view`` sorts every trial into one of the series below (a trial is in exactly one), so
the interactive HTML figure and the PNG show the same points:

- ``front``: eligible (complete, feasible) and non-dominated on the two axes;
- ``feasible``: eligible but dominated;
- ``stopped``: stopped early by the scheduler: drawn hollow at its partial score (its last
  validation PSNR when the search kept no final one), never in the front;
- ``infeasible``: a constraint value > 0 (or marked so); untrained ones have no score and are
  drawn on the bottom edge of the plot.
Failed and unfinished trials are not drawn (the report counts them). The constraint on the x
axis, if any, is a dashed vertical line; reference points (full skips, no skips, UNet--) are
labelled wherever they fall. A repeat of a front design with the same scores is drawn with the
front. ``scatter3d_view`` does the same over three objectives (no constraint lines).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

from studies import schema
from studies.metrics import get_metric
from studies.results.pareto import (
    REFERENCE_LABELS,
    ConstraintLimit,
    TrialPoint,
    objective_key,
    pareto_front,
)

LOG_SPAN = 10.0  # draw x on a log axis when max/min exceeds this
STYLE = {  # series kind -> (legend, colour, plotly symbol, matplotlib marker)
    "front": ("Pareto front (complete, feasible)", "#d62728", "circle", "o"),
    "feasible": ("feasible, dominated", "#7f7f7f", "circle", "o"),
    "stopped": ("stopped early (partial score, excluded)", "#1f77b4", "circle-open", "o"),
    "infeasible": ("infeasible (untrained ones on the bottom edge)", "#ff7f0e", "x", "x"),
}


@dataclasses.dataclass(frozen=True)
class Unit:
    """How an objective's raw values are shown: ``value / scale`` in ``name``."""

    name: str
    scale: float


def unit_for(objective: str, values: Sequence[float]) -> Unit:
    """The unit the metric's ``values`` are drawn in (``studies.metrics``)."""
    return Unit(*get_metric(objective).display_unit(values))


def axis_title(objective: str, unit: Unit) -> str:
    """``"skip memory M_sc [MiB]"``, ``"PSNR (dB)"``."""
    row = get_metric(objective)
    if row.unit == "db":
        return f"{row.label} (dB)"
    return f"{row.label} [{unit.name}]" if unit.name else row.label


@dataclasses.dataclass(frozen=True)
class Series:
    kind: str
    numbers: tuple[int, ...]
    x: tuple[float, ...]
    y: tuple[float, ...]
    text: tuple[str, ...]
    z: tuple[float, ...] = ()  # 3-D views only


@dataclasses.dataclass(frozen=True)
class ScatterView:
    """What a 2-D trade-off plot shows (values already divided by their unit's scale)."""

    title: str
    x_title: str
    y_title: str
    series: tuple[Series, ...]
    vlines: tuple[tuple[float, str], ...]  # (x, label) of constraints on x
    hlines: tuple[tuple[float, str], ...]  # (y, label) of constraints on y
    labels: tuple[tuple[float, float, str], ...]  # (x, y, text) of reference points
    log_x: bool  # x spans more than LOG_SPAN (all values > 0)


def shown_value(p: TrialPoint, objective: str) -> float | None:
    """The value drawn for ``objective``: ``p.value``, except that a stopped trial without a
    final PSNR (the search keeps only its validation curve) shows its last validation PSNR."""
    v = p.value(objective)
    curve = p.attrs.get("curve")
    if v is None and objective == "psnr" and p.status == schema.STATUS_STOPPED and curve:
        return float(curve[-1][1])
    return v


def hover_text(p: TrialPoint) -> str:
    costs = ", ".join(
        f"{k}={p.attrs[k]:,}" for k in ("m_sc_bytes", "macs", "params") if k in p.attrs
    )
    psnr = shown_value(p, "psnr")
    score = f"PSNR {psnr:.2f} dB" if psnr is not None else "not trained"
    if p.value("psnr") is None and psnr is not None:
        score += f" at step {p.attrs['curve'][-1][0]}"
    return f"#{p.number} {p.design}<br>{score}; {costs}<br>status {p.status}"


def _kind(p: TrialPoint, front_numbers: set[int]) -> str | None:
    """The series a trial is drawn in; None: not drawn (failed, running, unknown status)."""
    if p.state not in ("COMPLETE", "PRUNED") or p.status == schema.STATUS_FAILED:
        return None
    if not p.feasible:
        return "infeasible"
    if p.status == schema.STATUS_STOPPED:
        return "stopped"
    if p.status != schema.STATUS_COMPLETE or p.state != "COMPLETE":
        return None
    return "front" if p.number in front_numbers else "feasible"


def scatter_view(
    points: Sequence[TrialPoint],
    x: str,
    y: str,
    limits: Mapping[str, ConstraintLimit],
    title: str,
) -> ScatterView:
    """The ``y`` vs ``x`` trade-off of all drawable trials (see the module docstring)."""
    front = pareto_front(points, (y, x), repeats=True)
    front_numbers = {p.number for p in front}
    xs = [p.value(x) for p in points if p.value(x) is not None]
    ys = [v for p in points if (v := shown_value(p, y)) is not None]
    xu, yu = unit_for(x, xs), unit_for(y, ys)  # type: ignore[arg-type]
    y_lo, y_hi = (min(ys), max(ys)) if ys else (0.0, 1.0)  # type: ignore[type-var]
    floor = (y_lo - 0.06 * ((y_hi - y_lo) or 1.0)) / yu.scale  # where unscored trials go
    grouped: dict[str, list[TrialPoint]] = {k: [] for k in STYLE}
    for p in points:
        kind = _kind(p, front_numbers)
        if kind is not None and p.value(x) is not None:
            grouped[kind].append(p)
    grouped["front"] = [p for p in front if p.value(x) is not None]  # in front order

    def y_of(p: TrialPoint) -> float:
        v = shown_value(p, y)
        return floor if v is None else v / yu.scale

    series = tuple(
        Series(
            kind,
            tuple(p.number for p in ps),
            tuple(p.value(x) / xu.scale for p in ps),  # type: ignore[operator]
            tuple(y_of(p) for p in ps),
            tuple(hover_text(p) for p in ps),
        )
        for kind, ps in grouped.items()
    )
    vlines = tuple(
        (c.limit / xu.scale, c.describe())
        for c in limits.values()
        if c.attr == objective_key(x) and c.limit is not None
    )
    hlines = tuple(
        (c.limit / yu.scale, c.describe())
        for c in limits.values()
        if c.attr == objective_key(y) and c.limit is not None
    )
    labels = tuple(
        (p.value(x) / xu.scale, y_of(p), REFERENCE_LABELS.get(p.reference, p.reference))  # type: ignore
        for p in points
        if p.reference and p.value(x) is not None and _kind(p, front_numbers) is not None
    )
    drawn = [v for s in series for v in s.x]
    log_x = bool(drawn) and min(drawn) > 0 and max(drawn) / min(drawn) > LOG_SPAN
    return ScatterView(
        title, axis_title(x, xu), axis_title(y, yu), series, vlines, hlines, labels, log_x
    )


@dataclasses.dataclass(frozen=True)
class Scatter3DView:
    """What the 3-D view shows: ``Series`` with ``z``; ``titles`` of the x, y, z axes."""

    title: str
    titles: tuple[str, str, str]
    series: tuple[Series, ...]
    labels: tuple[tuple[float, float, float, str], ...]  # (x, y, z, text) of reference points


def scatter3d_view(
    points: Sequence[TrialPoint], axes: tuple[str, str, str] = ("m_sc", "macs", "psnr")
) -> Scatter3DView:
    """``axes = (x, y, z)``, ``z`` the score drawn upwards: every drawable trial in the series
    of ``scatter_view``, the front taken over all three objectives; unscored trials on the floor.
    """
    x, y, z = axes
    front = pareto_front(points, (z, x, y), repeats=True)
    front_numbers = {p.number for p in front}
    units = {o: unit_for(o, [v for p in points if (v := p.value(o)) is not None]) for o in axes}
    zs = [v for p in points if (v := shown_value(p, z)) is not None]
    z_lo, z_hi = (min(zs), max(zs)) if zs else (0.0, 1.0)
    floor = (z_lo - 0.06 * ((z_hi - z_lo) or 1.0)) / units[z].scale
    grouped: dict[str, list[TrialPoint]] = {k: [] for k in STYLE}
    for p in points:
        kind = _kind(p, front_numbers)
        if kind is not None and p.value(x) is not None and p.value(y) is not None:
            grouped[kind].append(p)
    grouped["front"] = [p for p in front if p.value(x) is not None and p.value(y) is not None]

    def at(p: TrialPoint) -> tuple[float, float, float]:
        v = shown_value(p, z)
        up = floor if v is None else v / units[z].scale
        return p.value(x) / units[x].scale, p.value(y) / units[y].scale, up  # type: ignore

    series = []
    for kind, ps in grouped.items():
        xyz = [at(p) for p in ps]
        series.append(
            Series(
                kind,
                tuple(p.number for p in ps),
                tuple(c[0] for c in xyz),
                tuple(c[1] for c in xyz),
                tuple(hover_text(p) for p in ps),
                tuple(c[2] for c in xyz),
            )
        )
    drawn = {p.number for ps in grouped.values() for p in ps}
    labels = tuple(
        (*at(p), REFERENCE_LABELS.get(p.reference, p.reference))  # type: ignore[arg-type]
        for p in points
        if p.reference and p.number in drawn
    )
    return Scatter3DView(
        f"{z} vs {x} and {y}: the front over all three objectives",
        (axis_title(x, units[x]), axis_title(y, units[y]), axis_title(z, units[z])),
        tuple(series),
        labels,
    )
