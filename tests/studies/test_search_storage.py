"""The study storage suite, run on a SQLite file and on a PostgreSQL server: opening, creating
and resuming studies, reference points, how the searcher turns trial outcomes into Optuna
states (stopped and infeasible trials never in the front), and crash recovery.

The searcher tests drive ``StudySearcher`` the way Ray Tune does (suggest, results, complete)
with results shaped like the worker's; ``test_search_run.py`` runs the real thing on Ray.
"""

from __future__ import annotations

import subprocess
import sys
import time

import optuna
import pytest
from optuna.trial import TrialState

from nas.errors import ConfigError
from studies import schema
from studies.artifacts import trial_data
from studies.search.driver import Queued, enqueue_references, prepare_study
from studies.search.heartbeat import Heartbeat, driver_id
from studies.search.protocol import ARCH_KEY, NUMBER_KEY
from studies.search.recovery import recover_stale
from studies.search.samplers import make_sampler
from studies.search.searcher import StudySearcher
from studies.spec import parse_spec
from studies.storage import open_storage

optuna.logging.set_verbosity(optuna.logging.WARNING)

SPEC = {
    "name": "suite",
    "objectives": ["psnr", "m_sc", "macs"],
    "constraints": ["m_sc <= 1 MiB", "psnr >= 21"],
    "proxy": {"budget": {"steps": 100, "eval_every": 50}},
    "early_stopping": {"grace_steps": 50},
}


def spec(**changes):
    return parse_spec({**SPEC, **changes}, "")


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("postgresql+psycopg://postgres:pw@127.0.0.1:1/x", "cannot reach postgresql+psycopg://postgres:***@127.0.0.1:1/x"),
        ("sqlite:////no/such/folder/s.db", "folder '/no/such/folder'"),
        ("oracle://u@h/x", "names the oracle backend; unetmm keeps studies in SQLite"),
    ],
)
def test_unreachable_storage_fails_fast_with_one_line(url, message):
    t0 = time.perf_counter()
    with pytest.raises(ConfigError) as info:
        open_storage(url)
    assert message in str(info.value) and "\n" not in str(info.value)
    assert time.perf_counter() - t0 < 30  # a connect timeout, not minutes of retries


def test_create_then_resume_a_study(storage_url):
    storage = open_storage(storage_url)
    study = prepare_study(spec(), "s1", storage)
    assert [d.name for d in study.directions] == ["MAXIMIZE", "MINIMIZE", "MINIMIZE"]
    assert study.user_attrs["objectives"] == ["psnr", "m_sc", "macs"]
    assert study.user_attrs["spec"]["constraints"] == ["m_sc <= 1 MiB", "psnr >= 21"]
    assert study.user_attrs["fingerprint"] == spec().fingerprint
    assert study.user_attrs["comparable"]["proxy.budget"]["steps"] == 100
    again = prepare_study(spec(), "s1", open_storage(storage_url))
    assert again._study_id == study._study_id
    with pytest.raises(ConfigError, match="objectives: study 's1' in this storage optimises"):
        prepare_study(spec(objectives=["psnr", "params"]), "s1", storage)


def test_resume_refuses_a_spec_whose_results_would_not_compare(storage_url):
    storage = open_storage(storage_url)
    prepare_study(spec(), "fp", storage)
    # what does not change results may change between runs
    free = spec(n_trials=3, concurrency=1, sampler="random", storage="sqlite:///elsewhere.db",
                space={"bounds": {"iem_depth": [0, 0]}}, constraints=["m_sc <= 2 MiB"],
                proxy={"budget": {"steps": 100, "eval_every": 50}, "data": {"cache_mb": 0}},
                target={"backbone": {"name": "nafnet", "width": 32}})  # the preset, spelled out
    prepare_study(free, "fp", storage)
    cases = [
        ({"proxy": {"budget": {"steps": 200, "eval_every": 50}}}, "proxy.budget.steps: ",
         "proxy.budget.steps 100 -> 200"),
        ({"target": {"input_size": 128}}, "target.input_size: ", "[256, 256] -> [128, 128]"),
        ({"target": {"bits": 16}}, "target.bits: ", "target.bits 8 -> 16"),
        ({"proxy": {"budget": {"steps": 100, "eval_every": 50}, "task": {"sigma": 50}}},
         "proxy.task.sigma: ", "25"),
        ({"seed": 1}, "seed: ", "seed 0 -> 1"),
    ]  # fmt: skip
    for changes, field, detail in cases:
        with pytest.raises(ConfigError) as info:
            prepare_study(spec(**changes), "fp", storage)
        text = str(info.value)
        assert text.startswith(field) and detail in text and "--study-name NEW" in text, text
        assert "\n" not in text


