"""What a proposal costs: infeasible designs and designs judged before are told at once (in the
driver, no Ray trial, so no slot of ``n_trials``), the sampler sees them, and a design is trained
by one trial of one driver only. Driven the way Ray Tune drives ``StudySearcher`` (suggest,
results, complete), on a SQLite file and a PostgreSQL database, with real costs.
"""

from __future__ import annotations

import math

import optuna
import pytest
from optuna.trial import TrialState
from ray.tune.search import Searcher

from studies import schema
from studies.results import pareto
from studies.results.report import trial_counts
from studies.search.driver import prepare_study
from studies.search.heartbeat import Heartbeat
from studies.search.protocol import ARCH_KEY, NUMBER_KEY
from studies.search.samplers import make_sampler
from studies.search.searcher import StudySearcher
from studies.spec import parse_spec
from studies.storage import open_storage

optuna.logging.set_verbosity(optuna.logging.WARNING)
MIB = 2**20
SPEC = {
    "name": "proposals",
    "objectives": ["psnr", "m_sc", "macs"],
    "constraints": ["m_sc <= 1 MiB"],
    "proxy": {"budget": {"steps": 100, "eval_every": 50}},
    "early_stopping": {"grace_steps": 50},
}


def subset(*stages):
    """Params of the subset design keeping ``stages`` (NAFNet-w32 at 256x256, 8 bit: E1 2 MiB,
    E2 1 MiB, E3 0.5 MiB, E4 0.25 MiB of skip memory)."""
    return {"design": "subset", **{f"subset.s{i}": i in stages for i in range(1, 5)}}


class Driver:
    """One search driver's searcher on the study (several may share it), as Ray drives it."""

    def __init__(self, url: str, name: str = "proposals", sampler: str = "random",
                 max_rejected: int = 50, **changes):  # fmt: skip
        self.spec = parse_spec({**SPEC, **changes}, "")
        storage = open_storage(url)
        prepare_study(self.spec, name, storage)
        self.heartbeat = Heartbeat(storage, 60).start()
        self.events: list[tuple[str, int]] = []
        self.searcher = StudySearcher(
            self.spec, name, storage, make_sampler(sampler, 0, {}), self.heartbeat,
            lambda event, trial: self.events.append((event, trial.number)),
            max_rejected_in_a_row=max_rejected,
        )  # fmt: skip
        self.study = self.searcher.study

    def train(self, ray_id: str, psnr: float | None = 24.0, m_sc: float = 0.0) -> None:
        """Finish Ray trial ``ray_id``: completed with ``psnr``, or its worker died (None)."""
        s = self.searcher
        s.on_trial_result(ray_id, {"phase": "costs", "m_sc_bytes": m_sc, "macs_fvcore": 16e9})
        if psnr is None:
            s.on_trial_complete(ray_id, None, error=True)
            return
        s.on_trial_complete(ray_id, {"phase": "final", "status": "complete", "psnr_db": psnr,
                                     "ssim": 0.7, "m_sc_bytes": m_sc, "macs_fvcore": 16e9})  # fmt: skip

    def close(self) -> None:
        self.heartbeat.stop()


@pytest.fixture
def driver(storage_url):
    d = Driver(storage_url)
    yield d
    d.close()


