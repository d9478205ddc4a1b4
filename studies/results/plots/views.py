"""Figure data of a study: small view tuples computed from the trials, drawn by ``plotly`` (the
HTML report) and ``matplotlib`` (the PNGs) beside this module.

``scatter_view`` sorts every trial into one of the series below (a trial is in exactly one), so
the interactive HTML figure and the PNG show the same points:

- ``front``: the report's Pareto front (``front``: the trials its table lists, the front over
  all the study's objectives), so every panel and the table count the same designs; a front
  design dominated on a panel's two axes is still one (another objective keeps it);
- ``feasible``: eligible (complete, feasible) but not in the front;
- ``stopped``: stopped early by the scheduler: drawn hollow at its last validation PSNR, never
  in the front;
- ``infeasible``: trained, but breaks a constraint (e.g. a PSNR floor);
- ``repeat``: the same design with the same results as an earlier trial drawn here (a copied
  result): drawn small on top of it, so no design is counted twice;
- ``untrained``: broke a cost constraint, so it has costs but no score: drawn in a strip under
  the axis (``strip``), never at a made-up score. A strip point beyond the main panel's x range
  (which covers the scored trials and the constraint lines, so one far design cannot squeeze
  it) sits on the edge, its value written beside it (``clamped``).
Failed and unfinished trials are not drawn (the report counts them). Constraints on an axis are
dashed lines named in the legend (``vlines``/``hlines``); reference points (full skips, no
skips, UNet--) are labelled, the label pointing away from the nearest edges (``Label``).
``front_line`` is the staircase of the front designs that are best on these two axes.
``scatter3d_view`` draws the same series over three objectives; untrained trials have no
place there and are left out, counted in ``left_out``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from studies import schema
from studies.constraints import Constraint
from studies.metrics import get_metric, score_metrics
from studies.results.pareto import (
    REFERENCE_LABELS,
    TrialPoint,
    objective_key,
    pareto_front,
)

LOG_SPAN = 10.0  # draw x on a log axis when max/min exceeds this
PAD = 0.05  # share of an axis range left free on each side
# series kind -> (legend, colour, plotly symbol, matplotlib marker), in drawing order
STYLE = {
    "front": ("Pareto front (the table's designs)", "#d62728", "circle", "o"),
    "feasible": ("feasible, dominated", "#7f7f7f", "circle", "o"),
    "stopped": ("stopped early (last validation; never in the front)", "#1f77b4",
                "circle-open", "o"),
    "infeasible": ("trained, breaks a constraint", "#ff7f0e", "x", "x"),
    "repeat": ("repeat of a trial drawn (same design and results)", "#000000",
               "circle-open-dot", "."),
    "untrained": ("not trained: breaks a cost constraint (no PSNR)", "#ff7f0e", "x", "x"),
}  # fmt: skip
STRIP_TITLE = "not<br>trained"  # the strip's axis title (plotly; the PNG breaks it with \n)


@dataclasses.dataclass(frozen=True)
class Unit:
    """How an objective's raw values are shown: ``value / scale`` in ``name``."""

    name: str
    scale: float


def unit_for(objective: str, values: Sequence[float]) -> Unit:
    """The unit the metric's ``values`` are drawn in (``studies.metrics``)."""
    return Unit(*get_metric(objective).display_unit(values))


def axis_title(objective: str, unit: Unit) -> str:
    """``"skip memory M_sc [MiB]"``, ``"PSNR [dB]"``, ``"SSIM"``."""
    row = get_metric(objective)
    name = "dB" if row.unit == "db" else unit.name
    return f"{row.label} [{name}]" if name else row.label


@dataclasses.dataclass(frozen=True)
class Series:
    kind: str
    numbers: tuple[int, ...]
    x: tuple[float, ...]
    y: tuple[float, ...]
    text: tuple[str, ...]
    z: tuple[float, ...] = ()  # 3-D views only

    @property
    def legend(self) -> str:
        """``"Pareto front (the table's designs) (4)"``: the style's legend and the count."""
        return f"{STYLE[self.kind][0]} ({len(self.numbers)})"


