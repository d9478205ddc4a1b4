"""The flat twins: every parameter in every trial, exactly the conditional space's designs, and
what NSGA-II and GP then model (the whole space instead of ``design`` alone)."""

from __future__ import annotations

import warnings

import optuna
import pytest
from optuna.trial import FixedTrial

from nas.presets import backbone_preset, reference_designs
from search_spaces import SpaceBounds, get_space
from search_spaces.flat import skip_designs_params

optuna.logging.set_verbosity(optuna.logging.ERROR)
PAIRS = [("skip_designs_flat", "skip_designs"), ("unetmm_flat", "unetmm")]


def bounds_for(preset: str = "nafnet-w32", **knobs) -> SpaceBounds:
    return SpaceBounds(**knobs).for_backbone(backbone_preset(preset).stage_channels)


@pytest.mark.parametrize(("flat", "conditional"), PAIRS)
@pytest.mark.parametrize("preset", ["nafnet-w32", "unet-w32-d5"])
def test_every_trial_has_every_parameter_and_a_design_of_the_conditional_space(
    flat, conditional, preset
):
    bounds = bounds_for(preset, designs=("full", "none", "subset", "unetmm"))
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=3))
    names, labels = set(), set()
    for _ in range(200):
        trial = study.ask()
        design = get_space(flat).suggest(trial, bounds)
        design.skip.validate(bounds.stage_channels)
        names.add(frozenset(trial.params))
        labels.add(design.label)
        # the conditional space, given the parameters that apply, builds the same design
        back = get_space(conditional).suggest(FixedTrial(trial.params), bounds)
        assert back == design
        study.tell(trial, 0.0)
    assert len(names) == 1  # one parameter set, always the same
    if flat == "skip_designs_flat":
        assert names.pop() == frozenset(skip_designs_params(bounds))
        assert {lab.split()[0] for lab in labels} == {"full", "none", "subset", "unetmm"}
    assert len(labels) > 40  # a space, not a few points


@pytest.mark.parametrize(("flat", "conditional"), PAIRS)
def test_reference_points_enqueue_complete_trials(flat, conditional):
    bounds = bounds_for()
    space = get_space(flat)
    wanted: frozenset[str] = frozenset()
    for name, arch in reference_designs(backbone_preset("nafnet-w32")).items():
        skip = arch.skip
        params = space.encode(skip, bounds)
        if params is None:  # the unetmm spaces express the paper's point only
            assert get_space(conditional).encode(skip, bounds) is None, name
            continue
        assert space.suggest(FixedTrial(params), bounds).skip == skip
        wanted = wanted or frozenset(params)
        assert frozenset(params) == wanted  # always the full parameter set


def _relative_space(sampler: optuna.samplers.BaseSampler, space: str) -> set[str]:
    bounds = bounds_for()
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
    for i in range(12):
        trial = study.ask()
        get_space(space).suggest(trial, bounds)
        study.tell(trial, [float(i % 5), float(i % 3)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return set(sampler.infer_relative_search_space(study, study.get_trials()[-1]))


@pytest.mark.parametrize("make", [
    lambda: optuna.samplers.NSGAIISampler(seed=0, population_size=4),
    lambda: optuna.samplers.GPSampler(seed=0),
], ids=["nsga2", "gp"])
def test_intersection_samplers_model_every_parameter_of_the_flat_space(make):
    """NSGA-II's crossover and GP's model cover the parameters every trial has."""
    assert _relative_space(make(), "skip_designs") == {"design"}
    flat = _relative_space(make(), "skip_designs_flat")
    assert flat == set(skip_designs_params(bounds_for())) and len(flat) == 16
