"""What plain Optuna tools see in a unetmm study: ``optuna trials``, a plain ``optuna-dashboard``
(no unetmm code in it), Optuna's own constraint handling; and that studies written before the
current attribute names still read the same."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import optuna
import pytest

from studies import schema
from studies.artifacts import study_data, trial_data
from studies.metrics import get_metric
from studies.results import pareto
from studies.results.report import write_report
from tests.report.study_builder import BuiltStudy, build_legacy_study

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def legacy_study(tmp_path_factory: pytest.TempPathFactory) -> BuiltStudy:
    """The fixture's trials, stored the way unetmm wrote them before (``build_legacy_study``)."""
    return build_legacy_study(tmp_path_factory.mktemp("legacy") / "legacy.db")


def _load(built: BuiltStudy) -> optuna.Study:
    return optuna.load_study(study_name=built.name, storage=built.url)


def test_objectives_are_named_with_units(built_study) -> None:
    study = _load(built_study)
    assert study.metric_names == ["PSNR [dB]", "skip memory M_sc [bytes]", "MACs (fvcore)"]
    assert pareto.study_objectives(study) == ("psnr", "m_sc", "macs")
    assert get_metric("psnr").key == "psnr_db" and get_metric("macs").key == "macs_fvcore"


def test_user_attributes_are_short_and_bulky_data_are_artifacts(built_study) -> None:
    study = _load(built_study)
    trials = study.get_trials()
    for t in trials:
        assert not set(t.user_attrs) & set(schema.BULKY_KEYS), t.number
        short = {k: v for k, v in t.user_attrs.items() if k != schema.ATTR_ERROR}  # one line
        assert all(len(json.dumps(v)) <= 80 for v in short.values()), t.user_attrs
    # ... and read back whole: the arch rebuilds the design, the timeline and curve are there.
    data = study_data(study, trials)
    stopped = next(t for t in trials if t.user_attrs["status"] == "stopped")
    assert data[stopped.number][schema.CURVE][-1] == [200, stopped.user_attrs["val_psnr_db"]]
    import nas

    for t in trials:
        arch = nas.ArchConfig.from_dict(data[t.number][schema.ATTR_ARCH])
        assert arch.key() == t.user_attrs[schema.ATTR_ARCH_KEY]
        if "m_sc_bytes" in t.user_attrs:
            peak = max(b for _, b in data[t.number][schema.M_SC_TIMELINE])
            assert peak == t.user_attrs["m_sc_bytes"]
    assert trial_data(study, trials[0]) == data[0]


def _widest_line(built: BuiltStudy, command: str) -> tuple[int, str]:
    out = subprocess.run(
        [str(BIN / "optuna"), command, "--study-name", built.name, "--storage", built.url],
        capture_output=True, text=True, check=True, timeout=120,
    ).stdout  # fmt: skip
    return max(len(line) for line in out.splitlines()), out


