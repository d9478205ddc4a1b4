"""The report's PNG figures: matplotlib renderings of ``views``' data (Agg, no display)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from studies.results.pareto import HypervolumeHistory
from studies.results.plots.views import STYLE, Scatter3DView, ScatterView, unit_for


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
