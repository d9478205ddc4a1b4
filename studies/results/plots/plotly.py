"""The report's interactive figures: plotly renderings of ``views``' data."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from studies.results.pareto import HypervolumeHistory
from studies.results.plots.views import STYLE, Scatter3DView, ScatterView, unit_for


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
