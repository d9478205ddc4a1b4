"""The one place that maps what a trial reported to its Optuna state, values and attributes.

A trial's worker reports three kinds of results (see ``studies.search.protocol``); the searcher
merges them into one ``attrs`` dict per trial and, when the trial ends, calls ``decide``:

==================================  ===========  ===========================================
what happened                       status       Optuna state
==================================  ===========  ===========================================
trained to the end, objectives ok   complete     COMPLETE with the objective values
broke a hard (cost) constraint      infeasible   COMPLETE: measured costs, worst scores
                                                 (``-inf`` PSNR), positive constraints
stopped early (no final report)     stopped      PRUNED (partial curve, no values)
raised, diverged, NaN, worker died  failed       FAIL (``error`` says why)
a design judged before (a copy)     its source's PRUNED (its source's results as attributes,
                                                 ``copy_of``; no values)
==================================  ===========  ===========================================

Infeasible trials are COMPLETE so that every Optuna sampler's constraint handling sees them:
NSGA-II, NSGA-III and GP read only COMPLETE trials (TPE reads PRUNED ones too). Their scores
were never measured: a score objective holds its worst value (``-inf`` when maximised), which
GP clips to the worst score seen and NSGA-II's crowding distance handles. They never pass for
scored designs: a constraint value is positive, so ``study.best_trials`` (feasible only in
Optuna 5) leaves them out, and ``studies.results.pareto`` admits only status ``complete``.
Studies from before this (infeasible trials PRUNED) are read the same way.

A copy (a proposal of a design judged before) is PRUNED so that the sampler moves on: told
COMPLETE with its source's values it would weigh the design twice and propose it again (TPE's
density of good designs doubles there; NSGA-II breeds from duplicates), while a PRUNED trial
counts against its neighbourhood. Its results stay readable in its attributes, and the front
counts it with its source (``studies.results.pareto``); ``study.best_trials`` lists the source.

``apply`` writes a decided outcome to a trial this process asked; ``fail_running`` fails a trial
that its process can no longer finish (stale, or interrupted), with one of the reasons below.
No other module writes a trial's state.
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
from studies.metrics import by_key
from studies.schema import (
    ATTR_COPY_OF,
    ATTR_ERROR,
    ATTR_STATUS,
    STATUS_COMPLETE,
    STATUS_FAILED,
    STATUS_INFEASIBLE,
    STATUS_STOPPED,
)

# Why a trial failed outside its design (``recovery.infrastructure_failure``: a retry may work).
DIED = "the search process running it died"
SILENT = "its search process stopped beating (heartbeat older than {} s)"
UNCLAIMED = "its search process died before claiming it (no driver, no heartbeat after {} s)"
INTERRUPTED = "its run was interrupted"
NO_SLOT = "the first trial of its design failed and the run had no trial left to train it in"
WORKER_DIED = "the trial's worker raised or died before reporting (see the Ray logs)"
# the same, as releases before 0.2 wrote it
OLD_INTERRUPTED = ("the search was interrupted", "the confirmation was interrupted")

STATES = {
    STATUS_COMPLETE: TrialState.COMPLETE,
    STATUS_INFEASIBLE: TrialState.COMPLETE,
    STATUS_STOPPED: TrialState.PRUNED,
    STATUS_FAILED: TrialState.FAIL,
}


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
    limits = constraint_values(constraints, attrs)
    if status == STATUS_INFEASIBLE:
        values = infeasible_values(attrs, objective_keys)
        if values is None or not any(v > 0 for v in limits.values()):
            # a cost objective or the broken constraint is unknown: told as before, PRUNED
            attrs[ATTR_STATUS] = status
            return Outcome(TrialState.PRUNED, None, attrs, limits)
    if status == STATUS_COMPLETE:
        raw = [attrs.get(k) for k in objective_keys]
        bad = [k for k, v in zip(objective_keys, raw) if not _finite(v)]
        if bad:
            status = STATUS_FAILED
            attrs[ATTR_ERROR] = f"objective(s) {bad} missing or not finite: {raw}"
        else:
            values = [float(v) for v in raw]
    attrs[ATTR_STATUS] = status
    if attrs.get(ATTR_COPY_OF) is not None and status != STATUS_FAILED:
        return Outcome(TrialState.PRUNED, None, attrs, limits)
    return Outcome(STATES[status], values, attrs, limits)


def infeasible_values(attrs: dict[str, Any], objective_keys: list[str]) -> list[float] | None:
    """Objective values of an infeasible (untrained) trial: each cost as measured, each score
    at its worst (``-inf`` if maximised, ``+inf`` if not); None if a cost is missing."""
    values = []
    for key in objective_keys:
        row = by_key(key)
        if row is not None and not row.cost:
            values.append(-math.inf if row.maximized else math.inf)
        elif _finite(attrs.get(key)):
            values.append(float(attrs[key]))
        else:
            return None
    return values


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


def fail_running(storage: optuna.storages.BaseStorage, trial_id: int, reason: str) -> bool:
    """Fail the trial ``trial_id`` if still RUNNING, whichever process asked it (a stale one, or
    this run's when interrupted): ``status`` failed, ``error`` ``reason``, state FAIL. Returns
    whether it did (False: another process finished it first)."""
    try:
        if storage.get_trial(trial_id).state != TrialState.RUNNING:
            return False
        storage.set_trial_user_attr(trial_id, ATTR_STATUS, STATUS_FAILED)
        storage.set_trial_user_attr(trial_id, ATTR_ERROR, reason)
        return storage.set_trial_state_values(trial_id, TrialState.FAIL)
    except optuna.exceptions.UpdateFinishedTrialError:
        return False
