"""``search_spaces.enumerate`` walks a define-by-run space exhaustively: every parameter set
once, each giving the design ``suggest`` gives for it."""

from __future__ import annotations

from optuna.trial import FixedTrial

from nas.presets import backbone_preset
from search_spaces import SpaceBounds, get_space
from search_spaces.enumerate import parameter_sets


def test_a_small_space_is_walked_once_per_parameter_set() -> None:
    bounds = SpaceBounds(designs=("unetmm",), ratio_log2=(-2, -1), aggregated_log2=(4, 5),
                         iem_depth=(0, 1), search_stages=False,
                         ).for_backbone(backbone_preset("nafnet-w32").stage_channels)
    space = get_space("unetmm")
    sets = list(parameter_sets(space, bounds))
    # all four stages take part: target x 2 ratios per stage x 2 A x 2 depths
    assert len(sets) == len(bounds.allowed_targets()) * 2**4 * 2 * 2 == 256
    assert len({tuple(sorted(p.items())) for p, _ in sets}) == len(sets)
    for params, candidate in sets[::17]:
        assert space.suggest(FixedTrial(params), bounds) == candidate


def test_conditional_parameters_are_enumerated_only_where_asked() -> None:
    bounds = SpaceBounds(designs=("subset", "unetmm"), ratio_log2=(-1, -1),
                         aggregated_log2=(4, 4), iem_depth=(1, 1),
                         ).for_backbone(backbone_preset("nafnet-w32").stage_channels)
    sets = [p for p, _ in parameter_sets(get_space("skip_designs"), bounds)]
    subsets = [p for p in sets if p["design"] == "subset"]
    unetmm = [p for p in sets if p["design"] == "unetmm"]
    assert len(subsets) == 2**4 and all(len(p) == 5 for p in subsets)
    # per target: 2**4 choices of taking-part stages (none: the target alone), one value each
    assert len(unetmm) == len(bounds.allowed_targets()) * 2**4
    assert all(not any(k.startswith("subset.") for k in p) for p in unetmm)
