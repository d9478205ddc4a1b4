"""A real search on Ray (2 local CPUs) into a SQLite file and a PostgreSQL database: real
costs, real proxy training, real ASHA; then a resume.

With one trial at a time the three reference points take three known paths: full skips train
to the end and set ASHA's bar at step 30; no skips fall below it and are stopped; the paper's
UNet-- (29.9 M params) breaks ``params <= 29.5 M`` and is costed in the driver, not trained,
and takes none of the run's ``n_trials``. The first run has room for two trials only: UNet--
waits (not queued) for the resume, which judges two more designs besides it.
"""

from __future__ import annotations

import math

import optuna
import pytest
from optuna.trial import TrialState

from studies import schema
from studies.artifacts import trial_data
from studies.metrics import cost_metrics, get_metric
from studies.schema import TIME_KEYS
from studies.search.driver import run_search
from studies.spec import parse_spec

TINY = {
    "name": "tiny",
    "target": {"backbone": "nafnet-w32", "input_size": 256, "bits": 8},
    "proxy": {
        "data": {"val_limit": 1},
        "budget": {"steps": 60, "eval_every": 30, "batch": 4, "crop": 32, "val_crop": 48},
    },
    "constraints": ["params <= 29.5 M"],
    "early_stopping": {"rule": "asha", "grace_steps": 30, "reduction_factor": 2,
                       "exempt_references": False},
    "n_trials": 2,
    "score_cache": False,  # ASHA must see every run's curve (a cached score reports none)
    "concurrency": 1,
    "cpus_per_trial": 1,
    "seed": 0,
}


@pytest.mark.slow
def test_search_statuses_front_and_resume(storage_url, local_ray):
    spec = parse_spec(TINY, "")
    first = run_search(spec, storage_url)
    assert (first.trials_before, first.trials_after, first.run_trials) == (0, 2, [0, 1])
    assert first.judged == [0, 1] and first.run_index == 0 and first.seed == 0
    study = optuna.load_study(study_name="tiny", storage=storage_url)
    assert first.waiting == 0 and len(study.get_trials()) == 2  # nothing left WAITING
    assert [t.number for t in study.best_trials] == first.front == [0]  # not the stopped one

    # resume: the same spec on the same storage adds n_trials, changes nothing before
    before = {t.number: (t.state, t.values, t.user_attrs) for t in study.get_trials()}
    again = run_search(spec, storage_url)
    # the infeasible UNet-- and any infeasible proposal or copy cost no trial: 2 judged
    assert len(again.judged) == 2 and again.run_index == 1 and again.seed != 0
    assert again.trials_after == 2 + len(again.run_trials) >= 5
    assert again.not_trained.get("infeasible", 0) >= 1
    trials = optuna.load_study(study_name="tiny", storage=storage_url).get_trials()
    assert all(t.state.is_finished() for t in trials)
    assert {t.number: (t.state, t.values, t.user_attrs) for t in trials[:2]} == before
    full, none, unetmm = trials[:3]
    sampled = trials[again.judged[-1]]
    assert [t.user_attrs["reference"] for t in (full, none, unetmm)] == ["full", "none", "unetmm"]

    assert full.state == TrialState.COMPLETE and full.user_attrs["status"] == "complete"
    study = optuna.load_study(study_name="tiny", storage=storage_url)
    a = trial_data(study, full)  # user attributes and the trial's artifacts
    assert not set(full.user_attrs) & set(schema.BULKY_KEYS)  # optuna trials rows stay short
    assert full.values == [a["psnr_db"], a["m_sc_bytes"], a["macs_fvcore"]]
    assert a["m_sc_bytes"] == 3 * 2**20 + 3 * 2**18  # 3.75 MiB: NAFNet-w32 skips at 8 bit
    assert a["params"] == 29_159_715 and a["steps"] == 60
    assert a["psnr_db"] > a["input_psnr_db"] + 1  # the proxy learned something
    assert [s for s, _ in a["curve"]] == [30, 60]
    for key in (*(m.key for m in cost_metrics()), *TIME_KEYS, "ssim", "arch", "proxy_arch", "design", "driver"):
        assert key in a, key
    assert a["fingerprint"] == spec.fingerprint == study.user_attrs["fingerprint"]
    assert a["proxy_arch"]["backbone"]["width"] == 16 and a["t_end_unix"] > a["t_start_unix"]
    assert schema.trial_constraints(full) == {"params <= 29.5 M": pytest.approx(29.159715 - 29.5)}
    assert full.system_attrs["constraints"] == [pytest.approx(29.159715 - 29.5)]  # dashboard

    assert none.state == TrialState.PRUNED and none.user_attrs["status"] == "stopped"
    assert none.values is None and [s for s, _ in trial_data(study, none)["curve"]] == [30]
    assert none.user_attrs["val_step"] == 30 and none.user_attrs["val_psnr_db"] < a["curve"][0][1]

    assert unetmm.state == TrialState.COMPLETE and unetmm.user_attrs["status"] == "infeasible"
    assert unetmm.values[0] == -math.inf  # never trained: the worst PSNR, for the samplers
    assert unetmm.user_attrs["broken"] == ["params <= 29.5 M"]
    assert unetmm.constraints["params <= 29.5 M"] > 0 and "psnr_db" not in unetmm.user_attrs
    assert unetmm.user_attrs["m_sc_bytes"] == 256 * 32 * 32  # the paper's 0.25 MiB

    assert first.statuses == {"complete": 1, "stopped": 1}
    assert sum(again.statuses.values()) == 2 and "infeasible" not in again.statuses

    front = optuna.load_study(study_name="tiny", storage=storage_url).best_trials
    assert front and all(t.user_attrs["status"] == "complete" for t in front)
    assert all(v <= 0 for t in front for v in t.constraints.values())
    t = sampled  # not a reference point
    assert "reference" not in t.user_attrs and t.user_attrs["status"] in (
        "complete", "stopped", "failed")  # fmt: skip
    assert t.params["design"] in ("subset", "unetmm")
    if t.state == TrialState.COMPLETE:
        keys = [get_metric(o).key for o in spec.objectives]
        assert t.values == [t.user_attrs[k] for k in keys]
        assert all(math.isfinite(v) for v in t.values)