def test_optuna_trials_rows_stay_narrow(built_study, legacy_study) -> None:
    """``optuna trials`` prints every user attribute in full: rows were 1,533 characters wide
    on this study in the old form (arch JSON, timelines, curves); now under half that."""
    new, text = _widest_line(built_study, "trials")
    old, _ = _widest_line(legacy_study, "trials")
    assert old > 1400 and new < 800 and new < old / 2, (new, old)
    assert "m_sc_timeline" not in text and "'backbone'" not in text and "curve" not in text
    best, _ = _widest_line(built_study, "best-trials")
    assert best < 800


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def test_a_plain_optuna_dashboard_reads_names_units_and_feasibility(built_study) -> None:
    """The real ``optuna-dashboard`` command, with no unetmm code: it names the objectives with
    their units and sees every infeasible trial (its constraint list has a positive value)."""
    exe = shutil.which("optuna-dashboard", path=str(BIN)) or "optuna-dashboard"
    port = _free_port()
    proc = subprocess.Popen([exe, built_study.url, "--port", str(port), "--host", "127.0.0.1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "PYTHONPATH": ""})  # fmt: skip
    try:
        deadline, detail = time.monotonic() + 60, None
        while detail is None and time.monotonic() < deadline:
            try:
                detail = _get_json(f"http://127.0.0.1:{port}/api/studies/1")
            except OSError:
                time.sleep(0.3)
        assert detail is not None, "optuna-dashboard did not answer"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert detail["objective_names"] == ["PSNR [dB]", "skip memory M_sc [bytes]", "MACs (fvcore)"]
    study = _load(built_study)
    ours = {p.number: p.feasible for p in pareto.load_points(study)}
    theirs = {t["number"]: all(c <= 0 for c in t["constraints"]) for t in detail["trials"]}
    assert theirs == ours
    assert sum(not f for f in theirs.values()) >= 10  # over the M_sc limit, and no skips' PSNR
    # Optuna itself counts each value once per form: the named ones are what unetmm reads.
    none = study.trials[1]
    assert schema.trial_constraints(none) == {
        "m_sc <= 40 KiB": -40.0, "psnr >= 22 dB": pytest.approx(22 - none.user_attrs["psnr_db"])
    }  # fmt: skip
    assert none not in study.best_trials


def test_an_old_study_reads_the_same_as_a_new_one(built_study, legacy_study, tmp_path) -> None:
    """The same trials in the old form (keys ``psnr``/``macs``, bulky user attributes, named
    constraints only, no metric names) give the same points, front, table and timelines."""
    new, old = _load(built_study), _load(legacy_study)
    assert old.trials[3].user_attrs["psnr"] and "m_sc_timeline" in old.trials[3].user_attrs
    new_points, old_points = pareto.load_points(new), pareto.load_points(old)

    def untimed(points: list) -> list[dict]:  # times are stored to the millisecond now
        return [{k: v for k, v in p.attrs.items() if k not in schema.TIME_KEYS} for p in points]

    assert untimed(old_points) == untimed(new_points)
    assert [p.constraints for p in old_points] == [p.constraints for p in new_points]
    a = write_report(new, tmp_path / "new")
    b = write_report(old, tmp_path / "old")
    assert a.front == b.front and a.counts == b.counts and len(a.front) >= 5
    assert (tmp_path / "new" / "pareto_trials.csv").read_text() == (
        tmp_path / "old" / "pareto_trials.csv"
    ).read_text()


def test_resuming_an_old_study_names_its_metrics(legacy_study, tmp_path) -> None:
    """``prepare_study`` on an existing study from before metric names sets them."""
    from studies.search.driver import prepare_study
    from studies.spec import load_spec
    from studies.storage import open_storage

    copy = tmp_path / "resume.db"
    shutil.copy(legacy_study.path, copy)
    assert (
        _load(BuiltStudy(copy, f"sqlite:///{copy}", legacy_study.name, 0, 0)).metric_names is None
    )
    spec = load_spec("quick")
    url = f"sqlite:///{copy}"
    optuna.load_study(study_name=legacy_study.name, storage=url).set_user_attr(
        schema.STUDY_ATTR_SPEC, spec.model_dump(mode="json")
    )  # as if the quick study had made it: a fingerprint that matches
    study = prepare_study(spec, legacy_study.name, open_storage(url))
    assert study.metric_names == ["PSNR [dB]", "skip memory M_sc [bytes]", "MACs (fvcore)"]


def test_unetmm_dashboard_serves_the_artifacts_and_flags_old_trials(built_study, legacy_study):
    """``unetmm dashboard`` gives optuna-dashboard the study's artifact store (a trial's JSON
    files download), and says when a study's trials predate the constraint list."""
    from studies.results.dashboard import open_dashboard

    server, url = open_dashboard(built_study.url, port=0, study=built_study.name)
    import threading

    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = url.split("/dashboard")[0]
        detail = _get_json(f"{base}/api/studies/1")
        trial = detail["trials"][3]
        artifact = trial["artifacts"][0]
        body = _get_json(f"{base}/artifacts/1/{trial['trial_id']}/{artifact['artifact_id']}")
        assert artifact["filename"] == "results.json" and schema.CURVE in body
    finally:
        server.shutdown()
        server.server_close()
    code = (
        "from studies.results.dashboard import open_dashboard as o;"
        f"s, u = o({legacy_study.url!r}, port=0); s.server_close()"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "note: 26 trial(s) were stored before constraints" in proc.stderr
