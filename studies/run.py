"""``run_search``: one run of a study on Ray Tune workers, recorded in the study's SQL storage.

A run (1) opens the storage (fails fast with one line if it does not answer), (2) creates the
study or loads it (same objectives required), (3) starts Ray locally with ``concurrency *
cpus_per_trial`` CPUs and no dashboard, or joins it at ``ray_address``, and only then (4) fails
and re-queues trials a dead search left RUNNING and (5) queues the reference points the study
has not seen, then (6) runs ``n_trials`` new trials with Ray Tune: ``StudySearcher``
(OptunaSearch on the storage) asks, ``run_trial`` runs on a worker with ``cpus_per_trial``
CPUs, at most ``concurrency`` at once, and ASHA stops weak proxy runs
(``studies.early_stopping``). Re-running the same spec on the same storage resumes the study
with ``n_trials`` more. Tune's own files go to a temporary folder removed at the end.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import logging
import os
import shutil
import socket
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from typing import Any

import optuna
from rich.console import Console

from nas.errors import ConfigError
from studies.early_stopping import make_scheduler
from studies.heartbeat import Heartbeat
from studies.recovery import fail_and_requeue, recover_stale
from studies.samplers import make_sampler
from studies.schema import (
    ATTR_REFERENCE,
    ATTR_STATUS,
    STUDY_ATTR_OBJECTIVES,
    STUDY_ATTR_SPEC,
)
from studies.spec import StudySpec
from studies.storage import default_storage_url, normalize_url, open_storage, shown

# Ray and Tune settings for a quiet, local, offline run (a user's own value wins).
RAY_ENV = {
    "TUNE_DISABLE_STRICT_METRIC_CHECKING": "1",  # results carry phase-specific keys
    "RAY_AIR_NEW_OUTPUT": "0",  # no Tune tables on stdout: Progress prints ours
    "RAY_USAGE_STATS_ENABLED": "0",
    "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1",  # no CSV/JSON/TensorBoard result files
    "RAY_DEDUP_LOGS": "0",
}


@dataclasses.dataclass
class SearchResult:
    """What one run did (trial counts are over the whole study unless named ``run``)."""

    study_name: str
    storage_url: str
    trials_before: int
    trials_after: int
    run_trials: list[int]  # numbers of the trials this run told
    recovered: list[int]  # stale trials failed and re-queued at the start
    interrupted: list[int]  # this run's unfinished trials, failed and re-queued at its end
    statuses: dict[str, int]  # over this run's trials
    front: list[int]  # numbers of study.best_trials after the run
    seconds: float


def prepare_study(
    spec: StudySpec, study_name: str, storage: optuna.storages.RDBStorage
) -> optuna.Study:
    """Create the study, or load it if its objectives match the spec's."""
    try:
        study = optuna.load_study(study_name=study_name, storage=storage)
    except KeyError:
        study = optuna.create_study(study_name=study_name, storage=storage,
                                    directions=spec.directions)  # fmt: skip
        study.set_user_attr(STUDY_ATTR_OBJECTIVES, list(spec.objectives))
        study.set_user_attr(STUDY_ATTR_SPEC, spec.model_dump(mode="json"))
        return study
    stored = study.user_attrs.get(STUDY_ATTR_OBJECTIVES)
    directions = [d.name.lower() for d in study.directions]
    if stored != list(spec.objectives) or directions != spec.directions:
        raise ConfigError(
            f"objectives: study {study_name!r} in this storage optimises {stored or directions}, "
            f"the spec asks {list(spec.objectives)}; keep them or choose another --study-name"
        )
    return study


def enqueue_references(study: optuna.Study, spec: StudySpec) -> list[str]:
    """Queue the reference points and user points the study has not seen; returns their names."""
    points = {k: v for k, v in spec.reference_params().items() if v is not None}
    points |= {f"point{i}": p for i, p in enumerate(spec.point_params())}
    queued = []
    for name, params in points.items():
        before = len(study.get_trials(deepcopy=False))
        study.enqueue_trial(params, user_attrs={ATTR_REFERENCE: name}, skip_if_exists=True)
        if len(study.get_trials(deepcopy=False)) > before:
            queued.append(name)
    return queued


def _check_address(address: str) -> None:
    """Fail in seconds, not minutes, when nothing listens at a Ray address ``host:port``."""
    if address in ("auto", "local") or address.startswith("ray://"):
        return
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=3):
            return
    except (OSError, ValueError):
        raise ConfigError(
            f"--ray-address: nothing answers at {address!r}; start a head with "
            "`ray start --head` and pass its address (host:port), or drop --ray-address"
        ) from None


@contextlib.contextmanager
def ray_session(address: str | None, num_cpus: int) -> Iterator[None]:
    """Ray for this run: joined at ``address``, or local with ``num_cpus`` and no dashboard;
    an already initialised Ray is used as it is (and left running)."""
    import ray

    for key, value in RAY_ENV.items():
        os.environ.setdefault(key, value)
    if ray.is_initialized():
        yield
        return
    if address:
        _check_address(address)
        kwargs: dict[str, Any] = {"address": address}
    else:
        kwargs = {"address": "local", "num_cpus": num_cpus, "include_dashboard": False}
    with _quiet_stderr(enabled=bool(address)) as said:
        try:
            ray.init(**kwargs, logging_level=logging.ERROR, log_to_driver=False,
                     configure_logging=True)  # fmt: skip
        except (ConnectionError, RuntimeError) as exc:
            hint = ""
            if "AuthToken" in said() or "token" in str(exc).lower():
                hint = ("; the cluster wants token authentication: set RAY_AUTH_MODE=token and "
                        "RAY_AUTH_TOKEN (or RAY_AUTH_TOKEN_PATH) to the head's token")  # fmt: skip
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ConfigError(f"--ray-address: cannot join {address!r}: {first}{hint}") from None
    try:
        yield
    finally:
        ray.shutdown()


