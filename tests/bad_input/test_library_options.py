"""Options handed to Optuna's samplers (and NNI's) are checked against what the sampler takes,
by its signature and a dry run on a throwaway study, before any study is touched."""

from __future__ import annotations

import pytest

from search_spaces import nni_imports

CASES = [
    ({"name": "tpe", "n_startup_trials": "many"}, "sampler.tpe.n_startup_trials: 'many'"),
    ({"name": "tpe", "n_startup_trials": True}, "sampler.tpe.n_startup_trials: True"),
    ({"name": "tpe", "n_startup_trials": 2.5}, "sampler.tpe.n_startup_trials: 2.5"),
    ({"name": "tpe", "multivariate": "yes"}, "sampler.tpe.multivariate: 'yes'"),
    ({"name": "tpe", "consider_prior": 3}, "sampler.tpe.consider_prior: 3"),
    ({"name": "tpe", "n_ei_candidates": [1]}, "sampler.tpe.n_ei_candidates"),
    ({"name": "tpe", "gamma": 3}, "sampler.tpe: its options fail when the sampler runs"),
    ({"name": "tpe", "bogus": 1}, "sampler.tpe.bogus: not an option here"),
    ({"name": "tpe", "seed": 3}, "sampler.tpe.seed: not an option here"),
    ({"name": "nsga2", "population_size": "big"}, "sampler.nsga2.population_size: 'big'"),
    ({"name": "nsga2", "mutation_prob": "x"}, "sampler.nsga2.mutation_prob: 'x'"),
    ({"name": "nsga2", "crossover_prob": [0.5]}, "sampler.nsga2.crossover_prob"),
    ({"name": "nsga2", "population_size": 1}, "sampler.nsga2"),
    ({"name": "nsga3", "population_size": "x"}, "sampler.nsga3.population_size"),
    ({"name": "random", "bogus": 2}, "sampler.random.bogus: not an option here"),
    ({"name": "gp", "n_startup_trials": "ten"}, "sampler.gp.n_startup_trials: 'ten'"),
    ({"name": "gp", "deterministic_objective": "no"}, "sampler.gp.deterministic_objective"),
    ({"name": "cmaes"}, "sampler.name: unknown sampler 'cmaes'"),
]


@pytest.mark.parametrize(("sampler", "needle"), CASES, ids=[str(c[0]) for c in CASES])
def test_sampler_options_are_checked_before_the_study(refused, spec_file, sampler, needle) -> None:
    refused(["search", spec_file(sampler=sampler), "s.db"], needle)


@pytest.mark.skipif(not nni_imports.available(), reason="the nni extra is not installed")
@pytest.mark.parametrize(("sampler", "needle"), [
    ({"name": "nni-evolution", "population_size": "x"},
     "sampler.nni-evolution.population_size: 'x'"),
    ({"name": "nni-evolution", "crossover": "yes"}, "sampler.nni-evolution.crossover: 'yes'"),
    ({"name": "nni-evolution", "popsize": 4}, "sampler.nni-evolution: unknown option"),
    ({"name": "nni-tpe", "objective": "pnsr"}, "sampler.nni-tpe.objective: unknown metric"),
])  # fmt: skip
def test_nni_options_are_checked_too(refused, spec_file, sampler, needle) -> None:
    refused(["search", spec_file(sampler=sampler), "s.db"], needle)
