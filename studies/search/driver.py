"""``run_search``: one run of a study on Ray Tune workers, recorded in the study's SQL storage.

A run (1) opens the storage (fails fast with one line if it does not answer; an in-memory
SQLite URL is refused), (2) creates the study or loads it (same objectives and fingerprint
required: ``prepare_study``), (3) starts Ray locally with ``concurrency * cpus_per_trial`` CPUs
and no dashboard, or joins it at ``ray_address``, and only then (4) fails and re-queues trials a
dead search left RUNNING and (5) queues the reference points the study has not seen, as many as
this run has room for (the rest wait for the next run), then (6) runs ``n_trials`` trials with
Ray Tune: ``StudySearcher`` (OptunaSearch on the storage) asks (queued trials first),
``run_trial`` runs on a worker with ``cpus_per_trial`` CPUs, at most ``concurrency`` at once,
and ASHA stops weak proxy runs (``studies.search.early_stopping``). Each run adds ``n_trials``
finished trials (unless interrupted), so re-running the same spec on the same storage resumes
the study with ``n_trials`` more. Tune's own files go to the run's scratch folder
(``ray_session``), removed at the end. A storage that stops answering mid-run ends it with one
``StorageLost`` line (``studies.storage``); re-running resumes once the storage is back.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import time
import warnings
from typing import Any

import optuna
from rich.console import Console

from nas.errors import ConfigError
from studies import compat
from studies.schema import (
    ATTR_REFERENCE,
    ATTR_STATUS,
    STUDY_ATTR_COMPARABLE,
    STUDY_ATTR_FINGERPRINT,
    STUDY_ATTR_OBJECTIVES,
    STUDY_ATTR_SPEC,
)
from studies.search.early_stopping import make_trial_scheduler
from studies.search.heartbeat import Heartbeat
from studies.search.protocol import TrialSettings
from studies.search.ray_session import check_address, ray_session
from studies.search.recovery import fail_and_requeue, recover_stale
from studies.search.samplers import make_sampler
from studies.spec import StudySpec
from studies.storage import (
    default_storage_url,
    ignoring_lost,
    normalize_url,
    open_storage,
    raise_if_lost,
    require_persistent,
    shown,
)


@dataclasses.dataclass
class SearchResult:
    """What one run did (trial counts are over the whole study unless named ``run``)."""

    study_name: str
    storage_url: str
    trials_before: int  # finished trials (complete, pruned, failed) before the run
    trials_after: int  # finished trials after it: trials_before + n_trials unless interrupted
    waiting: int  # trials queued for a later run (re-queued ones beyond this run's n_trials)
    run_trials: list[int]  # numbers of the trials this run told
    recovered: list[int]  # stale trials failed and re-queued at the start
    interrupted: list[int]  # this run's unfinished trials, failed and re-queued at its end
    statuses: dict[str, int]  # over this run's trials
    front: list[int]  # numbers of study.best_trials after the run
    seconds: float


def prepare_study(
    spec: StudySpec, study_name: str, storage: optuna.storages.RDBStorage
) -> optuna.Study:
    """Create the study, or load it if its objectives and fingerprint (``StudySpec.comparable``:
    target costs, proxy training, seed) match the spec's: trials measured under other settings
    would be compared with, and copied into, this run's."""
    try:
        study = optuna.load_study(study_name=study_name, storage=storage)
    except KeyError:
        study = optuna.create_study(study_name=study_name, storage=storage,
                                    directions=spec.directions)  # fmt: skip
        study.set_user_attr(STUDY_ATTR_OBJECTIVES, list(spec.objectives))
        study.set_user_attr(STUDY_ATTR_SPEC, spec.model_dump(mode="json"))
        study.set_user_attr(STUDY_ATTR_FINGERPRINT, spec.fingerprint)
        study.set_user_attr(STUDY_ATTR_COMPARABLE, spec.comparable())
        return study
    stored = study.user_attrs.get(STUDY_ATTR_OBJECTIVES)
    directions = [d.name.lower() for d in study.directions]
    if stored != list(spec.objectives) or directions != spec.directions:
        raise ConfigError(
            f"objectives: study {study_name!r} in this storage optimises {stored or directions}, "
            f"the spec asks {list(spec.objectives)}; keep them or choose another --study-name"
        )
    old, old_fields = _stored_fingerprint(study)
    if old is not None and old != spec.fingerprint:
        changes = _changes(old_fields, spec.comparable()) or ["target, proxy or seed"]
        raise ConfigError(
            f"{changes[0].split(' ', 1)[0]}: study {study_name!r} in this storage was measured "
            f"with other settings ({'; '.join(changes)}), so its results would not compare; "
            "put them back, or start a new study with --study-name NEW"
        )
    if STUDY_ATTR_FINGERPRINT not in study.user_attrs:  # a study from before fingerprints
        study.set_user_attr(STUDY_ATTR_FINGERPRINT, spec.fingerprint)
        study.set_user_attr(STUDY_ATTR_COMPARABLE, spec.comparable())
    return study


