"""Faults during a real ``unetmm search`` (separate processes, real Ray, real storages):

- the storage stops answering mid-search (the PostgreSQL server stopped; the SQLite file made
  read-only): one ``error:`` line naming the command that resumes, exit 2, Ray and its workers
  gone; once the storage is back that command resumes the study, nothing lost;
- SIGTERM, to the search process (``kill PID``) or to its whole process group (what schedulers
  and ``timeout`` do): handled like Ctrl-C (running trials failed and re-queued, workers
  stopped, exit 130, no stack dump), and while the search ran, its local Ray listened on the
  loopback interface only; the run's scratch folder is gone afterwards.

Cost-only studies (no training): the trials take a second each, the faults are the point.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from studies.search.outcome import INTERRUPTED
from studies.search.recovery import recover_stale
from tests.studies.faults import (
    COST_ONLY,
    BreakableStorage,
    finished,
    group_pids,
    is_loopback,
    listening,
    wait_for,
)

PY = sys.executable
STOPPING = ("stopping: the running trials are failed and queued for the next run (Ctrl-C again "
            "stops at once)")


def start_search(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([PY, "-m", "studies.cli", "search", *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)  # fmt: skip


@contextlib.contextmanager
def reaped(proc: subprocess.Popen):  # type: ignore[no-untyped-def]
    """Kill what is left of ``proc``'s process group when the test ends, whatever happened."""
    try:
        yield proc
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=30)


def settle(pgid: int, timeout: float = 30) -> list[int]:
    """The processes left in group ``pgid`` after up to ``timeout`` s (Ray's agents exit on
    their own a moment after their raylet)."""
    deadline = time.time() + timeout
    while (left := group_pids(pgid)) and time.time() < deadline:
        time.sleep(0.5)
    return left


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_storage_lost_mid_search_is_one_line_then_the_named_command_resumes(
    kind, tmp_path, subprocess_env
):
    storage = BreakableStorage(kind, tmp_path)
    try:
        spec = tmp_path / "lost.yaml"
        spec.write_text("name: lost\n" + COST_ONLY)
        args = [str(spec), "--storage", storage.url, "--n-trials", "500"]
        with reaped(start_search(args, tmp_path, subprocess_env)) as proc:
            wait_for(lambda: len(finished(storage.url, "lost")) >= 2, 300, "two trials", proc)
            storage.break_()
            _, err = proc.communicate(timeout=180)
            assert proc.returncode == 2, err[-3000:]
            lines = err.strip().splitlines()
            assert len(lines) == 1, err[-3000:]
            line = lines[0]
            assert line.startswith("error: storage: ") and "stopped answering" in line, line
            assert "the trials finished before are safe in it" in line, line
            print(f"{kind}: {line}")
            assert settle(proc.pid) == []  # Ray, its workers and agents are gone
        storage.mend()
        done = {t.number: (t.state, t.values) for t in finished(storage.url, "lost")}
        assert len(done) >= 2

        # the command the line names resumes the study (here with 2 trials, not 500)
        resume = shlex.split(line.split("resume with: ", 1)[1])
        assert resume[:2] == ["unetmm", "search"] and storage.url in resume
        again = subprocess.run([PY, "-m", "studies.cli", *resume[1:], "--n-trials", "2"],
                               cwd=tmp_path, env=subprocess_env, capture_output=True, text=True,
                               timeout=600, check=False)  # fmt: skip
        assert again.returncode == 0, again.stderr[-3000:]
        study = optuna.load_study(study_name="lost", storage=storage.url)
        trials = study.get_trials(deepcopy=False)
        # The storage may break between Optuna's ask and the driver's claim (its ATTR_DRIVER):
        # such a trial names no driver, so a search cannot tell it from a live driver's just
        # asked one until the grace period has passed; then it is failed and queued again.
        unclaimed = [t for t in trials if t.state == TrialState.RUNNING]
        assert len(unclaimed) <= 1 and not any(t.user_attrs for t in unclaimed), unclaimed
        assert recover_stale(study, grace_period=3600, max_retry=2) == []  # too young yet
        assert recover_stale(study, grace_period=0, max_retry=2) == [t.number for t in unclaimed]
        trials = study.get_trials(deepcopy=False)
        assert not [t for t in trials if t.state == TrialState.RUNNING]
        for number, (state, values) in done.items():  # what finished before is untouched
            assert (trials[number].state, trials[number].values) == (state, values)
        new = [t for t in trials if t.state == TrialState.COMPLETE and t.number not in done]
        assert len(new) >= 2
        cut = [t for t in trials if t.user_attrs.get("error") == "the search process running it died"]
        if cut:  # the trial the loss interrupted: failed by the resume, its copy re-queued
            assert "re-queued" in again.stdout
    finally:
        storage.close()


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize("to", ["process", "group"])
def test_sigterm_is_ctrl_c_and_local_ray_listens_on_loopback_only(to, tmp_path, subprocess_env):
    spec = tmp_path / "term.yaml"
    spec.write_text("name: term\n" + COST_ONLY)
    url = f"sqlite:///{tmp_path / 'term.db'}"
    env = {**subprocess_env, "TMPDIR": "/tmp"}
    with reaped(start_search([str(spec), url, "--n-trials", "500"], tmp_path, env)) as proc:
        wait_for(lambda: len(finished(url, "term")) >= 2, 300, "two trials", proc)
        pids = group_pids(proc.pid)
        ports = listening(pids)
        assert len(pids) >= 3 and ports  # driver, GCS, raylet, workers ... and their ports
        assert [p for p in ports if not is_loopback(p[1])] == [], ports
        run_dirs = [d for d in Path("/tmp").glob("unetmm-run-*")
                    if (d / "owner").read_text().rsplit(":", 2)[1] == str(proc.pid)]  # fmt: skip
        assert len(run_dirs) == 1 and list(run_dirs[0].glob("ray/session_*"))

        if to == "process":  # the driver only, as `kill PID` does
            os.kill(proc.pid, signal.SIGTERM)
        else:  # every process of the job, Ray's included
            os.killpg(proc.pid, signal.SIGTERM)
        out, err = proc.communicate(timeout=180)
        assert proc.returncode == 130, err[-3000:]
        assert err.strip().splitlines() == [STOPPING]  # no stack dump, no traceback
        assert "interrupted: the same command resumes the study" in out
        assert settle(proc.pid) == []
        assert not run_dirs[0].exists()
    study = optuna.load_study(study_name="term", storage=url)
    trials = study.get_trials(deepcopy=False)
    assert not [t for t in trials if t.state == TrialState.RUNNING]
    cut = [t for t in trials if t.state == TrialState.FAIL]
    assert all(t.user_attrs["error"] == INTERRUPTED for t in cut)
    assert len([t for t in trials if t.state == TrialState.WAITING]) == len(cut)
