"""Signals end a command in one line: Ctrl-C twice in its first second (while its modules
import), and SIGHUP (a closed terminal) mid-search, which stops it like SIGTERM."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import optuna

from tests.studies.conftest import child_env


def _start(args: list[str], cwd) -> subprocess.Popen:  # type: ignore[type-arg]
    return subprocess.Popen(
        [sys.executable, "-m", "studies.cli", *args], cwd=cwd, env=child_env(),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # as a terminal's
    )  # fmt: skip


def test_two_early_ctrl_c_print_interrupted_only(tmp_path) -> None:
    proc = _start(["search", "quick", "s.db"], tmp_path)
    time.sleep(0.8)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and err.strip() == "interrupted", err[-2000:]
    assert not (tmp_path / "s.db").exists()  # stopped before it made anything


def test_sighup_stops_a_search_in_one_line_and_loses_nothing(tmp_path) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text("name: hup\ntarget: {input_size: 64}\nobjectives: [m_sc, macs]\n"
                    "n_trials: 200\nconcurrency: 1\nsampler: random\n")  # fmt: skip
    url = f"sqlite:///{tmp_path / 's.db'}"
    proc = _start(["search", str(spec), "s.db"], tmp_path)
    deadline = time.time() + 120
    while time.time() < deadline:  # until a trial is done: the search is under way
        time.sleep(1)
        try:
            done = optuna.load_study(study_name="hup", storage=url).get_trials(
                states=(optuna.trial.TrialState.COMPLETE,))
        except Exception:  # noqa: BLE001 (not created yet)
            continue
        if done:
            break
    proc.send_signal(signal.SIGHUP)
    out, err = proc.communicate(timeout=120)
    lines = [line for line in err.splitlines() if line.strip()]
    assert proc.returncode == 130 and "Traceback" not in err, err[-2000:]
    assert len(lines) == 1 and lines[0].startswith("stopping: "), lines  # as SIGTERM
    assert "interrupted: the same command resumes the study" in out
    trials = optuna.load_study(study_name="hup", storage=url).get_trials()
    assert all(t.state != optuna.trial.TrialState.RUNNING for t in trials)