def test_a_study_from_before_fingerprints_is_checked_against_its_stored_spec(storage_url):
    storage = open_storage(storage_url)
    old = optuna.create_study(study_name="old", storage=storage,
                              directions=["maximize", "minimize", "minimize"])  # fmt: skip
    old.set_user_attr("objectives", ["psnr", "m_sc", "macs"])
    old.set_user_attr("spec", spec().model_dump(mode="json"))
    with pytest.raises(ConfigError, match="seed 0 -> 5"):
        prepare_study(spec(seed=5), "old", storage)
    assert prepare_study(spec(), "old", storage).user_attrs["fingerprint"] == spec().fingerprint


def test_a_study_that_named_its_backbone_nafnet_sidd_resumes_under_the_new_name(storage_url):
    """0.1 stored ``target.backbone: nafnet-sidd``; the preset now says ``nafnet-w32``. The
    fingerprint hashes the resolved backbone, so the study resumes, and its stored spec reads."""
    from studies.spec import StudySpec, load_spec

    storage = open_storage(storage_url)
    preset = load_spec("nafnet_sidd")
    old_spec = preset.model_dump(mode="json")
    old_spec["target"]["backbone"] = "nafnet-sidd"
    assert preset.target.backbone == "nafnet-w32"
    old = optuna.create_study(study_name="v01", storage=storage,
                              directions=["maximize", "minimize", "minimize"])  # fmt: skip
    old.set_user_attr("objectives", ["psnr", "m_sc", "macs"])
    old.set_user_attr("spec", old_spec)
    old.set_user_attr("fingerprint", StudySpec.model_validate(old_spec).fingerprint)
    assert old.user_attrs["fingerprint"] == preset.fingerprint == "7ef66f69ea4de55a"
    assert prepare_study(preset, "v01", storage).user_attrs["fingerprint"] == preset.fingerprint


def test_reference_points_are_queued_once(storage_url):
    s = spec(space={"points": [{"name": "subset", "stages": [2]}]})
    study = prepare_study(s, "refs", open_storage(storage_url))
    assert enqueue_references(study, s, room=2) == Queued(["full", "none"], ["unetmm", "point0"], [])
    assert enqueue_references(study, s).queued == ["unetmm", "point0"]
    assert enqueue_references(study, s) == Queued([], [], [])  # a resumed study: no second copy
    waiting = study.get_trials(states=(TrialState.WAITING,))
    assert [t.user_attrs["reference"] for t in waiting] == ["full", "none", "unetmm", "point0"]


def test_references_the_space_cannot_express_are_named(tmp_path):
    s = spec(space={"name": "unetmm"})
    study = prepare_study(s, "only", open_storage(f"sqlite:///{tmp_path / 'o.db'}"))
    done = enqueue_references(study, s, room=0)
    assert done == Queued([], ["unetmm"], ["full", "none"])
    assert done.messages("unetmm", 4) == [
        "reference point(s) ['full', 'none'] skipped: space 'unetmm' cannot express them with "
        "these bounds",
        "reference point(s) ['unetmm'] wait for a later run: this run's 4 trial(s) go to the "
        "queued ones first",
    ]


def _searcher(study_spec, storage_url, name, **kw):
    storage = open_storage(storage_url)
    prepare_study(study_spec, name, storage)
    heartbeat = Heartbeat(storage, 60).start()
    events = []
    searcher = StudySearcher(study_spec, name, storage, make_sampler("random", 0, {}), heartbeat,
                             lambda event, trial: events.append((event, trial.number)), **kw)  # fmt: skip
    return searcher, heartbeat, events


def _costs(m_sc, macs=16e9):
    return {"phase": "costs", "m_sc_bytes": m_sc, "macs_fvcore": macs, "macs_paper": macs,
            "params": 29_000_000, "peak_activation_bytes": 50_000_000, "bits": 8,
            "input_size": [256, 256], "m_sc_timeline": [["E1", m_sc]], "cost_engine": "meta",
            "seconds_cost": 0.2, "t_start_unix": 100.0}  # fmt: skip


def _final(status, **metrics):
    return {"phase": "final", "status": status, "seconds": 9.0, "t_start_unix": 100.0,
            "t_end_unix": 109.0, **{("psnr_db" if k == "psnr" else k): v for k, v in metrics.items()}}  # fmt: skip


