"""``run_confirm``: a study's front re-trained at a higher fidelity, on Ray, into a linked study.

What is stored where, and why a linked study: ``studies.schema`` ("Confirmation studies") and
``studies.results.confirm``. A run

1. loads the source study and the spec it was searched with, and resolves the fidelity: the
   study's proxy budget with ``steps`` steps or ``scale`` times its steps (default 4x), on the
   proxy backbone or on the target backbone itself (``backbone``), at seeds ``seed .. seed +
   seeds - 1`` (the study's seed first);
2. creates the linked study (``<study>.confirm`` unless ``name``) or loads it: a fidelity other
   than the one it was created with is refused with the flag named (use another ``--name``);
   more ``top`` or more ``seeds`` than before only adds jobs;
3. picks the designs (``studies.results.confirm.select_designs``: the front's first ``top`` by
   proxy score, plus the trained reference points); a job is one (design, seed);
4. starts Ray (or joins it at ``ray_address``), fails the linked study's RUNNING trials whose
   driver is gone (``studies.search.recovery``: dead process or silent heartbeat), and skips every
   job that has a COMPLETE trial, or a RUNNING one of a live driver: nothing is trained twice;
5. runs the other jobs on the search's own trial machinery: Ray Tune trials of the search's
   worker (``worker.run_trial``, with the job's seed in its config: ``protocol.SEED_KEY``) set up
   by ``tune_run.run_trials``, ``cpus_per_trial`` CPUs and ``gpus_per_trial`` GPUs each (training
   on CUDA when > 0), at most ``concurrency`` at once (all the study's unless given; its
   ``gpu_fallback`` decides what a GPU request does where torch sees none). ``JobSearcher``
   hands them out: a job's trial is asked when Tune starts it (with this driver's id and a
   heartbeat) and told by ``outcome.decide`` when it ends: COMPLETE with the confirmed score
   (the study's own: PSNR, or e.g. SAD for a matting study), or FAIL with the reason (a later
   run tries a failed job again; one whose worker or node died runs again at once, as a
   search's trial does). The persistent score cache serves a run trained before. A job is
   checked again just before it starts, so two confirmations of one study at once mostly split
   the work, but only one at a time is sure to train nothing twice;
6. when interrupted (the first Ctrl-C or SIGTERM stops the trials; an error), fails its
   unfinished trials ("interrupted"): the same command resumes. Last, it stores the summary in
   the linked study and returns it.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import time
import warnings
from collections.abc import Callable
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState
from ray.tune.search import Searcher
from rich.console import Console

from nas.config import ArchConfig
from nas.errors import ConfigError
from studies import compat, schema
from studies.metrics import SCORE, Metric, cost_metrics, get_metric, study_score
from studies.results import pareto
from studies.results.confirm import (
    Confirmation,
    agreement_text,
    job_key,
    proxy_score,
    select_designs,
    summarize,
    table_rows,
)
from studies.results.pareto import TrialPoint
from studies.search import protocol
from studies.search.driver import incomparable
from studies.search.heartbeat import Heartbeat, driver_id
from studies.search.outcome import INTERRUPTED, WORKER_DIED, apply, decide
from studies.search.protocol import TrialSettings
from studies.search.ray_session import (
    check_address,
    check_cluster_gpus,
    check_gpus,
    ray_session,
)
from studies.search.recovery import fail_and_requeue, stale_trials
from studies.search.tune_run import StoredInStudy, run_trials
from studies.signals import stop_requested
from studies.spec import StudySpec, fingerprint
from studies.storage import load_study
from trainers.config import ProxyBudget, training_identity

CONFIRM_ON = ("proxy", "target")  # the backbones a confirmation may train (--backbone)
DEFAULT_SCALE = 4.0
Listener = Callable[[str, FrozenTrial], None]


@dataclasses.dataclass(frozen=True)
class ConfirmOptions:
    """What ``unetmm confirm`` asks for (``check`` names a bad flag in a ``ConfigError``)."""

    top: int = 5
    steps: int | None = None
    scale: float | None = None  # DEFAULT_SCALE when neither is given
    backbone: str = "proxy"
    seeds: int = 2
    concurrency: int | None = None  # None: the study's
    cpus_per_trial: int | None = None  # None: the study's
    gpus_per_trial: float | None = None  # None: the study's (its gpu_fallback applies)
    score_cache: bool = True
    name: str | None = None  # linked study (default <study>.confirm)

    def check(self) -> ConfirmOptions:
        for flag, value in (("--top", self.top), ("--seeds", self.seeds),
                            ("--concurrency", self.concurrency),
                            ("--cpus-per-trial", self.cpus_per_trial)):  # fmt: skip
            if value is not None and value < 1:
                raise ConfigError(f"{flag}: must be >= 1, got {value}")
        if self.gpus_per_trial is not None and self.gpus_per_trial < 0:
            raise ConfigError(f"--gpus-per-trial: must be >= 0, got {self.gpus_per_trial:g}")
        if self.steps is not None and self.scale is not None:
            raise ConfigError("--steps/--scale: give one of them (steps, or a multiple of the "
                              "study's proxy steps)")  # fmt: skip
        if self.steps is not None and self.steps < 1:
            raise ConfigError(f"--steps: must be >= 1, got {self.steps}")
        if self.scale is not None and not self.scale > 0:
            raise ConfigError(f"--scale: must be > 0, got {self.scale}")
        if self.backbone not in CONFIRM_ON:
            raise ConfigError(f"--backbone: {self.backbone!r} is not one of {list(CONFIRM_ON)}")
        return self

    def for_study(self, spec: StudySpec) -> ConfirmOptions:
        """These options with the study's concurrency and CPUs and GPUs per trial where not
        given."""
        gpus = spec.gpus_per_trial if self.gpus_per_trial is None else self.gpus_per_trial
        return dataclasses.replace(
            self, concurrency=self.concurrency or spec.concurrency,
            cpus_per_trial=self.cpus_per_trial or spec.cpus_per_trial, gpus_per_trial=gpus,
        )  # fmt: skip

    def budget(self, proxy: ProxyBudget) -> ProxyBudget:
        """The study's proxy budget at this fidelity."""
        if self.steps is not None:
            return proxy.scaled(self.steps / proxy.steps).model_copy(update={"steps": self.steps})
        return proxy.scaled(self.scale if self.scale is not None else DEFAULT_SCALE)