def _stored_fingerprint(study: optuna.Study) -> tuple[str | None, dict[str, Any]]:
    """The study's fingerprint and comparable fields; derived from its stored spec for a
    study created before fingerprints; (None, {}) where neither is there."""
    attrs = study.user_attrs
    if attrs.get(STUDY_ATTR_FINGERPRINT):
        return attrs[STUDY_ATTR_FINGERPRINT], attrs.get(STUDY_ATTR_COMPARABLE) or {}
    try:
        old = StudySpec.model_validate(attrs[STUDY_ATTR_SPEC])
    except (KeyError, ValueError):
        return None, {}
    return old.fingerprint, old.comparable()


def _changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """``"proxy.budget.steps 60 -> 100"`` for each comparable field that differs."""
    out = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out += [f"{key}.{k} {json.dumps(a.get(k))} -> {json.dumps(b.get(k))}"
                    for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]  # fmt: skip
        elif a != b:
            out.append(f"{key} {json.dumps(a)} -> {json.dumps(b)}")
    return out


@dataclasses.dataclass
class Queued:
    """What ``enqueue_references`` did with the spec's reference points and user points."""

    queued: list[str]  # queued now
    later: list[str]  # not seen yet, but this run has no room: queued by a later run
    skipped: list[str]  # references the space cannot express with these bounds

    def messages(self, space: str, n_trials: int) -> list[str]:
        out = []
        if self.skipped:
            out.append(f"reference point(s) {self.skipped} skipped: space {space!r} cannot "
                       "express them with these bounds")  # fmt: skip
        if self.later:
            out.append(f"reference point(s) {self.later} wait for a later run: this run's "
                       f"{n_trials} trial(s) go to the queued ones first")  # fmt: skip
        return out


def enqueue_references(
    study: optuna.Study, spec: StudySpec, room: int | None = None
) -> Queued:
    """Queue the reference points and user points the study has not seen, at most ``room``
    of them (None: all), in the spec's order."""
    refs = spec.reference_params()
    points = {k: v for k, v in refs.items() if v is not None}
    points |= {f"point{i}": p for i, p in enumerate(spec.point_params())}
    done = Queued([], [], [k for k, v in refs.items() if v is None])
    for name, params in points.items():
        if compat.already_enqueued(study, params):  # seen (enqueue_trial's skip_if_exists test)
            continue
        if room is not None and len(done.queued) >= room:
            done.later.append(name)
            continue
        study.enqueue_trial(params, user_attrs={ATTR_REFERENCE: name})
        done.queued.append(name)
    return done


