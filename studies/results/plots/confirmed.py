"""The confirmation figure: proxy score (x) against confirmed score (y, mean over seeds, bars
from the lowest to the highest seed; PSNR, or the study's own score such as SAD), one point per
design labelled with its trial number; reference points in their own colour. Drawn by plotly
(the HTML report) and matplotlib (``confirmed.png``) from the same
``studies.results.confirm.Confirmation``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from studies.results.confirm import Confirmation, DesignScores, agreement_text
from studies.results.plots.matplotlib import _pyplot, _save

COLOURS = {False: "#d62728", True: "#1f77b4"}  # is a reference point -> colour
NAMES = {False: "searched design", True: "reference point"}


def _points(conf: Confirmation, reference: bool) -> list[DesignScores]:
    return [d for d in conf.designs if d.proxy_score is not None and d.mean is not None
            and bool(d.reference) == reference]  # fmt: skip


def _bars(ds: list[DesignScores]) -> tuple[list[float], list[float]]:
    """Distances from the mean down to the lowest seed and up to the highest."""
    return ([d.mean - min(d.runs.values()) for d in ds],  # type: ignore[operator]
            [max(d.runs.values()) - d.mean for d in ds])  # type: ignore[operator]


def _title(conf: Confirmation) -> str:
    return (f"Proxy vs confirmed {conf.metric.short} ({conf.describe_fidelity()}): "
            f"{agreement_text(conf)}")


def _labels(conf: Confirmation) -> tuple[str, str]:
    """(x, y) axis titles in the confirmation's score and its unit."""
    m = conf.metric
    unit = " (dB)" if m.unit == "db" else ""
    return (f"proxy {m.short}{unit}",
            f"confirmed {m.short}{unit}, mean and range over seeds"
            + ("" if m.maximized else " (lower is better)"))


def confirmed_plotly(conf: Confirmation) -> Any:
    import plotly.graph_objects as go

    fig = go.Figure()
    for ref in (False, True):
        ds = _points(conf, ref)
        if not ds:
            continue
        low, high = _bars(ds)
        fig.add_trace(go.Scatter(
            x=[d.proxy_score for d in ds], y=[d.mean for d in ds], mode="markers+text",
            name=NAMES[ref], text=[f"#{d.source_trial}" for d in ds], textposition="top center",
            marker={"color": COLOURS[ref], "size": 9},
            error_y={"type": "data", "symmetric": False, "array": high, "arrayminus": low},
            hovertext=[f"#{d.source_trial} {d.label}<br>proxy rank {d.proxy_rank}, confirmed "
                       f"rank {d.confirmed_rank}, seeds {sorted(d.runs)}" for d in ds],
            hoverinfo="text+x+y",
        ))  # fmt: skip
    x_title, y_title = _labels(conf)
    fig.update_layout(title=_title(conf), xaxis_title=x_title, yaxis_title=y_title,
                      template="plotly_white", height=520)  # fmt: skip
    return fig


def confirmed_png(conf: Confirmation, path: Path) -> Path:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 5.6), dpi=110)
    for ref in (False, True):
        ds = _points(conf, ref)
        if not ds:
            continue
        x, y = [d.proxy_score for d in ds], [d.mean for d in ds]
        ax.errorbar(x, y, yerr=_bars(ds), fmt="o", color=COLOURS[ref], label=NAMES[ref],
                    capsize=3)  # fmt: skip
        for d, xi, yi in zip(ds, x, y):
            ax.annotate(f"#{d.source_trial}", (xi, yi), textcoords="offset points",
                        xytext=(4, 4), fontsize=8)  # fmt: skip
    x_title, y_title = _labels(conf)
    ax.set_xlabel(x_title)
    ax.set_ylabel(y_title)
    ax.set_title(_title(conf), fontsize=9, wrap=True)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)
