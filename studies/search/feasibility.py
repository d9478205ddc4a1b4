"""``FeasibleFirst``: a sampler wrapper that redraws designs breaking an analytic constraint
before they become trials.

A hard constraint on the skip memory (``m_sc <= 0.25 MiB``) is known from shapes alone
(``Metric.from_shapes``: ``nas.cost.skip_memory_timeline``, microseconds, no model built). On
the nafnet_sidd preset that constraint is the one infeasible proposals break (all 45 of 45 in the 40-trial study; MACs
never alone), and the feasible region is small: a sampler that only learns it from told trials
keeps proposing outside it (TPE 40-45%, random 75% of proposals). So, per trial:

1. the first time Optuna asks the wrapper for a value (``sample_relative`` or
   ``sample_independent``), it *plans* the whole design: the base sampler's relative values,
   completed by running the space's define-by-run function on a probe that asks the base
   sampler's ``sample_independent`` for every other parameter, exactly as Optuna would;
2. if the planned design breaks an analytic constraint it is redrawn, up to ``tries`` times:
   first the base sampler's own draws (with its relative sample, then its independent samplers
   alone; each phase ends when a draw repeats itself, since TPE returns the best of its
   candidates and GP its acquisition's optimum), then the last such draw's define-by-run
   prefix with the rest drawn at random, the prefix one parameter shorter each time;
3. every later request of that trial is answered from the plan; a parameter the plan lacks
   goes to the base sampler.

The same redraw skips designs judged before or being judged (``known``: the searcher's copies
and parked trials), which would cost no slot but teach the sampler nothing: a sampler that
keeps proposing its best design gets that design's prefix with a new tail, a local step. If
every feasible draw was known, the first is kept (told as a copy, as before).

If every draw breaks the constraint the last one is kept: it is costed, told infeasible with
its constraint values (``studies.search.outcome``) and the base sampler learns from it as
before. Constraints that need the model (MACs, params, peak memory) are left to the searcher's
costing. ``redrawn`` counts the draws thrown away (the filter's own work, not trials).
``prefilter: false`` in the sampler spec turns both off.
The random draws are seeded by the trial number, so a plan depends only on the base sampler's
state, the stored trials and the trial's number.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, IntDistribution
from optuna.samplers import BaseSampler
from optuna.trial import FrozenTrial, TrialState

from nas.config import ArchConfig
from nas.errors import ConfigError
from search_spaces import get_space
from studies import compat
from studies.constraints import Constraint
from studies.metrics import cost_metrics

DEFAULT_TRIES = 64  # draws per trial: microseconds each, but the base sampler's (below)
BASE_DRAWS = 4  # the base sampler's own draws per phase (TPE: ~20-50 ms each)
# cost metrics known from shapes alone (``Metric.from_shapes``): name -> (arch, size, batch, bits)
ANALYTIC: dict[str, Callable[[ArchConfig, tuple[int, int], int, int], float]] = {
    m.name: m.from_shapes for m in cost_metrics() if m.from_shapes is not None
}


class _Probe:
    """Stands in for an Optuna trial in a define-by-run space: fixed values first, every other
    parameter drawn by ``draw(name, distribution)`` (and kept)."""

    def __init__(self, values: dict[str, Any], draw: Callable[[str, BaseDistribution], Any]):
        self.values = dict(values)
        self.asked: dict[str, Any] = {}
        self._draw = draw

    def suggest_categorical(self, name: str, choices: Sequence[Any]) -> Any:
        return self._get(name, CategoricalDistribution(tuple(choices)))

    def suggest_int(self, name: str, low: int, high: int, step: int = 1, log: bool = False) -> int:
        return self._get(name, IntDistribution(low, high, log=log, step=step))

    def _get(self, name: str, dist: BaseDistribution) -> Any:
        value = self.values.get(name)
        if name not in self.values or not compat.distribution_holds(dist, value):
            value = self.values[name] = self._draw(name, dist)
        self.asked[name] = value
        return value


class AnalyticCheck:
    """Whether a design meets the study's constraints that are known from shapes alone."""

    def __init__(self, constraints: Sequence[Constraint], input_size: tuple[int, int],
                 batch: int, bits: int) -> None:  # fmt: skip
        self.constraints = tuple(c for c in constraints if c.row.from_shapes is not None)
        self._args = (tuple(input_size), batch, bits)

    def __bool__(self) -> bool:
        return bool(self.constraints)

    def __call__(self, arch: ArchConfig) -> bool:
        if not self.constraints:
            return True
        try:
            arch.skip.validate(arch.backbone.stage_channels)
            return all(c.value(c.row.from_shapes(arch, *self._args)) <= 0
                       for c in self.constraints)  # fmt: skip
        except ConfigError:
            return True  # not ours to judge: the searcher's costing records why it fails