@dataclasses.dataclass(frozen=True)
class Job:
    """One (design, seed) to train."""

    point: TrialPoint
    seed: int

    @property
    def key(self) -> str:
        return job_key(self.point.attrs.get(schema.ATTR_ARCH), self.seed)


@dataclasses.dataclass
class ConfirmResult:
    """What one run did, and the confirmation after it."""

    study_name: str
    jobs: int  # (design, seed) pairs asked for
    done_before: int  # of them complete before this run
    ran: list[int]  # trial numbers this run told
    recovered: list[int]  # stale trials failed at the start
    interrupted: list[int]  # this run's unfinished trials, failed at its end
    confirmation: Confirmation
    seconds: float
    lost: list[int] = dataclasses.field(default_factory=list)  # of ran: worker died, job re-run


def source_spec(study: optuna.Study) -> StudySpec:
    """The spec the source study was searched with (its ``spec`` attribute)."""
    try:
        return StudySpec.model_validate(study.user_attrs[schema.STUDY_ATTR_SPEC])
    except (KeyError, ValueError) as exc:
        raise ConfigError(
            f"--study: {study.study_name!r} has no usable stored spec ({type(exc).__name__}); "
            "confirm reads the proxy settings from a study written by `unetmm search`"
        ) from None


def job_settings(spec: StudySpec, options: ConfirmOptions) -> TrialSettings:
    """The worker settings of every job (the seed is set per job)."""
    base = TrialSettings.from_spec(spec)
    backbone = (spec.target.backbone_config() if options.backbone == "target"
                else base.proxy_backbone)  # fmt: skip
    return dataclasses.replace(
        base, proxy_backbone=backbone, budget=options.budget(spec.proxy.budget),
        threads=options.cpus_per_trial, score_cache=options.score_cache, hard_constraints=(),
        needs_training=True, device="cuda" if options.gpus_per_trial else "cpu", costs=False,
    )  # fmt: skip


def fidelity(spec: StudySpec, settings: TrialSettings, options: ConfirmOptions,
             score: Metric | None = None) -> dict[str, Any]:  # fmt: skip
    """What the confirmed runs are trained with, and the score they are judged by when it is
    not PSNR (the linked study keeps it; seeds excluded)."""
    fields = {
        "backbone": options.backbone,
        "trained_backbone": settings.proxy_backbone.to_dict(),
        **training_identity(settings.task, settings.data, settings.budget),
        "source_fingerprint": spec.fingerprint,
    }
    if score is not None and score.name != SCORE:
        fields["score"] = score.name
    return json.loads(json.dumps(fields))


