"""Several drivers on one study (the Optuna way to scale out; a team sharing PostgreSQL): the
study and its tables are created once, references are queued once, each run samples with its
own seed, no design is trained twice, and N drivers of M trials each judge N*M designs. A
reference that failed for an infrastructure reason is queued again, a bounded number of times.
On a SQLite file and a fresh PostgreSQL database, with real processes.
"""

from __future__ import annotations

import collections
import multiprocessing
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import yaml
from optuna.trial import TrialState

from studies import compat
from studies.search import claims
from studies.search.driver import Queued, enqueue_references, prepare_study
from studies.spec import parse_spec
from studies.storage import open_storage

optuna.logging.set_verbosity(optuna.logging.WARNING)
REFS = ("full", "none", "unetmm")
SPEC = {"name": "many", "recovery": {"grace_period": 4, "max_retry": 1}}
# cost-only (no training): each trial is a costing, so many drivers stay quick. At 64x64 the
# skips of NAFNet-w32 hold E1 128 KiB, E2 64 KiB, E3 32 KiB, E4 16 KiB at 8 bit.
COST_ONLY = {
    "name": "many",
    "target": {"input_size": 64},
    "objectives": ["m_sc", "macs"],
    "constraints": ["m_sc <= 64 KiB"],
    "sampler": "random",
    "concurrency": 1,
}


def _start_driver(url: str, barrier, out) -> None:
    """A driver's start, from a fresh process: open the storage, create or load the study,
    queue the references; all drivers pass ``barrier`` together first."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    spec = parse_spec(SPEC, "")
    barrier.wait(timeout=120)
    try:
        study = prepare_study(spec, "many", open_storage(url))
        out.put(("ok", enqueue_references(study, spec).queued))
    except Exception as exc:  # noqa: BLE001  (reported to the test)
        out.put(("error", f"{type(exc).__name__}: {exc}"))


@pytest.mark.parametrize("n", [2, 4])
def test_drivers_starting_together_create_the_study_and_queue_references_once(storage_url, n):
    ctx = multiprocessing.get_context("fork")  # the children only talk to the database
    barrier, out = ctx.Barrier(n), ctx.Queue()
    procs = [ctx.Process(target=_start_driver, args=(storage_url, barrier, out)) for _ in range(n)]
    for p in procs:
        p.start()
    results = [out.get(timeout=300) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    assert [r for r in results if r[0] == "error"] == []  # no UniqueViolation, no half study
    queued = [name for _, names in results for name in names]
    assert sorted(queued) == sorted(REFS)  # each reference queued by exactly one driver
    study = optuna.load_study(study_name="many", storage=storage_url)
    waiting = study.get_trials(states=(TrialState.WAITING,))
    assert sorted(t.user_attrs["reference"] for t in waiting) == sorted(REFS)
    assert study.user_attrs["objectives"] == ["psnr", "m_sc", "macs"]


def test_runs_claim_their_own_index_and_seed(storage_url):
    spec = parse_spec(SPEC, "")
    study = prepare_study(spec, "many", open_storage(storage_url))
    runs = [claims.claim_run(study, f"driver{i}") for i in range(3)]
    assert runs == [0, 1, 2]
    seeds = [claims.run_seed(7, r) for r in runs]
    assert seeds[0] == 7 and len(set(seeds)) == 3 and seeds == [claims.run_seed(7, r) for r in runs]


def test_a_queued_trial_popped_by_two_drivers_runs_in_one(storage_url):
    """SQLite has no row lock: two drivers' ``study.ask()`` can both pop the same WAITING trial
    (seen in CI with 4 drivers). The queued-trial claim leaves it to exactly one of them; a
    trial that ``ask`` created is always the asker's."""
    spec = parse_spec(SPEC, "")
    study = prepare_study(spec, "many", open_storage(storage_url))
    study.enqueue_trial({"design": "full"})
    popped = study.ask()
    twin = optuna.Trial(study, compat.trial_id(popped))  # what the second driver's pop returns
    assert claims.claim_queued(study, popped, "driver0")
    assert not claims.claim_queued(study, twin, "driver1")
    assert claims.claim_queued(study, study.ask(), "driver1")  # a fresh trial: no claim needed
    assert list(claims.claims(study, claims.QUEUED)) == [f"{claims.QUEUED}{compat.trial_id(popped)}"]


