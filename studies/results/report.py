"""``write_report``: one self-contained HTML page (plotly inlined, works offline) and PNG figures.

Contents: a legend of the design labels, a table of the Pareto trials (one row per design, with
how many trials measured it), the score vs M_sc and score vs MACs trade-offs (the score: the
study's first objective training measures, ``studies.metrics.study_score``: PSNR, or SAD in a
matting study optimising it; front, dominated,
stopped, infeasible, repeated and untrained trials told apart: ``plots.views``; constraints as
dashed lines; reference points labelled), a 3-D view of the three objectives, the hypervolume of
the feasible front over trials, the score vs the tiled executor's peak memory (studies that
record ``peak_tiled``: ``pareto_peak_tiled.png``), parameter importances (from
``MIN_IMPORTANCE_TRIALS`` complete
feasible trials on; else a line saying why not), the Fig. 1b M_sc timeline of the Pareto
designs, and, once ``unetmm confirm`` ran, the confirmed scores
(``studies.results.confirm.report_section``: proxy vs confirmed PSNR, rank changes,
``confirmed.png``). The front is computed once (``studies.results.pareto``: complete and
feasible trials only) and every figure marks the table's designs. plotly.js is inlined (4.8 of
the page's 4.9 MB) so the page works offline, alone.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as _dt
import html
import math
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import optuna

from nas.errors import ConfigError
from studies import schema
from studies.constraints import Constraint
from studies.metrics import METRICS, Metric, study_score
from studies.results import confirm, pareto
from studies.results.pareto import TrialPoint
from studies.results.plots import matplotlib as png
from studies.results.plots import plotly as interactive
from studies.results.plots import views as figure_data
from studies.results.plots.views import Importances
from studies.results.trust import judge

PNG_NAMES = ("pareto_m_sc", "pareto_macs", "pareto_3d", "hypervolume", "importances", "timelines")


@dataclasses.dataclass(frozen=True)
class Report:
    """What ``write_report`` wrote, and the trials its table lists (in table order)."""

    html: Path
    pngs: Mapping[str, Path]
    csv: Path
    front: tuple[int, ...]
    knee: int | None
    counts: Mapping[str, int]


def trial_counts(points: Sequence[TrialPoint]) -> dict[str, int]:
    """How many trials fall in each bucket the report distinguishes (each trial in one)."""
    counts = {
        "trials": len(points),
        "eligible": 0,
        "stopped": 0,
        "infeasible": 0,
        "failed": 0,
        "unfinished": 0,
        "copies": 0,
        "other": 0,
    }
    for p in points:
        if p.state in ("RUNNING", "WAITING"):
            counts["unfinished"] += 1
        elif p.state == "FAIL" or p.status == schema.STATUS_FAILED:
            counts["failed"] += 1
        elif p.attrs.get(schema.ATTR_COPY_OF) is not None and not p.eligible():
            counts["copies"] += 1  # a proposal of a design judged before (PRUNED)
        elif not p.feasible:
            counts["infeasible"] += 1
        elif p.status == schema.STATUS_STOPPED:
            counts["stopped"] += 1
        elif p.eligible():
            counts["eligible"] += 1
        else:
            counts["other"] += 1
    return counts


MIN_IMPORTANCE_TRIALS = 10  # fewer complete feasible trials: importances are noise, not drawn


def param_importances(
    study: optuna.Study, points: Sequence[TrialPoint], objectives: Sequence[str]
) -> Importances | None:
    """PED-ANOVA importances per objective over the eligible trials only (a copy in memory).

    None when fewer than ``MIN_IMPORTANCE_TRIALS`` eligible trials carry parameters."""
    eligible = {p.number for p in points if p.eligible(objectives) and p.params}
    if len(eligible) < MIN_IMPORTANCE_TRIALS:
        return None
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # no "study created in memory" line
    try:
        copy = optuna.create_study(directions=study.directions)
    finally:
        optuna.logging.set_verbosity(verbosity)
    copy.add_trials([t for t in study.get_trials(deepcopy=False) if t.number in eligible])
    out: dict[str, dict[str, float]] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for objective in objectives:
            key, sign = (
                pareto.objective_key(objective),
                (-1.0 if pareto.maximized(objective) else 1.0),
            )
            values = optuna.importance.get_param_importances(
                copy, target=lambda t, k=key, s=sign: s * float(schema.current(t.user_attrs)[k])
            )
            out[objective] = {name: float(v) for name, v in values.items() if math.isfinite(v)}
    return Importances.of(out, len(eligible))


def importance_gap(points: Sequence[TrialPoint], objectives: Sequence[str]) -> str:
    """Why importances are not drawn (too few trials to rest on)."""
    n = sum(1 for p in points if p.eligible(objectives) and p.params)
    return (
        f"Parameter importances need at least {MIN_IMPORTANCE_TRIALS} complete feasible trials "
        f"with parameters; this study has {n}, too few to tell a parameter's effect from noise."
    )


def counts_text(counts: Mapping[str, int]) -> str:
    """``"8 trials: 5 complete and feasible, 2 stopped early, 1 infeasible, 0 failed"``, then
    unfinished and other trials where there are any."""
    parts = [f"{counts['eligible']} complete and feasible", f"{counts['stopped']} stopped early",
             f"{counts['infeasible']} infeasible", f"{counts['failed']} failed"]  # fmt: skip
    parts += [f"{counts[k]} {k}" for k in ("unfinished", "other") if counts.get(k)]
    return f"{counts['trials']} trials: " + ", ".join(parts)


NOTATION = """<p class="note"><b>Design labels.</b> <code>full</code>: every encoder stage keeps its
skip connection (the ordinary U-Net); <code>none</code>: no skip connections;
<code>subset [1, 3]</code>: only stages E1 and E3 keep theirs (E1 is the shallowest);
<code>unetmm t=4 A=256 c=[2,4,8,32] d=1</code>: UNet--, whose MSIAM module aggregates the
reduced skips at the resolution of stage <b>t</b> (the deepest stage: paper Fig. 3a; shallower:
3b/3c) into one map of <b>A</b> channels, the only one held until decoding; <b>c</b> lists the
channels each stage's reduced skip keeps, E1 first (<code>-</code>: the stage takes no part);
<b>d</b> is the IEM depth (ConvNeXt V2 blocks per decoder header). A trial's full
architecture is in the study (<code>arch.json</code> artifact; <code>unetmm export</code> writes
it as YAML).</p>"""


def _spread(items: Sequence[TrialPoint], k: int) -> list[TrialPoint]:
    """At most ``k`` items, evenly spaced along ``items`` (both ends kept; ``k == 1``: the
    middle one; ``k <= 0``: none)."""
    if len(items) <= k:
        return list(items)
    if k <= 1:
        return [items[len(items) // 2]] if k == 1 else []
    return [items[round(i * (len(items) - 1) / (k - 1))] for i in range(k)]


def check_timelines(n: int) -> None:
    """``--timelines`` must be >= 0 (one-line ``ConfigError`` otherwise)."""
    if n < 0:
        raise ConfigError(f"--timelines: must be >= 0 (0 draws only the reference points), got {n}")


def chosen_timelines(
    points: Sequence[TrialPoint], front: Sequence[TrialPoint], limit: int = 6
) -> dict[str, list[list[Any]]]:
    """Fig. 1b curves: the reference points, then up to ``limit`` Pareto designs."""
    refs = [p for p in points if p.reference and p.attrs.get(schema.M_SC_TIMELINE)]
    chosen = refs + [p for p in _spread(list(front), limit) if not p.reference]
    return {
        f"#{p.number} {p.design}": list(p.attrs[schema.M_SC_TIMELINE])
        for p in chosen
        if p.attrs.get(schema.M_SC_TIMELINE)
    }


class FullSkipMemory:
    """M_sc of the same backbone with full skips, at the trial's input size and bit width."""

    def __init__(self) -> None:
        self._cache: dict[str, int | None] = {}

    def __call__(self, p: TrialPoint) -> int | None:
        arch, size, bits = (
            p.attrs.get(schema.ATTR_ARCH),
            p.attrs.get("input_size"),
            p.attrs.get("bits", 8),
        )
        if not arch or not size:
            return None
        key = repr((arch.get("backbone"), size, bits))
        if key not in self._cache:
            from nas import ArchConfig, FullSkipsConfig, measure_cost

            try:
                full = ArchConfig.from_dict(arch).replace(skip=FullSkipsConfig())
                self._cache[key] = measure_cost(full, tuple(size), 1, int(bits), "meta").m_sc_bytes
            except Exception:  # noqa: BLE001 (an arch from another version: no percentage)
                self._cache[key] = None
        return self._cache[key]


