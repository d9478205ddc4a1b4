"""``StudySearcher``: Ray Tune's ``OptunaSearch`` writing unetmm trials into the study storage.

Why a subclass: Ray's ``OptunaSearch`` asks Optuna for each new Ray trial (``suggest``) and tells
it the final metrics (``on_trial_complete``), always as COMPLETE unless the values are missing;
it never stores attributes or constraints, and it tells a trial that ASHA stopped as COMPLETE
with a partial score. This subclass keeps Ray's ask path and replaces the tell path:

- ``suggest``: right after Optuna's ``ask`` the trial gets this driver's id and its first
  heartbeat (so crash recovery can always tell whose it is); the space runs define-by-run on
  it (inside Ray's suggest-captor); the design's target ``ArchConfig`` goes into the Ray config
  (so workers need neither the space nor the sampler) and into the trial at once: its label
  and key as attributes (dashboards see RUNNING trials' designs), the arch itself as the
  ``arch.json`` artifact (``studies.artifacts``), with the study's fingerprint;
- ``on_trial_result``: merges each result into the trial's attributes (costs are written at
  once; the validation curve is collected);
- a design scored before (trained, stopped or infeasible) under the same fingerprint (target
  costs and proxy training settings) is not trained again: the worker is told to skip it
  (``REUSE_KEY``) and the trial copies the earlier trial's results (``copy_of``);
- ``on_trial_complete``, in named steps: ``_final_attrs`` (merge the last result into what the
  trial reported), ``_copied_attrs`` (a reuse takes the earlier trial's results), then
  ``studies.search.outcome`` decides COMPLETE / PRUNED / FAIL and ``_tell`` writes the
  attributes and constraints (``Trial.set_constraint``) and tells Optuna.

Only the driver process touches the storage, so workers on other machines need no database
access.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import optuna
from optuna.trial import FixedTrial, TrialState
from ray.tune.search.optuna import OptunaSearch

from search_spaces import Candidate, get_space
from studies import compat, schema
from studies.artifacts import attach, trial_data
from studies.schema import (
    ATTR_ARCH,
    ATTR_ARCH_KEY,
    ATTR_COPY_OF,
    ATTR_DESIGN,
    ATTR_DRIVER,
    ATTR_FINGERPRINT,
    ATTR_REFERENCE,
    ATTR_STATUS,
    STATUS_COMPLETE,
    STATUS_INFEASIBLE,
    STATUS_STOPPED,
    TIME_KEYS,
)
from studies.search import protocol
from studies.search.heartbeat import Heartbeat, driver_id
from studies.search.outcome import apply, decide
from studies.spec import StudySpec

REUSABLE = (STATUS_COMPLETE, STATUS_INFEASIBLE, STATUS_STOPPED)
Listener = Callable[[str, optuna.trial.FrozenTrial], None]


class StudySearcher(OptunaSearch):
    """OptunaSearch for a ``StudySpec`` on an existing study (see the module docstring)."""

    def __init__(
        self,
        spec: StudySpec,
        study_name: str,
        storage: optuna.storages.RDBStorage,
        sampler: optuna.samplers.BaseSampler,
        heartbeat: Heartbeat,
        listener: Listener | None = None,
    ) -> None:
        self._spec = spec
        self._search_space = get_space(spec.space.name)
        self._bounds = spec.bounds
        self._backbone = spec.target.backbone_config()
        self._heartbeat = heartbeat
        self._listener = listener
        self._driver = driver_id()
        self._fingerprint = spec.fingerprint
        self._constraint_names = sorted(c.name for c in spec.parsed_constraints)
        self._attrs: dict[str, dict[str, Any]] = {}
        self._candidates: list[Candidate] = []
        self._twins: dict[str, optuna.trial.FrozenTrial] = {}
        modes = ["max" if d == "maximize" else "min" for d in spec.directions]
        super().__init__(
            space=self._define,
            metric=spec.objective_keys,
            mode=modes,
            sampler=sampler,
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

    def _define(self, trial: Any) -> None:
        """The define-by-run function Ray calls: sample a design, keep it for ``suggest``."""
        self._candidates.append(self._search_space.suggest(trial, self._bounds))

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        self._candidates.clear()
        if trial_id not in self._asked:  # ask here, claim at once; Ray's suggest reuses it
            ot_trial = self.study.ask()
            self._asked[trial_id] = ot_trial
            ot_trial.set_user_attr(ATTR_DRIVER, self._driver)
            self._heartbeat.add(compat.trial_id(ot_trial))
        params = super().suggest(trial_id)
        ot_trial = self._asked[trial_id]
        if not self._candidates:  # a re-suggest of a known trial: rebuild from its params
            self._define(FixedTrial(ot_trial.params))
        candidate = self._candidates[-1]
        arch = candidate.arch(self._backbone)
        ot_trial.set_user_attr(ATTR_ARCH_KEY, arch.key())
        attach(ot_trial, "arch.json", {ATTR_ARCH: arch.to_dict()})
        ot_trial.set_user_attr(ATTR_DESIGN, candidate.label)
        ot_trial.set_user_attr(ATTR_FINGERPRINT, self._fingerprint)
        self._attrs[trial_id] = {"curve": []}
        config = {**(params or {}), protocol.ARCH_KEY: arch.to_json(),
                  protocol.NUMBER_KEY: ot_trial.number}  # fmt: skip
        reference = ot_trial.user_attrs.get(ATTR_REFERENCE)
        if reference:
            config[protocol.REFERENCE_KEY] = reference
        source = self._evaluated_twin(arch.key())
        if source is not None:  # the same design was scored before: reuse, do not retrain
            self._twins[trial_id] = source
            config[protocol.REUSE_KEY] = source.number
        self._notify("start", ot_trial)
        return config

    def _evaluated_twin(self, arch_key: str) -> optuna.trial.FrozenTrial | None:
        """An earlier, original (not copied) trial of the same design and fingerprint that
        completed, was infeasible (under the same constraints) or was stopped: training is
        seeded, so a re-run would repeat it. Failed trials are run again."""
        for t in self.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,
                                                               TrialState.PRUNED)):
            a = schema.current(t.user_attrs)
            if (a.get(ATTR_STATUS) in REUSABLE and ATTR_COPY_OF not in a
                    and a.get(ATTR_FINGERPRINT) == self._fingerprint
                    and a.get(ATTR_ARCH_KEY) == arch_key
                    and (a[ATTR_STATUS] != STATUS_INFEASIBLE
                         or sorted(schema.trial_constraints(t)) == self._constraint_names)):
                return t
        return None

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        attrs = self._attrs.get(trial_id)
        if attrs is None or trial_id in self._told:
            return
        phase = protocol.phase_of(result)
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
        twin = self._twins.pop(trial_id, None)
        if twin is not None and protocol.phase_of(result) == protocol.PHASE_FINAL:
            attrs = _copied_attrs(attrs, twin.number, trial_data(self.study, twin))
        outcome = decide(attrs, self._spec.objective_keys, self._spec.parsed_constraints, error)
        self._tell(trial_id, outcome)

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

    def _tell(self, trial_id: str, outcome: Any) -> None:
        ot_trial = self._asked[trial_id]
        apply(self.study, ot_trial, outcome)
        self._told.add(trial_id)
        self._heartbeat.discard(compat.trial_id(ot_trial))
        self._notify("finish", ot_trial)

    def unfinished_trial_ids(self) -> set[int]:
        """Optuna trial ids this searcher asked for and has not told yet."""
        return {compat.trial_id(t) for rid, t in self._asked.items() if rid not in self._told}

    def told_numbers(self) -> list[int]:
        """Numbers of the trials this searcher told Optuna about."""
        return sorted(t.number for rid, t in self._asked.items() if rid in self._told)

    def _notify(self, event: str, ot_trial: optuna.Trial) -> None:
        if self._listener is not None:
            storage = compat.study_storage(self.study)
            self._listener(event, storage.get_trial(compat.trial_id(ot_trial)))

    def __getstate__(self) -> dict[str, Any]:
        """Ray pickles the searcher with the Tuner (for a Tuner.restore that unetmm never uses:
        it resumes from the storage); the heartbeat thread and the progress display stay out."""
        state = self.__dict__.copy()
        state["_heartbeat"] = state["_listener"] = None
        return state

    # The study lives in the Optuna storage; Ray's experiment checkpoint of the searcher (a
    # pickle of its state, database connection included) is neither needed nor wanted.
    def save_to_dir(self, checkpoint_dir: str, session_str: str = "default") -> None:
        return None

    def save(self, checkpoint_path: str) -> None:
        return None


def _copied_attrs(attrs: dict[str, Any], twin: int, stored: dict[str, Any]) -> dict[str, Any]:
    """A reuse of trial ``twin`` (which ``stored`` its results): its results, this trial's own
    times, and ``copy_of``."""
    reported = protocol.reported_keys()
    copied = {k: v for k, v in stored.items() if k in reported and k not in TIME_KEYS}
    own_times = {k: v for k, v in attrs.items() if k in TIME_KEYS}
    return {**own_times, **copied, ATTR_COPY_OF: twin}