def test_a_reference_failed_by_infrastructure_is_queued_again_bounded(storage_url):
    spec = parse_spec(SPEC, "")  # max_retry 1: queued at most twice
    study = prepare_study(spec, "many", open_storage(storage_url))
    assert enqueue_references(study, spec).queued == list(REFS)

    def run_waiting(error: str | None) -> None:
        """Ask every queued trial; a worker that dies for ``full``, a finished run otherwise."""
        for _ in range(len(study.get_trials(states=(TrialState.WAITING,)))):
            trial = study.ask()
            if trial.user_attrs["reference"] == "full" and error:
                trial.set_user_attr("status", "failed")
                trial.set_user_attr("error", error)
                study.tell(trial, state=TrialState.FAIL)
            else:
                study.tell(trial, [25.0, 1.0, 1.0])

    died = "the trial's worker raised or died before reporting (see the Ray logs)"
    run_waiting(died)
    assert enqueue_references(study, spec) == Queued([], [], [])  # claimed 0 s ago: wait
    time.sleep(4.2)  # older than recovery.grace_period (4 s): a later run queues it again
    assert enqueue_references(study, spec).queued == ["full"]
    run_waiting(died)
    time.sleep(4.2)
    assert enqueue_references(study, spec) == Queued([], [], [], ["full"])  # bounded
    # a reference that failed for its own reason (an exception in its training) is not retried
    other = prepare_study(spec, "own", open_storage(storage_url))
    enqueue_references(other, spec)
    for _ in range(3):
        trial = other.ask()
        trial.set_user_attr("error", "TrainingDiverged: loss is nan (loop.py:88)")
        other.tell(trial, state=TrialState.FAIL)
    time.sleep(4.2)
    assert enqueue_references(other, spec) == Queued([], [], [])


def _driver_cmd(spec_path: Path, url: str, n_trials: int, address: str) -> list[str]:
    return [sys.executable, "-m", "studies.cli", "search", str(spec_path), "--storage", url,
            "--n-trials", str(n_trials), "--ray-address", address]  # fmt: skip


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.parametrize("n", [2, 4])
def test_n_drivers_of_m_trials_judge_n_times_m_distinct_designs(
    n, storage_url, tmp_path, subprocess_env, ray_head
):
    m = 3
    spec_path = tmp_path / "many.yaml"
    spec_path.write_text(yaml.safe_dump(COST_ONLY))
    env = {**subprocess_env, **ray_head.env}
    procs = [subprocess.Popen(_driver_cmd(spec_path, storage_url, m, ray_head.address), env=env,
                              cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True) for _ in range(n)]  # fmt: skip
    outputs = [p.communicate(timeout=800)[0] for p in procs]
    assert [p.returncode for p in procs] == [0] * n, "\n\n".join(o[-3000:] for o in outputs)
    assert all(f"{m} design(s) judged this run" in o for o in outputs), outputs
    study = optuna.load_study(study_name="many", storage=storage_url)
    trials = study.get_trials()
    assert all(t.state.is_finished() for t in trials)
    assert not [t for t in trials if t.state == TrialState.FAIL]  # no error
    judged = [t for t in trials if t.user_attrs["status"] == "complete"
              and "copy_of" not in t.user_attrs]  # fmt: skip
    assert len(judged) == n * m  # N drivers x M trials each
    designs = collections.Counter(t.user_attrs["arch_key"] for t in judged)
    assert max(designs.values()) == 1  # no design costed (trained) twice
    refs = collections.Counter(t.user_attrs.get("reference") for t in trials)
    assert {r: refs[r] for r in REFS} == dict.fromkeys(REFS, 1)  # queued once per study
    runs = claims.claims(study, claims.RUN)
    assert len(runs) == n  # each run its own index, hence its own sampler seed
    for t in trials:
        if t.user_attrs.get("copy_of") is not None:  # a copy has its source's results
            source = trials[t.user_attrs["copy_of"]]
            assert t.state == TrialState.PRUNED and "copy_of" not in source.user_attrs
            keys = ("m_sc_bytes", "macs_fvcore", "arch_key")
            assert [t.user_attrs[k] for k in keys] == [source.user_attrs[k] for k in keys]
