"""A real two-node Ray cluster loses a node in the middle of a search (issue 28).

The head and a worker node run on this machine (``ray start``, one CPU each, token auth); the
study lives in PostgreSQL, as it would for drivers on several machines. When a trial runs on
the worker node, every process of that node is killed (a lost machine). The search must go on
on the head: the lost trial is failed with the node it ran on, its design queued again and run
in this same run without costing a slot, so the run still judges ``n_trials`` designs; the
output says so in one line per lost trial, without Ray's tracebacks. The node then comes back
(a new node id), and two drivers at once share the cluster and the study: each judges its own
designs, none is trained twice, and the new node takes trials again; then the node is lost
again under two drivers, and each still judges its designs.
"""

from __future__ import annotations

import sys
import time

import optuna
import pytest
import yaml
from optuna.trial import TrialState

from studies.search.outcome import WORKER_DIED
from tests.studies.conftest import child_env, fresh_database

PY = sys.executable
SPEC = {
    "name": "cluster",
    "proxy": {"data": {"val_limit": 1},
              "budget": {"steps": 600, "eval_every": 100, "batch": 2, "crop": 16,
                         "val_crop": 32}},
    "constraints": ["macs <= 18 G"],  # as the presets: no design of billions of weights
    "early_stopping": False,
    "n_trials": 4,  # the three reference points and one sampled design
    "concurrency": 2,
    "cpus_per_trial": 1,
    "seed": 0,
}  # fmt: skip


def _run(args: list[str], env: dict, log_path, tmp_path):
    import subprocess

    log = open(log_path, "w")
    return subprocess.Popen(args, cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True), log  # fmt: skip


def _wait_for_trial_on(node: str, url: str, drivers: list, logs: list) -> None:
    """Until a RUNNING trial of the study reports ``node`` (fails if a driver ends first)."""
    deadline = time.time() + 300
    while time.time() < deadline:
        time.sleep(0.3)
        for d, path in zip(drivers, logs):
            assert d.poll() is None, path.read_text()[-3000:]
        try:
            study = optuna.load_study(study_name="cluster", storage=url)
        except KeyError:
            continue
        running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        if any(t.user_attrs.get("node") == node for t in running):
            return
    pytest.fail(f"no trial ran on node {node}")


@pytest.mark.slow
def test_a_search_loses_a_node_and_still_judges_every_design(tmp_path, ray_cluster,
                                                             postgres_server):  # fmt: skip
    worker = ray_cluster.start_worker()
    spec_path = tmp_path / "cluster.yaml"
    spec_path.write_text(yaml.safe_dump(SPEC))
    env = {**child_env(), **ray_cluster.auth, "TMPDIR": str(tmp_path)}
    with fresh_database(postgres_server) as url:
        args = [PY, "-m", "studies.cli", "search", str(spec_path), "--storage", url,
                "--ray-address", ray_cluster.address]  # fmt: skip
        driver, log = _run(args, env, tmp_path / "run1.log", tmp_path)
        try:
            _wait_for_trial_on(worker, url, [driver], [tmp_path / "run1.log"])
            ray_cluster.kill_worker()
            assert driver.wait(timeout=900) == 0, (tmp_path / "run1.log").read_text()[-3000:]
        finally:
            if driver.poll() is None:
                driver.kill()
            log.close()
        out = (tmp_path / "run1.log").read_text()
        trials = optuna.load_study(study_name="cluster", storage=url).get_trials()
        lost = [t for t in trials if t.state == TrialState.FAIL]
        assert len(lost) == 1, out[-3000:]
        assert lost[0].user_attrs["node"] == worker and lost[0].user_attrs["error"] == WORKER_DIED
        (retry,) = [t for t in trials if t.user_attrs.get("retry_of") == lost[0].number]
        assert retry.state == TrialState.COMPLETE and retry.params == lost[0].params
        assert retry.user_attrs["node"] != worker  # re-run on the head, in the same run
        complete = [t for t in trials if t.user_attrs.get("status") == "complete"]
        assert len(complete) == SPEC["n_trials"]  # the lost trial cost no slot
        assert "4 design(s) judged this run" in out and "lost with their worker or node" in out
        assert "lost" in out and "its worker died on node" in out
        assert "Traceback" not in out and "ActorDiedError" not in out, out[-3000:]

        # the machine comes back (a new node); two drivers then share the cluster and the study
        trials_before = trials
        again = ray_cluster.start_worker()
        runs = [_run([*args, "--n-trials", "2"], env, tmp_path / f"run{i}.log", tmp_path)
                for i in (2, 3)]  # fmt: skip
        try:
            for i, (driver, _) in zip((2, 3), runs):
                assert driver.wait(timeout=900) == 0, (tmp_path / f"run{i}.log").read_text()[-3000:]
        finally:
            for driver, log in runs:
                if driver.poll() is None:
                    driver.kill()
                log.close()
        trials = optuna.load_study(study_name="cluster", storage=url).get_trials()
        new = [t for t in trials[len(trials_before):] if t.user_attrs.get("status") == "complete"
               and "copy_of" not in t.user_attrs]  # fmt: skip
        assert len(new) == 4  # 2 designs judged by each driver
        keys = [t.user_attrs["arch_key"] for t in trials
                if t.user_attrs.get("status") == "complete" and "copy_of" not in t.user_attrs]
        assert len(keys) == len(set(keys))  # no design trained twice, over all three runs
        assert again in {t.user_attrs["node"] for t in new}  # the node is used again

        # two drivers at once, and the node is lost again under them
        trials_before = trials
        runs = [_run([*args, "--n-trials", "2"], env, tmp_path / f"run{i}.log", tmp_path)
                for i in (4, 5)]  # fmt: skip
        logs = [tmp_path / "run4.log", tmp_path / "run5.log"]
        try:
            _wait_for_trial_on(again, url, [d for d, _ in runs], logs)
            ray_cluster.kill_worker()
            for (driver, _), path in zip(runs, logs):
                assert driver.wait(timeout=900) == 0, path.read_text()[-3000:]
        finally:
            for driver, log in runs:
                if driver.poll() is None:
                    driver.kill()
                log.close()
        outs = [path.read_text() for path in logs]
        assert all("2 design(s) judged this run" in out for out in outs), outs[0][-2000:]
        trials = optuna.load_study(study_name="cluster", storage=url).get_trials()
        later = trials[len(trials_before):]
        lost = [t for t in later if t.state == TrialState.FAIL]
        assert lost and all(t.user_attrs["node"] == again for t in lost)
        assert sum("lost with their worker or node" in out for out in outs) >= 1
        keys = [t.user_attrs["arch_key"] for t in trials
                if t.user_attrs.get("status") == "complete" and "copy_of" not in t.user_attrs]
        assert len(keys) == len(set(keys)) == SPEC["n_trials"] + 4 + 4  # none twice, none lost
