"""``NNISampler``: an Optuna sampler that asks one of NNI's multi-trial strategies
(``studies.search.nni_strategies``: ``nni-evolution``, ``nni-tpe``, ``nni-random``) for each
design (the ``nni`` extra; building the sampler imports nothing of NNI, so a study can refuse a
missing extra at once: ``ConfigError``, one line).

The sampler plugs into the search like Optuna's own: the searcher asks Optuna for a trial, the
space's ``suggest`` runs define-by-run on it, and each ``suggest_*`` is answered here from the
NNI sample proposed for that trial (``sample_independent``); so the designs run through the
same trial function on Ray and land in the same storage (report, export, dashboard, confirm
work unchanged). A parameter the sample cannot answer (fixed params of a queued trial already
answer it) falls back to Optuna's random sampler.

Per proposal, the NNI strategy is rebuilt from the study's trials (``history``): resume, and
several drivers on one study, need no other state. NNI strategies maximise one metric, so:

- the metric is the study objective ``objective`` (an option; default the first objective),
  signed so that higher is better;
- a trial that breaks a constraint (infeasible: COMPLETE with a ``-inf`` score and a positive
  constraint; or trained and under an accuracy floor) scores ``PENALTY_MARGIN`` below the worst
  feasible metric so far, so the strategy learns to leave the region without ``inf`` in its
  arithmetic;
- copies (PRUNED, ``copy_of``) add nothing (their design is scored already: counting them
  would weigh it twice); stopped (PRUNED) and failed trials have no metric, as in NNI, which
  learns only from models that report one; all of these and running trials are designs seen,
  which the strategy does not propose again.

``seed`` and the trial number seed each proposal (``numpy.random.SeedSequence``): a study
re-run with the same seed proposes the same designs.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, IntDistribution
from optuna.trial import FrozenTrial, TrialState

from search_spaces import nni_imports
from studies import schema
from studies.search.nni_strategies import STRATEGIES, History, Sample

PENALTY_MARGIN = 1.0  # an infeasible design's metric: this far below the worst feasible one


class NNISampler(optuna.samplers.BaseSampler):
    """Optuna sampler driven by the NNI strategy ``strategy`` (see the module docstring).
    ``options``: the strategy's (``StrategyAdapter.options``), plus ``objective``."""

    def __init__(self, strategy: str, seed: int | None, options: dict[str, Any],
                 n_trials: int) -> None:  # fmt: skip
        self._adapter = STRATEGIES.get(strategy)
        options = dict(options)
        self._objective = options.pop("objective", None)
        unknown = sorted(set(options) - set(self._adapter.options))
        if unknown:
            raise ValueError(f"unknown option(s) {unknown}; this strategy takes "
                             f"{list(self._adapter.options) + ['objective']}")  # fmt: skip
        if self._objective is not None:  # a metric name (the study's objectives: when used)
            from studies.metrics import get_metric

            get_metric(self._objective, f"sampler.nni-{strategy}.objective")
        if not nni_imports.available():
            raise ValueError(nni_imports.missing_message())  # make_sampler names the field
        if self._adapter.target is not None:
            from studies.search.samplers import check_options

            check_options(self._adapter.target(), options, f"sampler.nni-{strategy}")
        self.strategy = strategy
        self._options = self._adapter.defaults(n_trials) | options
        self._seed = seed
        self._fallback = optuna.samplers.RandomSampler(seed=seed)
        self._proposals: dict[int, Sample] = {}  # trial number -> its NNI sample
        self._specs: dict[str, Any] = {}  # study name -> its StudySpec

    # -- Optuna's sampler interface ------------------------------------------------------
    def infer_relative_search_space(self, study: optuna.Study, trial: FrozenTrial
                                    ) -> dict[str, BaseDistribution]:  # fmt: skip
        return {}

    def sample_relative(self, study: optuna.Study, trial: FrozenTrial,
                        search_space: dict[str, BaseDistribution]) -> dict[str, Any]:  # fmt: skip
        return {}

    def sample_independent(self, study: optuna.Study, trial: FrozenTrial, param_name: str,
                           param_distribution: BaseDistribution) -> Any:  # fmt: skip
        sample = self._proposal(study, trial)
        value = sample.get(param_name)
        if param_name in sample and _contains(param_distribution, value):
            return value
        return self._fallback.sample_independent(study, trial, param_name, param_distribution)

    def after_trial(self, study: optuna.Study, trial: FrozenTrial, state: TrialState,
                    values: Any) -> None:  # fmt: skip
        self._proposals.pop(trial.number, None)

    def reseed_rng(self) -> None:
        self._seed = None if self._seed is None else int(np.random.SeedSequence(self._seed)
                                                         .generate_state(1)[0])  # fmt: skip
        self._fallback.reseed_rng()

    # -- proposing -----------------------------------------------------------------------
    def _spec(self, study: optuna.Study) -> Any:
        if study.study_name not in self._specs:
            self._specs[study.study_name] = _study_spec(study)
        return self._specs[study.study_name]

    def _proposal(self, study: optuna.Study, trial: FrozenTrial) -> Sample:
        if trial.number not in self._proposals:
            self._proposals[trial.number] = self._propose(study, trial)
        return self._proposals[trial.number]

    def _propose(self, study: optuna.Study, trial: FrozenTrial) -> Sample:
        nni_imports.require(f"sampler.nni-{self.strategy}")
        from search_spaces import nni_space

        spec = self._spec(study)
        space_name, bounds = spec.space.name, spec.bounds
        table = nni_space.choices(space_name, bounds)

        def design(sample: Sample) -> Any:  # what "new" means: another skip design
            return nni_space.to_candidate(sample, space_name, bounds).skip

        objective = self._objective or spec.objectives[0]
        if objective not in spec.objectives:
            from nas.errors import ConfigError

            raise ConfigError(f"sampler.objective: {objective!r} is not one of the study's "
                              f"objectives {list(spec.objectives)}")  # fmt: skip
        index = list(spec.objectives).index(objective)
        sign = 1.0 if study.directions[index] == optuna.study.StudyDirection.MAXIMIZE else -1.0
        history = history_of(study.get_trials(deepcopy=False), trial.number, index, sign, table)
        seed = np.random.SeedSequence([self._seed if self._seed is not None else
                                       np.random.randint(2**31), trial.number])  # fmt: skip
        space = nni_space.executable(space_name, bounds)
        return self._adapter.propose(space, history, dict(self._options),
                                     int(seed.generate_state(1)[0] % 2**31), design)  # fmt: skip


