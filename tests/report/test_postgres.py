"""Report and export on a real PostgreSQL server (``UNETMM_TEST_POSTGRES_URL``, set by .ci/run)."""

from __future__ import annotations

import os
import re
import uuid

import optuna
import pytest

from studies import export, pareto
from studies.cli import main
from tests.report.study_builder import build_study


@pytest.fixture(scope="module")
def postgres_url() -> str:
    url = os.environ.get("UNETMM_TEST_POSTGRES_URL")
    if not url:
        if os.environ.get("UNETMM_REQUIRE_POSTGRES") == "1":
            pytest.fail("UNETMM_REQUIRE_POSTGRES=1 but UNETMM_TEST_POSTGRES_URL is not set")
        pytest.skip("set UNETMM_TEST_POSTGRES_URL=postgresql+psycopg://user@host:port/db")
    return url


def test_report_and_export_on_postgres(postgres_url, built_study, tmp_path, capsys) -> None:
    name = f"report-pg-{uuid.uuid4().hex[:8]}"
    build_study(postgres_url, name=name)  # the same seeded trials as the SQLite fixture
    try:
        out = tmp_path / "report"
        assert main(["report", postgres_url, "--study", name, "--out", str(out)]) == 0
        page = (out / "report.html").read_text()
        table = re.search(r'<table id="pareto-table">(.*?)</table>', page, re.DOTALL).group(1)
        listed = [int(n) for n in re.findall(r"<tr><td>(\d+)", table)]
        sqlite = optuna.load_study(study_name=built_study.name, storage=built_study.url)
        expected = pareto.pareto_front(pareto.load_points(sqlite), ("psnr", "m_sc", "macs"))
        assert listed == [p.number for p in expected]

        budget = ["--max-m-sc", "1KiB"]
        assert main(["export", postgres_url, "--study", name, *budget, "--out", str(tmp_path)]) == 2
        assert "the closest is trial" in capsys.readouterr().err
        picks = export.pick_trials(pareto.load_points(sqlite), {"m_sc": 32 * 1024}, "knee")
        pg = optuna.load_study(study_name=name, storage=postgres_url)
        again = export.pick_trials(pareto.load_points(pg), {"m_sc": 32 * 1024}, "knee")
        assert [p.point.number for p in again] == [p.point.number for p in picks]
    finally:
        optuna.delete_study(study_name=name, storage=postgres_url)