FLAGS = {"backbone": "--backbone", "trained_backbone": "--backbone", "budget": "--steps/--scale"}


def prepare_confirm_study(
    source: optuna.Study, name: str, fields: dict[str, Any], score: Metric | None = None
) -> optuna.Study:
    """Create the linked study ``name`` or load it (same source and fidelity required); its
    trials' value is ``score`` (default PSNR), in that metric's direction."""
    score = score or get_metric(SCORE)
    storage = compat.study_storage(source)
    if name == source.study_name:
        raise ConfigError(f"--name: {name!r} is the source study itself; choose another name")
    try:
        study = optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        study = optuna.create_study(study_name=name, storage=storage, direction=score.direction)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names([score.optuna_name])  # "PSNR [dB]"
        study.set_user_attr(schema.STUDY_ATTR_CONFIRM_OF, source.study_name)
        study.set_user_attr(schema.STUDY_ATTR_SCORE, score.name)
        study.set_user_attr(schema.STUDY_ATTR_FIDELITY, fields)
        study.set_user_attr(schema.STUDY_ATTR_FINGERPRINT, fingerprint(fields))
        return study
    attrs = study.user_attrs
    if attrs.get(schema.STUDY_ATTR_CONFIRM_OF) != source.study_name:
        raise ConfigError(
            f"--name: study {name!r} in this storage is not a confirmation of "
            f"{source.study_name!r}; choose another --name"
        )
    if attrs.get(schema.STUDY_ATTR_FINGERPRINT) != fingerprint(fields):
        old = attrs.get(schema.STUDY_ATTR_FIDELITY) or {}
        changed = [k for k in sorted(set(old) | set(fields)) if old.get(k) != fields.get(k)]
        flag = next((FLAGS[k] for k in changed if k in FLAGS), "--name")
        shown = "; ".join(f"{k} {json.dumps(old.get(k))} -> {json.dumps(fields.get(k))}"
                          for k in changed if k != "trained_backbone")  # fmt: skip
        raise ConfigError(
            f"{flag}: {name!r} was confirmed at another fidelity ({shown or 'source study'}), so "
            "its runs would not compare; put it back, or confirm into a new study with --name NEW"
        )
    return study


def _job_attrs(job: Job, driver: str, score: str) -> dict[str, Any]:
    p = job.point
    proxy, partial = proxy_score(p, score)
    costs = {m.key: p.attrs[m.key] for m in cost_metrics() if m.key in p.attrs}
    attrs = {
        schema.ATTR_DRIVER: driver, schema.ATTR_JOB: job.key,
        schema.ATTR_SOURCE_TRIAL: p.number, schema.ATTR_SEED: job.seed,
        schema.ATTR_ARCH: p.attrs[schema.ATTR_ARCH], schema.ATTR_DESIGN: p.attrs.get(
            schema.ATTR_DESIGN, f"trial {p.number}"),
        schema.ATTR_PROXY_SCORE: proxy, schema.ATTR_PROXY_PARTIAL: partial, **costs,
    }  # fmt: skip
    if p.reference:
        attrs[schema.ATTR_REFERENCE] = p.reference
    return attrs


