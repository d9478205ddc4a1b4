"""Crash recovery: trials a dead search left RUNNING are failed and queued again.

Run at the start of every search (and for its own unfinished trials at its end). A RUNNING
trial is stale when its driver (``ATTR_DRIVER``, ``host:pid:start``) is not known to be alive
and

- that driver ran on this host and is gone: known at once;
- or its heartbeat (``studies.search.heartbeat``) is older than ``grace_period`` seconds: for
  drivers on other hosts sharing a PostgreSQL study;
- or it has no heartbeat and started more than ``grace_period`` seconds ago: its driver died
  between Optuna's ``ask`` and the first beat (the searcher writes both right after ``ask``).

A stale trial becomes FAIL with ``status`` failed and its ``error``, and a clean WAITING copy is
queued (same parameters; of its attributes only the reference name, plus ``retry_of``; Optuna's
``failed_trial``/``retry_history`` system attributes, at most ``max_retry`` retries per
original), which the next ``ask`` runs first. Finished trials are never touched.
"""

from __future__ import annotations

import copy
import datetime

import optuna
from optuna.trial import FrozenTrial, TrialState

from studies import compat
from studies.schema import (
    ATTR_DRIVER,
    ATTR_ERROR,
    ATTR_REFERENCE,
    ATTR_RETRY_OF,
    CONSTRAINT_PREFIX,
)
from studies.search.heartbeat import driver_alive
from studies.search.outcome import (
    DIED,
    INTERRUPTED,
    NO_SLOT,
    OLD_INTERRUPTED,
    SILENT,
    UNCLAIMED,
    WORKER_DIED,
    fail_running,
)


def infrastructure_failure(trial: FrozenTrial) -> bool:
    """Whether ``trial`` failed for a reason outside its design (a dead worker or search
    process, an interrupted run), so that running it again may succeed; a design's own
    failure (an exception, a diverged loss) would repeat, training being seeded."""
    error = str(trial.user_attrs.get(ATTR_ERROR, ""))
    prefixes = (SILENT.split("(")[0], UNCLAIMED.split("(")[0])
    known = (DIED, INTERRUPTED, WORKER_DIED, NO_SLOT, *OLD_INTERRUPTED)
    return trial.state == TrialState.FAIL and (error in known or error.startswith(prefixes))


def requeue(study: optuna.Study, trial: FrozenTrial, max_retry: int) -> bool:
    """Queue a clean WAITING copy of the failed ``trial`` unless it was retried ``max_retry``
    times already (Optuna's ``RetryHeartbeatStaleTrialCallback`` bookkeeping)."""
    history = [*trial.system_attrs.get("retry_history", []), trial.number]
    if len(history) > max_retry:
        return False
    kept = {k: v for k, v in trial.system_attrs.items()  # results stay with the failed one
            if k != "constraints" and not k.startswith(CONSTRAINT_PREFIX)}  # fmt: skip
    system = {"failed_trial": trial.number, **kept, "retry_history": history}
    user = {ATTR_RETRY_OF: trial.number}
    if trial.user_attrs.get(ATTR_REFERENCE):
        user[ATTR_REFERENCE] = trial.user_attrs[ATTR_REFERENCE]
    study.add_trial(optuna.trial.create_trial(
        state=TrialState.WAITING, params=trial.params, distributions=trial.distributions,
        user_attrs=user, system_attrs=system))  # fmt: skip
    return True


def fail_and_requeue(
    study: optuna.Study, reasons: dict[int, str], max_retry: int
) -> list[int]:
    """Fail the still-RUNNING trials among ``reasons`` (trial id -> error) and queue a clean
    copy of each; returns the numbers of the trials failed."""
    storage = compat.study_storage(study)
    failed = []
    for trial_id, reason in reasons.items():
        snapshot = copy.deepcopy(storage.get_trial(trial_id))
        if not fail_running(storage, trial_id, reason):
            continue  # finished already, or by another process meanwhile
        requeue(study, snapshot, max_retry)
        failed.append(snapshot.number)
    return failed


def stale_trials(study: optuna.Study, grace_period: int) -> dict[int, str]:
    """``trial id -> reason`` of the RUNNING trials of ``study`` that no live search runs."""
    ages = compat.heartbeat_ages(study)
    now = datetime.datetime.now()  # Optuna stamps datetime_start with the local clock
    stale = {}
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        driver = t.user_attrs.get(ATTR_DRIVER)
        alive = driver_alive(driver) if driver else None
        if alive is False:
            stale[compat.trial_id(t)] = DIED
        elif alive is None and compat.trial_id(t) in ages:
            if ages[compat.trial_id(t)] > grace_period:
                stale[compat.trial_id(t)] = SILENT.format(grace_period)
        elif alive is None and t.datetime_start is not None:
            if (now - t.datetime_start).total_seconds() > grace_period:
                stale[compat.trial_id(t)] = UNCLAIMED.format(grace_period)
    return stale


def recover_stale(study: optuna.Study, grace_period: int, max_retry: int) -> list[int]:
    """Fail and requeue the stale RUNNING trials of ``study``; returns their numbers."""
    return fail_and_requeue(study, stale_trials(study, grace_period), max_retry)