def run_search(
    spec: StudySpec,
    storage_url: str | None = None,
    ray_address: str | None = None,
    study_name: str | None = None,
    console: Console | None = None,
) -> SearchResult:
    """Run (or resume) ``spec``; see the module docstring. Returns what the run did."""
    from studies.search.progress import Progress
    from studies.search.searcher import StudySearcher

    t0 = time.perf_counter()
    console = console or Console(highlight=False)
    if ray_address:  # every cheap check before the storage is touched
        check_address(ray_address)
    url = normalize_url(storage_url or spec.storage or default_storage_url())
    require_persistent(url)
    name = study_name or spec.name
    storage = open_storage(url)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = prepare_study(spec, name, storage)
    before = _finished(study)
    rec = spec.recovery
    heartbeat = Heartbeat(storage, rec.heartbeat_interval)
    progress = Progress(study, spec.n_trials, console)
    searcher, recovered, left = None, [], []
    try:
        with ray_session(ray_address, spec.concurrency * spec.cpus_per_trial,
                         spec.cpus_per_trial) as run_dir:  # fmt: skip
            # Ray is up (or joined): only now are trials failed, re-queued or queued
            recovered = recover_stale(study, rec.grace_period, rec.max_retry)
            if recovered:
                console.print(f"re-queued {len(recovered)} trial(s) a stopped search left "
                              f"running: {recovered}")  # fmt: skip
            room = max(0, spec.n_trials - len(_waiting(study)))
            refs = enqueue_references(study, spec, room)
            console.print(f"study {name!r} in {shown(url)}: {before} trial(s) so far, "
                          f"{spec.n_trials} to run"
                          + (f", queued reference points {refs.queued}" if refs.queued else ""))  # fmt: skip
            for line in refs.messages(spec.space.name, spec.n_trials):
                console.print(line)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                # seed + trials so far: a resumed run samples new points, not the first ones again
                sampler = make_sampler(spec.sampler.name, spec.seed + before, spec.sampler.options)
            heartbeat.start()
            searcher = StudySearcher(spec, name, storage, sampler, heartbeat, progress)
            with progress:
                _tune(spec, name, searcher, progress, str(run_dir / "tune"))
    except Exception as exc:
        raise_if_lost(exc, url)  # one line: the storage stopped answering (trials are safe)
        raise
    finally:
        heartbeat.stop()
        if searcher is not None:
            with ignoring_lost():  # then the next run re-queues them: their driver is gone
                unfinished = dict.fromkeys(searcher.unfinished_trial_ids(),
                                           "the search was interrupted")  # fmt: skip
                left = fail_and_requeue(study, unfinished, rec.max_retry)
                if left:
                    console.print(f"re-queued {len(left)} unfinished trial(s) {left} for the "
                                  "next run")  # fmt: skip
    told = searcher.told_numbers() if searcher is not None else []
    return _summary(study, name, url, before, recovered, left, told, t0)


STOPPING = ("stopping: the running trials are failed and queued for the next run (Ctrl-C again "
            "stops at once)")


def _tune(spec: StudySpec, name: str, searcher: Any, progress: Any, ray_dir: str) -> None:
    """Ray Tune: ``n_trials`` trials of ``run_trial``, ``concurrency`` at once."""
    from ray import tune

    from studies.search.progress import TrialStartCallback
    from studies.search.ray_session import signal_stopper
    from studies.search.worker import run_trial
    from studies.signals import graceful_stop

    trainable = tune.with_resources(
        tune.with_parameters(run_trial, settings=TrialSettings.from_spec(spec)),
        {"cpu": spec.cpus_per_trial},
    )
    tuner = tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(
            search_alg=searcher,
            scheduler=make_trial_scheduler(spec),
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
            stop=signal_stopper(),  # Ctrl-C / SIGTERM: Tune stops the trials, we re-queue them
        ),
    )
    with graceful_stop(STOPPING):
        tuner.fit()


def _finished(study: optuna.Study) -> int:
    return sum(t.state.is_finished() for t in study.get_trials(deepcopy=False))


def _waiting(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    return study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.WAITING,))


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
        trials_after=_finished(study),
        waiting=len(_waiting(study)),
        run_trials=sorted(told),
        recovered=recovered,
        interrupted=interrupted,
        statuses=dict(statuses),
        front=[t.number for t in study.best_trials],
        seconds=time.perf_counter() - t0,
    )
