"""``StudySearcher``: Ray Tune's ``OptunaSearch`` writing unetmm trials into the study storage.

Why a subclass: Ray's ``OptunaSearch`` asks Optuna for each new Ray trial (``suggest``) and tells
it the final metrics (``on_trial_complete``), always as COMPLETE unless the values are missing;
it never stores attributes or constraints, and it tells a trial that ASHA stopped as COMPLETE
with a partial score. This subclass keeps Ray's ask path and replaces the tell path:

- ``suggest``: right after Optuna's ``ask`` the trial gets this driver's id and its first
  heartbeat (so crash recovery can always tell whose it is); the space runs define-by-run on
  it (inside Ray's suggest-captor); the design's target ``ArchConfig`` goes into the Ray config
  (so workers need neither the space nor the sampler) and into the trial's attributes at once
  (dashboards see RUNNING trials' designs), with the study's fingerprint;
- ``on_trial_result``: merges each result into the trial's attributes (costs are written at
  once; the validation curve is collected);
- a design scored before (trained, stopped or infeasible) under the same fingerprint (target
  costs and proxy training settings) is not trained again: the worker is told to skip it
  (``REUSE_KEY``) and the trial copies the earlier trial's results (``copy_of``);
- ``on_trial_complete``: ``studies.outcome`` decides COMPLETE / PRUNED / FAIL, writes the
  attributes and constraints (``Trial.set_constraint``) and tells Optuna.

Only the driver process touches the storage, so workers on other machines need no database
access.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import optuna
from optuna.trial import FixedTrial, TrialState
from ray.tune.search.optuna import OptunaSearch

from search_spaces import SkipDesign, get_space
from studies.early_stopping import REFERENCE_KEY
from studies.heartbeat import Heartbeat, driver_id
from studies.outcome import apply, decide
from studies.schema import (
    ATTR_ARCH,
    ATTR_COPY_OF,
    ATTR_DESIGN,
    ATTR_DRIVER,
    ATTR_FINGERPRINT,
    ATTR_PROXY_ARCH,
    ATTR_REFERENCE,
    ATTR_STATUS,
    COST_EXTRA_KEYS,
    COST_KEYS,
    METRIC_EXTRA_KEYS,
    METRIC_KEYS,
    STATUS_COMPLETE,
    STATUS_INFEASIBLE,
    STATUS_STOPPED,
    TIME_KEYS,
)
from studies.spec import StudySpec
from studies.trial import ARCH_KEY, NUMBER_KEY, REUSE_KEY

# Result keys that become trial attributes (everything else in a Ray result is bookkeeping).
REPORTED_KEYS = frozenset(
    (*COST_KEYS, *COST_EXTRA_KEYS, *METRIC_KEYS, *METRIC_EXTRA_KEYS, *TIME_KEYS,
     "status", "error", "broken", "proxy_arch")  # fmt: skip
)
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
        self._designs: list[SkipDesign] = []
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
        return self._ot_study

    def _define(self, trial: Any) -> None:
        """The define-by-run function Ray calls: sample a design, keep it for ``suggest``."""
        self._designs.append(self._search_space.suggest(trial, self._bounds))

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        self._designs.clear()
        if trial_id not in self._ot_trials:  # ask here, claim at once; Ray's suggest reuses it
            ot_trial = self._ot_study.ask()
            self._ot_trials[trial_id] = ot_trial
            ot_trial.set_user_attr(ATTR_DRIVER, self._driver)
            self._heartbeat.add(ot_trial._trial_id)
        params = super().suggest(trial_id)
        ot_trial = self._ot_trials[trial_id]
        if not self._designs:  # a re-suggest of a known trial: rebuild from its params
            self._define(FixedTrial(ot_trial.params))
        design = self._designs[-1]
        arch = design.arch(self._backbone)
        ot_trial.set_user_attr(ATTR_ARCH, arch.to_dict())
        ot_trial.set_user_attr(ATTR_DESIGN, design.label)
        ot_trial.set_user_attr(ATTR_FINGERPRINT, self._fingerprint)
        self._attrs[trial_id] = {"curve": []}
        config = {**(params or {}), ARCH_KEY: arch.to_json(), NUMBER_KEY: ot_trial.number}
        reference = ot_trial.user_attrs.get(ATTR_REFERENCE)
        if reference:
            config[REFERENCE_KEY] = reference
        source = self._evaluated_twin(arch.to_dict())
        if source is not None:  # the same design was scored before: reuse, do not retrain
            self._twins[trial_id] = source
            config[REUSE_KEY] = source.number
        self._notify("start", ot_trial)
        return config

    def _evaluated_twin(self, arch: dict[str, Any]) -> optuna.trial.FrozenTrial | None:
        """An earlier, original (not copied) trial of the same design and fingerprint that
        completed, was infeasible (under the same constraints) or was stopped: training is
        seeded, so a re-run would repeat it. Failed trials are run again."""
        for t in self._ot_study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,
                                                                   TrialState.PRUNED)):
            a = t.user_attrs
            if (a.get(ATTR_STATUS) in REUSABLE and ATTR_COPY_OF not in a
                    and a.get(ATTR_FINGERPRINT) == self._fingerprint and a.get(ATTR_ARCH) == arch
                    and (a[ATTR_STATUS] != STATUS_INFEASIBLE
                         or sorted(t.constraints) == self._constraint_names)):
                return t
        return None

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        attrs = self._attrs.get(trial_id)
        if attrs is None or trial_id in self._completed_trials:
            return
        if result.get("phase") == "train":
            attrs["curve"].append([int(result["step"]), float(result["val_psnr"])])
            return
        fresh = {k: v for k, v in result.items() if k in REPORTED_KEYS and k != "curve"}
        attrs.update(fresh)
        if result.get("phase") == "costs":  # visible while the trial trains
            ot_trial = self._ot_trials[trial_id]
            for key, value in fresh.items():
                ot_trial.set_user_attr(key, value)

    def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        if trial_id in self._completed_trials or trial_id not in self._ot_trials:
            return
        attrs = self._attrs.pop(trial_id, {"curve": []})
        phase = (result or {}).get("phase")
        if phase == "final":
            curve = attrs["curve"]
            attrs.update({k: v for k, v in result.items() if k in REPORTED_KEYS})
            if not result.get("curve"):
                attrs["curve"] = curve
        elif phase == "train":  # the result ASHA stopped the trial on
            attrs["curve"].append([int(result["step"]), float(result["val_psnr"])])
        twin = self._twins.pop(trial_id, None)
        if twin is not None and phase == "final":
            copied = {k: v for k, v in twin.user_attrs.items()
                      if k in REPORTED_KEYS and k not in TIME_KEYS}  # fmt: skip
            attrs = {**{k: v for k, v in attrs.items() if k in TIME_KEYS}, **copied,
                     ATTR_COPY_OF: twin.number}  # fmt: skip
        attrs = {k: v for k, v in attrs.items() if not _is_nan(v)}
        if isinstance(attrs.get(ATTR_PROXY_ARCH), str):
            attrs[ATTR_PROXY_ARCH] = json.loads(attrs[ATTR_PROXY_ARCH])
        outcome = decide(attrs, self._spec.objective_keys, self._spec.parsed_constraints, error)
        ot_trial = self._ot_trials[trial_id]
        apply(self._ot_study, ot_trial, outcome)
        self._completed_trials.add(trial_id)
        self._heartbeat.discard(ot_trial._trial_id)
        self._notify("finish", ot_trial)

    def unfinished_trial_ids(self) -> set[int]:
        """Optuna trial ids this searcher asked for and has not told yet."""
        done = self._completed_trials
        return {t._trial_id for rid, t in self._ot_trials.items() if rid not in done}

    def told_numbers(self) -> list[int]:
        """Numbers of the trials this searcher told Optuna about."""
        done = self._completed_trials
        return sorted(t.number for rid, t in self._ot_trials.items() if rid in done)

    def _notify(self, event: str, ot_trial: optuna.Trial) -> None:
        if self._listener is not None:
            self._listener(event, self._ot_study._storage.get_trial(ot_trial._trial_id))

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


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)
