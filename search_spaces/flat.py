"""Flat twins of the conditional spaces: every parameter in every trial.

Optuna's NSGA-II, NSGA-III and GP samplers model only the *intersection* search space, the
parameters every finished trial has. In the conditional ``skip_designs`` space that is
``design`` alone, so they pick a family and draw its knobs at random: a random search.
``skip_designs_flat`` and ``unetmm_flat`` suggest the whole parameter set of their conditional
space in every trial, in a fixed order and with the same names and distributions, then build the
design from the parameters that apply (the others are recorded and ignored). The designs are
exactly the conditional space's; several parameter sets map to one design (a copy, which costs
no trial slot: ``studies.search.searcher``).

``encode`` fills the parameters a design does not use with their lowest value, so a reference
point enqueues a complete trial.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from optuna.distributions import BaseDistribution, CategoricalDistribution, IntDistribution
from optuna.trial import FixedTrial

from search_spaces.bounds import SpaceBounds
from search_spaces.candidate import Candidate
from search_spaces.registry import Params, SearchSpace, get_space, register_space


def unetmm_params(bounds: SpaceBounds) -> dict[str, BaseDistribution]:
    """Every parameter ``suggest_unetmm`` may ask for, with its distribution."""
    n, bools = bounds.num_stages, (False, True)
    out: dict[str, BaseDistribution] = {
        "unetmm.target": CategoricalDistribution(bounds.allowed_targets())}
    if bounds.search_stages:
        out |= {f"unetmm.s{s}": CategoricalDistribution(bools) for s in range(1, n + 1)}
    out |= {f"unetmm.r{s}_log2": IntDistribution(*bounds.ratio_log2) for s in range(1, n + 1)}
    out["unetmm.agg_log2"] = IntDistribution(*bounds.aggregated_log2)
    out["unetmm.iem_depth"] = IntDistribution(*bounds.iem_depth)
    return out


def skip_designs_params(bounds: SpaceBounds) -> dict[str, BaseDistribution]:
    """Every parameter ``suggest_skip_designs`` may ask for, with its distribution."""
    out: dict[str, BaseDistribution] = {"design": CategoricalDistribution(bounds.designs)}
    if "subset" in bounds.designs:
        bools = CategoricalDistribution((False, True))
        out |= {f"subset.s{s}": bools for s in range(1, bounds.num_stages + 1)}
    if "unetmm" in bounds.designs:
        out |= unetmm_params(bounds)
    return out


def _suggest(trial: Any, name: str, dist: BaseDistribution) -> Any:
    if isinstance(dist, CategoricalDistribution):
        return trial.suggest_categorical(name, dist.choices)
    assert isinstance(dist, IntDistribution)
    return trial.suggest_int(name, dist.low, dist.high)


def _lowest(dist: BaseDistribution) -> Any:
    return dist.choices[0] if isinstance(dist, CategoricalDistribution) else dist.low


ParamSet = Callable[[SpaceBounds], dict[str, BaseDistribution]]


def flat_space(name: str, of: str, params: ParamSet) -> SearchSpace:
    """The flat twin ``name`` of the registered conditional space ``of``."""
    inner = get_space(of)

    def suggest(trial: Any, bounds: SpaceBounds) -> Candidate:
        values = {k: _suggest(trial, k, d) for k, d in params(bounds).items()}
        return inner.suggest(FixedTrial(values), bounds)

    def encode(skip: Any, bounds: SpaceBounds) -> Params | None:
        used = inner.encode(skip, bounds)
        if used is None:
            return None
        return {k: used.get(k, _lowest(d)) for k, d in params(bounds).items()}

    return SearchSpace(name, suggest, encode,
                       f"{of} with every parameter in every trial (for NSGA-II, NSGA-III, GP)")


register_space(flat_space("skip_designs_flat", "skip_designs", skip_designs_params))
register_space(flat_space("unetmm_flat", "unetmm", unetmm_params))
