"""Crash recovery: trials a dead search left RUNNING are failed and queued again.

Run at the start of every search (and for its own unfinished trials at its end). A RUNNING
trial is stale when

- its driver (``ATTR_DRIVER``, ``host:pid:start``) ran on this host and is gone: known at once;
- or its heartbeat (``studies.heartbeat``) is older than ``grace_period`` seconds: for drivers on
  other hosts sharing a PostgreSQL study (Optuna's ``fail_stale_trials``).

A stale trial becomes FAIL and Optuna's ``RetryHeartbeatStaleTrialCallback`` adds a WAITING copy
with the same parameters (up to ``max_retry`` times per original), which the next ``ask`` runs
first. Completed trials are never touched.
"""

from __future__ import annotations

import copy
import warnings

import optuna
from optuna.storages import RetryHeartbeatStaleTrialCallback
from optuna.trial import TrialState

from studies.heartbeat import driver_alive
from studies.storage import open_storage
from studies.schema import ATTR_DRIVER, ATTR_ERROR, ATTR_STATUS, STATUS_FAILED


def fail_and_requeue(
    study: optuna.Study, trial_ids: list[int] | set[int], reason: str, max_retry: int
) -> list[int]:
    """Fail the still-RUNNING trials among ``trial_ids`` (with ``reason``) and queue a copy of
    each; returns the numbers of the trials failed."""
    storage = study._storage
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        retry = RetryHeartbeatStaleTrialCallback(max_retry=max_retry)
    failed = []
    for trial_id in trial_ids:
        snapshot = copy.deepcopy(storage.get_trial(trial_id))
        if snapshot.state != TrialState.RUNNING:
            continue
        try:
            storage.set_trial_user_attr(trial_id, ATTR_STATUS, STATUS_FAILED)
            storage.set_trial_user_attr(trial_id, ATTR_ERROR, reason)
            if not storage.set_trial_state_values(trial_id, TrialState.FAIL):
                continue
        except optuna.exceptions.UpdateFinishedTrialError:
            continue  # another process finished it meanwhile
        retry(study, snapshot)
        failed.append(snapshot.number)
    return failed


def recover_stale(
    study: optuna.Study, url: str, grace_period: int, max_retry: int
) -> list[int]:
    """Fail and requeue the stale RUNNING trials of ``study``; returns their numbers."""
    running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    dead = [
        t._trial_id
        for t in running
        if t.user_attrs.get(ATTR_DRIVER) and driver_alive(t.user_attrs[ATTR_DRIVER]) is False
    ]
    failed = fail_and_requeue(study, dead, "the search process running it died", max_retry)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        beating = open_storage(
            url,
            heartbeat_interval=max(1, grace_period // 2),
            grace_period=grace_period,
            heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=max_retry),
            skip_table_creation=True,
        )
        before = {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,))}
        optuna.storages.fail_stale_trials(optuna.load_study(study_name=study.study_name,
                                                             storage=beating))  # fmt: skip
    after = study.get_trials(deepcopy=False, states=(TrialState.FAIL,))
    return failed + sorted(t.number for t in after if t.number not in before)