def table_rows(
    front: Sequence[TrialPoint], knee: int | None, counts: Mapping[int, int] | None = None
) -> list[dict[str, str]]:
    """One row of display strings per trial (the HTML table and the CSV share them): a column
    per metric of ``studies.metrics`` that any listed trial has, in the table's order, M_sc
    also as the share saved against full skips; with ``counts`` (trial number -> trials of its
    design, ``pareto.DesignRow.count``), how many trials measured the design."""
    full_m_sc = FullSkipMemory()
    shown = [METRICS.get(n) for n in METRICS.names()
             if any(METRICS.get(n).key in p.attrs for p in front)]  # fmt: skip
    tiled = any(p.attrs.get("tiling") for p in front)
    # the scores, then M_sc with the peak under each executor beside it, then the rest
    shown.sort(key=lambda m: 0 if not m.cost else 1 if m.name == "m_sc" or
               (m.executor and m.unit == "bytes") else 2)  # fmt: skip
    rows = []
    for p in front:
        a = p.attrs
        row = {
            "trial": f"{p.number}" + (" (knee)" if p.number == knee else ""),
            "design": p.design,
            "knobs": ", ".join(f"{k}={v}" for k, v in p.params.items()) or _skip_knobs(a),
        }
        if counts is not None:
            row["trials of design"] = str(counts.get(p.number, 1))
        for m in shown:
            value = a.get(m.key)
            text = "n/a" if value is None else m.format(value)
            if m.name == "m_sc" and value is not None:
                text = f"{value:,} ({text})"
            row[_column(m)] = text
            if m.name == "m_sc":
                full = full_m_sc(p)
                row["M_sc saved vs full"] = (
                    f"{1 - value / full:.1%}" if full and value is not None else "n/a"
                )
        if tiled:
            t = a.get("tiling") or {}
            row["tiling"] = f"tile {t['tile']}, split {t['split']}" if t else "n/a"
        row["constraints (value, <= 0 ok)"] = (
            "; ".join(f"{k}: {v:+.4g}" for k, v in p.constraints.items()) or "none"
        )
        rows.append(row)
    return rows


