"""The one place that maps what a trial reported to its Optuna state, values and attributes.

A trial's worker reports three kinds of results (see ``studies.search.protocol``); the searcher
merges them into one ``attrs`` dict per trial and, when Ray ends the trial, calls ``decide``:

==================================  ===========  ===========================================
what happened                       status       Optuna state
==================================  ===========  ===========================================
trained to the end, objectives ok   complete     COMPLETE with the objective values
broke a hard (cost) constraint      infeasible   PRUNED (costs and constraints, no values)
stopped early by ASHA (no final)    stopped      PRUNED (partial curve, no values)
raised, diverged, NaN, worker died  failed       FAIL (``error`` says why)
==================================  ===========  ===========================================

PRUNED trials have no values, so ``study.best_trials`` (COMPLETE and feasible only) never holds
a stopped or infeasible trial; TPE still learns from infeasible ones through their constraint
values, and from stopped ones as pruned trials.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import optuna
from optuna.trial import TrialState

from studies import compat, schema
from studies.artifacts import attach
from studies.constraints import Constraint, constraint_values
from studies.schema import (
    ATTR_ERROR,
    ATTR_STATUS,
    STATUS_COMPLETE,
    STATUS_FAILED,
    STATUS_INFEASIBLE,
    STATUS_STOPPED,
)

STATES = {
    STATUS_COMPLETE: TrialState.COMPLETE,
    STATUS_INFEASIBLE: TrialState.PRUNED,
    STATUS_STOPPED: TrialState.PRUNED,
    STATUS_FAILED: TrialState.FAIL,
}
WORKER_DIED = "the trial's worker raised or died before reporting (see the Ray logs)"


@dataclasses.dataclass
class Outcome:
    """What to write for one finished trial."""

    state: TrialState
    values: list[float] | None
    attrs: dict[str, Any]
    constraints: dict[str, float]


def decide(
    attrs: dict[str, Any],
    objective_keys: list[str],
    constraints: tuple[Constraint, ...],
    ray_error: bool = False,
) -> Outcome:
    """The outcome of a trial from everything it reported (``attrs``) and whether Ray saw it
    fail (``ray_error``). A trial with no final report and no error was stopped by ASHA."""
    attrs = dict(attrs)
    status = attrs.get(ATTR_STATUS)
    if status is None:
        status = STATUS_FAILED if ray_error else STATUS_STOPPED
        if ray_error:
            attrs.setdefault(ATTR_ERROR, WORKER_DIED)
    values = None
    if status == STATUS_COMPLETE:
        raw = [attrs.get(k) for k in objective_keys]
        bad = [k for k, v in zip(objective_keys, raw) if not _finite(v)]
        if bad:
            status = STATUS_FAILED
            attrs[ATTR_ERROR] = f"objective(s) {bad} missing or not finite: {raw}"
        else:
            values = [float(v) for v in raw]
    attrs[ATTR_STATUS] = status
    return Outcome(STATES[status], values, attrs, constraint_values(constraints, attrs))


def _finite(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def apply(study: optuna.Study, trial: optuna.Trial, outcome: Outcome) -> None:
    """Write ``outcome`` to the (still RUNNING) ``trial``: short attributes, bulky data as the
    ``results.json`` artifact, constraints in both of Optuna's forms (``studies.schema``), then
    tell."""
    compact, bulky = schema.split(outcome.attrs)
    for key, value in compact.items():
        trial.set_user_attr(key, value)
    attach(trial, "results.json", bulky)
    for name, value in outcome.constraints.items():
        trial.set_constraint(name, value)
    if outcome.constraints:
        compat.write_constraint_list(trial, schema.constraint_list(outcome.constraints))
    study.tell(trial, outcome.values, state=outcome.state)
