"""Fixtures of the report/dashboard/export tests: one small real study per session."""

from __future__ import annotations

import pytest

from tests.report.study_builder import BuiltStudy, build_study


@pytest.fixture(scope="session")
def built_study(tmp_path_factory: pytest.TempPathFactory) -> BuiltStudy:
    return build_study(tmp_path_factory.mktemp("study") / "study.db")