@dataclasses.dataclass(frozen=True)
class Label:
    """A reference point's label at ``(x, y)``; ``dx``/``dy`` (+1, -1; ``dy`` 0: level) say which
    way the text goes from the point (right/up when positive), away from the nearest edges."""

    x: float
    y: float
    text: str
    dx: int
    dy: int  # 0: level with the point (labels in the strip)
    in_strip: bool = False  # an untrained reference point: its label belongs to the strip


@dataclasses.dataclass(frozen=True)
class ScatterView:
    """What a 2-D trade-off plot shows (values already divided by their unit's scale)."""

    title: str
    x_title: str
    y_title: str
    series: tuple[Series, ...]  # main panel
    strip: Series  # untrained trials, under the axis (y unused)
    clamped: tuple[tuple[int, str], ...]  # (trial number, shown value) of strip points on an edge
    x_range: tuple[float, float]  # of the main panel (log10 values when log_x)
    vlines: tuple[tuple[float, str], ...]  # (x, legend name) of constraints on x
    hlines: tuple[tuple[float, str], ...]  # (y, legend name) of constraints on y
    labels: tuple[Label, ...]  # reference points
    front_line: tuple[tuple[float, ...], tuple[float, ...]]  # staircase (xs, ys)
    log_x: bool  # x spans more than LOG_SPAN (all values > 0)

    def count(self, kind: str) -> int:
        return (
            len(self.strip.numbers)
            if kind == "untrained"
            else next((len(s.numbers) for s in self.series if s.kind == kind), 0)
        )

    def beyond(self) -> dict[str, str]:
        """``{"right": "#3: 51.9 G →"}``: the strip points drawn on an edge, by side, with
        their values and reference names (two lines at most: ``<br>``)."""
        hi = 10 ** self.x_range[1] if self.log_x else self.x_range[1]
        at = dict(zip(self.strip.numbers, self.strip.x))
        sides: dict[str, list[str]] = {}
        for number, value in self.clamped:
            sides.setdefault("right" if at[number] >= hi else "left", []).append(
                f"#{number}: {value}"
            )
        out = {}
        for side, items in sides.items():
            more = f" +{len(items) - 2}" if len(items) > 2 else ""
            text = "<br>".join(items[:2]) + more
            out[side] = f"{text} →" if side == "right" else f"← {text}"
        return out


def shown_value(p: TrialPoint, objective: str) -> float | None:
    """The value drawn for ``objective``: ``p.value``, except that a stopped trial without a
    final PSNR shows its last validation PSNR (``val_psnr_db``)."""
    v = p.value(objective)
    if v is None and objective == "psnr" and p.status == schema.STATUS_STOPPED:
        last = p.attrs.get(schema.VAL_PSNR)
        return float(last) if last is not None else None
    return v


def hover_text(p: TrialPoint, repeats: Sequence[int] = ()) -> str:
    costs = ", ".join(
        f"{m.short} {m.format(p.attrs[m.key])}"
        for m in (get_metric(n) for n in ("m_sc", "macs", "params"))
        if m.key in p.attrs
    )
    psnr = shown_value(p, "psnr")
    score = f"PSNR {psnr:.2f} dB" if psnr is not None else "not trained"
    if p.value("psnr") is None and psnr is not None:
        score += f" at step {p.attrs.get(schema.VAL_STEP, '?')}"
    score += "".join(f", {m.short} {m.format(v)}" for m in score_metrics()  # matting: SAD, MSE
                     if m.name not in ("psnr", "ssim") and (v := p.value(m.name)) is not None)
    also = f"<br>repeated by #{', #'.join(map(str, repeats))}" if repeats else ""
    return f"#{p.number} {p.design}<br>{score}; {costs}<br>status {p.status}{also}"


