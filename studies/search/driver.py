"""``run_search``: one run of a study on Ray Tune workers, recorded in the study's SQL storage.

A run (1) opens the storage (fails fast with one line if it does not answer; an in-memory
SQLite URL is refused), (2) creates the study or loads it (same objectives and fingerprint
required: ``prepare_study``; two drivers creating it at once both end up on the one study),
(3) starts Ray locally with ``concurrency * cpus_per_trial`` CPUs and no dashboard, or joins it
at ``ray_address``, and only then (4) fails and re-queues trials a dead search left RUNNING and
(5) queues the reference points the study has not seen, as many as this run has room for (the
rest wait for the next run), each once per study however many drivers start together
(``claims``), and again, a bounded number of times, one whose trials failed for an
infrastructure reason; then (6) runs ``n_trials`` Ray trials: ``StudySearcher`` (OptunaSearch
on the storage) asks (queued trials first) until a proposal is worth training (infeasible ones
and designs judged before are told at once and cost no trial), ``run_trial`` runs on a worker
with ``cpus_per_trial`` CPUs, at most ``concurrency`` at once, and the early-stopping scheduler
stops runs that cannot reach the front (``studies.search.early_stopping``). Each run judges
``n_trials`` designs (unless interrupted, or the sampler runs out of new feasible designs), so
re-running the same spec on the same storage resumes the study with ``n_trials`` more; each
run claims an index and seeds its sampler from it (``claims.run_seed``), so several drivers on
one study sample different designs. Tune's own files go to the run's scratch folder
(``ray_session``), removed at the end. A storage that stops answering mid-run ends it with one
``StorageLost`` line (``studies.storage``); re-running resumes once the storage is back.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import optuna
from rich.console import Console

from nas.errors import ConfigError
from studies import compat
from studies.schema import (
    ATTR_COPY_OF,
    ATTR_REFERENCE,
    ATTR_STATUS,
    STUDY_ATTR_COMPARABLE,
    STUDY_ATTR_FINGERPRINT,
    STUDY_ATTR_OBJECTIVES,
    STUDY_ATTR_SPEC,
    check_study_attrs,
    name_metrics,
)
from studies.search import claims
from studies.search.early_stopping import make_trial_scheduler
from studies.search.heartbeat import Heartbeat, driver_id
from studies.search.outcome import INTERRUPTED
from studies.search.protocol import TrialSettings
from studies.search.ray_session import (
    check_address,
    check_cluster_gpus,
    check_gpus,
    ray_session,
)
from studies.search.recovery import (
    fail_and_requeue,
    infrastructure_failure,
    recover_stale,
)
from studies.search.samplers import make_sampler
from studies.search.spare_cpus import FILE_NAME, SpareCpus
from studies.search.tune_run import run_trials
from studies.signals import stop_requested
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
    trials_after: int  # finished trials after it: before + judged + rejected proposals
    waiting: int  # trials queued for a later run (re-queued ones beyond this run's n_trials)
    run_trials: list[int]  # numbers of the trials this run told
    judged: list[int]  # numbers of the trials this run trained (or costed): n_trials of them
    recovered: list[int]  # stale trials failed and re-queued at the start
    interrupted: list[int]  # this run's unfinished trials, failed and re-queued at its end
    statuses: dict[str, int]  # over this run's judged trials
    not_trained: dict[str, int]  # this run's other proposals: infeasible, copy, failed
    front: list[int]  # the study's Pareto front after the run: one trial per design
    seconds: float
    run_index: int = 0  # this run's index among the study's runs (claims.claim_run)
    seed: int | None = None  # the sampler seed this run used
    stop_reason: str | None = None  # why the run judged fewer than n_trials designs
    redrawn: int = 0  # sampler draws over an analytic limit or judged before, redrawn
    lost: list[int] = dataclasses.field(default_factory=list)  # worker or node died: re-run


def prepare_study(
    spec: StudySpec, study_name: str, storage: optuna.storages.RDBStorage
) -> optuna.Study:
    """Create the study, or load it if its objectives and fingerprint (``StudySpec.comparable``:
    target costs, proxy training, seed) match the spec's: trials measured under other settings
    would be compared with, and copied into, this run's."""
    try:
        study = optuna.load_study(study_name=study_name, storage=storage)
    except KeyError:
        try:
            study = optuna.create_study(study_name=study_name, storage=storage,
                                        directions=spec.directions)  # fmt: skip
        except optuna.exceptions.DuplicatedStudyError:  # another driver created it just now
            study = optuna.load_study(study_name=study_name, storage=storage)
    check_study_attrs(study_name, study.user_attrs)
    if STUDY_ATTR_OBJECTIVES not in study.user_attrs and not study.get_trials(deepcopy=False):
        # new (here, or by a driver racing this one with the same spec: the same values)
        study.set_user_attr(STUDY_ATTR_OBJECTIVES, list(spec.objectives))
        study.set_user_attr(STUDY_ATTR_SPEC, spec.model_dump(mode="json"))
        study.set_user_attr(STUDY_ATTR_FINGERPRINT, spec.fingerprint)
        study.set_user_attr(STUDY_ATTR_COMPARABLE, spec.comparable())
    stored = study.user_attrs.get(STUDY_ATTR_OBJECTIVES)
    directions = [d.name.lower() for d in study.directions]
    if stored != list(spec.objectives) or directions != spec.directions:
        raise ConfigError(
            f"objectives: study {study_name!r} in this storage optimises {stored or directions}, "
            f"the spec asks {list(spec.objectives)}; keep them or choose another --study-name"
        )
    changes = incomparable(study, spec)
    if changes:
        raise ConfigError(
            f"{changes[0].split(' ', 1)[0]}: study {study_name!r} in this storage was measured "
            f"with other settings ({'; '.join(changes)}), so its results would not compare; "
            "put them back, or start a new study with --study-name NEW"
        )
    if STUDY_ATTR_FINGERPRINT not in study.user_attrs:  # a study from before fingerprints
        study.set_user_attr(STUDY_ATTR_FINGERPRINT, spec.fingerprint)
        study.set_user_attr(STUDY_ATTR_COMPARABLE, spec.comparable())
    name_metrics(study, spec.objectives)  # new, or from before metric names: names with units
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