def subset(*stages):
    """Params of the subset design keeping ``stages`` (NAFNet-w32 at 256x256, 8 bit: E1 2 MiB,
    E2 1 MiB, E3 0.5 MiB, E4 0.25 MiB of skip memory)."""
    return {"design": "subset", **{f"subset.s{i}": i in stages for i in range(1, 5)}}


def test_outcomes_map_to_states_and_only_complete_feasible_trials_form_the_front(storage_url):
    s = spec()
    searcher, heartbeat, events = _searcher(s, storage_url, "outcomes")
    study = searcher.study
    for stages in ((4,), (3,), (1,), (3, 4), (2,), ()):  # (1,): 2 MiB, over the 1 MiB limit
        study.enqueue_trial(subset(*stages))
    ids = [f"t{i}" for i in range(5)]
    configs = [searcher.suggest(i) for i in ids]
    assert all(ARCH_KEY in c for c in configs)
    assert [c[NUMBER_KEY] for c in configs] == [0, 1, 3, 4, 5]  # trial 2 cost no Ray trial
    # t0: trained to the end, feasible
    searcher.on_trial_result("t0", _costs(262_144))
    for step, psnr in ((50, 21.5), (100, 22.0)):
        searcher.on_trial_result("t0", {"phase": "train", "step": step, "val_psnr": psnr})
    searcher.on_trial_complete("t0", _final("complete", psnr=22.0, ssim=0.6, curve=[[50, 21.5], [100, 22.0]]))
    # t1: stopped early at step 50 with a PSNR that would dominate t0 (no final report)
    searcher.on_trial_result("t1", _costs(1000))
    searcher.on_trial_complete("t1", {"phase": "train", "step": 50, "val_psnr": 35.0})
    # t2: the worker died (Ray error, no final result)
    searcher.on_trial_result("t2", _costs(1000))
    searcher.on_trial_complete("t2", None, error=True)
    # t3: trained, but breaks the accuracy constraint psnr >= 21 (soft: COMPLETE, infeasible)
    searcher.on_trial_result("t3", _costs(0, 15e9))
    searcher.on_trial_complete("t3", _final("complete", psnr=20.4, ssim=0.5))
    # t4: a NaN score is a failure, not a value
    searcher.on_trial_result("t4", _costs(1000))
    searcher.on_trial_complete("t4", _final("complete", psnr=float("nan"), ssim=0.5))

    trials = study.get_trials()
    C, P, F, W = TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL, TrialState.WAITING
    # t3's worker died: lost, and its design queued again at once (trial 6)
    assert [t.state for t in trials] == [C, P, C, F, C, F, W]
    retry = trials.pop()
    assert retry.user_attrs["retry_of"] == trials[3].number and retry.params == trials[3].params
    assert searcher.lost_numbers() == [trials[3].number]
    assert [t.user_attrs["status"] for t in trials] == [
        "complete", "stopped", "infeasible", "failed", "complete", "failed"]  # fmt: skip
    t0, t1, t2, t3, t4, t5 = trials
    assert t0.values == [22.0, 262_144, 16e9]
    assert schema.trial_constraints(t0) == {"m_sc <= 1 MiB": -0.75, "psnr >= 21": -1.0}
    assert t0.system_attrs["constraints"] == [-0.75, -1.0]  # the list optuna-dashboard reads
    assert trial_data(study, t0)["arch"]["skip"] == {"name": "subset", "stages": [4]}
    assert "arch" not in t0.user_attrs and "curve" not in t0.user_attrs
    assert t0.user_attrs["design"] == "subset [4]" and t0.user_attrs["seconds"] == 9.0
    assert t1.values is None and trial_data(study, t1)["curve"] == [[50, 35.0]]
    assert (t1.user_attrs["val_step"], t1.user_attrs["val_psnr_db"]) == (50, 35.0)
    assert "psnr_db" not in t1.user_attrs
    # t2: costed in the driver, never trained: real costs, worst PSNR, a positive constraint
    assert t2.values == [float("-inf"), 2 * 2**20, t2.user_attrs["macs_fvcore"]]
    assert t2.constraints["m_sc <= 1 MiB"] == pytest.approx(1.0) and "psnr_db" not in t2.user_attrs
    assert t2.user_attrs["broken"] == ["m_sc <= 1 MiB"] and t2.user_attrs["seconds_cost"] > 0
    assert "m_sc_timeline" in trial_data(study, t2) and "m_sc_timeline" not in t2.user_attrs
    assert "died" in t3.user_attrs["error"]
    assert t4.constraints["psnr >= 21"] == pytest.approx(0.6)
    assert "not finite" in t5.user_attrs["error"]
    assert [t.number for t in study.best_trials] == [0]  # not stopped, not t2 nor t4
    assert ("reject", 2) in events and events.count(("finish", 1)) == 1 and len(events) == 12
    assert searcher.judged_numbers() == [0, 1, 4, 5] and searcher.told_numbers() == list(range(6))
    assert heartbeat.live == set()
    heartbeat.stop()


