"""``unetmm search`` as a user runs it: separate processes, the quick preset, Optuna's own CLI
reading the study, user mistakes, a killed search resumed through an existing Ray head."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import yaml
from optuna.trial import TrialState

from studies.cli import main
from studies.search.driver import prepare_study
from studies.spec import parse_spec
from studies.storage import open_storage

PY = sys.executable
OPTUNA = str(Path(sys.executable).with_name("optuna"))
TRIAL_KEYS = ("m_sc_bytes", "macs_fvcore", "params", "peak_activation_bytes", "psnr_db", "ssim",
              "seconds", "design", "arch_key")  # fmt: skip


def search(*args: str, cwd: Path, env: dict, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run([PY, "-m", "studies.cli", "search", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)  # fmt: skip


def load(url: str, name: str) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=url)


def overlapping_pairs(trials: list[optuna.trial.FrozenTrial]) -> int:
    spans = [(t.user_attrs["t_start_unix"], t.user_attrs["t_end_unix"]) for t in trials
             if "t_end_unix" in t.user_attrs and t.user_attrs.get("seconds", 0) > 1]  # fmt: skip
    return sum(1 for i, a in enumerate(spans) for b in spans[i + 1:] if a[0] < b[1] and b[0] < a[1])


@pytest.mark.slow
def test_quick_preset_end_to_end_then_optuna_reads_it(tmp_path, subprocess_env):
    env = subprocess_env
    t0 = time.perf_counter()
    done = search("quick", cwd=tmp_path, env=env)
    wall = time.perf_counter() - t0
    assert done.returncode == 0, done.stderr[-3000:]
    url = f"sqlite:///{tmp_path / 'unetmm.db'}"  # the default storage in the working directory
    print(f"quick preset: {wall:.0f} s end to end\n{done.stdout}")

    # another process reads the study, as any Optuna client would: short attributes, and the
    # architecture as an Optuna artifact (its store: the study's own database)
    code = f"""
import json, os, tempfile
import optuna
from studies.artifacts import artifact_store
storage = optuna.storages.RDBStorage({url!r})
study = optuna.load_study(study_name="quick", storage=storage)
store, folder = artifact_store(storage), tempfile.mkdtemp()
def arch(trial):
    meta = next(m for m in optuna.artifacts.get_all_artifact_meta(trial, storage=storage)
                if m.filename == "arch.json")
    path = os.path.join(folder, meta.artifact_id)
    optuna.artifacts.download_artifact(artifact_store=store, artifact_id=meta.artifact_id,
                                       file_path=path)
    return json.load(open(path))["arch"]
