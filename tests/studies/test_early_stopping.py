"""Early stopping's rules, fed results the way Ray Tune feeds a scheduler: the ``pareto`` rule
stops a run only when a run at least as cheap was clearly ahead at the rung; ``asha`` ranks by
PSNR alone; references are never stopped."""

from __future__ import annotations

import dataclasses

from ray.tune.schedulers import FIFOScheduler, TrialScheduler

from studies.search.early_stopping import ParetoRungs, ReferenceASHA, make_trial_scheduler, rungs
from studies.spec import parse_spec

STOP, GO = TrialScheduler.STOP, TrialScheduler.CONTINUE


@dataclasses.dataclass
class Trial:
    trial_id: str
    config: dict


def feed(scheduler, trial, m_sc, macs, curve):
    """The costs phase, then validations until the scheduler stops the run: its decisions."""
    scheduler.on_trial_add(None, trial)
    scheduler.on_trial_result(None, trial, {"phase": "costs", "m_sc_bytes": m_sc, "macs": macs})
    out = []
    for step, psnr in curve:
        out.append(scheduler.on_trial_result(None, trial, {"step": step, "val_psnr": psnr}))
        if out[-1] == STOP:
            break
    return out


def test_rungs_are_grace_times_powers_of_the_reduction_factor_up_to_the_last():
    assert rungs(100, 2, 250) == (100, 200)
    assert rungs(100, 3, 250) == (100,)
    assert rungs(50, 2, 450) == (50, 100, 200, 400)


def test_pareto_rule_stops_only_runs_a_cheaper_run_beats_by_the_margin():
    s = ParetoRungs((100, 200), ("m_sc_bytes", "macs"), margin_db=0.5)
    curve = lambda *v: list(zip((50, 100, 150, 200, 250, 300), v))
    assert feed(s, Trial("a", {}), 10, 16e9, curve(20, 25, 26, 27, 27.5, 28)) == [GO] * 6
    # costlier than a and 1 dB behind at step 100: stopped there
    assert feed(s, Trial("b", {}), 20, 16e9, curve(20, 24, 25)) == [GO, STOP]
    # 0.2 dB behind: within the margin, goes on; then 0.8 dB behind at 200: stopped
    assert feed(s, Trial("c", {}), 20, 17e9, curve(20, 24.8, 25.5, 26.2, 27)) == [GO, GO, GO, STOP]
    # cheaper in M_sc than a: a cannot stop it, however far ahead
    assert feed(s, Trial("d", {}), 5, 17e9, curve(15, 18, 19, 20, 21, 22)) == [GO] * 6
    # a reference is recorded but never stopped
    assert feed(s, Trial("r", {"reference_point": "none"}), 30, 18e9, curve(18, 19, 20, 21)) == [GO] * 4
    assert set(s.rungs[0].recorded) == {"a", "b", "c", "d", "r"}


def test_asha_rule_ranks_by_psnr_alone_and_exempts_references():
    s = ReferenceASHA(time_attr="step", metric="val_psnr", mode="max", grace_period=100,
                      reduction_factor=2, max_t=200, stop_last_trials=False)  # fmt: skip
    assert feed(s, Trial("a", {}), 10, 16e9, [(100, 25.0), (200, 27.0)]) == [GO, GO]
    # cheaper than a, but behind on PSNR: ASHA stops it anyway (what made it unfair)
    assert feed(s, Trial("cheap", {}), 0, 15e9, [(100, 20.0)]) == [STOP]
    assert feed(s, Trial("r", {"reference_point": "full"}), 0, 15e9, [(100, 19.0)]) == [GO]


def test_the_spec_chooses_the_rule():
    base = {"name": "es", "proxy": {"budget": {"steps": 300, "eval_every": 50}}}
    assert isinstance(make_trial_scheduler(parse_spec(base, "")), ParetoRungs)
    pareto = make_trial_scheduler(parse_spec({**base, "early_stopping": {"margin_db": 1}}, ""))
    assert [r.step for r in pareto.rungs] == [100, 200] and pareto.margin_db == 1
    assert pareto.cost_keys == ("m_sc_bytes", "macs")  # the study's cost objectives
    asha = parse_spec({**base, "early_stopping": {"rule": "asha"}}, "")
    assert isinstance(make_trial_scheduler(asha), ReferenceASHA)
    off = parse_spec({**base, "early_stopping": False}, "")
    assert type(make_trial_scheduler(off)) is FIFOScheduler
