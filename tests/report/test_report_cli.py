"""``unetmm report`` says every file it wrote (page, PNGs, CSV), and only those are there."""

from __future__ import annotations

from pathlib import Path

from studies.cli import main
from tests.report.study_builder import BuiltStudy


def test_report_lists_every_file_it_wrote(built_study: BuiltStudy, tmp_path: Path, capsys) -> None:
    out = tmp_path / "new" / "report"  # missing folders are created
    argv = ["report", "--storage", str(built_study.path), "--study-name", built_study.name,
            "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    said = [line.removeprefix("wrote ") for line in capsys.readouterr().out.splitlines()
            if line.startswith("wrote ")]  # fmt: skip
    assert sorted(said) == sorted(str(p) for p in out.iterdir())
    assert {Path(p).suffix for p in said} == {".html", ".png", ".csv"}
    assert str(out / "pareto_trials.csv") in said