class JobSearcher(StoredInStudy, Searcher):
    """Hands the jobs to Ray Tune, one trial each (see the module docstring, step 5): a job's
    Optuna trial is asked when Tune starts it and told (``outcome.decide``) when it ends. A job
    whose worker or node died runs again in the same run, at most ``max_retry`` times."""

    _not_pickled = ("heartbeat", "console", "listener")

    def __init__(
        self, study: optuna.Study, jobs: list[Job], score: Metric, heartbeat: Heartbeat,
        console: Console, listener: Listener | None, max_retry: int,
    ) -> None:  # fmt: skip
        super().__init__()
        self.study, self.score, self.max_retry = study, score, max_retry
        self.heartbeat, self.console, self.listener = heartbeat, console, listener
        self.queue, self.total = list(jobs), len(jobs)
        self.driver = driver_id()
        self.live: dict[str, tuple[optuna.Trial, Job]] = {}  # Tune trial id -> (trial, job)
        self.told: list[int] = []
        self.lost: list[int] = []  # told failed with their worker; their job ran again
        self.retries: collections.Counter[str] = collections.Counter()
        self.finals: dict[str, dict[str, Any]] = {}  # Tune trial id -> its final report

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        if stop_requested():  # Ctrl-C: Tune is stopping; start nothing more
            return None
        while self.queue:
            job = self.queue.pop(0)
            if self._taken(job):  # another driver took it since the run started
                continue
            trial = self.study.ask()
            for key, value in _job_attrs(job, self.driver, self.score.name).items():
                trial.set_user_attr(key, value)
            self.heartbeat.add(compat.trial_id(trial))
            self.live[trial_id] = (trial, job)
            self._notify("start", trial)
            arch = ArchConfig.from_dict(job.point.attrs[schema.ATTR_ARCH])
            return {protocol.ARCH_KEY: arch.to_json(), protocol.NUMBER_KEY: trial.number,
                    protocol.SEED_KEY: job.seed}  # fmt: skip
        return None if self.live else Searcher.FINISHED

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        if protocol.phase_of(result) == protocol.PHASE_FINAL:  # kept should the worker die now
            self.finals[trial_id] = result

    def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        if trial_id not in self.live:
            return
        trial, job = self.live[trial_id]
        final = self.finals.pop(trial_id, {})
        if protocol.phase_of(result) == protocol.PHASE_FINAL:
            final = result
        outcome = decide(protocol.trial_attrs(final or {}), [self.score.key], (), error)
        apply(self.study, trial, outcome)  # if it raises, the trial stays live: failed at the end
        del self.live[trial_id]
        self.heartbeat.discard(compat.trial_id(trial))
        self.told.append(trial.number)
        lost = error and outcome.attrs.get(schema.ATTR_ERROR) == WORKER_DIED
        if lost and self.retries[job.key] < self.max_retry:
            self.retries[job.key] += 1
            self.lost.append(trial.number)
            self.queue.insert(0, job)
        self._say(trial, job, outcome.attrs, again=lost and trial.number in self.lost)
        self._notify("finish", trial)

    def unfinished_trial_ids(self) -> dict[int, str]:
        """Trials of jobs Tune did not finish (a stop), each with the reason to fail it."""
        return {compat.trial_id(t): INTERRUPTED for t, _ in self.live.values()}

    def _taken(self, job: Job) -> bool:
        states = (TrialState.COMPLETE, TrialState.RUNNING)
        return any(t.user_attrs.get(schema.ATTR_JOB) == job.key
                   for t in self.study.get_trials(deepcopy=False, states=states))  # fmt: skip

    def _say(self, trial: optuna.Trial, job: Job, attrs: dict[str, Any], again: bool) -> None:
        p = job.point
        head = (f"[{len(self.told) - len(self.lost)}/{self.total}] trial {trial.number}: "
                f"#{p.number} {p.design} seed {job.seed}")  # fmt: skip
        if attrs.get(schema.ATTR_STATUS) == schema.STATUS_COMPLETE:
            cached = " (score cache)" if attrs.get(schema.ATTR_SCORE_CACHED) else ""
            m = self.score
            proxy = proxy_score(p, m.name)[0]
            shown = "n/a" if proxy is None else m.format(proxy)
            self.console.print(f"{head}: {m.short} {m.format(attrs[m.key])} (proxy {shown})"
                               f"{cached}")  # fmt: skip
        else:
            retry = "; the job runs again" if again else ""
            self.console.print(f"{head}: failed: {attrs.get(schema.ATTR_ERROR)}{retry}")

    def _notify(self, event: str, trial: optuna.Trial) -> None:
        if self.listener is not None:
            storage = compat.study_storage(self.study)
            self.listener(event, storage.get_trial(compat.trial_id(trial)))


STOPPING = ("stopping: the running jobs are failed; the same command resumes (Ctrl-C again "
            "stops at once)")