def history_of(trials: list[FrozenTrial], current: int, index: int, sign: float,
               table: dict[str, tuple[Any, ...]]) -> History:  # fmt: skip
    """The ``History`` NNI learns from: every trial but number ``current`` (see the module
    docstring); the metric is ``sign * values[index]``."""
    from search_spaces.nni_space import sample_of

    scored, feasible, seen, running = [], [], [], 0
    done = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
    for t in sorted(trials, key=lambda t: (t.datetime_complete is None, t.datetime_complete,
                                           t.number)):  # fmt: skip
        if t.number == current or t.state == TrialState.WAITING:
            continue
        sample = sample_of(t.params, table)
        seen.append(sample)
        running += t.state not in done
        if t.state != TrialState.COMPLETE or t.values is None:
            continue
        value = sign * t.values[index]
        ok = math.isfinite(value) and all(v <= 0 for v in schema.trial_constraints(t).values())
        scored.append((sample, value if ok else None))
        if ok:
            feasible.append(value)
    worst = (min(feasible) if feasible else 0.0) - PENALTY_MARGIN
    return History(tuple((s, worst if v is None else v) for s, v in scored), tuple(seen), running)


def _study_spec(study: optuna.Study) -> Any:
    from nas.errors import ConfigError
    from studies.spec import StudySpec

    data = study.user_attrs.get(schema.STUDY_ATTR_SPEC)
    if data is None:
        raise ConfigError(f"study {study.study_name!r}: no spec in its user attributes; NNI "
                          "samplers run on unetmm studies (unetmm search) only")  # fmt: skip
    return StudySpec.model_validate(data)


def _contains(distribution: BaseDistribution, value: Any) -> bool:
    if isinstance(distribution, CategoricalDistribution):
        return any(type(c) is type(value) and c == value for c in distribution.choices)
    if isinstance(distribution, IntDistribution):
        return isinstance(value, int) and distribution.low <= value <= distribution.high
    return False