def test_recovery_fails_and_requeues_only_stale_trials(storage_url):
    storage = open_storage(storage_url)
    study = prepare_study(spec(), "crash", storage)
    x = {"x": optuna.distributions.FloatDistribution(0, 1)}
    done = study.ask(x)
    study.tell(done, [20.0, 1.0, 1.0])

    def running(driver, reference=None):
        t = study.ask(x)
        for key, value in (("driver", driver), ("reference", reference), ("m_sc_bytes", 7),
                           ("design", "full"), ("fingerprint", "f")):  # fmt: skip
            if value is not None:
                t.set_user_attr(key, value)
        storage.record_heartbeat(t._trial_id)
        return t

    gone = subprocess.run([sys.executable, "-c", "from studies.search.heartbeat import driver_id; "
                           "print(driver_id())"], capture_output=True, text=True, check=True)  # fmt: skip
    dead = running(gone.stdout.strip(), reference="full")  # its search process has exited
    alive = running(driver_id())  # this process: still running it
    remote = running("other-host:123:456")  # another machine: judged by heartbeat
    orphan = study.ask(x)  # its driver died right after ask: no driver, no heartbeat
    recovered = recover_stale(study, grace_period=2, max_retry=1)
    assert recovered == [dead.number]  # the orphan is younger than the grace period
    time.sleep(3.5)  # the remote trial's heartbeat goes stale; ours is not renewed either
    storage.record_heartbeat(alive._trial_id)  # (our driver's heartbeat thread would do this)
    recovered = recover_stale(study, grace_period=2, max_retry=1)
    assert recovered == [remote.number, orphan.number]
    by_number = {t.number: t for t in study.get_trials()}
    assert by_number[done.number].state == TrialState.COMPLETE
    assert by_number[alive.number].state == TrialState.RUNNING
    errors = {
        dead.number: "the search process running it died",
        remote.number: "its search process stopped beating (heartbeat older than 2 s)",
        orphan.number: "its search process died before claiming it (no driver, no heartbeat "
        "after 2 s)",
    }
    for number, error in errors.items():
        failed = by_number[number]
        assert failed.state == TrialState.FAIL
        assert (failed.user_attrs["status"], failed.user_attrs["error"]) == ("failed", error)
    waiting = study.get_trials(states=(TrialState.WAITING,))
    assert [t.params for t in waiting] == [by_number[n].params for n in errors]
    assert [t.user_attrs for t in waiting] == [  # clean copies: params, reference, retry link
        {"retry_of": dead.number, "reference": "full"},
        {"retry_of": remote.number},
        {"retry_of": orphan.number},
    ]
    assert waiting[0].system_attrs["failed_trial"] == dead.number  # Optuna's retry bookkeeping
    # max_retry=1: a retry that goes stale again is failed but not queued a third time
    again = study.ask(x)
    assert again.number == waiting[0].number
    storage.set_trial_user_attr(again._trial_id, "driver", gone.stdout.strip())
    assert recover_stale(study, grace_period=2, max_retry=1) == [again.number]
    assert len(study.get_trials(states=(TrialState.WAITING,))) == 2


def test_losing_the_race_to_create_the_artifact_table_is_no_error(storage_url, monkeypatch):
    """Drivers starting together on a new database: one creates ``unetmm_artifacts`` between
    another's existence check and its CREATE. That one gets the database's own error (a unique
    violation on PostgreSQL, "already exists" on SQLite) and still writes its artifact."""
    import sqlalchemy as sa

    from studies import artifacts

    storage = open_storage(storage_url)
    store = artifacts.artifact_store(storage)
    create_all = artifacts._META.create_all

    def raced(engine, checkfirst=True):  # the other driver wins right after our check
        create_all(engine, checkfirst=True)
        create_all(engine, checkfirst=False)  # our CREATE: the table is there now

    monkeypatch.setattr(artifacts._META, "create_all", raced)
    with pytest.raises(sa.exc.DBAPIError):
        raced(store.engine)  # the database really refuses the second CREATE
    store.write_many({"a": b"body"})
    assert store.read_many(["a"]) == {"a": b"body"}
