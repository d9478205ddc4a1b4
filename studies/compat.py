"""Every use of Optuna's and Ray's private names, behind one door.

Each function names the public API it is waiting for. ``tests/studies/test_compat.py`` runs each
one against the installed Optuna and Ray, so an upgrade that breaks one fails loudly there, and
a source scan fails if any other module touches ``PRIVATE_NAMES`` or a private module.
pyproject bounds both libraries below their next major versions.
"""

from __future__ import annotations

import contextlib
import copy
import datetime
import json
import os
from collections.abc import Iterator
from typing import Any

import optuna
import sqlalchemy
from optuna.trial import FrozenTrial, TrialState

# The private attributes and modules used below (the source scan forbids them elsewhere).
PRIVATE_NAMES = frozenset({
    "_should_skip_enqueue", "_storage", "_backend", "_study_id", "_trial_id",
    "_ot_study", "_ot_trials", "_completed_trials", "_rdb", "_get_trials",
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


def was_enqueued(trial: optuna.Trial) -> bool:
    """Whether ``study.ask()`` popped ``trial`` from the WAITING queue (``enqueue_trial``) rather
    than creating it. Waiting for: a public flag; Optuna marks queued trials with the
    ``fixed_params`` system attribute."""
    return "fixed_params" in trial.storage.get_trial(trial._trial_id).system_attrs


def distribution_holds(dist: optuna.distributions.BaseDistribution, value: Any) -> bool:
    """Whether ``value`` is a point of ``dist`` (a choice, an int in range and on its step).
    Waiting for: a public ``BaseDistribution.contains`` (Optuna has ``_contains`` on the
    internal representation)."""
    try:
        return bool(dist._contains(dist.to_internal_repr(value)))
    except (ValueError, TypeError):
        return False


def fixed_params(trial: optuna.trial.FrozenTrial) -> dict[str, Any]:
    """The parameters a queued trial was given (``enqueue_trial``), used by Optuna before any
    sampler. Waiting for: a public accessor; Optuna keeps them in ``fixed_params``."""
    return dict(trial.system_attrs.get("fixed_params") or {})


def study_system_attrs(study: optuna.Study) -> dict[str, Any]:
    """The study's system attributes, read from the storage. Waiting for: a public
    ``Study.system_attrs`` (removed in Optuna 3; the storage method needs the private id)."""
    return study._storage.get_study_system_attrs(study._study_id)


def insert_study_system_attr(study: optuna.Study, key: str, value: Any) -> bool:
    """Store the study system attribute ``key`` only if the study has none: one INSERT, which
    the table's unique (study_id, key) index makes atomic across processes and machines (on
    SQLite and PostgreSQL alike). True if this call stored it, False if ``key`` was there.
    Waiting for: an insert-if-absent in the storage API (``set_study_system_attr`` upserts and
    swallows the IntegrityError of a concurrent insert, so a caller cannot tell who won)."""
    from optuna.storages._rdb import models

    storage = study._storage
    storage = getattr(storage, "_backend", storage)  # the RDBStorage under the cache
    table = models.StudySystemAttributeModel.__table__
    row = {"study_id": study._study_id, "key": key, "value_json": json.dumps(value)}
    try:
        with storage.engine.begin() as conn:
            conn.execute(sqlalchemy.insert(table).values(**row))
    except sqlalchemy.exc.IntegrityError:
        return False
    return True


@contextlib.contextmanager
def trials_read_once(study: optuna.Study) -> Iterator[None]:
    """Inside the block the study's trials are read from the storage once: every
    ``get_trials`` (and every sampler call) sees that list. For a sampler asked many times
    about one trial (``feasibility.FeasibleFirst``'s redraws): TPE with ``constant_liar``
    reads every trial from the storage on each draw (~12 ms a read on a 16-trial SQLite
    study, under the profiler).
    Nested blocks share the outer one's list; every thread reading this study sees it, and
    nothing written inside the block shows (read only). Waiting for: a public way to pin a
    study's trials for several sampler calls (Optuna's own cache, ``use_cache``, is what TPE's
    constant liar turns off)."""
    if "_get_trials" in vars(study):
        yield
        return
    trials = study._storage.get_all_trials(study._study_id, deepcopy=False)

    def get_trials(deepcopy: bool = True, states: Any = None, use_cache: bool = False) -> Any:
        out = trials if states is None else [t for t in trials if t.state in states]
        return copy.deepcopy(out) if deepcopy else list(out)

    study._get_trials = get_trials  # type: ignore[method-assign]
    try:
        yield
    finally:
        del study._get_trials


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


# -- Ray core --------------------------------------------------------------------------------
@contextlib.contextmanager
def local_ray_options(temp_dir: str) -> Iterator[dict[str, Any]]:
    """``ray.init`` keyword arguments for a local Ray that listens on 127.0.0.1 only and keeps
    its session files (logs, sockets) under ``temp_dir``; valid while the block runs (start Ray
    inside it). Waiting for: public ``ray.init`` arguments for both. ``_temp_dir`` is private;
    ``_node_ip_address="127.0.0.1"`` is turned into the machine's address
    (``services.resolve_ip_for_localhost``), so Ray's servers would listen on every interface.
    Only the switch Ray keeps for laptops (``ENABLE_RAY_CLUSTER``, read from
    ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER`` when Ray is imported, which happened already) makes
    the node address 127.0.0.1, and Ray's servers bind to the node address."""
    from ray._private import ray_constants

    key = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
    saved_env, saved = os.environ.get(key), ray_constants.ENABLE_RAY_CLUSTER
    os.environ[key], ray_constants.ENABLE_RAY_CLUSTER = "0", False
    try:
        yield {"_temp_dir": temp_dir}
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = saved
        if saved_env is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = saved_env


# -- argparse --------------------------------------------------------------------------------
def parser_actions(parser: Any) -> list[Any]:
    """Every argument of an ``argparse.ArgumentParser`` (groups included), in the order they
    were added, for the generated CLI reference (``studies.docs``). Waiting for: a public list
    of a parser's arguments (argparse has none; ``_actions`` has been stable since 3.2)."""
    return list(parser._actions)
