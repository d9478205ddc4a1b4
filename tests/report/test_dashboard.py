"""``unetmm dashboard``: optuna-dashboard answers on 127.0.0.1 and lists the study."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import optuna

from studies import schema

REPO = Path(__file__).resolve().parents[2]


def _get_json(url: str) -> tuple[int, dict]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status, json.loads(response.read())


def test_dashboard_serves_the_study_api(built_study) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cmd = [
        sys.executable,
        "-m",
        "studies.cli",
        "dashboard",
        str(built_study.path),
        "--port",
        "0",
        "--study",
        built_study.name,
    ]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO
    )
    try:
        line = proc.stdout.readline()  # the URL, printed once the socket listens
        assert line.startswith("optuna-dashboard on http://127.0.0.1:"), (line, proc.poll())
        url = line.split()[2]
        base = url.split("/dashboard")[0]
        deadline, status, listing = time.monotonic() + 30, 0, {}
        while time.monotonic() < deadline:
            try:
                status, listing = _get_json(f"{base}/api/studies")
                break
            except OSError:
                time.sleep(0.2)
        assert status == 200
        studies = {s["study_name"]: s for s in listing["study_summaries"]}
        assert built_study.name in studies
        study_id = studies[built_study.name]["study_id"]
        assert url == f"{base}/dashboard/studies/{study_id}"

        # The study stores its constraints in the list form the dashboard's UI reads too (no
        # translation on the way), so its Pareto plot marks the over-budget trials infeasible.
        status, detail = _get_json(f"{base}/api/studies/{study_id}")
        assert status == 200 and len(detail["trials"]) == built_study.n_trials
        by_number = {t["number"]: t for t in detail["trials"]}
        study = optuna.load_study(study_name=built_study.name, storage=built_study.url)
        for trial in study.get_trials():
            expected = sorted(schema.trial_constraints(trial).values())
            assert sorted(by_number[trial.number]["constraints"]) == expected
        assert any(c[0] > 0 for c in (t["constraints"] for t in detail["trials"]) if c)
        with urllib.request.urlopen(url, timeout=10) as page:  # the UI itself
            assert page.status == 200 and b"<html" in page.read(2000).lower()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        proc.stdout.close()
        proc.stderr.close()


def test_dashboard_on_all_interfaces_prints_a_loopback_url(built_study) -> None:
    """``--host 0.0.0.0`` binds every interface; the printed URL is one a browser can open."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "studies.cli", "dashboard", str(built_study.path),
           "--host", "0.0.0.0", "--port", "0"]  # fmt: skip
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO
    )
    try:
        line = proc.stdout.readline()
        assert line.startswith("optuna-dashboard on http://127.0.0.1:"), (line, proc.poll())
        assert line.rstrip().endswith("(Ctrl-C stops it; it listens on all interfaces)")
        base = line.split()[2].split("/dashboard")[0]
        status, listing = _get_json(f"{base}/api/studies")
        assert status == 200
        assert [s["study_name"] for s in listing["study_summaries"]] == [built_study.name]
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        proc.stdout.close()
        proc.stderr.close()


def test_dashboard_errors(tmp_path, capsys, built_study) -> None:
    from studies.cli import main

    assert main(["dashboard", str(tmp_path / "missing.db")]) == 2
    assert main(["dashboard", str(built_study.path), "--study", "nope", "--port", "0"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[0].startswith("error: STORAGE: no such file")
    assert lines[1].startswith("error: --study: no study 'nope'") and "report-test" in lines[1]
