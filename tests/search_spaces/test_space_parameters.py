"""``SearchSpace.parameters``: the flat table lists exactly the parameters ``suggest`` asks
for, with exactly the values it may take (what the NNI model space is built from)."""

from __future__ import annotations

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, IntDistribution

from nas.presets import backbone_preset
from search_spaces import SpaceBounds, get_space

optuna.logging.set_verbosity(optuna.logging.ERROR)


def _values(distribution) -> tuple:
    if isinstance(distribution, CategoricalDistribution):
        return tuple(distribution.choices)
    assert isinstance(distribution, IntDistribution) and distribution.step == 1
    return tuple(range(distribution.low, distribution.high + 1))


@pytest.mark.parametrize("preset", ["nafnet-sidd", "unet-w32-d3", "unet-w32-d5"])
@pytest.mark.parametrize("space_name", ["skip_designs", "unetmm"])
@pytest.mark.parametrize("knobs", [{}, {"designs": ("full", "none", "subset", "unetmm")},
                                   {"search_stages": False, "target_stages": (2, 3)}])
def test_table_matches_what_suggest_asks(preset, space_name, knobs):
    bounds = SpaceBounds(**knobs).for_backbone(backbone_preset(preset).stage_channels)
    space = get_space(space_name)
    table = space.parameters(bounds)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    asked: dict[str, tuple] = {}
    for _ in range(300):
        trial = study.ask()
        space.suggest(trial, bounds)
        for name, distribution in trial.distributions.items():
            assert _values(distribution) == table[name], name  # same values, same order
            asked[name] = table[name]
        study.tell(trial, 0.0)
    assert asked == table  # every parameter of the table is asked for by some design
