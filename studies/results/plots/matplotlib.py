"""The report's PNG figures: matplotlib renderings of ``views``' data (Agg, no display)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from studies.results.pareto import HypervolumeHistory
from studies.results.plots.views import (
    STRIP_TITLE,
    STYLE,
    Importances,
    Scatter3DView,
    ScatterView,
    unit_for,
)


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path, laid_out: bool = False) -> Path:
    """Write ``fig`` (laid out with ``tight_layout`` unless ``laid_out``) and close it."""
    if not laid_out:
        fig.tight_layout()
    fig.savefig(path, bbox_inches="tight")  # legends placed outside the axes included
    _pyplot().close(fig)
    return path


def _marker_kwargs(kind: str) -> dict[str, Any]:
    _, colour, _, marker = STYLE[kind]
    if kind in ("stopped", "repeat"):
        return {"facecolors": "none", "edgecolors": colour, "marker": "o" if kind == "stopped"
                else marker, "s": 18 if kind == "repeat" else 36}  # fmt: skip
    return {"color": colour, "marker": marker, "s": 48 if kind == "front" else 36, "alpha": 0.9}


def scatter_png(view: ScatterView, path: Path) -> Path:
    return _save(scatter_figure(view), path, laid_out=True)


def scatter_figure(view: ScatterView) -> Any:
    """Main panel over a strip of untrained trials, as ``plotly.scatter_plotly`` (laid out)."""
    plt = _pyplot()
    grid = {"height_ratios": [10, 1.1], "hspace": 0.06}
    fig, (ax, strip) = plt.subplots(2, 1, sharex=True, figsize=(8, 6.4), dpi=110,
                                    gridspec_kw=grid)  # fmt: skip
    xs, ys = view.front_line
    if xs:
        ax.step(xs, ys, where="post", color=STYLE["front"][1], linewidth=1,
                label="front on these two axes")  # fmt: skip
    for s in view.series:
        if s.numbers:
            ax.scatter(s.x, s.y, label=s.legend, zorder=3, **_marker_kwargs(s.kind))
    if view.strip.numbers:
        strip.scatter(view.strip.x, view.strip.y, label=view.strip.legend, clip_on=False,
                      **_marker_kwargs("untrained"))  # fmt: skip
    for x, name in view.vlines:
        ax.axvline(x, color="black", linestyle="--", linewidth=1, label=name)
        strip.axvline(x, color="black", linestyle="--", linewidth=1)
    for y, name in view.hlines:
        ax.axhline(y, color="black", linestyle=":", linewidth=1, label=name)
    for lab in view.labels:
        (strip if lab.in_strip else ax).annotate(
            lab.text, (lab.x, lab.y), xytext=(14 * lab.dx, 12 * lab.dy),
            textcoords="offset points", ha="left" if lab.dx > 0 else "right",
            va={1: "bottom", 0: "center", -1: "top"}[lab.dy], fontsize=9,
            bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.8},
            arrowprops={"arrowstyle": "->", "lw": 0.8},
        )  # fmt: skip
    for side, text in view.beyond().items():  # outside the axes, beside the strip's edge
        strip.annotate(text.replace("<br>", "\n"), (1.01 if side == "right" else -0.01, 0.5),
                       xycoords="axes fraction", ha="left" if side == "right" else "right",
                       va="center", fontsize=8)  # fmt: skip
    if view.log_x:
        ax.set_xscale("log")
        ax.set_xlim(10 ** view.x_range[0], 10 ** view.x_range[1])
    else:
        ax.set_xlim(*view.x_range)
    ax.set(title=view.title, ylabel=view.y_title)
    ax.grid(alpha=0.3)
    strip.set(xlabel=view.x_title, yticks=[], ylim=(-1, 1))
    strip.set_ylabel(STRIP_TITLE.replace("<br>", "\n"), rotation=0, ha="right", va="center",
                     fontsize=8)  # fmt: skip
    handles = [h for a in (ax, strip) for h in a.get_legend_handles_labels()[0]]
    names = [n for a in (ax, strip) for n in a.get_legend_handles_labels()[1]]
    fig.legend(handles, names, fontsize=8, loc="lower center", ncol=2, frameon=False)
    fig.subplots_adjust(bottom=0.08 + 0.035 * ((len(names) + 1) // 2) + 0.07, top=0.93)
    return fig


def scatter3d_png(view: Scatter3DView, path: Path) -> Path:
    plt = _pyplot()
    fig = plt.figure(figsize=(7.5, 7), dpi=110)
    ax = fig.add_subplot(projection="3d")
    for s in view.series:
        if s.numbers:
            ax.scatter(s.x, s.y, s.z, label=s.legend, **_marker_kwargs(s.kind))
    for x, y, z, text in view.labels:
        ax.text(x, y, z, f"  {text}", fontsize=8)
    ax.set(xlabel=view.titles[0], ylabel=view.titles[1], zlabel=view.titles[2])
    left_out = (
        f"\n{len(view.left_out)} untrained trial(s) (no PSNR) not drawn" if view.left_out else ""
    )
    ax.set_title(view.title + left_out, fontsize=11)
    if any(s.numbers for s in view.series):
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.02), ncol=2,
                  frameon=False)  # fmt: skip
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


def importances_png(imp: Importances, path: Path) -> Path:
    plt = _pyplot()
    names = list(imp.names)
    n = max(1, len(imp.values))
    fig, ax = plt.subplots(figsize=(8, 1.6 + 0.22 * max(1, len(names)) * n), dpi=110)
    height = 0.8 / n
    for i, (objective, values) in enumerate(imp.values.items()):
        ax.barh(
            [k + (i - (n - 1) / 2) * height for k in range(len(names))],
            [values.get(name, 0.0) for name in names],
            height=height,
            label=objective,
        )
    ax.set_yticks(range(len(names)), names)
    ax.invert_yaxis()  # most important on top
    ax.set_title(imp.title.replace(" over ", "\nover "), fontsize=10)
    ax.set_xlabel("importance (sums to 1 per objective)")
    ax.legend(fontsize=8, loc="lower right")
    return _save(fig, path)


def timelines_png(timelines: Mapping[str, Sequence[Sequence[Any]]], bits: int, path: Path) -> Path:
    """Fig. 1b from plain ``[label, bytes]`` timelines (what a trial stores)."""
    return _save(timelines_figure(timelines, bits), path)


def timelines_figure(timelines: Mapping[str, Sequence[Sequence[Any]]], bits: int) -> Any:
    """The figure of ``timelines_png``, legend under the axes."""
    plt = _pyplot()
    unit = unit_for("m_sc", [b for tl in timelines.values() for _, b in tl])
    fig, ax = plt.subplots(figsize=(8.5, 5.5), dpi=110)
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
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, frameon=False)
    return fig


def placeholder_png(text: str, path: Path) -> Path:
    """A figure that says why there is nothing to draw (e.g. no complete trial yet)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 2), dpi=110)
    ax.axis("off")
    ax.text(0.5, 0.5, text, ha="center", va="center", wrap=True)
    return _save(fig, path)
