"""``search_spaces.enumerate`` walks a define-by-run space exhaustively: every parameter set
once, each giving the design ``suggest`` gives for it."""

from __future__ import annotations

from optuna.trial import FixedTrial

from nas.presets import backbone_preset
from search_spaces import SpaceBounds, get_space
from search_spaces.enumerate import parameter_sets, weighted_parameter_sets


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


def test_the_weights_are_the_random_samplers_frequencies() -> None:
    """The weight of a parameter set is its chance under Optuna's RandomSampler: the weights of
    a conditional space sum to 1, and 3000 random trials fall into the groups (family, target,
    stages taking part) in those proportions, where counting every set alike would not."""
    import collections

    import optuna

    bounds = SpaceBounds(designs=("subset", "unetmm"), ratio_log2=(-2, -1),
                         aggregated_log2=(4, 4), iem_depth=(1, 1),
                         ).for_backbone(backbone_preset("nafnet-w32").stage_channels)
    space = get_space("skip_designs")

    def group(params: dict) -> tuple:
        taking_part = sum(v is True for k, v in params.items() if k.startswith("unetmm.s"))
        return params["design"], params.get("unetmm.target"), taking_part

    sets = list(weighted_parameter_sets(space, bounds))
    assert abs(sum(w for *_, w in sets) - 1.0) < 1e-12
    every_subset = {"design": "subset", **{f"subset.s{s}": True for s in range(1, 5)}}
    assert next(w for p, _, w in sets if p == every_subset) == 1 / 2 / 2**4
    expected: collections.Counter = collections.Counter()
    alike: collections.Counter = collections.Counter()
    for params, _, w in sets:
        expected[group(params)] += w
        alike[group(params)] += 1 / len(sets)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen: collections.Counter = collections.Counter()
    for _ in range(3000):
        trial = study.ask()
        space.suggest(trial, bounds)
        seen[group(trial.params)] += 1 / 3000
        study.tell(trial, 0.0)

    def tv(a: collections.Counter, b: collections.Counter) -> float:
        return sum(abs(a[k] - b[k]) for k in set(a) | set(b)) / 2

    assert tv(seen, expected) < 0.05  # sampling noise over 21 groups: about 0.035
    assert tv(seen, alike) > 0.3
