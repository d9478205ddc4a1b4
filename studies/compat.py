"""Every use of Optuna's and Ray's private names, behind one door.

Each function names the public API it is waiting for. ``tests/studies/test_compat.py`` runs each
one against the installed Optuna and Ray, so an upgrade that breaks one fails loudly there, and
a source scan fails if any other module touches ``PRIVATE_NAMES`` or a private module.
pyproject bounds both libraries below their next major versions.
"""

from __future__ import annotations

import datetime
from typing import Any

import optuna
import sqlalchemy
from optuna.trial import FrozenTrial, TrialState

# The private attributes and modules used below (the source scan forbids them elsewhere).
PRIVATE_NAMES = frozenset({
    "_should_skip_enqueue", "_storage", "_backend", "_study_id", "_trial_id",
    "_ot_study", "_ot_trials", "_completed_trials", "_rdb",
})  # fmt: skip


# -- Optuna ----------------------------------------------------------------------------------
def already_enqueued(study: optuna.Study, params: dict[str, Any]) -> bool:
    """Whether a trial with ``params`` is queued, running or finished in ``study``: the test
    ``Study.enqueue_trial(skip_if_exists=True)`` makes. Waiting for: that test as a public
    method (enqueue_trial only applies it, and says nothing back)."""
    return bool(study._should_skip_enqueue(params))


def study_storage(study: optuna.Study) -> optuna.storages.BaseStorage:
    """The storage behind ``study``. Waiting for: a public ``Study.storage``."""
    return study._storage


def trial_id(trial: optuna.Trial | FrozenTrial) -> int:
    """The storage id of a live or frozen trial. Waiting for: a public ``trial_id`` (the
    storage API takes ids, while trials only show their number)."""
    return trial._trial_id


def storage_engine(storage: optuna.storages.BaseStorage) -> sqlalchemy.engine.Engine | None:
    """The SQLAlchemy engine of an RDB storage (Optuna wraps it in a cache; None for other
    storages). Waiting for: a public way to reach the RDBStorage under ``_CachedStorage``."""
    storage = getattr(storage, "_backend", storage)
    return storage.engine if isinstance(storage, optuna.storages.RDBStorage) else None


def write_constraint_list(trial: optuna.Trial, values: list[float]) -> None:
    """Store ``values`` as the running ``trial``'s old-style ``constraints`` list system attribute
    (what a sampler's ``constraints_func`` writes). Waiting for: optuna-dashboard reading Optuna
    5's ``constraints:<name>`` attributes (0.21 reads only the list), or a public writer."""
    trial.storage.set_trial_system_attr(trial._trial_id, "constraints", values)


def heartbeat_ages(study: optuna.Study) -> dict[int, float]:
    """Seconds since the last heartbeat of each RUNNING trial of ``study`` that has one, by the
    database's clock (which also stamped the beats). Waiting for: a public read of
    ``RDBStorage``'s heartbeat table (only ``_get_stale_trial_ids`` reads it, with Optuna's own
    grace period and clock)."""
    from optuna.storages._rdb import models

    storage = study._storage
    storage = getattr(storage, "_backend", storage)  # the RDBStorage under the cache
    beat, trial = models.TrialHeartbeatModel, models.TrialModel
    query = (
        sqlalchemy.select(beat.trial_id, beat.heartbeat)
        .join(trial, trial.trial_id == beat.trial_id)
        .where(trial.study_id == study._study_id, trial.state == TrialState.RUNNING)
    )
    with storage.engine.connect() as conn:
        now = conn.execute(sqlalchemy.select(sqlalchemy.func.now())).scalar()
        rows = conn.execute(query).all()
    now = now.replace(tzinfo=None) if isinstance(now, datetime.datetime) else now
    return {tid: (now - at.replace(tzinfo=None)).total_seconds() for tid, at in rows}


# -- Ray Tune's OptunaSearch -----------------------------------------------------------------
# unetmm's searcher subclasses OptunaSearch to ask trials itself (claiming them at once) and to
# tell them with their own state and attributes; OptunaSearch keeps its study and trials in
# private fields. Waiting for: public accessors on ``ray.tune.search.optuna.OptunaSearch``.
def searcher_study(searcher: Any) -> optuna.Study:
    return searcher._ot_study


def searcher_trials(searcher: Any) -> dict[str, optuna.Trial]:
    """Ray trial id -> the Optuna trial asked for it (the live dict: callers add to it)."""
    return searcher._ot_trials


def searcher_completed(searcher: Any) -> set[str]:
    """Ray trial ids already told (the live set: callers add to it)."""
    return searcher._completed_trials