def _column(m: Metric) -> str:
    """``"M_sc bytes"``, ``"PSNR dB"``, ``"MACs"``: the metric's short name and its unit kind."""
    suffix = {"bytes": " bytes", "db": " dB"}.get(m.unit, "")
    return m.short + suffix


def _skip_knobs(attrs: Mapping[str, Any]) -> str:
    skip = dict((attrs.get(schema.ATTR_ARCH) or {}).get("skip", {}))
    return ", ".join(f"{k}={v}" for k, v in skip.items() if v is not None)


def _html_table(rows: Sequence[Mapping[str, str]], table_id: str) -> str:
    if not rows:
        return "<p><em>No complete, feasible trial yet.</em></p>"
    head = "".join(f"<th>{html.escape(k)}</th>" for k in rows[0])
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(v)}</td>" for v in row.values()) + "</tr>"
        for row in rows
    )
    return f'<table id="{table_id}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


_CSS = """body{font-family:system-ui,sans-serif;margin:24px;color:#222;max-width:1400px}
table{border-collapse:collapse;font-size:13px;margin:8px 0 24px}
td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}
td:nth-child(2),td:nth-child(3),th{text-align:left}
tr:nth-child(even){background:#f6f6f6} .note{color:#555;font-size:13px;max-width:1000px}"""


