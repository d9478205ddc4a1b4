"""Figures of a study in two steps: small view data from the trials, then plotly and matplotlib.

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
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from studies import schema
from studies.pareto import (
    REFERENCE_LABELS,
    ConstraintLimit,
    HypervolumeHistory,
    TrialPoint,
    objective_key,
    pareto_front,
)

AXIS_NAMES = {
    "psnr": "PSNR (dB)",
    "ssim": "SSIM",
    "m_sc": "skip memory M_sc",
    "macs": "MACs (fvcore)",
    "params": "parameters",
    "peak_memory": "peak activation memory",
}
BYTE_OBJECTIVES = ("m_sc", "peak_memory")
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
    top = max((abs(v) for v in values), default=0.0)
    if objective in BYTE_OBJECTIVES:
        for name, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
            if top >= scale:
                return Unit(name, scale)
        return Unit("bytes", 1)
    if objective in ("macs", "params"):
        for name, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
            if top >= scale:
                return Unit(name, scale)
    return Unit("", 1)


def axis_title(objective: str, unit: Unit) -> str:
    base = AXIS_NAMES.get(objective, objective)
    return f"{base} [{unit.name}]" if unit.name and objective != "psnr" else base


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


# -- plotly ---------------------------------------------------------------------------------


def scatter_plotly(view: ScatterView) -> Any:
    import plotly.graph_objects as go

    fig = go.Figure()
    for s in view.series:
        legend, colour, symbol, _ = STYLE[s.kind]
        fig.add_trace(
            go.Scatter(
                x=s.x,
                y=s.y,
                text=s.text,
                hoverinfo="text",
                name=f"{legend} ({len(s.x)})",
                mode="lines+markers" if s.kind == "front" else "markers",
                line={"shape": "hv", "color": colour} if s.kind == "front" else None,
                marker={"color": colour, "symbol": symbol, "size": 10 if s.kind == "front" else 8},
            )
        )

    def ax_x(x: float) -> float:  # annotations on a log axis take log10 positions
        return math.log10(x) if view.log_x else x

    for x, label in view.vlines:
        fig.add_shape(
            type="line",
            x0=x,
            x1=x,
            yref="paper",
            y0=0,
            y1=1,
            line={"dash": "dash", "color": "black"},
        )
        fig.add_annotation(
            x=ax_x(x),
            yref="paper",
            y=1.0,
            text=label,
            showarrow=False,
            xanchor="left",
            yanchor="bottom",
        )
    for y, label in view.hlines:
        fig.add_shape(
            type="line",
            y0=y,
            y1=y,
            xref="paper",
            x0=0,
            x1=1,
            line={"dash": "dot", "color": "black"},
        )
        fig.add_annotation(
            y=y, xref="paper", x=1.0, text=label, showarrow=False, xanchor="right", yanchor="bottom"
        )
    for x, y, text in view.labels:
        fig.add_annotation(x=ax_x(x), y=y, text=text, showarrow=True, arrowhead=2, ax=30, ay=-30)
    fig.update_layout(
        title=view.title,
        xaxis_title=view.x_title,
        yaxis_title=view.y_title,
        template="plotly_white",
        height=560,
        legend={"orientation": "h", "y": -0.2},
    )
    if view.log_x:
        fig.update_xaxes(type="log")
    return fig


def scatter3d_plotly(view: Scatter3DView) -> Any:
    import plotly.graph_objects as go

    fig = go.Figure()
    for s in view.series:
        legend, colour, symbol, _ = STYLE[s.kind]
        fig.add_trace(
            go.Scatter3d(
                x=s.x,
                y=s.y,
                z=s.z,
                text=s.text,
                hoverinfo="text",
                mode="markers",
                name=f"{legend} ({len(s.x)})",
                marker={"color": colour, "symbol": symbol, "size": 6 if s.kind == "front" else 4},
            )
        )
    arrow = {"showarrow": True, "arrowhead": 2, "ax": 30, "ay": -30}
    annotations = [{"x": x, "y": y, "z": z, "text": text, **arrow} for x, y, z, text in view.labels]
    fig.update_layout(
        title=view.title,
        scene={
            "xaxis_title": view.titles[0],
            "yaxis_title": view.titles[1],
            "zaxis_title": view.titles[2],
            "annotations": annotations,
        },
        template="plotly_white",
        height=560,
        legend={"orientation": "h", "y": -0.1},
    )
    return fig


def hypervolume_plotly(hv: HypervolumeHistory) -> Any:
    import plotly.graph_objects as go

    fig = go.Figure(go.Scatter(x=hv.numbers, y=hv.values, mode="lines+markers", line_shape="hv"))
    fig.update_layout(
        title=f"Hypervolume of the feasible front ({', '.join(hv.objectives)}), normalised",
        xaxis_title="trial number",
        yaxis_title="hypervolume",
        template="plotly_white",
        height=420,
    )
    return fig


def importances_plotly(importances: Mapping[str, Mapping[str, float]]) -> Any:
    import plotly.graph_objects as go

    fig = go.Figure()
    for objective, values in importances.items():
        names = list(values)[::-1]
        fig.add_trace(
            go.Bar(x=[values[n] for n in names], y=names, orientation="h", name=objective)
        )
    fig.update_layout(
        title="Parameter importances (PED-ANOVA, complete feasible trials)",
        xaxis_title="importance (sums to 1 per objective)",
        barmode="group",
        template="plotly_white",
        height=max(320, 60 + 40 * _n_params(importances)),
    )
    return fig


def timelines_plotly(timelines: Mapping[str, Sequence[Sequence[Any]]], bits: int) -> Any:
    import plotly.graph_objects as go

    fig = go.Figure()
    unit = unit_for("m_sc", [b for tl in timelines.values() for _, b in tl])
    for name, tl in timelines.items():
        fig.add_trace(
            go.Scatter(
                x=[str(lab) for lab, _ in tl],
                y=[b / unit.scale for _, b in tl],
                mode="lines+markers",
                line_shape="hvh",
                name=name,
            )
        )
    fig.update_layout(
        title="Skip memory held through one forward pass (cf. paper Fig. 1b)",
        xaxis_title="end of stage (encoder E1..EN, middle M, decoder DN..D1)",
        yaxis_title=f"M_sc [{unit.name} at {bits} bit]",
        template="plotly_white",
        height=460,
    )
    return fig


def _n_params(importances: Mapping[str, Mapping[str, float]]) -> int:
    return len({n for v in importances.values() for n in v})


# -- matplotlib -----------------------------------------------------------------------------


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path)
    _pyplot().close(fig)
    return path


def scatter_png(view: ScatterView, path: Path) -> Path:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 5.6), dpi=110)
    for s in view.series:
        legend, colour, _, marker = STYLE[s.kind]
        label = f"{legend} ({len(s.x)})"
        if s.kind == "front":
            ax.step(s.x, s.y, where="post", color=colour, marker=marker, label=label, zorder=3)
        elif s.kind == "stopped":
            ax.scatter(s.x, s.y, facecolors="none", edgecolors=colour, marker=marker, label=label)
        else:
            ax.scatter(s.x, s.y, color=colour, marker=marker, label=label, alpha=0.8)
    for x, label in view.vlines:
        ax.axvline(x, color="black", linestyle="--", linewidth=1)
        ax.annotate(label, (x, 1.0), xycoords=("data", "axes fraction"), ha="left", va="top")
    for y, label in view.hlines:
        ax.axhline(y, color="black", linestyle=":", linewidth=1)
        ax.annotate(label, (1.0, y), xycoords=("axes fraction", "data"), ha="right", va="bottom")
    for x, y, text in view.labels:
        ax.annotate(
            text,
            (x, y),
            xytext=(8, 8),
            textcoords="offset points",
            arrowprops={"arrowstyle": "->", "lw": 0.8},
        )
    ax.set(title=view.title, xlabel=view.x_title, ylabel=view.y_title)
    if view.log_x:
        ax.set_xscale("log")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2, frameon=False)
    return _save(fig, path)


def scatter3d_png(view: Scatter3DView, path: Path) -> Path:
    plt = _pyplot()
    fig = plt.figure(figsize=(7.5, 6.5), dpi=110)
    ax = fig.add_subplot(projection="3d")
    for s in view.series:
        legend, colour, _, marker = STYLE[s.kind]
        label = f"{legend} ({len(s.x)})"
        if s.kind == "stopped":
            ax.scatter(s.x, s.y, s.z, facecolors="none", edgecolors=colour, marker=marker,
                       label=label)  # fmt: skip
        else:
            ax.scatter(s.x, s.y, s.z, color=colour, marker=marker, label=label)
    for x, y, z, text in view.labels:
        ax.text(x, y, z, f"  {text}", fontsize=8)
    ax.set(xlabel=view.titles[0], ylabel=view.titles[1], zlabel=view.titles[2], title=view.title)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.02), ncol=2, frameon=False)
    return _save(fig, path)


def hypervolume_png(hv: HypervolumeHistory, path: Path) -> Path:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4), dpi=110)
    ax.step(hv.numbers, hv.values, where="post", marker=".")
    ax.set(
        title=f"Hypervolume of the feasible front ({', '.join(hv.objectives)})",
        xlabel="trial number",
        ylabel="hypervolume (normalised)",
    )
    ax.grid(alpha=0.3)
    return _save(fig, path)


def importances_png(importances: Mapping[str, Mapping[str, float]], path: Path) -> Path:
    plt = _pyplot()
    names = sorted({n for v in importances.values() for n in v})
    n = max(1, len(importances))
    fig, ax = plt.subplots(figsize=(7, 1.2 + 0.25 * len(names) * n), dpi=110)
    height = 0.8 / n
    for i, (objective, values) in enumerate(importances.items()):
        ax.barh(
            [k + (i - (n - 1) / 2) * height for k in range(len(names))],
            [values.get(name, 0.0) for name in names],
            height=height,
            label=objective,
        )
    ax.set_yticks(range(len(names)), names)
    ax.set(title="Parameter importances (PED-ANOVA)", xlabel="importance (sums to 1 per objective)")
    ax.legend()
    return _save(fig, path)


def timelines_png(timelines: Mapping[str, Sequence[Sequence[Any]]], bits: int, path: Path) -> Path:
    """Fig. 1b from plain ``[label, bytes]`` timelines (what a trial stores)."""
    plt = _pyplot()
    unit = unit_for("m_sc", [b for tl in timelines.values() for _, b in tl])
    fig, ax = plt.subplots(figsize=(8.5, 4.5), dpi=110)
    labels: list[str] = []
    for name, tl in timelines.items():
        labels = [str(lab) for lab, _ in tl]
        ax.step(
            range(len(tl)), [b / unit.scale for _, b in tl], where="mid", marker="o", label=name
        )
    ax.set_xticks(range(len(labels)), labels)
    ax.set(
        title="Skip memory held through one forward pass (cf. paper Fig. 1b)",
        xlabel="end of stage (encoder E1..EN, middle M, decoder DN..D1)",
        ylabel=f"M_sc [{unit.name} at {bits} bit]",
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def placeholder_png(text: str, path: Path) -> Path:
    """A figure that says why there is nothing to draw (e.g. no complete trial yet)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 2), dpi=110)
    ax.axis("off")
    ax.text(0.5, 0.5, text, ha="center", va="center", wrap=True)
    return _save(fig, path)
