"""``StudySearcher``: Ray Tune's ``OptunaSearch`` writing unetmm trials into the study storage.

Why a subclass: Ray's ``OptunaSearch`` asks Optuna for each new Ray trial (``suggest``) and tells
it the final metrics (``on_trial_complete``), always as COMPLETE unless the values are missing;
it never stores attributes or constraints, and it tells a trial that ASHA stopped as COMPLETE
with a partial score. This subclass keeps Ray's ask path and replaces the tell path.

Every Ray trial is one design *judged* (trained, or costed in a study without training): a
run's ``n_trials`` buys that many. ``suggest`` asks Optuna for proposals until one is worth a
Ray trial; the others are told at once, in the driver, and cost no slot:

1. right after ``ask`` the trial gets this driver's id and its first heartbeat (crash recovery
   can always tell whose it is); the space runs define-by-run on it (inside Ray's captor); the
   design's label, ``arch_key`` and the study fingerprint go into its attributes, its target
   ``ArchConfig`` into its ``arch.json`` artifact (``studies.artifacts``);
2. *infeasible*: the sampler is wrapped in ``feasibility.FeasibleFirst`` (unless the spec says
   ``sampler: {prefilter: false}``), so a draw over a limit known from shapes alone (M_sc), or
   of a design judged before, is redrawn before it becomes a proposal. With hard (cost)
   constraints the driver costs the design (``worker.cost_attrs``:
   0.05-0.07 s warm with the meta engine, from the on-disk cache when seen before). One that breaks a
   constraint is told at once (``outcome``: COMPLETE, worst scores, positive constraints), so
   the sampler has learnt it before its next proposal. Costing here and not in a worker: it
   takes no Ray slot, no worker start and no training CPU, and the next ``ask`` sees the result;
3. *copy*: a design scored before (same target architecture and fingerprint; complete or
   stopped) is told at once with that trial's results (``copy_of``);
4. *claim*: otherwise the trial claims the design in the storage (``claims.claim_design``):
   exactly one trial of any driver on the study trains it. A trial that loses the claim is
   *parked* (left RUNNING, heartbeat kept) until the holder ends, then told as its copy; if the
   holder failed, the parked trial claims the next attempt and is trained in a later slot.
5. the winner becomes the Ray trial: its config carries the ``ArchConfig`` (workers need neither
   the space nor the sampler; see ``protocol``).

``max_rejected_in_a_row`` bounds the proposals: after that many rejections (infeasible, copies,
parked) in a row the searcher returns ``FINISHED``, the run ends with fewer judged designs and
``stop_reason`` says why (a space with nothing feasible, or a sampler proposing only known
designs, cannot loop forever).

``on_trial_result`` merges each result into the trial's attributes; ``on_trial_complete`` merges
the last result (``_final_attrs``) and lets ``outcome`` decide COMPLETE / PRUNED / FAIL.
``settle`` (at the end of a run) waits for parked trials whose holder another search is still
training, and fails and re-queues for a later run the ones that won their design again (its
holder failed) when no slot is left. Only the driver process touches the storage.
"""

from __future__ import annotations

import collections
import dataclasses
import time
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import optuna
from optuna.trial import FixedTrial, TrialState
from ray.tune.search import Searcher
from ray.tune.search.optuna import OptunaSearch

from nas.config import ArchConfig
from search_spaces import Candidate, get_space
from studies import compat, schema
from studies.artifacts import attach, trial_data
from studies.schema import (
    ATTR_ARCH,
    ATTR_ARCH_KEY,
    ATTR_BROKEN,
    ATTR_COPY_OF,
    ATTR_DESIGN,
    ATTR_DRIVER,
    ATTR_ERROR,
    ATTR_FINGERPRINT,
    ATTR_REFERENCE,
    ATTR_STATUS,
    ATTR_WARNINGS,
    STATUS_COMPLETE,
    STATUS_FAILED,
    STATUS_INFEASIBLE,
    STATUS_STOPPED,
    T_END,
    T_START,
    TIME_KEYS,
)
from studies.search import claims, protocol
from studies.search.feasibility import feasible_first
from studies.search.heartbeat import Heartbeat, driver_id
from studies.search.outcome import NO_SLOT, WORKER_DIED, apply, decide
from studies.search.recovery import fail_and_requeue, requeue, stale_trials
from studies.search.tune_run import StoredInStudy
from studies.spec import StudySpec