def write_report(
    study: optuna.Study,
    out_dir: str | Path,
    *,
    storage_label: str = "",
    objectives: Sequence[str] | None = None,
    max_timelines: int = 6,
) -> Report:
    """Write ``report.html``, ``pareto_trials.csv`` and the ``PNG_NAMES`` PNGs into ``out_dir``.

    ``storage_label``: the storage as the header names it (empty: not named).
    ``max_timelines``: Pareto designs drawn in the M_sc timeline besides the reference points
    (>= 0; a negative value raises ``ConfigError``)."""
    import plotly.offline

    check_timelines(max_timelines)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    points = pareto.load_points(study)
    objectives = tuple(objectives or pareto.study_objectives(study))
    for o in objectives:
        pareto.objective_key(o)  # unknown names raise ConfigError
    limits = pareto.constraint_limits(points)
    front_rows = pareto.distinct_front(points, objectives)
    front = [r.point for r in front_rows]
    score = study_score(objectives)
    knee_rank = pareto.knee_ranking(points, "m_sc", score.name)
    knee = knee_rank[0][0].number if knee_rank and knee_rank[0][1] > 0 else None
    counts = trial_counts(points)

    drawn_front = [p.number for p in front]  # every view marks the table's designs
    views = {
        "pareto_m_sc": figure_data.scatter_view(
            points, "m_sc", score.name, limits, f"{score.short} vs skip memory M_sc", drawn_front
        ),
        "pareto_macs": figure_data.scatter_view(
            points, "macs", score.name, limits, f"{score.short} vs MACs", drawn_front
        ),
    }
    if any(p.value("peak_tiled") is not None for p in points):  # the memory a device needs
        views["pareto_peak_tiled"] = figure_data.scatter_view(
            points, "peak_tiled", score.name, limits,
            f"{score.short} vs peak memory under the tiled executor", drawn_front,
        )  # fmt: skip
    view3d = figure_data.scatter3d_view(points, ("m_sc", "macs", score.name), drawn_front)
    hv = pareto.hypervolume_history(points, objectives)
    importances = param_importances(study, points, objectives)
    timelines = chosen_timelines(points, front, max_timelines)
    bits = next((int(p.attrs["bits"]) for p in points if "bits" in p.attrs), 8)

    figures: dict[str, Any] = {name: interactive.scatter_plotly(v) for name, v in views.items()}
    figures["pareto_3d"] = interactive.scatter3d_plotly(view3d)
    figures["hypervolume"] = interactive.hypervolume_plotly(hv)
    if importances:
        figures["importances"] = interactive.importances_plotly(importances)
    if timelines:
        figures["timelines"] = interactive.timelines_plotly(timelines, bits)

    pngs: dict[str, Path] = {}
    for name, view in views.items():
        pngs[name] = png.scatter_png(view, out / f"{name}.png")
    pngs["pareto_3d"] = png.scatter3d_png(view3d, out / "pareto_3d.png")
    pngs["hypervolume"] = png.hypervolume_png(hv, out / "hypervolume.png")
    pngs["importances"] = (
        png.importances_png(importances, out / "importances.png")
        if importances
        else png.placeholder_png(importance_gap(points, objectives), out / "importances.png")
    )
    pngs["timelines"] = (
        png.timelines_png(timelines, bits, out / "timelines.png")
        if timelines
        else png.placeholder_png("no M_sc timelines stored", out / "timelines.png")
    )

    confirmed_html, confirmed_png = confirm.report_section(study, out)
    if confirmed_png is not None:
        pngs["confirmed"] = confirmed_png

    rows = table_rows(front, knee, {r.point.number: r.count for r in front_rows})
    pool = [r.point for r in pareto.distinct_designs(points, (score.name,))]
    trust_text, _ = judge(study.user_attrs.get("comparable"), pool, score)
    ref_rows = table_rows(
        [p for p in points if p.reference and p.state in ("COMPLETE", "PRUNED")], None
    )
    csv_path = out / "pareto_trials.csv"
    with csv_path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]) if rows else ["trial"])
        writer.writeheader()
        writer.writerows(rows)

    page = _page(
        study.study_name,
        storage_label,
        objectives,
        score,
        limits,
        counts,
        figures,
        rows,
        ref_rows,
        knee,
        plotly.offline.get_plotlyjs(),
        confirmed_html,
        {"importances": importance_gap(points, objectives)},
        trust_text,
    )
    html_path = out / "report.html"
    html_path.write_text(page, encoding="utf-8")
    return Report(html_path, pngs, csv_path, tuple(p.number for p in front), knee, counts)