def incomparable(study: optuna.Study, spec: StudySpec) -> list[str]:
    """Why results of ``study`` would not compare with runs of ``spec`` made today: each
    comparable field that differs (``"proxy.budget.steps 60 -> 100"``); empty when they compare
    (or the study says nothing). The search refuses to resume such a study, and ``unetmm
    confirm`` to confirm it."""
    old, old_fields = _stored_fingerprint(study)
    if old is None or old == spec.fingerprint:
        return []
    return _changes(old_fields, spec.comparable()) or ["target, proxy or seed"]


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
    given_up: list[str] = dataclasses.field(default_factory=list)  # failed too often

    def messages(self, space: str, n_trials: int) -> list[str]:
        out = []
        if self.skipped:
            out.append(f"reference point(s) {self.skipped} skipped: space {space!r} cannot "
                       "express them with these bounds")  # fmt: skip
        if self.later:
            out.append(f"reference point(s) {self.later} wait for a later run: this run's "
                       f"{n_trials} trial(s) go to the queued ones first")  # fmt: skip
        if self.given_up:
            out.append(f"reference point(s) {self.given_up} failed for infrastructure reasons "
                       "as often as recovery.max_retry allows; not queued again")  # fmt: skip
        return out


def enqueue_references(
    study: optuna.Study,
    spec: StudySpec,
    room: int | None = None,
    driver: str | None = None,
) -> Queued:
    """Queue the reference points and user points the study has not seen, at most ``room``
    of them (None: all), in the spec's order; each after winning its claim (``claims``), so a
    point is queued once per study even when several drivers start together. A point whose
    trials all failed for an infrastructure reason (``recovery.infrastructure_failure``) is
    queued again, at most ``recovery.max_retry`` times; a claim that no trial followed within
    ``recovery.grace_period`` seconds (its driver died in between) counts as such a failure."""
    refs = spec.reference_params()
    points = {k: v for k, v in refs.items() if v is not None}
    points |= {f"point{i}": p for i, p in enumerate(spec.point_params())}
    done = Queued([], [], [k for k, v in refs.items() if v is None])
    driver = driver or driver_id()
    rec = spec.recovery
    by_name: dict[str, list[optuna.trial.FrozenTrial]] = collections.defaultdict(list)
    for t in study.get_trials(deepcopy=False):
        if t.user_attrs.get(ATTR_REFERENCE):
            by_name[t.user_attrs[ATTR_REFERENCE]].append(t)
    for name, params in points.items():
        trials = by_name.get(name, [])
        if any(t.state != optuna.trial.TrialState.FAIL for t in trials):
            continue  # queued, running or finished
        attempts = claims.reference_attempts(study, name)
        if not trials and not attempts and compat.already_enqueued(study, params):
            continue  # a study from before claims saw this design under another name
        if trials and not all(infrastructure_failure(t) for t in trials):
            continue  # failed for the design's own reason: it would again
        newest = max((a.get("time", 0.0) for a in attempts.values()), default=None)
        if newest is not None and time.time() - newest < rec.grace_period:
            continue  # claimed a moment ago: its driver is queuing it (or it just failed)
        if len(attempts) > rec.max_retry:
            done.given_up.append(name)
            continue
        if room is not None and len(done.queued) >= room:
            done.later.append(name)
            continue
        if claims.claim_reference(study, name, len(attempts), driver):
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
    gpus = check_gpus(spec.gpus_per_trial, spec.gpu_fallback, ray_address)
    if gpus != spec.gpus_per_trial:  # the user allowed the CPU instead
        spec = spec.with_overrides(gpus_per_trial=gpus)
    url = normalize_url(storage_url or spec.storage or default_storage_url())
    require_persistent(url)
    name = study_name or spec.name
    storage = open_storage(url)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = prepare_study(spec, name, storage)
    before = _finished(study)
    rec = spec.recovery
    heartbeat = Heartbeat(storage, rec.heartbeat_interval)
    progress = Progress(study, spec.n_trials, console, spec.objectives)
    searcher, recovered, left = None, [], []
    driver = driver_id()
    run = claims.claim_run(study, driver)
    seed = claims.run_seed(spec.seed, run)
    try:
        with ray_session(ray_address, spec.concurrency * spec.cpus_per_trial,
                         spec.cpus_per_trial, spec.worker_niceness) as run_dir:  # fmt: skip
            if ray_address and spec.gpus_per_trial:
                check_cluster_gpus(spec.gpus_per_trial)
            # Ray is up (or joined): only now are trials failed, re-queued or queued
            recovered = recover_stale(study, rec.grace_period, rec.max_retry)
            if recovered:
                console.print(f"re-queued {len(recovered)} trial(s) a stopped search left "
                              f"running: {recovered}")  # fmt: skip
            room = max(0, spec.n_trials - len(_waiting(study)))
            refs = enqueue_references(study, spec, room, driver)
            console.print(f"study {name!r} in {shown(url)}: {before} trial(s) so far, "
                          f"{spec.n_trials} design(s) to judge (run {run}, seed {seed})"
                          + (f", queued reference points {refs.queued}" if refs.queued else ""))  # fmt: skip
            for line in refs.messages(spec.space.name, spec.n_trials):
                console.print(line)
            sampler = make_sampler(spec.sampler.name, seed, spec.sampler.options, spec.n_trials)
            heartbeat.start()
            searcher = StudySearcher(spec, name, storage, sampler, heartbeat, progress)
            spare = None if ray_address or spec.gpus_per_trial else run_dir / FILE_NAME
            with progress:
                _tune(spec, name, searcher, progress, str(run_dir / "tune"), spare)
                if searcher.parked and not stop_requested():
                    console.print(f"waiting for {len(searcher.parked)} design(s) another search "
                                  "is training, to copy their results")  # fmt: skip
                left = [] if stop_requested() else searcher.settle()  # stopped: re-queued below
            if searcher.stop_reason:
                console.print(f"stopped early: {searcher.stop_reason}")
    except Exception as exc:
        raise_if_lost(exc, url)  # one line: the storage stopped answering (trials are safe)
        raise
    finally:
        heartbeat.stop()
        if searcher is not None:
            with ignoring_lost():  # then the next run re-queues them: their driver is gone
                unfinished = dict.fromkeys(searcher.unfinished_trial_ids(), INTERRUPTED)
                left += fail_and_requeue(study, unfinished, rec.max_retry)
                if left:
                    console.print(f"re-queued {len(left)} unfinished trial(s) {left} for the "
                                  "next run")  # fmt: skip
    return _summary(study, name, url, before, recovered, left, searcher, t0, run, seed)