def run_confirm(
    storage: str,
    study_name: str | None = None,
    options: ConfirmOptions | None = None,
    *,
    ray_address: str | None = None,
    console: Console | None = None,
    listener: Listener | None = None,
) -> ConfirmResult:
    """Confirm the front of ``study_name`` in ``storage`` (see the module docstring)."""
    t0 = time.perf_counter()
    options = (options or ConfirmOptions()).check()
    console = console or Console(highlight=False, soft_wrap=True)
    if ray_address:
        check_address(ray_address)
    source = load_study(storage, study_name)
    spec = source_spec(source)
    changes = incomparable(source, spec)
    if changes:  # e.g. trained on data that today's code makes differently
        raise ConfigError(
            f"--study: {source.study_name!r} was searched with settings that today's unetmm "
            f"trains differently ({'; '.join(changes)}), so a confirmation would not compare "
            "with its proxy scores; search again into a new study and confirm that"
        )
    options = options.for_study(spec)
    gpus = check_gpus(options.gpus_per_trial or 0.0, spec.gpu_fallback, ray_address)
    options = dataclasses.replace(options, gpus_per_trial=gpus)  # 0 when falling back to CPUs
    settings = job_settings(spec, options)
    score = study_score(spec.objectives)
    fields = fidelity(spec, settings, options, score)
    name = options.name or source.study_name + schema.CONFIRM_SUFFIX
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = prepare_confirm_study(source, name, fields, score)
    designs = select_designs(pareto.load_points(source), pareto.study_objectives(source),
                             options.top, score.name)  # fmt: skip
    if not designs:
        raise ConfigError(f"--study: {source.study_name!r} has no complete, feasible design "
                          "to confirm yet; run more of the search first")  # fmt: skip
    jobs = [Job(p, spec.seed + i) for p in designs for i in range(options.seeds)]
    rec = spec.recovery
    heartbeat = Heartbeat(compat.study_storage(study), rec.heartbeat_interval)
    searcher: JobSearcher | None = None
    recovered, interrupted, done_before = [], [], 0
    try:
        with ray_session(ray_address, options.concurrency * options.cpus_per_trial,
                         options.cpus_per_trial, spec.worker_niceness) as run_dir:  # fmt: skip
            if ray_address and gpus:
                check_cluster_gpus(gpus)
            recovered = fail_and_requeue(study, stale_trials(study, rec.grace_period), 0)
            if recovered:
                console.print(f"failed {len(recovered)} trial(s) a stopped confirmation left "
                              f"running: {recovered}; their jobs run again")  # fmt: skip
            trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,
                                                              TrialState.RUNNING))
            taken = {t.user_attrs.get(schema.ATTR_JOB): t.state for t in trials}
            todo = [j for j in jobs if j.key not in taken]
            done_before = sum(taken.get(j.key) == TrialState.COMPLETE for j in jobs)
            console.print(
                f"confirming {len(designs)} design(s) x {options.seeds} seed(s) of study "
                f"{source.study_name!r} into {name!r} ({options.backbone} backbone, "
                f"{settings.budget.steps} steps): {done_before} done before, {len(todo)} to run"
                + (f", {len(jobs) - len(todo) - done_before} running elsewhere"
                   if len(jobs) - len(todo) - done_before else ""))  # fmt: skip
            heartbeat.start()
            searcher = JobSearcher(study, todo, score, heartbeat, console, listener,
                                   rec.max_retry)  # fmt: skip
            if todo:
                run_trials(searcher, settings, name=name, ray_dir=str(run_dir / "tune"),
                           cpus=options.cpus_per_trial, gpus=options.gpus_per_trial or 0.0,
                           concurrency=options.concurrency, stopping=STOPPING)  # fmt: skip
    finally:
        heartbeat.stop()
        if searcher is not None:
            interrupted = fail_and_requeue(study, searcher.unfinished_trial_ids(), max_retry=0)
            if interrupted:
                console.print(f"failed {len(interrupted)} unfinished trial(s) "
                              f"{interrupted}; the same command resumes")  # fmt: skip
        conf = summarize(study)
        study.set_user_attr(schema.STUDY_ATTR_CONFIRM_SUMMARY, conf.to_json())
    ran = sorted(searcher.told) if searcher is not None else []
    lost = sorted(searcher.lost) if searcher is not None else []
    return ConfirmResult(name, len(jobs), done_before, ran, recovered, interrupted, conf,
                         time.perf_counter() - t0, lost)  # fmt: skip


def print_confirmation(conf: Confirmation, console: Console) -> None:
    """The per-design table (plain text, one line a design) and the rank agreement."""
    rows = table_rows(conf)
    console.print(f"{conf.study_name}: {conf.describe_fidelity()}", markup=False)
    if rows:
        widths = {k: max(len(k), *(len(r[k]) for r in rows)) for k in rows[0]}
        line = lambda r: "  ".join(  # noqa: E731
            v.ljust(widths[k]) if k == "design" else v.rjust(widths[k]) for k, v in r.items())
        console.print(line({k: k for k in widths}), markup=False, crop=False, overflow="ignore")
        for row in rows:
            console.print(line(row), markup=False, crop=False, overflow="ignore")
    console.print(agreement_text(conf), markup=False)
