"""The report's interactive figures: plotly renderings of ``views``' data."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
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

LEGEND_BELOW = {"orientation": "h", "yanchor": "top", "y": -0.16, "x": 0.0}


def _marker(kind: str) -> dict[str, Any]:
    _, colour, symbol, _ = STYLE[kind]
    size = {"front": 11, "repeat": 6}.get(kind, 8)
    return {"color": colour, "symbol": symbol, "size": size}


def scatter_plotly(view: ScatterView) -> Any:
    """Main panel (scored trials) over a strip of untrained ones, sharing the x axis."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.87, 0.13],
                        vertical_spacing=0.03)  # fmt: skip
    xs, ys = view.front_line
    if xs:
        fig.add_trace(go.Scatter(
            x=xs, y=ys, mode="lines", line={"shape": "hv", "color": STYLE["front"][1], "width": 1},
            name="front on these two axes", hoverinfo="skip"), row=1, col=1)  # fmt: skip
    for s in view.series:
        if s.numbers:
            trace = go.Scatter(x=s.x, y=s.y, text=s.text, hoverinfo="text", mode="markers",
                               name=s.legend, marker=_marker(s.kind))  # fmt: skip
            fig.add_trace(trace, row=1, col=1)
    if view.strip.numbers:
        s = view.strip
        fig.add_trace(go.Scatter(x=s.x, y=s.y, text=s.text, hoverinfo="text", mode="markers",
                                 name=s.legend, marker=_marker(s.kind), cliponaxis=False),
                      row=2, col=1)  # fmt: skip

    def ax_x(x: float) -> float:  # annotations on a log axis take log10 positions
        return math.log10(x) if view.log_x else x

    for x, name in view.vlines:  # one line through both panels, named once in the legend
        for row in (1, 2):
            fig.add_vline(x=x, line={"dash": "dash", "color": "black", "width": 1.2}, row=row,
                          col=1, showlegend=row == 1, name=name)  # fmt: skip
    for y, name in view.hlines:
        fig.add_hline(y=y, line={"dash": "dot", "color": "black", "width": 1.2}, row=1, col=1,
                      showlegend=True, name=name)  # fmt: skip
    for lab in view.labels:
        fig.add_annotation(
            x=ax_x(lab.x), y=lab.y, text=lab.text, showarrow=True, arrowhead=2,
            ax=(40 if lab.dy else 14) * lab.dx, ay=-28 * lab.dy,
            xanchor="left" if lab.dx > 0 else "right",
            row=2 if lab.in_strip else 1, col=1, bgcolor="rgba(255,255,255,0.8)",
        )  # fmt: skip
    for side, text in view.beyond().items():  # outside the plot, beside the strip's edge
        fig.add_annotation(
            x=1.0 if side == "right" else 0.0, xref="paper", y=0, yref="y2", text=text,
            showarrow=False, xanchor="left" if side == "right" else "right", font={"size": 11},
            xshift=10 if side == "right" else -10,  # clear of the marker on the edge
        )  # fmt: skip
    fig.update_layout(title=view.title, template="plotly_white", height=600, legend=LEGEND_BELOW,
                      margin={"b": 150, "r": 130})  # fmt: skip
    fig.update_yaxes(title_text=view.y_title, row=1, col=1)
    fig.update_yaxes(title_text=STRIP_TITLE, row=2, col=1, showticklabels=False, showgrid=False,
                     range=[-1, 1], fixedrange=True, zeroline=False)  # fmt: skip
    fig.update_xaxes(title_text=view.x_title, row=2, col=1)
    fig.update_xaxes(range=list(view.x_range), type="log" if view.log_x else "linear")
    return fig


def scatter3d_plotly(view: Scatter3DView) -> Any:
    import plotly.graph_objects as go

    fig = go.Figure()
    for s in view.series:
        if s.numbers:
            marker = {**_marker(s.kind), "size": 7 if s.kind == "front" else 4}
            if s.kind == "repeat":  # Scatter3d knows fewer symbols
                marker["symbol"] = "diamond-open"
            fig.add_trace(go.Scatter3d(x=s.x, y=s.y, z=s.z, text=s.text, hoverinfo="text",
                                       mode="markers", name=s.legend, marker=marker))  # fmt: skip
    arrow = {"showarrow": True, "arrowhead": 2, "ax": 30, "ay": -30}
    annotations = [{"x": x, "y": y, "z": z, "text": text, **arrow} for x, y, z, text in view.labels]
    left_out = (
        f"<br><sup>{len(view.left_out)} untrained trial(s) (no PSNR) not drawn</sup>"
        if view.left_out else ""
    )  # fmt: skip
    fig.update_layout(
        title=view.title + left_out,
        scene={
            "xaxis_title": view.titles[0],
            "yaxis_title": view.titles[1],
            "zaxis_title": view.titles[2],
            "annotations": annotations,
            # far enough that the axis titles stay inside the figure (checked in Chromium)
            "camera": {"eye": {"x": 1.8, "y": 1.8, "z": 1.0}},
            "aspectmode": "cube",
        },
        template="plotly_white",
        height=680,
        margin={"l": 10, "r": 10, "t": 70, "b": 10},
        legend=LEGEND_BELOW | {"y": -0.02},
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


def importances_plotly(imp: Importances) -> Any:
    import plotly.graph_objects as go

    fig = go.Figure()
    names = list(imp.names)[::-1]
    for objective, values in imp.values.items():
        fig.add_trace(go.Bar(x=[values.get(n, 0.0) for n in names], y=names, orientation="h",
                             name=objective))  # fmt: skip
    fig.update_layout(
        title=imp.title,
        xaxis_title="importance (sums to 1 per objective)",
        barmode="group",
        template="plotly_white",
        height=max(320, 100 + 16 * len(names) * max(1, len(imp.values))),
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
        height=520,
        legend=LEGEND_BELOW | {"y": -0.22},
        margin={"b": 160},
    )
    return fig
