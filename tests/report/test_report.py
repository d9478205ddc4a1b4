"""``unetmm report``: HTML that loads offline in headless Chromium, PNGs, the Pareto table."""

from __future__ import annotations

import re
from pathlib import Path

import optuna
import pytest
from PIL import Image

from studies import schema
from studies.cli import main
from studies.results import pareto
from studies.results.plots import matplotlib as plots_png
from studies.results.plots import plotly as plots_plotly
from studies.results.plots import views as plots_mod
from tests.report.browser import load_in_chromium
from tests.report.study_builder import BuiltStudy


@pytest.fixture(scope="module")
def report_dir(built_study: BuiltStudy, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report")
    assert (
        main(["report", str(built_study.path), "--study", built_study.name, "--out", str(out)]) == 0
    )
    return out


def _table_trials(page: str, table_id: str) -> list[int]:
    table = re.search(rf'<table id="{table_id}">(.*?)</table>', page, re.DOTALL)
    assert table, f"no table {table_id}"
    return [int(m) for m in re.findall(r"<tr><td>(\d+)", table.group(1))]


def test_report_table_lists_exactly_the_feasible_complete_front(built_study, report_dir) -> None:
    page = (report_dir / "report.html").read_text()
    study = optuna.load_study(study_name=built_study.name, storage=built_study.url)
    points = pareto.load_points(study)
    front = pareto.pareto_front(points, ("psnr", "m_sc", "macs"))
    listed = _table_trials(page, "pareto-table")
    assert listed == [p.number for p in front] and len(listed) >= 3
    by_number = {p.number: p for p in points}
    assert all(
        by_number[n].status == schema.STATUS_COMPLETE and by_number[n].feasible for n in listed
    )
    # The three reference points get their own table; UNet-- (E' of 8 x 16 channels) saves
    # 93.3% of full-skip M_sc, the paper's share (8 KiB vs 120 KiB on NAFNet-w16 at 64x64, 8 bit).
    refs = _table_trials(page, "reference-table")
    assert sorted(by_number[n].reference for n in refs) == ["full", "none", "unetmm"]
    unetmm_row = re.search(r"<tr><td>\d+</td><td>UNet-- \(paper\).*?</tr>", page).group(0)
    assert "8,192 (8 KiB)" in unetmm_row and "93.3%" in unetmm_row
    assert "Constraints: m_sc &lt;= 40 KiB, psnr &gt;= 22 dB." in page
    # The CSV holds the same rows.
    csv_rows = (report_dir / "pareto_trials.csv").read_text().strip().splitlines()
    assert len(csv_rows) == len(listed) + 1


def test_report_is_self_contained(report_dir) -> None:
    page = (report_dir / "report.html").read_text()
    assert not re.search(r"<script[^>]+src=", page), "an external script"
    assert not re.search(r"<link[^>]+href=[\"']https?:", page), "an external stylesheet"
    assert len(page) > 3_000_000  # plotly.js is inlined (~4.7 MB)
    for div in (
        "pareto-m-sc",
        "pareto-macs",
        "pareto-3d",
        "hypervolume",
        "importances",
        "timelines",
    ):
        assert f'id="{div}"' in page


@pytest.mark.parametrize(
    "name", ["pareto_m_sc", "pareto_macs", "pareto_3d", "hypervolume", "importances", "timelines"]
)
def test_pngs_are_real_images(report_dir, name: str) -> None:
    with Image.open(report_dir / f"{name}.png") as img:
        assert img.format == "PNG" and img.width >= 600 and img.height >= 400
        rgb = img.convert("RGB")
        colours = rgb.getcolors(maxcolors=1 << 20)
        assert colours is not None and len(colours) > 50  # anti-aliased lines, markers, text
        white = max(count for count, colour in colours if colour == (255, 255, 255))
        assert white < 0.97 * img.width * img.height  # something is drawn


def _overlaps(a: list[float], b: list[float]) -> bool:
    """Screen boxes ``[left, top, right, bottom]`` that share more than a pixel."""
    return min(a[2], b[2]) - max(a[0], b[0]) > 1 and min(a[3], b[3]) - max(a[1], b[1]) > 1


def test_html_loads_in_headless_chromium_without_errors(built_study, report_dir, tmp_path) -> None:
    result = load_in_chromium(report_dir / "report.html", tmp_path)
    probe = result.probe
    assert probe["errors"] == [], probe["errors"]
    assert result.console_errors == [], result.console_errors
    assert probe["plotly"], "plotly.js did not load"
    plots = probe["plots"]
    assert set(plots) >= {
        "pareto-m-sc",
        "pareto-macs",
        "pareto-3d",
        "hypervolume",
        "importances",
        "timelines",
    }
    # Every trial but the failed one is drawn once: scored ones in the main panel, untrained
    # ones in the strip under it (one marker each: the probe counts them).
    study = optuna.load_study(study_name=built_study.name, storage=built_study.url)
    points = pareto.load_points(study)
    view = plots_mod.scatter_view(points, "m_sc", "psnr", pareto.constraint_limits(points), "t")
    drawn = sum(len(s.x) for s in view.series) + len(view.strip.x)
    failed = sum(p.state == "FAIL" for p in points)
    assert failed >= 1 and drawn == built_study.n_trials - failed  # all but the failed ones
    assert plots["pareto-m-sc"]["svg"] >= 1
    assert plots["pareto-m-sc"]["points"] == drawn
    assert plots["pareto-3d"]["canvas"] >= 1  # WebGL scene (software rendering when headless)
    # The front has one size everywhere: the table's.
    front = len(_table_trials((report_dir / "report.html").read_text(), "pareto-table"))
    for div in ("pareto-m-sc", "pareto-macs", "pareto-3d"):
        assert f"Pareto front (the table's designs) ({front})" in plots[div]["names"], div
    # Nothing written over anything else: reference labels, the text of points beyond the axis,
    # the legend and the constraint lines (whose names are in the legend, not on the plot).
    for div in ("pareto-m-sc", "pareto-macs", "timelines"):
        boxes = plots[div]["annotations"]
        assert not [(a, b) for i, a in enumerate(boxes) for b in boxes[i + 1 :]
                    if _overlaps(a, b)], div  # fmt: skip
        assert not [a for a in boxes for b in plots[div]["legend"] if _overlaps(a, b)], div
        assert not [a for a in boxes for b in plots[div]["shapes"] if _overlaps(a, b)], div
        assert not [a for a in plots[div]["legend"] for b in plots[div]["plotarea"]
                    if _overlaps(a, b)], div  # fmt: skip


def test_chromium_probe_catches_errors_and_blocked_network(tmp_path) -> None:
    """Negative control: the same probe reports a thrown error, console.error and a CDN script."""
    page = tmp_path / "broken.html"
    page.write_text(
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        "<script src='https://cdn.plot.ly/plotly-2.35.2.min.js'></script></head><body>"
        "<div id='x'></div><script>console.error('deliberate');"
        "undefinedFunction();</script></body></html>"
    )
    result = load_in_chromium(page, tmp_path)
    errors = " | ".join(result.probe["errors"])
    assert "console.error: deliberate" in errors
    assert "undefinedFunction is not defined" in errors
    assert "cdn.plot.ly" in errors  # the network is cut off: the CDN script fails to load
    assert result.probe["plotly"] is None
    assert any("Uncaught ReferenceError" in line for line in result.console_errors)


def test_report_errors_are_one_line(tmp_path, capsys, built_study) -> None:
    assert main(["report", str(built_study.path), "--timelines", "-1", "--out", str(tmp_path)]) == 2
    assert capsys.readouterr().err == (
        "error: --timelines: must be >= 0 (0 draws only the reference points), got -1\n"
    )
    assert not list(tmp_path.iterdir())
    assert main(["report", str(tmp_path / "missing.db"), "--out", str(tmp_path)]) == 2
    assert main(["report", built_study.url, "--study", "nope", "--out", str(tmp_path)]) == 2
    assert (
        main(["report", "postgresql+psycopg://nobody@127.0.0.1:9/none", "--out", str(tmp_path)])
        == 2
    )
    assert (
        main(
            ["report", str(built_study.path), "--objectives", "psnr,speed", "--out", str(tmp_path)]
        )
        == 2
    )
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 4 and all(line.startswith("error: ") for line in lines), lines
    assert "no such file" in lines[0]
    assert "no study 'nope'" in lines[1] and "report-test" in lines[1]
    assert "cannot reach postgresql+psycopg://nobody@127.0.0.1:9/none" in lines[2]
    assert "--objectives: unknown metric 'speed'" in lines[3]


def test_report_of_a_study_with_nothing_to_show(tmp_path) -> None:
    """A study that has only just started: every file is written, the table says why empty."""
    url = f"sqlite:///{tmp_path / 'new.db'}"
    study = optuna.create_study(study_name="new", storage=url, directions=["maximize", "minimize"])
    study.set_user_attr(schema.STUDY_ATTR_OBJECTIVES, ["psnr", "m_sc"])  # as a search starts it
    study.ask()  # one RUNNING trial
    assert main(["report", url, "--out", str(tmp_path / "out")]) == 0
    page = (tmp_path / "out" / "report.html").read_text()
    assert "No complete, feasible trial yet." in page and "1 trials: " in page
    assert "1 unfinished" in page and "need at least 10 complete feasible trials" in page
    for name in ("pareto_m_sc", "pareto_macs", "pareto_3d", "hypervolume", "importances"):
        with Image.open(tmp_path / "out" / f"{name}.png") as img:
            assert img.width >= 400


def test_timelines_of_the_reference_points_and_up_to_n_front_designs(built_study) -> None:
    from studies.results.report import chosen_timelines

    study = optuna.load_study(study_name=built_study.name, storage=built_study.url)
    points = pareto.load_points(study)
    front = pareto.pareto_front(points, ("psnr", "m_sc", "macs"))
    refs = [f"#{p.number} {p.design}" for p in points if p.reference]
    assert len(refs) == 3 and len(front) >= 4
    names = {n: list(chosen_timelines(points, front, n)) for n in (0, 1, 2, len(front) + 5)}
    assert names[0] == refs
    assert names[1] == [*refs, f"#{front[len(front) // 2].number} {front[len(front) // 2].design}"]
    assert names[2] == [*refs, *(f"#{p.number} {p.design}" for p in (front[0], front[-1]))]
    others = [f"#{p.number} {p.design}" for p in front if not p.reference]  # UNet-- is in front
    assert names[len(front) + 5] == [*refs, *others] and len(others) == len(front) - 1


def test_three_objective_view_tells_every_kind_apart(built_study) -> None:
    """The 3-D view draws what the 2-D views draw, the same front (the table's), stopped ones
    hollow; untrained trials have no place in it and are counted instead; reference points are
    labelled."""
    study = optuna.load_study(study_name=built_study.name, storage=built_study.url)
    points = pareto.load_points(study)
    front = [p.number for p in pareto.pareto_front(points, ("psnr", "m_sc", "macs"))]
    view = plots_mod.scatter3d_view(points, ("m_sc", "macs", "psnr"), front)
    flat = plots_mod.scatter_view(points, "m_sc", "psnr", {}, "t", front)
    kinds = {s.kind: s for s in view.series}
    assert list(kinds) == ["front", "feasible", "stopped", "infeasible", "repeat"]
    numbers = {kind: set(s.numbers) for kind, s in kinds.items()}
    flat_numbers = {s.kind: set(s.numbers) for s in flat.series}
    assert numbers == flat_numbers and numbers["stopped"] and numbers["repeat"]
    assert numbers["front"] == set(front)
    assert set(view.left_out) == set(flat.strip.numbers) and len(view.left_out) >= 10
    assert {text for *_, text in view.labels} == {"no skips", "UNet-- (paper)"}  # full: untrained
    fig = plots_plotly.scatter3d_plotly(view)
    symbol = {"front": "circle", "feasible": "circle", "stopped": "circle-open", "infeasible": "x",
              "repeat": "diamond-open"}  # fmt: skip
    assert [t.marker.symbol for t in fig.data] == [symbol[s.kind] for s in view.series if s.x]
    assert len(fig.data) >= 4
    assert f"{len(view.left_out)} untrained trial(s) (no PSNR) not drawn" in fig.layout.title.text
    assert [a.text for a in fig.layout.scene.annotations] == [t for *_, t in view.labels]
    # The camera stays far enough that the axis titles are not cut off (seen in Chromium).
    eye = fig.layout.scene.camera.eye
    assert (eye.x**2 + eye.y**2 + eye.z**2) ** 0.5 >= 2.7


def test_a_stopped_trial_without_a_final_score_is_drawn_at_its_last_validation() -> None:
    """The search keeps only the curve of a trial it stopped: it is drawn there; a trial that
    was not trained goes to the strip, not to a made-up score."""
    arch = {"skip": {"name": "subset"}}
    costs = {"m_sc_bytes": 2048, "macs_fvcore": 10**6, "arch": arch}
    done = pareto.TrialPoint(0, "COMPLETE", {**costs, "status": "complete", "psnr_db": 25.0}, {},
                             {})  # fmt: skip
    stopped = pareto.TrialPoint(
        1, "PRUNED", {**costs, "status": "stopped", "curve": [[30, 21.0], [60, 23.5]]}, {}, {}
    )
    untrained = pareto.TrialPoint(2, "PRUNED", {**costs, "status": "infeasible"}, {}, {"c": 1.0})
    view = plots_mod.scatter_view([done, stopped, untrained], "m_sc", "psnr", {}, "t")
    by_kind = {s.kind: s for s in view.series}
    assert by_kind["stopped"].y == (23.5,)
    assert "PSNR 23.50 dB at step 60" in by_kind["stopped"].text[0]
    assert by_kind["infeasible"].numbers == () and view.strip.numbers == (2,)
    assert "not trained" in view.strip.text[0]
    assert min(by_kind["front"].y + by_kind["stopped"].y) == 23.5  # no point at a floor
    view3d = plots_mod.scatter3d_view([done, stopped, untrained])
    assert {s.kind: s.z for s in view3d.series}["stopped"] == (23.5,)
    assert view3d.left_out == (2,)
    assert not stopped.eligible()  # drawn, never in a front


def _macs_points() -> list[pareto.TrialPoint]:
    """Scored designs at 16-17.1 G MACs, one untrained far out at 51.9 G, a limit at 18 G."""

    def point(n: int, macs: float, psnr: float | None, ref: str | None = None):
        attrs = {"m_sc_bytes": 1000 * n, "macs_fvcore": macs, "arch_key": f"k{n}",
                 "status": "complete" if psnr else "infeasible"}  # fmt: skip
        if psnr:
            attrs["psnr_db"] = psnr
        if ref:
            attrs["reference"] = ref
        state = "COMPLETE" if psnr else "PRUNED"
        return pareto.TrialPoint(n, state, attrs, {}, {"macs <= 18 G": (macs - 18e9) / 1e9})

    return [point(0, 16.06e9, 27.3, "full"), point(1, 16.06e9, 20.6, "none"),
            point(2, 17.06e9, 23.4, "unetmm"), point(3, 51.85e9, None)]  # fmt: skip


def test_one_far_untrained_point_does_not_squeeze_the_axis() -> None:
    points = _macs_points()
    view = plots_mod.scatter_view(points, "macs", "psnr", pareto.constraint_limits(points), "t")
    assert view.x_title == "MACs (fvcore) [G]"
    lo, hi = view.x_range  # the scored trials and the 18 G limit, padded 5%
    assert 15.9 < lo < 16.06 and 18.0 < hi < 18.2
    assert view.strip.numbers == (3,) and view.strip.x == (hi,)  # on the edge...
    assert view.clamped == ((3, "51.9 G"),)  # ...its value written beside it
    assert view.beyond() == {"right": "#3: 51.9 G →"}
    assert view.vlines == ((18.0, "limit: macs <= 18 G"),)


def test_constraint_names_live_in_the_legend_and_labels_point_inwards() -> None:
    points = _macs_points()
    view = plots_mod.scatter_view(points, "macs", "psnr", pareto.constraint_limits(points), "t")
    labels = {lab.text: lab for lab in view.labels}
    assert (labels["full skips"].dx, labels["full skips"].dy) == (1, -1)  # top left: down right
    assert (labels["UNet-- (paper)"].dx, labels["UNet-- (paper)"].dy) == (1, 1)
    fig = plots_plotly.scatter_plotly(view)
    texts = [a.text for a in fig.layout.annotations]
    assert not [t for t in texts if "limit" in t] and "#3: 51.9 G →" in texts
    named = [s.name for s in fig.layout.shapes if s.showlegend]
    assert named == ["limit: macs <= 18 G"]  # one line through both panels, one legend entry
    # The PNG: no text over another, nor over the constraint line; the legend under the axes.
    fig = plots_png.scatter_figure(view)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    main, strip = fig.axes
    texts = [t for ax in fig.axes for t in ax.texts]
    boxes = [t.get_window_extent(renderer) for t in texts]
    assert len(boxes) == 4  # three references, one value beyond the edge
    assert not [(a, b) for i, a in enumerate(boxes) for b in boxes[i + 1 :] if a.overlaps(b)]
    line_x = main.transData.transform((18.0, 0))[0]
    assert not [b for b in boxes if b.x0 < line_x < b.x1]
    legend = fig.legends[0].get_window_extent(renderer)
    assert legend.y1 < strip.get_window_extent(renderer).y0
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_timeline_legend_stays_off_the_curves(built_study) -> None:
    from studies.results.report import chosen_timelines

    study = optuna.load_study(study_name=built_study.name, storage=built_study.url)
    points = pareto.load_points(study)
    timelines = chosen_timelines(points, pareto.pareto_front(points, ("psnr", "m_sc", "macs")))
    fig = plots_png.timelines_figure(timelines, 8)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    ax = fig.axes[0]
    assert ax.get_legend().get_window_extent(renderer).y1 < ax.get_window_extent(renderer).y0
    import matplotlib.pyplot as plt

    plt.close(fig)
    legend = plots_plotly.timelines_plotly(timelines, 8).layout.legend
    assert legend.orientation == "h" and legend.y < 0  # under the plot


def test_importances_say_how_many_trials_they_rest_on(built_study) -> None:
    from studies.results.report import MIN_IMPORTANCE_TRIALS, importance_gap, param_importances

    study = optuna.load_study(study_name=built_study.name, storage=built_study.url)
    points = pareto.load_points(study)
    objectives = ("psnr", "m_sc", "macs")
    imp = param_importances(study, points, objectives)
    eligible = sum(p.eligible(objectives) and bool(p.params) for p in points)
    assert imp is not None and imp.trials == eligible >= MIN_IMPORTANCE_TRIALS
    assert imp.title.startswith(f"Parameter importances (PED-ANOVA) over {eligible} complete")
    assert all(max(v.get(n, 0) for v in imp.values.values()) > 0 for n in imp.names)
    few = [p for p in points if p.number < 12]
    assert param_importances(study, few, objectives) is None
    n = sum(p.eligible(objectives) and bool(p.params) for p in few)
    assert f"at least {MIN_IMPORTANCE_TRIALS} complete feasible trials" in importance_gap(
        few, objectives
    ) and f"this study has {n}," in importance_gap(few, objectives)


def test_page_explains_the_design_labels_counts_and_size(report_dir) -> None:
    page = (report_dir / "report.html").read_text()
    assert "trials: trials" not in page
    assert re.search(r"27 trials: 11 complete and feasible, 3 stopped early, 12 infeasible, "
                     r"1 failed\.", page)  # fmt: skip
    assert "<b>Design labels.</b>" in page
    for part in ("<b>t</b>", "<b>A</b>", "<b>c</b>", "<b>d</b> is the IEM depth"):
        assert part in page
    assert re.search(r"its own copy\s+of plotly.js \(4\.\d MB of its size\)", page)