STOPPING = ("stopping: the running trials are failed and queued for the next run (Ctrl-C again "
            "stops at once)")


def _tune(spec: StudySpec, name: str, searcher: Any, progress: Any, ray_dir: str,
          spare: Path | None = None) -> None:  # fmt: skip
    """Ray Tune (``tune_run.run_trials``): trials until ``n_trials`` are judged, ``concurrency``
    at once, under the spec's early-stopping rule; with ``spare`` (a file path), CPUs idle at
    the end go to the trials still running (``spare_cpus``)."""
    from studies.search.progress import TrialStartCallback

    settings = TrialSettings.from_spec(spec)
    callbacks: list[Any] = [TrialStartCallback(progress)]
    if spare is not None:
        settings = dataclasses.replace(settings, spare_cpus_file=str(spare))
        callbacks.append(SpareCpus(str(spare), spec.n_trials,
                                   spec.concurrency * spec.cpus_per_trial, spec.cpus_per_trial,
                                   finished=lambda: searcher.stop_reason is not None))  # fmt: skip
    run_trials(searcher, settings, name=name, ray_dir=ray_dir, cpus=spec.cpus_per_trial,
               gpus=spec.gpus_per_trial, concurrency=spec.concurrency,
               scheduler=make_trial_scheduler(spec), callbacks=callbacks,
               stopping=STOPPING)  # fmt: skip


