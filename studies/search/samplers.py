"""Optuna samplers by name (``sampler: tpe`` or ``sampler: {name: nsga2, population_size: 8}``).

Every factory takes the study seed and the user's options (passed through to the sampler).
TPE defaults suit a define-by-run space with conditional parameters run in parallel:
``multivariate`` + ``group`` model the parameters of each design family jointly, and
``constant_liar`` keeps concurrent trials from piling onto the same point.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import optuna

from nas.errors import ConfigError
from nas.registry import Registry

SamplerFactory = Callable[[int | None, dict[str, Any]], optuna.samplers.BaseSampler]
SAMPLERS: Registry[SamplerFactory] = Registry("sampler")


def _tpe(seed: int | None, options: dict[str, Any]) -> optuna.samplers.BaseSampler:
    kw = {"multivariate": True, "group": True, "constant_liar": True, "n_startup_trials": 8}
    return optuna.samplers.TPESampler(seed=seed, **(kw | options))


SAMPLERS.register("tpe")(_tpe)
SAMPLERS.register("nsga2")(lambda seed, o: optuna.samplers.NSGAIISampler(seed=seed, **o))
SAMPLERS.register("nsga3")(lambda seed, o: optuna.samplers.NSGAIIISampler(seed=seed, **o))
SAMPLERS.register("random")(lambda seed, o: optuna.samplers.RandomSampler(seed=seed, **o))
SAMPLERS.register("gp")(lambda seed, o: optuna.samplers.GPSampler(seed=seed, **o))


def make_sampler(
    name: str, seed: int | None, options: dict[str, Any]
) -> optuna.samplers.BaseSampler:
    """Build the sampler ``name``; a wrong option raises ConfigError naming it."""
    factory = SAMPLERS.get(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        try:
            return factory(seed, dict(options))
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"sampler.{name}: {exc}") from None
