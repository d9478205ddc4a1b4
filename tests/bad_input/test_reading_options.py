"""Options of the reading commands that name nothing: a repeated, empty or unmeasured
``--objectives``, budgets that are no sizes, rules and counts that do not exist."""

from __future__ import annotations

import pytest


@pytest.fixture
def db(built_study):
    return str(built_study.path)


@pytest.mark.parametrize(("args", "needle"), [
    (["--objectives", "psnr,psnr"], "--objectives: psnr listed twice"),
    (["--objectives", ""], "--objectives: names no objective"),
    (["--objectives", ","], "--objectives: names no objective"),
    (["--objectives", "psnr,,m_sc"], "--objectives: 'psnr,,m_sc' has an empty name"),
    (["--objectives", "psnr,sad"], "--objectives: sad was never measured"),
    (["--objectives", "psnr,peak_tiled"], "--objectives: peak_tiled was never measured"),
    (["--objectives", "speed"], "--objectives: unknown metric 'speed'"),
    (["--timelines", "-1"], "--timelines"),
])  # fmt: skip
def test_report_options(refused, db, args, needle) -> None:
    refused(["report", db, "--out", "r", *args], needle)


@pytest.mark.parametrize(("args", "needle"), [
    (["--max-m-sc", "0.25M"], "--max-m-sc: '0.25M' has an ambiguous unit"),
    (["--max-m-sc=-1KiB"], "--max-m-sc: '-1KiB' must be a finite number >= 0"),
    (["--max-macs", "18 GiB"], "--max-macs: unknown unit"),
    (["--max-peak-tiled", "lots"], "--max-peak-tiled: 'lots' is not a number"),
    (["--max-params=-3"], "--max-params"),
    (["--rule", "top"], "unknown export rule 'top'"),
    (["--top", "0"], "--top: must be >= 1"),
])  # fmt: skip
def test_export_options(refused, db, args, needle) -> None:
    refused(["export", db, "--out", "x", *args], needle)