def _page(
    name: str,
    storage_label: str,
    objectives: Sequence[str],
    score: Metric,
    limits: Mapping[str, Constraint],
    counts: Mapping[str, int],
    figures: Mapping[str, Any],
    rows: Sequence[Mapping[str, str]],
    ref_rows: Sequence[Mapping[str, str]],
    knee: int | None,
    plotly_js: str,
    confirmed_html: str = "",
    notes: Mapping[str, str] | None = None,
    trust: str = "",
) -> str:
    """The HTML page; ``notes``: figure key -> why that figure is missing (said in its place)."""
    esc = html.escape
    notes = notes or {}
    constraint_text = esc(", ".join(c.describe() for c in limits.values()) or "none")
    sections = []
    for key, title in (
        ("pareto_m_sc", f"{score.short} vs M_sc"),
        ("pareto_macs", f"{score.short} vs MACs"),
        ("pareto_peak_tiled", f"{score.short} vs tiled peak memory (M_sc sets it on a "
                              "streaming device; layer by layer it does not)"),
        ("pareto_3d", "Three objectives"),
        ("hypervolume", "Hypervolume over trials"),
        ("importances", "Parameter importances"),
        ("timelines", "M_sc timeline of the Pareto designs (Fig. 1b)"),
    ):
        if key in figures:
            div = figures[key].to_html(
                full_html=False, include_plotlyjs=False, div_id=key.replace("_", "-")
            )
            sections.append(f"<h2>{esc(title)}</h2>\n{div}")
        elif key in notes:
            sections.append(f'<h2>{esc(title)}</h2>\n<p class="note">{esc(notes[key])}</p>')
    divs = "\n".join(sections)
    when = _dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    knee_text = f"trial {knee}" if knee is not None else "none (front too small)"
    js_mb = len(plotly_js.encode()) / 1e6
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>unetmm report: {esc(name)}</title>
<style>{_CSS}</style>
<script type="text/javascript">{plotly_js}</script>
</head><body>
<h1>unetmm study <code>{esc(name)}</code></h1>
<p>{f"Storage {esc(storage_label)}; written" if storage_label else "Written"} {when}. Objectives: {esc(", ".join(objectives))}.
Constraints: {constraint_text}. {esc(counts_text(counts))}.</p>
<p class="note">The front holds only trials that completed their full proxy budget (status
<code>complete</code>) and meet every constraint (all <code>Trial.set_constraint</code> values
&le; 0); every figure marks the same {len(rows)} front design(s) as the table. Trials the
scheduler stopped early are drawn hollow at their last validation, never in the front; trials
that broke a cost constraint were not trained and sit in a strip under each 2-D plot (left out
of the 3-D view); a trial that repeats an earlier one's design and results is a small ring on
it. Knee: the front point of {esc(score.short)} vs M_sc farthest above the line joining the front's two
extremes, both axes scaled to [0, 1]: {esc(knee_text)}.</p>
{NOTATION}
<h2>Pareto trials ({len(rows)}; front over {esc(", ".join(objectives))})</h2>
{_html_table(rows, "pareto-table")}
{f'<h2>How far the ranking can be trusted</h2><p class="note" id="trust">{esc(trust)}</p>'
 if trust else ""}
<h2>Reference points</h2>
{_html_table(ref_rows, "reference-table")}
{divs}
{confirmed_html}
<p class="note">PNG versions: {" ".join(f'<a href="{k}.png">{k}.png</a>' for k in PNG_NAMES)};
table as CSV: <a href="pareto_trials.csv">pareto_trials.csv</a>. This page carries its own copy
of plotly.js ({js_mb:.1f} MB of its size) so that it opens offline and on its own, e.g. as a mail
attachment.</p>
</body></html>
"""