def _finished(study: optuna.Study) -> int:
    return sum(t.state.is_finished() for t in study.get_trials(deepcopy=False))


def _waiting(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    return study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.WAITING,))


def _summary(
    study: optuna.Study, name: str, url: str, before: int, recovered: list[int],
    interrupted: list[int], searcher: Any, t0: float, run: int, seed: int,
) -> SearchResult:  # fmt: skip
    from studies.results.pareto import distinct_front, load_points, study_objectives

    told = searcher.told_numbers() if searcher is not None else []
    judged = searcher.judged_numbers() if searcher is not None else []
    lost = searcher.lost_numbers() if searcher is not None else []
    trials = study.get_trials(deepcopy=False)
    statuses = collections.Counter(trials[n].user_attrs.get(ATTR_STATUS, "failed") for n in judged)
    other = collections.Counter(
        "copy" if ATTR_COPY_OF in trials[n].user_attrs else trials[n].user_attrs.get(ATTR_STATUS)
        for n in set(told) - set(judged) - set(lost))
    front = distinct_front(load_points(study), study_objectives(study))
    return SearchResult(
        study_name=name,
        storage_url=url,
        trials_before=before,
        trials_after=_finished(study),
        waiting=len(_waiting(study)),
        run_trials=sorted(told),
        judged=judged,
        recovered=recovered,
        interrupted=interrupted,
        statuses=dict(statuses),
        not_trained=dict(other),
        front=[row.point.number for row in front],
        seconds=time.perf_counter() - t0,
        run_index=run,
        seed=seed,
        stop_reason=searcher.stop_reason if searcher is not None else None,
        redrawn=getattr(searcher.sampler, "redrawn", 0) if searcher is not None else 0,
        lost=lost,
    )
