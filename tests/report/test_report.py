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
    # The three reference points get their own table; UNet-- saves 86.7% of full-skip M_sc
    # (16 KiB vs 120 KiB on NAFNet-w16 at 64x64, 8 bit).
    refs = _table_trials(page, "reference-table")
    assert sorted(by_number[n].reference for n in refs) == ["full", "none", "unetmm"]
    unetmm_row = re.search(r"<tr><td>\d+</td><td>UNet-- \(paper\).*?</tr>", page).group(0)
    assert "16,384 (16 KiB)" in unetmm_row and "86.7%" in unetmm_row
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
    # The Pareto plot is drawn: an SVG with one marker per drawn trial (4 series: front,
    # dominated, stopped, infeasible; failed trials are not drawn).
    study = optuna.load_study(study_name=built_study.name, storage=built_study.url)
    points = pareto.load_points(study)
    view = plots_mod.scatter_view(points, "m_sc", "psnr", pareto.constraint_limits(points), "t")
    drawn = sum(len(s.x) for s in view.series)
    failed = sum(p.state == "FAIL" for p in points)
    assert failed >= 1 and drawn == built_study.n_trials - failed  # all but the failed ones
    assert plots["pareto-m-sc"]["svg"] >= 1
    assert plots["pareto-m-sc"]["traces"] == 4
    assert plots["pareto-m-sc"]["points"] == drawn
    assert plots["pareto-3d"]["canvas"] >= 1  # WebGL scene (software rendering when headless)
    assert plots["pareto-3d"]["traces"] == 4  # the same four series in 3-D


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
    assert "objective 'speed' is not known" in lines[3]


def test_report_of_a_study_with_nothing_to_show(tmp_path) -> None:
    """A study that has only just started: every file is written, the table says why empty."""
    url = f"sqlite:///{tmp_path / 'new.db'}"
    study = optuna.create_study(study_name="new", storage=url, directions=["maximize", "minimize"])
    study.ask()  # one RUNNING trial
    assert main(["report", url, "--out", str(tmp_path / "out")]) == 0
    page = (tmp_path / "out" / "report.html").read_text()
    assert "No complete, feasible trial yet." in page and "unfinished: 1" in page
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
    """The 3-D view draws what the 2-D views draw (front over all three objectives), untrained
    infeasible trials on the floor, stopped ones hollow, and labels the reference points."""
    study = optuna.load_study(study_name=built_study.name, storage=built_study.url)
    points = pareto.load_points(study)
    view = plots_mod.scatter3d_view(points, ("m_sc", "macs", "psnr"))
    flat = plots_mod.scatter_view(points, "m_sc", "psnr", {}, "t")
    kinds = {s.kind: s for s in view.series}
    assert list(kinds) == ["front", "feasible", "stopped", "infeasible"]
    numbers = {kind: set(s.numbers) for kind, s in kinds.items()}
    flat_numbers = {s.kind: set(s.numbers) for s in flat.series}
    for kind in ("stopped", "infeasible"):
        assert numbers[kind] == flat_numbers[kind] and numbers[kind]
    front3 = {p.number for p in pareto.pareto_front(points, ("psnr", "m_sc", "macs"))}
    assert front3 <= numbers["front"] and numbers["front"] | numbers["feasible"] == (
        flat_numbers["front"] | flat_numbers["feasible"]
    )
    by_number = {p.number: p for p in points}
    infeasible = kinds["infeasible"]
    scored = [z for s in view.series for z in s.z if s.kind != "infeasible"]
    for n, z in zip(infeasible.numbers, infeasible.z):
        if by_number[n].value("psnr") is None:  # untrained: below every score
            assert z < min(scored)
    assert {text for *_, text in view.labels} == {"full skips", "no skips", "UNet-- (paper)"}
    fig = plots_plotly.scatter3d_plotly(view)
    assert [t.marker.symbol for t in fig.data] == ["circle", "circle", "circle-open", "x"]
    assert [a.text for a in fig.layout.scene.annotations] == [t for *_, t in view.labels]


def test_a_stopped_trial_without_a_final_score_is_drawn_at_its_last_validation() -> None:
    """The search keeps only the curve of a trial it stopped: it is drawn there, not on the
    floor with the untrained ones."""
    arch = {"skip": {"name": "subset"}}
    costs = {"m_sc_bytes": 2048, "macs": 10**6, "arch": arch}
    done = pareto.TrialPoint(0, "COMPLETE", {**costs, "status": "complete", "psnr": 25.0}, {}, {})
    stopped = pareto.TrialPoint(
        1, "PRUNED", {**costs, "status": "stopped", "curve": [[30, 21.0], [60, 23.5]]}, {}, {}
    )
    untrained = pareto.TrialPoint(2, "PRUNED", {**costs, "status": "infeasible"}, {}, {"c": 1.0})
    view = plots_mod.scatter_view([done, stopped, untrained], "m_sc", "psnr", {}, "t")
    by_kind = {s.kind: s for s in view.series}
    assert by_kind["stopped"].y == (23.5,)
    assert "PSNR 23.50 dB at step 60" in by_kind["stopped"].text[0]
    assert by_kind["infeasible"].y[0] < 23.5 and "not trained" in by_kind["infeasible"].text[0]
    view3d = plots_mod.scatter3d_view([done, stopped, untrained])
    assert {s.kind: s.z for s in view3d.series}["stopped"] == (23.5,)
    assert not stopped.eligible()  # drawn, never in a front