REUSABLE = (STATUS_COMPLETE, STATUS_STOPPED)  # results a copy may take (trained, or stopped)
MAX_REJECTED_IN_A_ROW = 50
Listener = Callable[[str, optuna.trial.FrozenTrial], None]

# what became of a proposal
TRAIN, INFEASIBLE, COPY, PARKED, FAILED = "train", "infeasible", "copy", "parked", "failed"


@dataclasses.dataclass
class _Parked:
    trial: optuna.Trial
    digest: str
    holder: int  # trial id of the trial holding the design's claim


class StudySearcher(StoredInStudy, OptunaSearch):
    """OptunaSearch for a ``StudySpec`` on an existing study (see the module docstring)."""

    _not_pickled = ("_heartbeat", "_listener")

    def __init__(
        self,
        spec: StudySpec,
        study_name: str,
        storage: optuna.storages.RDBStorage,
        sampler: optuna.samplers.BaseSampler,
        heartbeat: Heartbeat,
        listener: Listener | None = None,
        max_rejected_in_a_row: int = MAX_REJECTED_IN_A_ROW,
    ) -> None:
        self._spec = spec
        self._search_space = get_space(spec.space.name)
        self._bounds = spec.bounds
        self._backbone = spec.target.backbone_config()
        self._settings = protocol.TrialSettings.from_spec(spec)
        self._heartbeat = heartbeat
        self._listener = listener
        self._driver = driver_id()
        self._fingerprint = spec.fingerprint
        self._max_attempts = spec.recovery.max_retry + 1
        self._max_rejected = max_rejected_in_a_row
        self._attrs: dict[str, dict[str, Any]] = {}
        self._candidates: list[Candidate] = []
        self._parked: dict[int, _Parked] = {}  # trial id -> parked trial
        self._ready: list[optuna.Trial] = []  # parked trials that won a new claim: to train
        self._side: list[int] = []  # numbers of the trials told without a Ray trial
        self._lost: set[str] = set()  # Ray trials whose worker died: queued again, no slot
        self._in_a_row = 0
        self.proposals: collections.Counter[str] = collections.Counter()
        self.stop_reason: str | None = None
        self.sampler = feasible_first(sampler, spec, self._settings, known=self._known_keys)
        modes = ["max" if d == "maximize" else "min" for d in spec.directions]
        super().__init__(
            space=self._define,
            metric=spec.objective_keys,
            mode=modes,
            sampler=self.sampler,
            study_name=study_name,
            storage=storage,
        )

    @property
    def study(self) -> optuna.Study:
        return compat.searcher_study(self)

    @property
    def _asked(self) -> dict[str, optuna.Trial]:
        return compat.searcher_trials(self)

    @property
    def _told(self) -> set[str]:
        return compat.searcher_completed(self)

    @property
    def _store(self) -> optuna.storages.BaseStorage:
        return compat.study_storage(self.study)

    def _define(self, trial: Any) -> None:
        """The define-by-run function Ray calls: sample a design, keep it for ``suggest``."""
        self._candidates.append(self._search_space.suggest(trial, self._bounds))

    # -- asking ---------------------------------------------------------------------------
    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        if trial_id in self._asked:  # a re-suggest of a known trial (Ray restores): same design
            return self._launch(trial_id, self._asked[trial_id])
        if self._slots_left() <= 0:  # n_trials judged or being judged: wait, or end
            return None if self._running() else Searcher.FINISHED
        self._settle_parked()
        if self._ready:
            return self._launch(trial_id, self._ready.pop(0))
        while self._in_a_row < self._max_rejected:
            ot_trial = self.study.ask()
            if not claims.claim_queued(self.study, ot_trial, self._driver):
                continue  # another driver popped the same queued trial (SQLite): ask again
            ot_trial.set_user_attr(ATTR_DRIVER, self._driver)
            self._heartbeat.add(compat.trial_id(ot_trial))
            self._notify("start", ot_trial)
            params, arch = self._sample(trial_id, ot_trial)
            verdict = self._judge(ot_trial, arch)
            self.proposals[verdict] += 1
            if verdict == TRAIN:
                self._in_a_row = 0
                return self._launch(trial_id, ot_trial, params, arch)
            self._asked.pop(trial_id, None)  # told already: no Ray trial
            self._in_a_row += 1
        self.stop_reason = (
            f"{self._max_rejected} proposals in a row were infeasible or designs already "
            "judged; the sampler finds nothing new in this space under these constraints"
        )
        return Searcher.FINISHED

    def _sample(self, trial_id: str, ot_trial: optuna.Trial) -> tuple[dict[str, Any], ArchConfig]:
        """Run the space on ``ot_trial`` (through Ray's captor, as Ray trial ``trial_id``): its
        params and architecture, written to the trial's attributes."""
        self._candidates.clear()
        self._asked[trial_id] = ot_trial
        with warnings.catch_warnings():  # Ray times the sampler's work as the space's (> 1 s)
            warnings.filterwarnings("ignore", "Define-by-run function passed", UserWarning)
            params = super().suggest(trial_id) or {}
        if not self._candidates:  # params fixed already: rebuild the design from them
            self._define(FixedTrial(ot_trial.params))
        candidate = self._candidates[-1]
        arch = candidate.arch(self._backbone)
        if ot_trial.user_attrs.get(ATTR_ARCH_KEY) != arch.key():  # once per trial
            ot_trial.set_user_attr(ATTR_ARCH_KEY, arch.key())
            attach(ot_trial, "arch.json", {ATTR_ARCH: arch.to_dict()})
        ot_trial.set_user_attr(ATTR_DESIGN, candidate.label)
        ot_trial.set_user_attr(ATTR_FINGERPRINT, self._fingerprint)
        return params, arch

    def _judge(self, ot_trial: optuna.Trial, arch: ArchConfig) -> str:
        """What to do with a fresh proposal; everything but ``TRAIN`` is told here."""
        if self._settings.hard_constraints:
            costs = self._costs(ot_trial, arch)
            if costs is None:
                return FAILED
            if costs.get(ATTR_BROKEN):
                self._tell_now(ot_trial, {**costs, ATTR_STATUS: STATUS_INFEASIBLE})
                return INFEASIBLE
        twin = self._finished_twin(arch.key())
        if twin is not None:
            self._tell_copy(ot_trial, twin)
            return COPY
        return self._claim(ot_trial, claims.design_digest(arch.to_dict(), self._fingerprint))

    def _costs(self, ot_trial: optuna.Trial, arch: ArchConfig) -> dict | None:
        """The design's costs (visible on the trial at once) and the hard constraints it
        breaks (``ATTR_BROKEN``, empty if none); None if costing raised (trial told FAIL)."""
        from studies.search.worker import failure_reason, hard_costs

        t_start, t0 = time.time(), time.perf_counter()
        try:
            arch.skip.validate(arch.backbone.stage_channels)
            costs, breaks = hard_costs(arch, self._settings)
        except Exception as exc:  # noqa: BLE001  (recorded as the trial's failure reason)
            self._tell_now(ot_trial, {ATTR_STATUS: STATUS_FAILED, ATTR_ERROR: failure_reason(exc)})
            return None
        costs |= {"seconds_cost": time.perf_counter() - t0, T_START: t_start}
        for key, value in schema.split(costs)[0].items():  # bulky data: when told
            ot_trial.set_user_attr(key, value)
        return costs | {ATTR_BROKEN: breaks}

    def _originals(self, study: optuna.Study, running: bool = False
                   ) -> Iterator[tuple[optuna.trial.FrozenTrial, dict[str, Any]]]:  # fmt: skip
        """Original (not copied) trials of this fingerprint that completed or were stopped
        (``REUSABLE``), and, with ``running``, those still running; with their attributes read
        through ``schema.current`` (old trials: the key from their arch)."""
        states = (TrialState.COMPLETE, TrialState.PRUNED) + ((TrialState.RUNNING,) if running
                                                             else ())  # fmt: skip
        for t in study.get_trials(deepcopy=False, states=states):
            a = schema.current(t.user_attrs)
            if a.get(ATTR_FINGERPRINT) != self._fingerprint or ATTR_COPY_OF in a:
                continue
            if t.state == TrialState.RUNNING or a.get(ATTR_STATUS) in REUSABLE:
                yield t, a

    def _known_keys(self, study: optuna.Study) -> set[str]:
        """Arch keys of the designs judged or being judged: what the sampler's prefilter
        redraws."""
        return {a.get(ATTR_ARCH_KEY) for _, a in self._originals(study, running=True)}

    def _finished_twin(self, arch_key: str) -> optuna.trial.FrozenTrial | None:
        """An earlier original trial of the same design (``ArchConfig.key``) that completed or
        was stopped: training is seeded, so a re-run would repeat it."""
        return next((t for t, a in self._originals(self.study)
                     if a.get(ATTR_ARCH_KEY) == arch_key), None)  # fmt: skip

    def _claim(self, ot_trial: optuna.Trial, digest: str) -> str:
        """Claim the design for ``ot_trial``: TRAIN if won; else park it or copy the holder."""
        tid = compat.trial_id(ot_trial)
        won = claims.claim_design(self.study, digest, tid, self._holder_failed, self._max_attempts)
        if won is None:
            self._tell_now(ot_trial, {ATTR_STATUS: STATUS_FAILED, ATTR_ERROR: (
                f"the design failed {self._max_attempts} time(s) already; not trained again")})
            return FAILED
        if won.won:
            return TRAIN
        holder = self._store.get_trial(won.holder)
        if holder.state in (TrialState.COMPLETE, TrialState.PRUNED):  # ended since the twin
            self._tell_copy(ot_trial, holder)  # search above: copy it
            return COPY
        self._parked[tid] = _Parked(ot_trial, digest, won.holder)  # (failed just now: the next
        return PARKED  # settle claims the design again)

    def _holder_failed(self, holder: int) -> bool:
        """Whether the trial holding a design claim failed (or is a stale RUNNING one)."""
        trial = self._store.get_trial(holder)
        if trial.state == TrialState.FAIL:
            return True
        return trial.state == TrialState.RUNNING and holder in self._stale()

    def _stale(self) -> set[int]:
        return set(stale_trials(self.study, self._spec.recovery.grace_period))

    def _launch(
        self, trial_id: str, ot_trial: optuna.Trial, params: dict | None = None,
        arch: ArchConfig | None = None,
    ) -> dict[str, Any]:  # fmt: skip
        """Make ``ot_trial`` the Ray trial ``trial_id``: its config."""
        if arch is None:
            params, arch = self._sample(trial_id, ot_trial)
        self._attrs[trial_id] = {"curve": []}
        config = {**params, protocol.ARCH_KEY: arch.to_json(),
                  protocol.NUMBER_KEY: ot_trial.number}  # fmt: skip
        reference = ot_trial.user_attrs.get(ATTR_REFERENCE)
        if reference:
            config[protocol.REFERENCE_KEY] = reference
        return config

    # -- parked trials --------------------------------------------------------------------
    @property
    def parked(self) -> list[int]:
        """Numbers of the trials waiting for another trial of their design to end."""
        return sorted(p.trial.number for p in self._parked.values())

    def _settle_parked(self) -> None:
        """Tell parked trials whose holder finished as its copies; a parked trial whose holder
        failed claims the design again and, if it wins, waits in ``_ready`` for a slot."""
        for tid, parked in list(self._parked.items()):
            holder = self._store.get_trial(parked.holder)
            if holder.state.is_finished() and holder.state != TrialState.FAIL:
                del self._parked[tid]
                self._tell_copy(parked.trial, holder)
            elif self._holder_failed(parked.holder):
                del self._parked[tid]
                verdict = self._claim(parked.trial, parked.digest)
                if verdict == TRAIN:
                    self._ready.append(parked.trial)

    def settle(self, poll: float = 1.0) -> list[int]:
        """At the end of a run: wait for the parked trials' holders (other searches training
        them) and tell their copies. A trial that won its design again after the holder failed
        has no slot left: it is failed and re-queued for a later run (``NO_SLOT``), with the
        trials parked on it. Returns the numbers of the trials failed so."""
        failed: list[int] = []
        while True:
            self._settle_parked()
            if self._ready:
                idle = {compat.trial_id(t) for t in self._ready}
                idle |= {tid for tid, p in self._parked.items() if p.holder in idle}
                self._ready.clear()
                for tid in idle:
                    self._parked.pop(tid, None)
                    self._heartbeat.discard(tid)
                failed += fail_and_requeue(self.study, dict.fromkeys(idle, NO_SLOT),
                                           self._spec.recovery.max_retry)  # fmt: skip
                continue
            if not self._parked:
                return failed
            time.sleep(poll)

    # -- telling --------------------------------------------------------------------------
    def _tell_now(self, ot_trial: optuna.Trial, attrs: dict[str, Any]) -> None:
        """Tell a proposal that gets no Ray trial (infeasible, copy, failed to cost)."""
        now = time.time()
        attrs = {T_START: now, **attrs, T_END: now}
        attrs.setdefault("seconds", attrs[T_END] - attrs[T_START])
        attrs = {k: v for k, v in attrs.items() if k != ATTR_BROKEN or v}
        outcome = decide(attrs, self._spec.objective_keys, self._spec.parsed_constraints)
        apply(self.study, ot_trial, outcome)
        self._heartbeat.discard(compat.trial_id(ot_trial))
        self._side.append(ot_trial.number)
        self._notify("reject", ot_trial)

    def _tell_copy(self, ot_trial: optuna.Trial, twin: optuna.trial.FrozenTrial) -> None:
        now = time.time()
        times = {T_START: now, T_END: now, "seconds": 0.0}
        self._tell_now(ot_trial, _copied_attrs(times, twin.number, trial_data(self.study, twin)))

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        attrs = self._attrs.get(trial_id)
        if attrs is None or trial_id in self._told:
            return
        phase = protocol.phase_of(result)
        if result.get(ATTR_WARNINGS):  # said at once, on the search's own output, each once
            warned = attrs.setdefault(ATTR_WARNINGS, [])
            warned += [w for w in result[ATTR_WARNINGS] if w not in warned]
            self._asked[trial_id].set_user_attr(ATTR_WARNINGS, warned)
            self._notify("warn", self._asked[trial_id])
        if phase == protocol.PHASE_TRAIN:
            attrs["curve"].append(protocol.curve_point(result))
            return
        fresh = protocol.trial_attrs(result)
        fresh.pop("curve", None)
        attrs.update(fresh)
        if phase == protocol.PHASE_COSTS:  # visible while the trial trains
            ot_trial = self._asked[trial_id]
            for key, value in schema.split(fresh)[0].items():  # bulky data: at the end
                ot_trial.set_user_attr(key, value)

    def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        if trial_id in self._told or trial_id not in self._asked:
            return
        attrs = self._final_attrs(self._attrs.pop(trial_id, {"curve": []}), result)
        outcome = decide(attrs, self._spec.objective_keys, self._spec.parsed_constraints, error)
        ot_trial = self._asked[trial_id]
        apply(self.study, ot_trial, outcome)
        self._told.add(trial_id)
        self._heartbeat.discard(compat.trial_id(ot_trial))
        if error and outcome.attrs.get(ATTR_ERROR) == WORKER_DIED and requeue(
                self.study, self._store.get_trial(compat.trial_id(ot_trial)),
                self._spec.recovery.max_retry):  # fmt: skip
            self._lost.add(trial_id)  # its node or worker is gone: the design runs again
            self._notify("lost", ot_trial)
        else:
            self._notify("finish", ot_trial)
        self._settle_parked()  # copies of this design need not wait for the next suggest

    @staticmethod
    def _final_attrs(attrs: dict[str, Any], result: dict[str, Any] | None) -> dict[str, Any]:
        """What the trial reported, with its last result merged in: the final phase's
        attributes (its curve if it has one), or the validation ASHA stopped it on."""
        phase = protocol.phase_of(result)
        if phase == protocol.PHASE_FINAL:
            final = protocol.trial_attrs(result)  # type: ignore[arg-type]
            curve = attrs["curve"]
            attrs = {**attrs, **final}
            if not final.get("curve"):
                attrs["curve"] = curve
        elif phase == protocol.PHASE_TRAIN:
            attrs["curve"].append(protocol.curve_point(result))  # type: ignore[arg-type]
        return protocol.trial_attrs(attrs) | {"curve": attrs["curve"]}

    # -- what the run did -----------------------------------------------------------------
    def unfinished_trial_ids(self) -> set[int]:
        """Optuna trial ids this searcher asked for and has not told yet (parked included)."""
        asked = {compat.trial_id(t) for rid, t in self._asked.items() if rid not in self._told}
        return asked | set(self._parked) | {compat.trial_id(t) for t in self._ready}

    def told_numbers(self) -> list[int]:
        """Numbers of the trials this searcher told Optuna about."""
        judged = [t.number for rid, t in self._asked.items() if rid in self._told]
        return sorted(judged + self._side)

    def judged_numbers(self) -> list[int]:
        """Numbers of the trials this searcher ran as Ray trials (designs judged), not counting
        those lost with their worker (``lost_numbers``)."""
        return sorted(t.number for rid, t in self._asked.items()
                      if rid in self._told and rid not in self._lost)  # fmt: skip

    def lost_numbers(self) -> list[int]:
        """Numbers of the Ray trials whose worker or node died before they reported: each was
        queued again (``recovery.requeue``) and cost no slot of ``n_trials``."""
        return sorted(self._asked[rid].number for rid in self._lost)

    def _running(self) -> int:
        return sum(rid not in self._told for rid in self._asked)

    def _slots_left(self) -> int:
        """Of ``n_trials``, the Ray trials still to start: judged and running ones use a slot,
        lost ones give theirs back (Tune runs until ``suggest`` says FINISHED)."""
        return self._spec.n_trials - len(self.judged_numbers()) - self._running()

    def _notify(self, event: str, ot_trial: optuna.Trial) -> None:
        if self._listener is not None:
            self._listener(event, self._store.get_trial(compat.trial_id(ot_trial)))


def _copied_attrs(attrs: dict[str, Any], twin: int, stored: dict[str, Any]) -> dict[str, Any]:
    """A reuse of trial ``twin`` (which ``stored`` its results: ``artifacts.trial_data``): its
    results, this trial's own times, and ``copy_of``."""
    reported = protocol.reported_keys()
    copied = {k: v for k, v in stored.items() if k in reported and k not in TIME_KEYS}
    own_times = {k: v for k, v in attrs.items() if k in TIME_KEYS}
    return {**own_times, **copied, ATTR_COPY_OF: twin}