def _kind(p: TrialPoint, front_numbers: set[int], score: str) -> str | None:
    """The series a trial is drawn in (before repeats); None: not drawn (failed, running)."""
    if p.state not in ("COMPLETE", "PRUNED") or p.status == schema.STATUS_FAILED:
        return None
    if shown_value(p, score) is None:
        return "untrained"
    if not p.feasible:
        return "infeasible"
    if p.status == schema.STATUS_STOPPED:
        return "stopped"
    if p.status != schema.STATUS_COMPLETE or p.state != "COMPLETE":
        return None
    return "front" if p.number in front_numbers else "feasible"


def _sort(
    points: Iterable[TrialPoint], front_numbers: set[int], axes: Sequence[str]
) -> dict[str, list[TrialPoint]]:
    """Drawable trials whose costs on ``axes`` (all but the last, the score) are measured, by
    series kind; a trial repeating an earlier one (same design, status and values) is a
    ``repeat``."""
    grouped: dict[str, list[TrialPoint]] = {k: [] for k in STYLE}
    seen: set[Any] = set()
    for p in sorted(points, key=lambda p: p.number):
        kind = _kind(p, front_numbers, axes[-1])
        if kind is None or any(p.value(a) is None for a in axes[:-1]):
            continue
        twin = _twin(p, axes)
        if twin is not None and twin in seen and kind not in ("front", "untrained"):
            kind = "repeat"
        seen.add(twin)
        grouped[kind].append(p)
    return grouped


def _twin(p: TrialPoint, axes: Sequence[str]) -> Any:
    design = p.attrs.get(schema.ATTR_ARCH_KEY) or repr(p.attrs.get(schema.ATTR_ARCH) or None)
    if design == "None":
        return None
    return design, p.status, p.state, tuple(shown_value(p, a) for a in axes)


def _repeats_of(grouped: Mapping[str, list[TrialPoint]], axes: Sequence[str]) -> dict[int, list]:
    """Trial number of an original -> numbers of the trials that repeat it."""
    first: dict[Any, int] = {}
    out: dict[int, list[int]] = {}
    for p in sorted((p for ps in grouped.values() for p in ps), key=lambda p: p.number):
        twin = _twin(p, axes)
        if twin is None:
            continue
        if twin in first:
            out.setdefault(first[twin], []).append(p.number)
        else:
            first[twin] = p.number
    return out


def _padded(lo: float, hi: float) -> tuple[float, float]:
    span = (hi - lo) or (abs(hi) or 1.0)
    return lo - PAD * span, hi + PAD * span


def _label(x: float, y: float, text: str, xr: tuple[float, float], yr: tuple[float, float],
           log_x: bool, in_strip: bool = False) -> Label:  # fmt: skip
    fx = ((math.log10(x) if log_x and x > 0 else x) - xr[0]) / ((xr[1] - xr[0]) or 1.0)
    fy = (y - yr[0]) / ((yr[1] - yr[0]) or 1.0)
    return Label(x, y, text, -1 if fx > 0.6 else 1, -1 if fy > 0.75 else 1, in_strip)


def _strip_label(x: float, text: str, lines: Sequence[float], xr: tuple[float, float],
                 log_x: bool) -> Label:  # fmt: skip
    """A label beside a strip point (the strip is one text high): it points away from the
    nearest constraint line, else away from the nearer edge."""
    if lines:
        nearest = min(lines, key=lambda v: abs(v - x))
        dx = 1 if x >= nearest else -1
    else:
        dx = _label(x, 0.0, text, xr, (0.0, 1.0), log_x).dx
    return Label(x, 0.0, text, dx, 0, in_strip=True)


def _staircase(points: Sequence[TrialPoint], x: str, y: str, xu: Unit, yu: Unit) -> tuple:
    """The front designs best on (x, y), as a step line (x ascending)."""
    best = pareto_front(points, (y, x))
    xs = tuple(p.value(x) / xu.scale for p in best)  # type: ignore[operator]
    ys = tuple(p.value(y) / yu.scale for p in best)  # type: ignore[operator]
    return xs, ys