def test_infeasible_proposals_take_no_slot_and_the_sampler_sees_them(driver):
    study = driver.study
    for params in (subset(1), subset(1, 2), subset(4)):  # 2 MiB and 3 MiB: over 1 MiB
        study.enqueue_trial(params)
    config = driver.searcher.suggest("ray-0")
    assert config[NUMBER_KEY] == 2 and "subset" in config[ARCH_KEY]  # one Ray trial: subset [4]
    assert driver.searcher.proposals == {"infeasible": 2, "train": 1}
    driver.train("ray-0", 24.0, 0.25 * MIB)
    infeasible = study.get_trials()[:2]
    for t, m_sc in zip(infeasible, (2 * MIB, 3 * MIB)):
        # COMPLETE with measured costs, the worst PSNR and a positive constraint value: what
        # NSGA-II, NSGA-III and GP read (COMPLETE trials only) and TPE too
        assert t.state == TrialState.COMPLETE and t.user_attrs["status"] == "infeasible"
        assert t.values[0] == -math.inf and t.values[1] == m_sc
        assert schema.trial_constraints(t) == {"m_sc <= 1 MiB": pytest.approx(m_sc / MIB - 1)}
        assert t.system_attrs["constraints"] == [pytest.approx(m_sc / MIB - 1)]  # the list form
    # a sampler's constraints function (Optuna's older API) reads the stored values back
    constraints_func = lambda t: list(schema.trial_constraints(t).values())  # noqa: E731
    assert [constraints_func(t) for t in study.get_trials(states=(TrialState.COMPLETE,))] == [
        [pytest.approx(1.0)], [pytest.approx(2.0)], [pytest.approx(-0.75)]]  # fmt: skip
    # never a scored design: not in Optuna's front, nor ours, counted apart in the report
    assert [t.number for t in study.best_trials] == [2]
    points = pareto.load_points(study)
    assert [p.number for p in pareto.pareto_front(points, ("psnr", "m_sc", "macs"))] == [2]
    assert trial_counts(points)["infeasible"] == 2 and trial_counts(points)["eligible"] == 1
    assert driver.searcher.judged_numbers() == [2] and driver.searcher.told_numbers() == [0, 1, 2]
    assert ("reject", 0) in driver.events and ("finish", 2) in driver.events


def test_a_design_judged_before_is_a_copy_that_takes_no_slot(driver):
    study = driver.study
    study.enqueue_trial(subset(4))
    driver.searcher.suggest("a")
    driver.train("a", 24.5, 0.25 * MIB)
    study.enqueue_trial(subset(4))  # the same design again (the sampler repeats itself) ...
    study.enqueue_trial({"design": "subset", **{f"subset.s{i}": False for i in range(1, 5)}})
    study.enqueue_trial(subset())  # ... and `none` twice, spelled the same
    config = driver.searcher.suggest("b")
    assert config[NUMBER_KEY] == 2  # trial 1 was told at once as a copy of trial 0
    source, copy = study.get_trials()[:2]
    # PRUNED, so the sampler moves on (COMPLETE, it would weigh the design twice); the results
    # are the source's, in the attributes
    assert copy.state == TrialState.PRUNED and copy.values is None
    assert copy.user_attrs["copy_of"] == 0 and copy.user_attrs["seconds"] == 0.0
    assert copy.user_attrs["status"] == "complete" and copy.user_attrs["psnr_db"] == 24.5
    assert copy.user_attrs["m_sc_bytes"] == source.user_attrs["m_sc_bytes"]
    driver.train("b", 21.0, 0.0)
    driver.searcher.suggest("c")  # the second `none` is a copy, then the sampler's own
    trials = study.get_trials()
    assert trials[3].user_attrs["copy_of"] == 2
    assert driver.searcher.proposals["copy"] == 2 and driver.searcher.judged_numbers() == [0, 2]
    # the front lists each design once, with its count; so does Optuna's (copies are PRUNED)
    rows = pareto.distinct_front(pareto.load_points(study), ("psnr", "m_sc", "macs"))
    assert [(r.point.number, r.count) for r in rows] == [(2, 2), (0, 2)]
    assert sorted(t.number for t in study.best_trials) == [0, 2]
    assert trial_counts(pareto.load_points(study))["copies"] == 2


