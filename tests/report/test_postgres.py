"""Report and export on a real PostgreSQL server: ``UNETMM_TEST_POSTGRES_URL`` (set by .ci/run),
else a throwaway server started with initdb/pg_ctl (the ``postgres_server`` fixture of
tests/studies, imported by this folder's conftest); skipped when neither works, unless
``UNETMM_REQUIRE_POSTGRES=1``."""

from __future__ import annotations

import re
import uuid

import optuna

from studies.cli import main
from studies.results import export, pareto
from tests.report.study_builder import build_study


def test_report_and_export_on_postgres(postgres_server, built_study, tmp_path, capsys) -> None:
    name = f"report-pg-{uuid.uuid4().hex[:8]}"
    build_study(postgres_server, name=name)  # the same seeded trials as the SQLite fixture
    try:
        out = tmp_path / "report"
        assert main(["report", postgres_server, "--study", name, "--out", str(out)]) == 0
        page = (out / "report.html").read_text()
        table = re.search(r'<table id="pareto-table">(.*?)</table>', page, re.DOTALL).group(1)
        listed = [int(n) for n in re.findall(r"<tr><td>(\d+)", table)]
        sqlite = optuna.load_study(study_name=built_study.name, storage=built_study.url)
        expected = pareto.pareto_front(pareto.load_points(sqlite), ("psnr", "m_sc", "macs"))
        assert listed == [p.number for p in expected]

        budget = ["--max-m-sc", "1KiB"]
        args = ["export", postgres_server, "--study", name, *budget, "--out", str(tmp_path)]
        assert main(args) == 2
        assert "the closest is trial" in capsys.readouterr().err
        picks = export.pick_trials(pareto.load_points(sqlite), {"m_sc": 32 * 1024}, "knee")
        pg = optuna.load_study(study_name=name, storage=postgres_server)
        again = export.pick_trials(pareto.load_points(pg), {"m_sc": 32 * 1024}, "knee")
        assert [p.point.number for p in again] == [p.point.number for p in picks]
    finally:
        optuna.delete_study(study_name=name, storage=postgres_server)
