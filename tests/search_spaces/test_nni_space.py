"""The skip-design spaces as NNI model spaces yield exactly the designs of the Optuna spaces:
NNI's labels and values are the flat table's; every NNI sample is a design the Optuna space
encodes and replays to the same ``ArchConfig``, and back; on small bounds the two spaces'
designs are enumerated and equal. A frozen space with a backbone is that real network."""

from __future__ import annotations

import itertools

import pytest
import torch
from numpy.random import RandomState
from optuna.trial import FixedTrial

from nas.presets import backbone_preset
from search_spaces import SpaceBounds, get_space, nni_imports
from search_spaces.enumerate import parameter_sets

pytestmark = pytest.mark.skipif(
    not nni_imports.available(),
    reason=f"NNI (the 'nni' extra) is not installed: {nni_imports.INSTALL}",
)
FAMILIES = ("full", "none", "subset", "unetmm")


def bounds_for(preset: str, **knobs) -> SpaceBounds:
    return SpaceBounds(**knobs).for_backbone(backbone_preset(preset).stage_channels)


@pytest.mark.parametrize("preset", ["nafnet-w32", "unet-w32-d5"])
@pytest.mark.parametrize("space_name", ["skip_designs", "unetmm", "skip_designs_flat"])
def test_round_trip_nni_sample_arch_optuna_params_and_back(preset, space_name):
    from search_spaces.nni_space import choices, executable, sample_of

    bounds, space = bounds_for(preset, designs=FAMILIES), get_space(space_name)
    backbone = backbone_preset(preset)
    model_space = executable(space_name, bounds)
    table = choices(space_name, bounds)
    assert {k: tuple(m.values) for k, m in model_space.simplify().items()} == table
    rng, families = RandomState(0), set()
    for _ in range(60):
        model = model_space.random(random_state=rng)  # NNI's own sampling
        arch = model.executable_model().candidate.arch(backbone)
        arch.skip.validate(bounds.stage_channels)
        params = space.encode(arch.skip, bounds)  # the Optuna space encodes it
        assert params is not None, arch.skip
        fixed = FixedTrial(params)
        assert space.suggest(fixed, bounds).arch(backbone) == arch  # and replays it
        assert fixed.params == params  # reading exactly those parameters
        assert set(params) <= set(table)  # which NNI's space has
        back = model_space.freeze(sample_of(params, table)).executable_model()
        assert back.candidate.arch(backbone) == arch  # and back to NNI
        families.add(arch.skip.name)
    assert families == (set(FAMILIES) if space_name.startswith("skip") else {"unetmm"})


@pytest.mark.parametrize("space_name", ["skip_designs", "unetmm"])
def test_both_spaces_hold_the_same_designs(space_name):
    from search_spaces.nni_space import executable, to_candidate

    bounds = bounds_for("unet-w32-d3", designs=FAMILIES, ratio_log2=(-2, -1),
                        aggregated_log2=(4, 5), iem_depth=(0, 1))  # fmt: skip
    table = executable(space_name, bounds).simplify()
    labels = list(table)
    nni = {to_candidate(dict(zip(labels, values)), space_name, bounds).skip
           for values in itertools.product(*(m.values for m in table.values()))}  # fmt: skip
    optuna = {c.skip for _, c in parameter_sets(get_space(space_name), bounds)}
    assert nni == optuna and len(nni) > 50


def test_frozen_space_with_a_backbone_is_the_network():
    from search_spaces.nni_space import SkipDesignSpace

    bounds, backbone = bounds_for("unet-w32-d3"), backbone_preset("unet-w32-d3")
    space = SkipDesignSpace("skip_designs", bounds, backbone)
    assert space.network is None  # the space itself builds nothing
    model = space.freeze({k: m.values[-1] for k, m in space.simplify().items()})
    assert model.candidate.skip.name == "unetmm" and model.network is not None
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        assert model(x).shape == x.shape