def scatter_view(
    points: Sequence[TrialPoint],
    x: str,
    y: str,
    limits: Mapping[str, Constraint],
    title: str,
    front: Iterable[int] | None = None,
) -> ScatterView:
    """The ``y`` vs ``x`` trade-off of all drawable trials (see the module docstring).
    ``front``: trial numbers of the report's front (default: the front over ``(y, x)``)."""
    front_numbers = set(front) if front is not None else {
        p.number for p in pareto_front(points, (y, x))
    }  # fmt: skip
    grouped = _sort(points, front_numbers, (x, y))
    repeats = _repeats_of(grouped, (x, y))
    main = [p for k, ps in grouped.items() if k != "untrained" for p in ps]
    xu = unit_for(x, [p.value(x) for p in main or grouped["untrained"]])  # type: ignore[misc]
    yu = unit_for(y, [v for p in main if (v := shown_value(p, y)) is not None])

    def xv(p: TrialPoint) -> float:
        return p.value(x) / xu.scale  # type: ignore[operator]

    def yv(p: TrialPoint) -> float:
        return shown_value(p, y) / yu.scale  # type: ignore[operator]

    vlines = tuple((c.limit_in_key_unit / xu.scale, f"limit: {c.describe()}")
                   for c in limits.values()
                   if c.key == objective_key(x) and math.isfinite(c.limit_in_key_unit))  # fmt: skip
    hlines = tuple((c.limit_in_key_unit / yu.scale, f"limit: {c.describe()}")
                   for c in limits.values()
                   if c.key == objective_key(y) and math.isfinite(c.limit_in_key_unit))  # fmt: skip
    xs = [xv(p) for p in main] + [v for v, _ in vlines] or [xv(p) for p in grouped["untrained"]]
    positive = [v for v in xs if v > 0]
    log_x = bool(xs) and min(xs) > 0 and max(xs) / min(xs) > LOG_SPAN
    if log_x:
        x_range = _padded(math.log10(min(positive)), math.log10(max(positive)))
    else:
        x_range = _padded(min(xs), max(xs)) if xs else (0.0, 1.0)
    lo, hi = (10**v for v in x_range) if log_x else x_range

    series = tuple(
        Series(kind, tuple(p.number for p in ps), tuple(xv(p) for p in ps),
               tuple(yv(p) for p in ps),
               tuple(hover_text(p, repeats.get(p.number, ())) for p in ps))
        for kind, ps in grouped.items() if kind != "untrained"
    )  # fmt: skip
    untrained = grouped["untrained"]
    strip_x = tuple(min(max(xv(p), lo), hi) for p in untrained)

    def named(p: TrialPoint) -> str:  # a reference point beyond the edge says which it is
        ref = f" ({REFERENCE_LABELS.get(p.reference, p.reference)})" if p.reference else ""
        return f"{get_metric(x).format(p.value(x))}{ref}"  # type: ignore[arg-type]

    clamped = tuple((p.number, named(p)) for p, sx in zip(untrained, strip_x) if sx != xv(p))
    strip = Series("untrained", tuple(p.number for p in untrained), strip_x,
                   (0.0,) * len(untrained),
                   tuple(hover_text(p, repeats.get(p.number, ())) for p in untrained))  # fmt: skip
    ys = [yv(p) for p in main] + [v for v, _ in hlines]
    y_range = _padded(min(ys), max(ys)) if ys else (0.0, 1.0)
    labels = tuple(
        _label(xv(p), yv(p), REFERENCE_LABELS.get(p.reference, p.reference), x_range, y_range,
               log_x)  # type: ignore[arg-type]
        for p in main if p.reference
    ) + tuple(
        _strip_label(sx, REFERENCE_LABELS.get(p.reference, p.reference), [v for v, _ in vlines],
                     x_range, log_x)  # type: ignore[arg-type]
        for p, sx in zip(untrained, strip_x) if p.reference and sx == xv(p)
    )  # fmt: skip
    line = _staircase([p for p in grouped["front"]], x, y, xu, yu)
    return ScatterView(title, axis_title(x, xu), axis_title(y, yu), series, strip, clamped,
                       x_range, vlines, hlines, labels, line, log_x)  # fmt: skip