@contextlib.contextmanager
def _quiet_stderr(enabled: bool) -> Iterator[Any]:
    """Hold back what Ray's C++ client prints on file descriptor 2 while joining (a line a
    second while it retries); the caller can read it. Printed again unless discarded."""
    if not enabled:
        yield lambda: ""
        return
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as held:
        os.dup2(held.fileno(), 2)
        text = lambda: (held.seek(0), held.read().decode(errors="replace"))[1]  # noqa: E731
        failed = True
        try:
            yield text
            failed = False
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            if not failed:  # joined: show what Ray said, minus the retry noise
                lines = [ln for ln in text().splitlines() if "gcs_client.cc" not in ln]
                if lines:
                    print("\n".join(lines), file=sys.stderr)


def run_search(
    spec: StudySpec,
    storage_url: str | None = None,
    ray_address: str | None = None,
    study_name: str | None = None,
    console: Console | None = None,
) -> SearchResult:
    """Run (or resume) ``spec``; see the module docstring. Returns what the run did."""
    from studies.progress import Progress
    from studies.searcher import StudySearcher

    t0 = time.perf_counter()
    console = console or Console(highlight=False)
    if ray_address:  # every cheap check before the storage is touched
        _check_address(ray_address)
    url = normalize_url(storage_url or spec.storage or default_storage_url())
    name = study_name or spec.name
    storage = open_storage(url)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = prepare_study(spec, name, storage)
    before = len(study.get_trials(deepcopy=False))
    rec = spec.recovery
    heartbeat = Heartbeat(storage, rec.heartbeat_interval)
    progress = Progress(study, spec.n_trials, console)
    ray_dir = tempfile.mkdtemp(prefix="unetmm-ray-")
    searcher, recovered, left = None, [], []
    try:
        with ray_session(ray_address, spec.concurrency * spec.cpus_per_trial):
            # Ray is up (or joined): only now are trials failed, re-queued or queued
            recovered = recover_stale(study, url, rec.grace_period, rec.max_retry)
            if recovered:
                console.print(f"re-queued {len(recovered)} trial(s) a stopped search left "
                              f"running: {recovered}")  # fmt: skip
            queued = enqueue_references(study, spec)
            console.print(f"study {name!r} in {shown(url)}: {before} trial(s) so far, "
                          f"{spec.n_trials} to run"
                          + (f", queued reference points {queued}" if queued else ""))  # fmt: skip
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                # seed + trials so far: a resumed run samples new points, not the first ones again
                sampler = make_sampler(spec.sampler.name, spec.seed + before, spec.sampler.options)
            heartbeat.start()
            searcher = StudySearcher(spec, name, storage, sampler, heartbeat, progress)
            with progress:
                _tune(spec, name, searcher, progress, ray_dir)
    finally:
        heartbeat.stop()
        if searcher is not None:
            left = fail_and_requeue(study, searcher.unfinished_trial_ids(),
                                    "the search was interrupted", rec.max_retry)  # fmt: skip
            if left:
                console.print(f"re-queued {len(left)} unfinished trial(s) {left} for the next run")
        shutil.rmtree(ray_dir, ignore_errors=True)
    told = searcher.told_numbers() if searcher is not None else []
    return _summary(study, name, url, before, recovered, left, told, t0)


def _tune(spec: StudySpec, name: str, searcher: Any, progress: Any, ray_dir: str) -> None:
    """Ray Tune: ``n_trials`` trials of ``run_trial``, ``concurrency`` at once."""
    from ray import tune

    from studies.progress import TrialStartCallback
    from studies.trial import run_trial

    trainable = tune.with_resources(
        tune.with_parameters(run_trial, spec=spec.model_dump(mode="json")),
        {"cpu": spec.cpus_per_trial},
    )
    tuner = tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(
            search_alg=searcher,
            scheduler=make_scheduler(spec),
            num_samples=spec.n_trials,
            max_concurrent_trials=spec.concurrency,
            reuse_actors=True,
        ),
        run_config=tune.RunConfig(
            name=f"{name}-{time.strftime('%Y%m%d-%H%M%S')}",
            storage_path=ray_dir,
            verbose=0,
            callbacks=[TrialStartCallback(progress)],
            failure_config=tune.FailureConfig(max_failures=0),
        ),
    )
    tuner.fit()


def _summary(
    study: optuna.Study, name: str, url: str, before: int, recovered: list[int],
    interrupted: list[int], told: list[int], t0: float,
) -> SearchResult:  # fmt: skip
    trials = study.get_trials(deepcopy=False)
    mine = [trials[n] for n in told]
    statuses = collections.Counter(t.user_attrs.get(ATTR_STATUS, "failed") for t in mine)
    return SearchResult(
        study_name=name,
        storage_url=url,
        trials_before=before,
        trials_after=len(trials),
        run_trials=sorted(told),
        recovered=recovered,
        interrupted=interrupted,
        statuses=dict(statuses),
        front=[t.number for t in study.best_trials],
        seconds=time.perf_counter() - t0,
    )