print(json.dumps([[t.number, t.state.name, t.user_attrs, arch(t)] for t in study.trials]))
"""
    other = subprocess.run([PY, "-c", code], capture_output=True, text=True, env=env, check=True)
    rows = json.loads(other.stdout)
    judged = [a for _, _, a, _ in rows if a["status"] != "infeasible" and "copy_of" not in a]
    assert len(judged) == 8  # n_trials: infeasible proposals and copies are extra
    assert "8 design(s) judged this run" in done.stdout
    complete = [(attrs, arch) for _, state, attrs, arch in rows
                if state == "COMPLETE" and attrs["status"] == "complete"]  # fmt: skip
    assert complete
    for attrs, arch in complete:
        assert all(k in attrs for k in TRIAL_KEYS), sorted(attrs)
        assert attrs["status"] == "complete" and arch["backbone"]["width"] == 32

    listed = subprocess.run([OPTUNA, "trials", "--study-name", "quick", "--storage", url, "-f",
                             "json"], capture_output=True, text=True, env=env, check=True)  # fmt: skip
    assert len(json.loads(listed.stdout)) == len(rows)
    table = subprocess.run([OPTUNA, "trials", "--study-name", "quick", "--storage", url],
                           capture_output=True, text=True, env=env, check=True).stdout  # fmt: skip
    # 2,028 when attributes held JSON; 1,264 now (1,137 + the Ray node id each trial ran on)
    assert max(map(len, table.splitlines())) < 1320
    best = subprocess.run([OPTUNA, "best-trials", "--study-name", "quick", "--storage", url, "-f",
                           "json"], capture_output=True, text=True, env=env, check=True)  # fmt: skip
    front = {row["number"] for row in json.loads(best.stdout)}
    study = load(url, "quick")
    assert front and front == {t.number for t in study.best_trials}
    for t in study.best_trials:  # fully trained and feasible only
        assert t.state == TrialState.COMPLETE and t.user_attrs["status"] == "complete"
        assert all(v <= 0 for v in t.constraints.values())
    assert not front & {t.number for t in study.trials if t.state == TrialState.PRUNED}
    assert overlapping_pairs(study.trials) >= 1  # two 1-CPU trials ran at the same time

    # (resume: test_search_run.py on both storages; the same command again: the killed-search
    # test below)


def test_user_mistakes_give_one_line_exit_2_and_lose_nothing(tmp_path, subprocess_env, capsys):
    url = f"sqlite:///{tmp_path / 'keep.db'}"
    spec = parse_spec({"name": "keep"}, "")
    study = prepare_study(spec, "keep", open_storage(url))
    for value in (20.0, 21.0):
        trial = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
        study.tell(trial, [value, 1.0, 1.0])
    other = tmp_path / "other.yaml"
    other.write_text(yaml.safe_dump({"name": "keep", "objectives": ["psnr", "params"]}))
    same = tmp_path / "same.yaml"
    same.write_text(yaml.safe_dump({"name": "keep"}))
    cases = [
        (["quick", "--storage", "postgresql://postgres:secret@127.0.0.1:1/none"], "storage: cannot reach"),
        (["quick", "--storage", url, "--n-trials", "0"], "--n-trials: Input should be greater than or equal to 1"),
        (["quik", "--storage", url], "no such file and no such preset"),
        ([str(other), "--storage", url], "objectives: study 'keep' in this storage optimises"),
        (["quick", "--storage", url, "--ray-address", "127.0.0.1:1"], "--ray-address: nothing answers"),
        (["quick", "--storage", "sqlite://"], "storage: 'sqlite://' keeps the study in memory"),
        (["quick", "--storage", "sqlite:///:memory:"], "cannot be resumed; use a file"),
        ([str(same), "--storage", url, "--seed", "3"], "seed: study 'keep' in this storage was measured with other settings (seed 0 -> 3)"),
    ]
    for i, (args, message) in enumerate(cases):
        t0 = time.perf_counter()
        if i == 0:  # the real command line once: exit code and stderr of the process
            out = search(*args, cwd=tmp_path, env=subprocess_env, timeout=120)
            code, err = out.returncode, out.stderr
        else:  # the same entry point in this process (no interpreter start-up per case)
            code, err = main(["search", *args]), capsys.readouterr().err
        lines = err.strip().splitlines()
        assert code == 2 and len(lines) == 1, (args, err[-2000:])
        assert lines[0].startswith("error: ") and message in lines[0], lines[0]
        assert "secret" not in err
        assert time.perf_counter() - t0 < 60
    assert load(url, "keep").study_name == "keep" and optuna.get_all_study_names(url) == ["keep"]
    assert [t.values[0] for t in load(url, "keep").trials] == [20.0, 21.0]


@pytest.mark.slow
def test_killed_search_resumes_through_an_existing_ray_head(tmp_path, ray_head, subprocess_env):
    """A search joins a running Ray head (--ray-address); its driver is killed (SIGKILL) while
    two trials train; the same command resumes: the two are failed and run again, none lost."""
    spec = {
        "name": "crash",
        "proxy": {"data": {"val_limit": 1},
                  "budget": {"steps": 60, "eval_every": 30, "batch": 4, "crop": 32, "val_crop": 48}},
        "space": {"references": ["full", "none"]},
        "early_stopping": False,
        "n_trials": 2,
        "concurrency": 2,
    }  # fmt: skip
    path = tmp_path / "crash.yaml"
    path.write_text(yaml.safe_dump(spec))
    url = f"sqlite:///{tmp_path / 'crash.db'}"
    args = [PY, "-m", "studies.cli", "search", str(path), "--storage", url, "--ray-address",
            ray_head.address]  # fmt: skip
    log = open(tmp_path / "driver.log", "w")
    env = {**subprocess_env, **ray_head.env, "TMPDIR": str(tmp_path)}  # (what SIGKILL leaves)
    driver = subprocess.Popen(args, cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT,
                              start_new_session=True)  # fmt: skip
    try:
        deadline = time.time() + 240
        while time.time() < deadline:  # until both trials train (costs reported)
            time.sleep(1)
            if driver.poll() is not None:
                pytest.fail(f"driver ended early: {(tmp_path / 'driver.log').read_text()[-3000:]}")
            try:
                running = load(url, "crash").get_trials(states=(TrialState.RUNNING,))
            except KeyError:
                continue
            if len(running) == 2 and all("m_sc_bytes" in t.user_attrs for t in running):
                break
        else:
            pytest.fail("the trials never started training")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(driver.pid, signal.SIGKILL)  # the driver and only what it started
        driver.wait(timeout=60)
        log.close()
    killed = {t.number: t.params for t in load(url, "crash").trials}
    assert sorted(killed) == [0, 1]

    again = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True,
                           timeout=600)  # fmt: skip
    assert again.returncode == 0, again.stderr[-3000:]
    assert "re-queued 2 trial(s)" in again.stdout
    trials = load(url, "crash").trials
    assert [t.state for t in trials[:2]] == [TrialState.FAIL, TrialState.FAIL]
    assert all(t.user_attrs["error"] == "the search process running it died" for t in trials[:2])
    rerun = trials[2:]
    assert len(rerun) == 2 and all(t.state == TrialState.COMPLETE for t in rerun)
    assert sorted(t.user_attrs["reference"] for t in rerun) == ["full", "none"]
    assert sorted(map(str, (t.params for t in rerun))) == sorted(map(str, killed.values()))
    assert overlapping_pairs(rerun) == 1  # the cluster ran both at once
