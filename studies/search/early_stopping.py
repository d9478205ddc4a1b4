"""Early stopping of proxy runs that cannot reach the front; references exempt.

A proxy run reports its validation PSNR every ``eval_every`` steps. At *rungs* (``grace_steps *
reduction_factor**k`` training steps, at most the last validation before the final one,
``StudySpec.last_rung_step``) a scheduler compares it with the runs that reached the rung
before it and may stop it. Two rules (``early_stopping.rule``):

- ``pareto`` (the default): stop a run at a rung only if a run already recorded there is at
  least as cheap on every cost objective of the study (M_sc, MACs, ...: exact, known before
  training) and ahead on PSNR by more than ``margin_db``. Such a run is dominated now and would
  need to gain ``margin_db`` on a cheaper design to escape. A design that is cheap (low M_sc)
  is never stopped by a costlier one, however much better that one learns: that is what kept
  ASHA from being fair in a multi-objective study.
- ``asha``: Ray Tune's ASHA on PSNR alone: stop below the top ``1/reduction_factor`` of the runs
  recorded at the rung. Measured unfair on nafnet_sidd (``benchmarks/asha_fairness.py``): it
  stops low-memory designs whose PSNR is low early but on the front at the end.

Reference points (full skips, no skips, the paper's UNet--, the user's points) are recorded at
every rung but never stopped unless ``exempt_references`` is false: a study always ends with its
baselines fully trained. A run that reaches its final validation has passed every rung: it is
never stopped on its final score. A stopped run becomes PRUNED (``studies.search.outcome``):
never in the Pareto front.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, TrialScheduler

from nas.registry import Registry
from studies.metrics import get_metric
from studies.search.protocol import PHASE, PHASE_COSTS, REFERENCE_KEY, STEP, VAL_PSNR
from studies.spec import StudySpec

STOPPING_RULES: Registry[Callable[[StudySpec], TrialScheduler]] = Registry("early-stopping rule")


def rungs(grace: int, reduction_factor: float, last: int) -> tuple[int, ...]:
    """``grace * reduction_factor**k`` for k = 0, 1, ... up to ``last`` (steps)."""
    out, step = [], float(grace)
    while step <= last:
        out.append(round(step))
        step *= reduction_factor
    return tuple(out)


class ReferenceASHA(ASHAScheduler):
    """ASHA that records reference trials at every rung but lets them run to the end."""

    def __init__(self, *, exempt_references: bool = True, **asha: Any) -> None:
        super().__init__(**asha)
        self.exempt_references = exempt_references

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict) -> str:
        decision = super().on_trial_result(tune_controller, trial, result)
        exempt = self.exempt_references and trial.config.get(REFERENCE_KEY)
        return TrialScheduler.CONTINUE if decision == TrialScheduler.STOP and exempt else decision


@dataclasses.dataclass
class _Rung:
    step: int
    recorded: dict[str, tuple[tuple[float, ...], float]] = dataclasses.field(default_factory=dict)


class ParetoRungs(FIFOScheduler):
    """The ``pareto`` rule (see the module docstring). ``cost_keys``: the result keys of the
    study's cost objectives (read from each run's costs phase)."""

    def __init__(
        self,
        steps: Sequence[int],
        cost_keys: Sequence[str],
        margin_db: float,
        exempt_references: bool = True,
    ) -> None:
        super().__init__()
        self.rungs = [_Rung(s) for s in steps]
        self.cost_keys = tuple(cost_keys)
        self.margin_db = margin_db
        self.exempt_references = exempt_references
        self._costs: dict[str, tuple[float, ...]] = {}

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict) -> str:
        if result.get(PHASE) == PHASE_COSTS:
            self._costs[trial.trial_id] = tuple(float(result[k]) for k in self.cost_keys)
            return TrialScheduler.CONTINUE
        if STEP not in result or VAL_PSNR not in result:
            return TrialScheduler.CONTINUE
        return self.judge(trial.trial_id, int(result[STEP]), float(result[VAL_PSNR]),
                          bool(self.exempt_references and trial.config.get(REFERENCE_KEY)))  # fmt: skip

    def judge(self, trial_id: str, step: int, psnr: float, exempt: bool = False) -> str:
        """Record ``psnr`` at the first rung at or below ``step`` the run has not reached yet;
        STOP if a cheaper-or-equal run there was ahead by more than ``margin_db``."""
        costs = self._costs.get(trial_id)
        rung = next((r for r in self.rungs if r.step <= step and trial_id not in r.recorded), None)
        if rung is None or costs is None:
            return TrialScheduler.CONTINUE
        beaten = any(
            all(c <= mine for c, mine in zip(other, costs)) and score > psnr + self.margin_db
            for other, score in rung.recorded.values()
        )
        rung.recorded[trial_id] = (costs, psnr)
        return TrialScheduler.STOP if beaten and not exempt else TrialScheduler.CONTINUE

    def set_costs(self, trial_id: str, costs: Sequence[float]) -> None:
        """Costs of a run known otherwise (a replay of a study: ``benchmarks/asha_fairness``)."""
        self._costs[trial_id] = tuple(float(c) for c in costs)


@STOPPING_RULES.register("pareto")
def _pareto(spec: StudySpec) -> TrialScheduler:
    es = spec.early_stopping
    cost_keys = [get_metric(o).key for o in spec.objectives if get_metric(o).cost]
    return ParetoRungs(rungs(es.grace_steps, es.reduction_factor, spec.last_rung_step),
                       cost_keys, es.margin_db, es.exempt_references)  # fmt: skip


@STOPPING_RULES.register("asha")
def _asha(spec: StudySpec) -> TrialScheduler:
    es = spec.early_stopping
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


def make_trial_scheduler(spec: StudySpec) -> TrialScheduler:
    """The spec's early-stopping rule if early stopping is on and trials train, else FIFO."""
    es = spec.early_stopping
    if not (es.enabled and spec.needs_training):
        return FIFOScheduler()
    return STOPPING_RULES.get(es.rule)(spec)