class FeasibleFirst(BaseSampler):
    """Wrap ``base``: plan each trial's design and redraw it while ``check`` rejects it."""

    def __init__(self, base: BaseSampler, space_name: str, bounds: Any, backbone: Any,
                 check: Callable[[ArchConfig], bool], tries: int = DEFAULT_TRIES,
                 known: Callable[[optuna.Study], set[str]] | None = None) -> None:  # fmt: skip
        self.base = base
        self._space = get_space(space_name)
        self._bounds = bounds
        self._backbone = backbone
        self._check = check
        self._known = known
        self._tries = max(1, tries)
        self._plans: dict[int, dict[str, Any]] = {}
        self.redrawn = 0  # draws thrown away, over the sampler's life
        self.kept_infeasible = 0  # trials whose every draw broke the check
        self.kept_known = 0  # trials whose every feasible draw was a design judged before

    # -- Optuna's sampler interface ---------------------------------------------------------
    def infer_relative_search_space(self, study: optuna.Study, trial: FrozenTrial
                                    ) -> dict[str, BaseDistribution]:  # fmt: skip
        return self.base.infer_relative_search_space(study, trial)

    def sample_relative(self, study: optuna.Study, trial: FrozenTrial,
                        search_space: dict[str, BaseDistribution]) -> dict[str, Any]:  # fmt: skip
        if not search_space:
            return {}
        plan = self._plan(study, trial, search_space)
        return {k: plan[k] for k in search_space if k in plan}

    def sample_independent(self, study: optuna.Study, trial: FrozenTrial, param_name: str,
                           param_distribution: BaseDistribution) -> Any:  # fmt: skip
        plan = self._plan(study, trial, {})
        if param_name in plan:
            value = plan[param_name]
            if compat.distribution_holds(param_distribution, value):
                return value
        return self.base.sample_independent(study, trial, param_name, param_distribution)

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self.base.before_trial(study, trial)

    def after_trial(self, study: optuna.Study, trial: FrozenTrial, state: TrialState,
                    values: Sequence[float] | None) -> None:  # fmt: skip
        self._plans.pop(trial.number, None)
        self.base.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        self.base.reseed_rng()

    # -- planning -----------------------------------------------------------------------------
    def _plan(self, study: optuna.Study, trial: FrozenTrial,
              search_space: dict[str, BaseDistribution]) -> dict[str, Any]:  # fmt: skip
        if trial.number in self._plans:
            return self._plans[trial.number]
        with compat.trials_read_once(study):  # every redraw asks the base sampler again
            values = self._first_good(study, trial, search_space)
        self._plans[trial.number] = values
        return values

    def _first_good(self, study: optuna.Study, trial: FrozenTrial,
                    search_space: dict[str, BaseDistribution]) -> dict[str, Any]:  # fmt: skip
        """The first draw that passes ``check`` and is new; else the first that passes; else
        the last one (``tries`` at most)."""
        draws = self._draws(study, trial, search_space)
        known = self._known(study) if self._known is not None else set()
        feasible = None  # the first feasible draw, if every one was judged before
        for _ in range(self._tries):
            values, arch = next(draws)
            if self._check(arch):
                if arch.key() not in known:
                    break
                feasible = values if feasible is None else feasible
            self.redrawn += 1
        else:
            self.redrawn -= 1  # one of them is kept
            if feasible is None:
                self.kept_infeasible += 1
            else:
                values = feasible
                self.kept_known += 1
        return values

    def _draws(self, study: optuna.Study, trial: FrozenTrial,
               search_space: dict[str, BaseDistribution]) -> Iterator[tuple[dict, ArchConfig]]:  # fmt: skip
        """Candidate plans, in order: the base sampler's own draws (relative, then independent
        only; each phase ends when a draw repeats, at most ``BASE_DRAWS`` each: TPE
        picks the best of its candidates, so its draws repeat), then the last such draw's
        first k parameters (define-by-run order) with the rest at random, k going down to 0."""
        given = {**compat.fixed_params(trial), **trial.params}  # queued and asked params win

        def base(name: str, dist: BaseDistribution) -> Any:
            return self.base.sample_independent(study, trial, name, dist)

        values, order, seen = dict(given), list(given), []
        for relative in (True, False):
            for _ in range(0 if relative and not search_space else BASE_DRAWS):
                start = self.base.sample_relative(study, trial, search_space) if relative else {}
                drawn, names, arch = self._complete({**start, **given}, base)
                if drawn in seen:
                    break
                seen.append(drawn)
                values, order = drawn, names
                yield drawn, arch
        rng = optuna.samplers.RandomSampler(seed=trial.number)

        def random(name: str, dist: BaseDistribution) -> Any:
            return rng.sample_independent(study, trial, name, dist)

        for j in itertools.count():
            keep = {n: values[n] for n in order[: max(0, len(order) - 1 - j)]}
            drawn, _, arch = self._complete({**keep, **given}, random)
            yield drawn, arch

    def _complete(self, values: dict[str, Any], draw: Callable[[str, BaseDistribution], Any]
                  ) -> tuple[dict[str, Any], list[str], ArchConfig]:  # fmt: skip
        """Run the space on ``values``, drawing what they lack with ``draw``: all values, the
        design's parameter names in define-by-run order, and its architecture."""
        probe = _Probe(values, draw)
        candidate = self._space.suggest(probe, self._bounds)
        return probe.values, list(probe.asked), candidate.arch(self._backbone)


def feasible_first(base: BaseSampler, spec: Any, settings: Any, tries: int = DEFAULT_TRIES,
                   known: Callable[[optuna.Study], set[str]] | None = None) -> BaseSampler:  # fmt: skip
    """``base`` wrapped in ``FeasibleFirst`` unless the study's sampler spec turns the
    prefilter off (``StudySpec``, ``TrialSettings``); ``known`` (study -> arch keys of the
    designs judged or being judged) makes it redraw those too."""
    if not spec.sampler.prefilter:
        return base
    check = AnalyticCheck(settings.hard_constraints, settings.input_size, settings.batch,
                          settings.bits)  # fmt: skip
    return FeasibleFirst(base, spec.space.name, spec.bounds, spec.target.backbone_config(),
                         check, tries, known)  # fmt: skip
