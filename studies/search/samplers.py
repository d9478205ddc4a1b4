"""Optuna samplers by name (``sampler: tpe`` or ``sampler: {name: nsga2, population_size: 8}``).

Every factory takes the run's seed, the user's options (passed through to the sampler, and
winning over the defaults below) and the run's budget ``n_trials`` (designs to judge), so that
defaults fit the budget:

- ``tpe``: ``multivariate`` + ``group`` model the parameters of each design family of the
  conditional space jointly, ``constant_liar`` keeps concurrent trials (and other drivers on
  the study) from piling onto the same point; its first ``n_startup_trials`` proposals are
  random: a quarter of the budget, 4 to 10 (Optuna's default, 10, would spend all of a small
  budget on random designs);
- ``nsga2``/``nsga3``: the whole first generation is random, so the population is a quarter of
  the budget, 4 to 50 (Optuna's default, 50, makes any budget under 50 trials a random search);
- ``random``, ``gp``: Optuna's defaults;
- ``nni-evolution``, ``nni-tpe``, ``nni-random``: NNI's Regularized Evolution, TPE and random
  search (``studies.search.nni_samplers``; the ``nni`` extra: without it, naming one is a
  ``ConfigError`` saying how to install it). They optimise one objective (option
  ``objective``, default the first); evolution's population is a quarter of the budget, 4
  to 50, its tournament a quarter of that (at least 2).

No ``constraints_func`` is passed (Optuna 5 deprecates it): Optuna 5's TPE, NSGA-II and GP read
each trial's ``Trial.set_constraint`` values (``FrozenTrial.constraints``), which the searcher
stores on every costed trial, infeasible ones included (``studies.search.outcome``). TPE keeps
trials with a positive value apart from the feasible ones, NSGA-II ranks by constrained
domination, GP models the constraints.

TPE is the default because it is the only one that models a conditional (define-by-run) space:
NSGA-II, NSGA-III and GP model the *intersection* search space, the parameters every trial has,
and draw the rest at random. In ``skip_designs`` that intersection is ``design`` alone (checked:
``infer_relative_search_space`` after 12 trials is ``['design']`` for NSGA-II and GP, all 16
parameters for TPE with ``group``), so they choose the family and sample its knobs at random;
they search fully where every parameter is always present: the flat twins
``skip_designs_flat`` and ``unetmm_flat`` (``search_spaces.flat``) suggest every parameter in
every trial.

The searcher wraps every sampler in ``studies.search.feasibility.FeasibleFirst`` when a study
has an M_sc limit: a draw over it is redrawn (the base's own draws first, then its prefix
completed at random) before it becomes a trial, so no sampler spends proposals learning where
the small feasible region lies.

Every proposal the sampler makes is told (infeasible ones and copies too, at once), so it learns
from more trials than the budget; the sizes above count the budget only, which errs on the side
of leaving the random phase early.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import optuna

from nas.errors import ConfigError
from nas.registry import Registry

SamplerFactory = Callable[[int | None, dict[str, Any], int], optuna.samplers.BaseSampler]
SAMPLERS: Registry[SamplerFactory] = Registry("sampler")
DEFAULT_BUDGET = 20  # n_trials when a caller does not say (StudySpec's default)


def _quarter(n_trials: int, low: int, high: int) -> int:
    return max(low, min(high, n_trials // 4))


@SAMPLERS.register("tpe")
def _tpe(seed: int | None, options: dict[str, Any], n_trials: int) -> optuna.samplers.BaseSampler:
    kw = {"multivariate": True, "group": True, "constant_liar": True,
          "n_startup_trials": _quarter(n_trials, 4, 10)}  # fmt: skip
    return optuna.samplers.TPESampler(seed=seed, **(kw | options))


@SAMPLERS.register("nsga2")
def _nsga2(seed: int | None, options: dict[str, Any], n_trials: int) -> optuna.samplers.BaseSampler:
    kw = {"population_size": _quarter(n_trials, 4, 50)}
    return optuna.samplers.NSGAIISampler(seed=seed, **(kw | options))


@SAMPLERS.register("nsga3")
def _nsga3(seed: int | None, options: dict[str, Any], n_trials: int) -> optuna.samplers.BaseSampler:
    kw = {"population_size": _quarter(n_trials, 4, 50)}
    return optuna.samplers.NSGAIIISampler(seed=seed, **(kw | options))


SAMPLERS.register("random")(lambda seed, o, n: optuna.samplers.RandomSampler(seed=seed, **o))
SAMPLERS.register("gp")(lambda seed, o, n: optuna.samplers.GPSampler(seed=seed, **o))


def _nni(strategy: str) -> SamplerFactory:
    def factory(seed: int | None, options: dict[str, Any], n_trials: int
                ) -> optuna.samplers.BaseSampler:  # fmt: skip
        from studies.search.nni_samplers import NNISampler  # imports nothing of NNI

        return NNISampler(strategy, seed, options, n_trials)

    return factory


NNI_SAMPLERS = {"nni-evolution": "evolution", "nni-tpe": "tpe", "nni-random": "random"}
for _name, _strategy in NNI_SAMPLERS.items():
    SAMPLERS.register(_name)(_nni(_strategy))


# the class each Optuna sampler's options go to (their annotations check the user's values)
OPTUNA_CLASSES = {"tpe": optuna.samplers.TPESampler, "nsga2": optuna.samplers.NSGAIISampler,
                  "nsga3": optuna.samplers.NSGAIIISampler, "random": optuna.samplers.RandomSampler,
                  "gp": optuna.samplers.GPSampler}  # fmt: skip


def check_options(target: Callable[..., Any], options: dict[str, Any], where: str) -> None:
    """``ConfigError`` naming the first option ``target`` (a function or class) does not take,
    or whose value does not fit its annotated type (checked strictly: ``"many"`` is no int, a
    YAML ``true`` no number). Options whose annotation pydantic cannot check pass unchecked."""
    import inspect
    import typing

    from pydantic import TypeAdapter, ValidationError
    from pydantic.errors import PydanticSchemaGenerationError, PydanticUserError

    function = target.__init__ if inspect.isclass(target) else target
    params = inspect.signature(function).parameters
    for key, value in options.items():
        if key not in params or key == "seed":
            known = [p for p in params if p not in ("self", "seed") and not p.startswith("_")]
            raise ConfigError(f"{where}.{key}: not an option here; it takes {known}")
        hint = params[key].annotation
        if isinstance(hint, str):  # postponed annotations: evaluate this one alone
            try:
                hint = eval(hint, vars(inspect.getmodule(function)), {"typing": typing})  # noqa: S307
            except Exception:  # noqa: BLE001 (a name only imported for type checkers)
                continue
        if hint is inspect.Parameter.empty:
            continue
        try:
            TypeAdapter(hint).validate_python(value, strict=True)
        except ValidationError as exc:
            msg = exc.errors(include_url=False)[0]["msg"]
            raise ConfigError(f"{where}.{key}: {value!r} is not a valid value ({msg})") from None
        except (PydanticSchemaGenerationError, PydanticUserError, TypeError, NameError):
            continue


def make_sampler(
    name: str, seed: int | None, options: dict[str, Any], n_trials: int = DEFAULT_BUDGET
) -> optuna.samplers.BaseSampler:
    """Build the sampler ``name`` for a run judging ``n_trials`` designs; a wrong option raises
    ConfigError naming it (checked against the sampler's own signature before it is built)."""
    factory = SAMPLERS.get(name)
    if name in OPTUNA_CLASSES:
        check_options(OPTUNA_CLASSES[name], dict(options), f"sampler.{name}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        try:
            sampler = factory(seed, dict(options), n_trials)
        except ConfigError:
            raise
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"sampler.{name}: {exc}") from None
        if name in DRY_RUN and options:
            _dry_run(factory(seed, dict(options), n_trials), name)
    return sampler


DRY_RUN_TRIALS = 12  # past TPE's default random start: its model runs too
DRY_RUN = ("tpe", "nsga2", "nsga3", "random")  # GP's model fit takes seconds: types only


def _dry_run(sampler: optuna.samplers.BaseSampler, name: str) -> None:
    """Ask a throwaway in-memory study a few proposals with the user's options, so an option
    that only fails once the sampler runs (a number where a function belongs, ...) is
    reported before any study is touched."""
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=sampler, storage=optuna.storages.InMemoryStorage())
    try:
        for i in range(DRY_RUN_TRIALS):
            trial = study.ask()
            x = trial.suggest_float("x", 0.0, 1.0)
            trial.suggest_categorical("c", ("a", "b"))
            study.tell(trial, x * (i % 3))
    except Exception as exc:  # noqa: BLE001 (any failure is the options': say which)
        raise ConfigError(f"sampler.{name}: its options fail when the sampler runs "
                          f"({type(exc).__name__}: {exc}); check their types and values"
                          ) from None  # fmt: skip
    finally:
        optuna.logging.set_verbosity(verbosity)
