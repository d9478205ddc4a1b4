"""Early stopping of weak proxy runs: ASHA on the validation PSNR, references exempt.

ASHA (asynchronous successive halving) compares a trial's validation PSNR at rungs of
``grace_steps * reduction_factor**k`` training steps with the trials that reached the rung
before it, and stops it below the top ``1/reduction_factor``. Reference points (full skips,
no skips, the paper's UNet--, the user's points) set the bar at each rung but are never stopped:
a study always ends with its baselines fully trained. Rungs stay at or below the last validation
before the final one (``StudySpec.last_rung_step``; the spec requires one at or after
``grace_steps``), so every trial that reaches its final validation has passed the top rung
already: it is never stopped there and reports its final scores.
(``early_stopping.exempt_references: false`` lets ASHA stop them too.)
A stopped trial becomes PRUNED in Optuna (``studies.search.outcome``): never in the Pareto front.
"""

from __future__ import annotations

from typing import Any

from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, TrialScheduler

from studies.search.protocol import REFERENCE_KEY, STEP, VAL_PSNR
from studies.spec import StudySpec


class ReferenceASHA(ASHAScheduler):
    """ASHA that records reference trials at every rung but lets them run to the end."""

    def __init__(self, *, exempt_references: bool = True, **asha: Any) -> None:
        super().__init__(**asha)
        self.exempt_references = exempt_references

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict) -> str:
        decision = super().on_trial_result(tune_controller, trial, result)
        exempt = self.exempt_references and trial.config.get(REFERENCE_KEY)
        return TrialScheduler.CONTINUE if decision == TrialScheduler.STOP and exempt else decision


def make_trial_scheduler(spec: StudySpec) -> TrialScheduler:
    """ASHA on ``val_psnr`` over ``step`` if early stopping is on and trials train, else FIFO."""
    es = spec.early_stopping
    if not (es.enabled and spec.needs_training):
        return FIFOScheduler()
    return ReferenceASHA(
        time_attr=STEP,
        metric=VAL_PSNR,
        mode="max",
        grace_period=es.grace_steps,
        reduction_factor=es.reduction_factor,
        max_t=spec.last_rung_step,
        stop_last_trials=False,
        exempt_references=es.exempt_references,
    )
