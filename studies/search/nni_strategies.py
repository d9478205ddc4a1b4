"""NNI's multi-trial strategies, asked for one sample at a time (the ``nni`` extra).

NNI's strategies push: ``strategy.run()`` loops, submitting models to an execution engine
and learning from its events. unetmm pulls: Ray asks its searcher for one design when a slot
is free. So each proposal here rebuilds the strategy from ``History`` (everything the study
stored: resume and several drivers need nothing else), asks it for one sample with the
strategy's own sampling code, and drops it:

- ``evolution``: ``nni.nas.strategy.RegularizedEvolution``, its state loaded with
  ``load_state_dict`` (population: the last ``population_size`` scored samples in the order
  they finished, oldest first; the dedup history: every stored design), then one step of
  its ``_run``: ``random()`` while population + running trials are short of
  ``population_size``, else ``new_individual()`` (tournament of ``sample_size``, mutation);
- ``tpe``: ``nni.nas.strategy.TPE``'s tuner (NNI's TPE), given the space as its strategy does
  (``as_legacy_dict``), the scored samples with ``import_data`` (NNI's resume), then
  ``generate_parameters``;
- ``random``: ``nni.nas.strategy.Random`` with its dedup history loaded, then ``random()``.

Every proposal is a new design: a sample whose design a stored trial has (labels the design
does not read may differ) counts as NNI's ``DuplicationError`` and is drawn again,
500 times at most (NNI's ``RetrySamplingHelper``); then the last draw is returned and the
searcher tells it as a copy. ``PolicyBasedRL`` is not offered: it needs ``tianshou`` 0.x and
``gym``, which do not install with numpy 2 (see the README).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from nas.registry import Registry

Sample = dict[str, Any]
Design = Callable[[Sample], Any]  # a sample's design (equal designs compare equal)


@dataclasses.dataclass(frozen=True)
class History:
    """What the study stored, as NNI sees it (samples: ``nni_space.sample_of`` of the params).

    - ``scored``: (sample, metric) of the trials with a metric, in the order they finished;
      higher is better;
    - ``seen``: every stored design's sample (scored, copied, stopped, failed, running);
    - ``running``: trials proposed and not finished (other than the one being proposed).
    """

    scored: tuple[tuple[Sample, float], ...] = ()
    seen: tuple[Sample, ...] = ()
    running: int = 0


@dataclasses.dataclass(frozen=True)
class StrategyAdapter:
    """How to ask one NNI strategy for a sample: ``propose(space, history, options, seed,
    design)`` with ``space`` an NNI executable model space and ``options`` the user's
    (only ``options`` names are accepted; ``defaults(n_trials)`` fit the run's budget)."""

    propose: Callable[[Any, History, dict[str, Any], int, Design], Sample]
    options: tuple[str, ...]
    defaults: Callable[[int], dict[str, Any]] = lambda n_trials: {}
    # what the options are handed to (imported when checked): their annotated types apply
    target: Callable[[], Callable[..., Any]] | None = None


STRATEGIES: Registry[StrategyAdapter] = Registry("NNI strategy")


def _dedup_state(seen: tuple[Sample, ...]) -> dict[str, Any]:
    from nni.nas.strategy.utils import DeduplicationHelper

    helper = DeduplicationHelper()
    for sample in seen:
        helper.dedup(sample)
    return helper.state_dict()


def _new_design(draw: Callable[[], Sample], seen: tuple[Sample, ...], design: Design
                ) -> Sample:  # fmt: skip
    """``draw()`` until its design is not in ``seen`` (NNI's retry helper); the last draw if
    none is."""
    from nni.nas.strategy.utils import DuplicationError, RetrySamplingHelper

    known = [design(s) for s in seen]
    last: list[Sample] = []

    def fresh() -> Sample:
        sample = draw()
        last[:] = [sample]
        if design(sample) in known:
            raise DuplicationError(sample)
        return sample

    found = RetrySamplingHelper().retry(fresh)
    return found if found is not None else last[0]


def _engine() -> Any:
    """An execution engine that runs nothing: strategies only register callbacks on it."""
    from nni.nas.execution import ExecutionEngine

    return ExecutionEngine()


def _startup(n_trials: int) -> dict[str, Any]:
    """NNI's TPE draws its first 20 samples at random; as unetmm's TPE: a quarter of the
    budget, 4 to 10."""
    return {"tpe_args": {"n_startup_jobs": max(4, min(10, n_trials // 4))}}


def _population(n_trials: int) -> dict[str, Any]:
    size = max(4, min(50, n_trials // 4))  # as unetmm's NSGA-II: the random phase fits the budget
    return {"population_size": size, "sample_size": max(2, size // 4)}


def _evolution(space: Any, history: History, options: dict[str, Any], seed: int,
               design: Design) -> Sample:  # fmt: skip
    from nni.nas.strategy import RegularizedEvolution
    from nni.nas.strategy.evolution import Individual

    strategy = RegularizedEvolution(**options, seed=seed)
    strategy.initialize(space, _engine())
    size = strategy.population_size
    population = [Individual(x, y) for x, y in history.scored[-size:]]
    strategy.load_state_dict({
        "population": population, "individual_counter": len(history.scored),
        "random_state": strategy.state_dict()["random_state"], **_dedup_state(history.seen),
    })  # fmt: skip
    young = not population or len(population) + history.running < size
    step = strategy.random if young else strategy.new_individual
    return _new_design(lambda: step().sample, history.seen, design)


def _tpe(space: Any, history: History, options: dict[str, Any], seed: int,
         design: Design) -> Sample:  # fmt: skip
    from nni.nas.strategy import TPE

    tuner = TPE(optimize_mode="maximize", seed=seed, **options).tuner
    tuner.update_search_space({k: m.as_legacy_dict() for k, m in space.simplify().items()})
    tuner.import_data([{"parameter": x, "value": y} for x, y in history.scored])
    count = iter(range(10**9))
    return _new_design(lambda: tuner.generate_parameters(next(count)), history.seen, design)


def _random(space: Any, history: History, options: dict[str, Any], seed: int,
            design: Design) -> Sample:  # fmt: skip
    from nni.nas.strategy import Random

    strategy = Random(seed=seed)
    strategy.initialize(space, _engine())
    strategy.load_state_dict({**strategy.state_dict(), **_dedup_state(history.seen)})
    return _new_design(lambda: strategy.random(space).sample, history.seen, design)


EVOLUTION_OPTIONS = ("population_size", "sample_size", "mutation_prob", "crossover")
def _evolution_class() -> Callable[..., Any]:
    from nni.nas.strategy import RegularizedEvolution

    return RegularizedEvolution  # type: ignore[no-any-return]


STRATEGIES.register("evolution")(
    StrategyAdapter(_evolution, EVOLUTION_OPTIONS, _population, _evolution_class))
STRATEGIES.register("tpe")(StrategyAdapter(_tpe, ("tpe_args",), _startup))
STRATEGIES.register("random")(StrategyAdapter(_random, ()))