def test_two_drivers_never_train_one_design_twice(storage_url):
    a, b = Driver(storage_url), Driver(storage_url)
    try:
        study = a.study
        for params in (subset(4), subset(4), subset(3)):
            study.enqueue_trial(params)
        assert a.searcher.suggest("a0")[NUMBER_KEY] == 0  # a claims subset [4] ...
        assert b.searcher.suggest("b0")[NUMBER_KEY] == 2  # ... b's proposal of it waits
        assert b.searcher.parked == [1] and b.searcher.proposals["parked"] == 1
        a.train("a0", 24.5, 0.25 * MIB)
        b.train("b0", 25.0, 0.5 * MIB)  # b's next event settles its parked trial: a copy
        assert b.searcher.parked == [] and b.searcher.settle() == []
        trials = study.get_trials()
        assert trials[1].user_attrs["copy_of"] == 0 and trials[1].state == TrialState.PRUNED
        assert trials[1].user_attrs["psnr_db"] == trials[0].user_attrs["psnr_db"] == 24.5
        # a holder that fails frees the design: the parked trial claims it and trains next
        study.enqueue_trial(subset(2))
        study.enqueue_trial(subset(2))
        study.enqueue_trial(subset(3, 4))
        assert a.searcher.suggest("a1")[NUMBER_KEY] == 3
        assert b.searcher.suggest("b1")[NUMBER_KEY] == 5 and b.searcher.parked == [4]
        a.train("a1", None)  # a's worker died: lost, its design queued again (trial 6)
        assert a.searcher.lost_numbers() == [3] and a.searcher.judged_numbers() == [0]
        assert study.get_trials()[6].user_attrs["retry_of"] == 3
        assert b.searcher.suggest("b2")[NUMBER_KEY] == 4  # trained by b now, in a slot of its own
        b.train("b2", 23.0, 1.0 * MIB)
        states = [t.state for t in study.get_trials()]
        assert states[3] == TrialState.FAIL and states[4] == TrialState.COMPLETE
        # at the end of a run: a design freed by a failed holder, and no slot left to train it
        study.enqueue_trial(subset())
        study.enqueue_trial(subset())
        study.enqueue_trial(subset(3))  # a copy of trial 2
        study.enqueue_trial(a.spec.reference_params()["unetmm"])  # the paper's point (256 KiB)
        assert a.searcher.suggest("a2")[NUMBER_KEY] == 7  # the lost trial's retry: a copy of 4
        assert study.get_trials()[6].user_attrs["copy_of"] == 4
        designs = [t.user_attrs["design"] for t in study.get_trials()
                   if t.state.is_finished() and t.state != TrialState.FAIL
                   and "copy_of" not in t.user_attrs]  # fmt: skip
        assert len(designs) == len(set(designs))  # each design trained once
        assert b.searcher.suggest("b3")[NUMBER_KEY] == 10 and b.searcher.parked == [8]
        a.train("a2", None)  # lost too: queued again (trial 11)
        assert b.searcher.settle(poll=0.1) == [8]  # failed, and a clean copy queued for later
        retry = study.get_trials(states=(TrialState.WAITING,))
        assert [t.user_attrs["retry_of"] for t in retry] == [7, 8]
        assert all(t.params == subset() for t in retry)
    finally:
        a.close()
        b.close()


def test_nothing_feasible_ends_the_run_after_a_bounded_number_of_proposals(storage_url):
    d = Driver(storage_url, constraints=["macs <= 1 G"], max_rejected=6,
               target={"input_size": 64})  # small: costing 6 new designs stays quick
    try:
        assert d.searcher.suggest("a") == Searcher.FINISHED
        trials = d.study.get_trials()
        assert len(trials) == 6 and all(t.user_attrs["status"] == "infeasible" for t in trials)
        assert "6 proposals in a row" in d.searcher.stop_reason
    finally:
        d.close()


def test_a_study_from_before_with_infeasible_trials_pruned_resumes(driver):
    """Studies written before infeasible trials were COMPLETE hold them PRUNED, without values:
    they resume, their infeasible trials stay out of every front, new ones are COMPLETE."""
    study = driver.study
    old = study.ask()
    for key, value in {"status": "infeasible", "m_sc_bytes": 2 * MIB, "broken": ["m_sc <= 1 MiB"],
                       "arch": {"skip": {"name": "subset", "stages": [1]}}}.items():  # fmt: skip
        old.set_user_attr(key, value)
    old.set_constraint("m_sc <= 1 MiB", 1.0)
    study.tell(old, state=TrialState.PRUNED)
    study.enqueue_trial(subset(1))  # the same design, proposed again
    study.enqueue_trial(subset(4))
    assert driver.searcher.suggest("a")[NUMBER_KEY] == 2
    old_one, new_one = study.get_trials()[:2]
    assert (old_one.state, new_one.state) == (TrialState.PRUNED, TrialState.COMPLETE)
    assert new_one.user_attrs["status"] == "infeasible" and "copy_of" not in new_one.user_attrs
    driver.train("a", 24.0, 0.25 * MIB)
    points = pareto.load_points(study)
    assert trial_counts(points)["infeasible"] == 2
    assert [p.number for p in pareto.pareto_front(points, ("psnr", "m_sc", "macs"))] == [2]
    assert [t.number for t in study.best_trials] == [2]