@dataclasses.dataclass(frozen=True)
class Scatter3DView:
    """What the 3-D view shows: ``Series`` with ``z``; ``titles`` of the x, y, z axes;
    ``left_out``: trials with costs but no score (untrained), not drawn."""

    title: str
    titles: tuple[str, str, str]
    series: tuple[Series, ...]
    labels: tuple[tuple[float, float, float, str], ...]  # (x, y, z, text) of reference points
    left_out: tuple[int, ...] = ()

    def count(self, kind: str) -> int:
        return next((len(s.numbers) for s in self.series if s.kind == kind), 0)


def scatter3d_view(
    points: Sequence[TrialPoint],
    axes: tuple[str, str, str] = ("m_sc", "macs", "psnr"),
    front: Iterable[int] | None = None,
) -> Scatter3DView:
    """``axes = (x, y, z)``, ``z`` the score drawn upwards: every scored trial in the series of
    ``scatter_view`` (``front``: as there; default: the front over the three axes)."""
    x, y, z = axes
    front_numbers = set(front) if front is not None else {
        p.number for p in pareto_front(points, (z, x, y))
    }  # fmt: skip
    grouped = _sort(points, front_numbers, (x, y, z))
    untrained = grouped.pop("untrained")
    repeats = _repeats_of(grouped, axes)
    drawn = [p for ps in grouped.values() for p in ps]
    units = {o: unit_for(o, [v for p in drawn if (v := shown_value(p, o)) is not None])
             for o in axes}  # fmt: skip

    def at(p: TrialPoint) -> tuple[float, float, float]:
        return tuple(shown_value(p, o) / units[o].scale for o in axes)  # type: ignore

    series = []
    for kind, ps in grouped.items():
        xyz = [at(p) for p in ps]
        series.append(Series(
            kind, tuple(p.number for p in ps), tuple(c[0] for c in xyz), tuple(c[1] for c in xyz),
            tuple(hover_text(p, repeats.get(p.number, ())) for p in ps), tuple(c[2] for c in xyz),
        ))  # fmt: skip
    labels = tuple(
        (*at(p), REFERENCE_LABELS.get(p.reference, p.reference))  # type: ignore[arg-type]
        for p in drawn
        if p.reference and p not in grouped["repeat"]
    )
    return Scatter3DView(
        f"{get_metric(z).short} vs {get_metric(x).short} and {get_metric(y).short}",
        (axis_title(x, units[x]), axis_title(y, units[y]), axis_title(z, units[z])),
        tuple(series),
        labels,
        tuple(p.number for p in untrained),
    )


@dataclasses.dataclass(frozen=True)
class Importances:
    """Parameter importances per objective (``values``: objective -> parameter -> share), over
    ``trials`` complete feasible trials; ``names``: parameters drawn (most important first),
    ``zero``: how many more had no importance for any objective (not drawn)."""

    values: Mapping[str, Mapping[str, float]]
    trials: int
    names: tuple[str, ...]
    zero: int

    @classmethod
    def of(cls, values: Mapping[str, Mapping[str, float]], trials: int) -> Importances:
        every = {n for v in values.values() for n in v}
        top = {n: max(v.get(n, 0.0) for v in values.values()) for n in every}
        names = tuple(sorted((n for n in every if top[n] > 0), key=lambda n: (-top[n], n)))
        return cls(values, trials, names, len(every) - len(names))

    @property
    def title(self) -> str:
        zero = f"; {self.zero} more with none not shown" if self.zero else ""
        return (
            f"Parameter importances (PED-ANOVA) over {self.trials} complete feasible trials{zero}"
        )
