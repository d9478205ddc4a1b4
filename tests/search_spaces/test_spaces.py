"""The skip-design spaces: every point they return fits the backbone, they build nothing,
conditional parameters appear only where they apply, and reference points round-trip."""

from __future__ import annotations

import itertools

import optuna
import pytest
import torch
from optuna.trial import FixedTrial

from nas.errors import ConfigError, UnknownNameError
from nas.presets import BACKBONE_PRESETS, backbone_preset, reference_designs
from nas.skips import FullSkipsConfig, SubsetSkipsConfig, UNetMMConfig
from search_spaces import SPACES, SpaceBounds, encode_point, get_space, reference_points

optuna.logging.set_verbosity(optuna.logging.ERROR)


def bounds_for(preset: str, **knobs) -> SpaceBounds:
    return SpaceBounds(**knobs).for_backbone(backbone_preset(preset).stage_channels)


def test_registry_lists_spaces_and_names_unknown():
    assert {"skip_designs", "unetmm"} <= set(SPACES.names())
    with pytest.raises(UnknownNameError, match="skip_designs"):
        get_space("nope")


ALL_FAMILIES = ("full", "none", "subset", "unetmm")


@pytest.mark.parametrize("preset", BACKBONE_PRESETS.names())
@pytest.mark.parametrize("space_name", ["skip_designs", "unetmm"])
def test_random_points_always_validate(preset, space_name):
    """300 random points per space and backbone: all pass validate (no crash in a study)."""
    space, bounds = get_space(space_name), bounds_for(preset, designs=ALL_FAMILIES)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    families = set()
    for _ in range(300):
        trial = study.ask()
        design = space.suggest(trial, bounds)
        design.skip.validate(bounds.stage_channels)
        families.add(design.skip.name)
        study.tell(trial, 0.0)
    expected = {"full", "none", "subset", "unetmm"} if space_name == "skip_designs" else {"unetmm"}
    assert families == expected


@pytest.mark.parametrize("preset", ["nafnet-w32", "unet-w32-d5", "unet-w32-d3"])
def test_unetmm_edge_cases_validate_with_fixed_trial(preset):
    """Every target x taking-part subset x extreme ratio x extreme A x extreme depth."""
    bounds = bounds_for(preset)
    n, space = bounds.num_stages, get_space("unetmm")
    (rlo, rhi), (alo, ahi), (dlo, dhi) = bounds.ratio_log2, bounds.aggregated_log2, bounds.iem_depth
    checked = 0
    for t in bounds.allowed_targets():
        for mask in itertools.product((False, True), repeat=n):
            for r, a, d in itertools.product((rlo, rhi), (alo, ahi), (dlo, dhi)):
                params = {"unetmm.target": t, "unetmm.agg_log2": a, "unetmm.iem_depth": d}
                params |= {f"unetmm.s{s}": m for s, m in zip(range(1, n + 1), mask)}
                params |= {f"unetmm.r{s}_log2": r for s in range(1, n + 1)}
                skip = space.suggest(FixedTrial(params), bounds).skip
                skip.validate(bounds.stage_channels)
                part = skip.skip_stages(n)
                assert part == (tuple(s for s, m in zip(range(1, n + 1), mask) if m) or (t,))
                checked += 1
    assert checked == len(bounds.allowed_targets()) * 2**n * 8


def test_repairs_round_up_to_pixel_shuffle_multiples():
    """Target E1, deepest stage at r=1/64 keeps 256/64 = 4 channels: raised to 4**3 = 64.
    Target E4 with E1 taking part and A = 16: A raised to 4**3 = 64."""
    bounds = bounds_for("nafnet-w32")  # C = 32, 64, 128, 256
    space = get_space("unetmm")
    params = {f"unetmm.s{s}": True for s in range(1, 5)} | {
        f"unetmm.r{s}_log2": -6 for s in range(1, 5)
    }
    shallow = space.suggest(FixedTrial(params | {"unetmm.target": 1, "unetmm.agg_log2": 4,
                                                 "unetmm.iem_depth": 1}), bounds).skip
    assert shallow.reduced(bounds.stage_channels) == (1, 4, 16, 64)  # 4**0, 4**1, 4**2, 4**3
    assert shallow.aggregated_channels == 16 and shallow.target_stage == 1
    deep = space.suggest(FixedTrial(params | {"unetmm.target": 4, "unetmm.agg_log2": 4,
                                              "unetmm.iem_depth": 0}), bounds).skip
    assert deep.aggregated_channels == 64 and deep.target_stage is None  # None = deepest
    assert deep.reduced(bounds.stage_channels) == (1, 1, 2, 4)


def test_default_families_reach_full_and_none_through_subset():
    """Default designs [subset, unetmm]: full and none are subset's extremes, not families."""
    bounds = bounds_for("nafnet-w32")
    space = get_space("skip_designs")
    assert space.encode(FullSkipsConfig(), bounds) == {
        "design": "subset", "subset.s1": True, "subset.s2": True, "subset.s3": True,
        "subset.s4": True,
    }
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    names = []
    for _ in range(400):
        trial = study.ask()
        names.append(space.suggest(trial, bounds).skip.name)
        assert trial.params["design"] in ("subset", "unetmm")
        study.tell(trial, 0.0)
    counts = {n: names.count(n) for n in ALL_FAMILIES}
    assert counts["full"] > 0 and counts["none"] > 0  # about 400 / 2 / 16 = 12 each
    assert counts["full"] + counts["none"] < 0.1 * len(names)  # not 50% as with 4 families


def test_conditional_parameters_only_where_they_apply():
    bounds = bounds_for("nafnet-w32", designs=ALL_FAMILIES)
    space = get_space("skip_designs")
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen = {}
    for _ in range(200):
        trial = study.ask()
        family = space.suggest(trial, bounds).skip.name
        seen.setdefault(trial.params["design"], set()).update(trial.params)
        study.tell(trial, 0.0)
    assert seen["full"] == {"design"} and seen["none"] == {"design"}
    assert seen["subset"] == {"design"} | {f"subset.s{s}" for s in range(1, 5)}
    assert {k.split(".")[0] for k in seen["unetmm"]} == {"design", "unetmm"}
    assert family  # (the loop ran)
    # a ratio is suggested exactly for the stages that take part (every one of 2**4 - 1 sets)
    unetmm, parts = get_space("unetmm"), set()
    for _ in range(150):
        trial = study.ask()
        skip = unetmm.suggest(trial, bounds).skip
        part = skip.skip_stages(4)
        ratios = {int(k[len("unetmm.r"):-len("_log2")]) for k in trial.params
                  if k.startswith("unetmm.r")}  # fmt: skip
        assert ratios == set(part), (trial.params, part)
        assert {k for k in trial.params if k.startswith("unetmm.s")} == {
            f"unetmm.s{s}" for s in range(1, 5)}  # fmt: skip
        parts.add(part)
        study.tell(trial, 0.0)
    assert len(parts) == 15
    fixed = bounds_for("nafnet-w32", search_stages=False, iem_depth=(1, 1))
    trial = study.ask()
    get_space("unetmm").suggest(trial, fixed)
    assert not any(k.startswith("unetmm.s") for k in trial.params)
    assert {k for k in trial.params if k.startswith("unetmm.r")} == {
        f"unetmm.r{s}_log2" for s in range(1, 5)}  # every stage takes part


def test_space_builds_nothing(monkeypatch):
    """No nn.Module is constructed while suggesting (Ray calls it in the driver)."""

    def boom(self, *a, **k):
        raise AssertionError("a space built a module")

    bounds = bounds_for("nafnet-w32")
    monkeypatch.setattr(torch.nn.Module, "__init__", boom)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=3))
    for _ in range(50):
        trial = study.ask()
        get_space("skip_designs").suggest(trial, bounds)
        study.tell(trial, 0.0)


@pytest.mark.parametrize("preset", BACKBONE_PRESETS.names())
def test_reference_points_round_trip(preset):
    backbone = backbone_preset(preset)
    bounds = bounds_for(preset)
    refs = reference_points(get_space("skip_designs"), bounds, backbone)
    designs = reference_designs(backbone)
    assert set(refs) == {"full", "none", "unetmm"}
    for name, params in refs.items():
        assert get_space("skip_designs").suggest(FixedTrial(params), bounds).skip == designs[name].skip
    only = reference_points(get_space("unetmm"), bounds, backbone)
    assert only["full"] is None and only["none"] is None and only["unetmm"] is not None


def test_encode_refuses_what_the_space_cannot_express():
    bounds = bounds_for("nafnet-w32", iem_depth=(0, 0))
    space = get_space("skip_designs")
    assert space.encode(UNetMMConfig.paper(4), bounds) is None  # depth 1 outside [0, 0]
    odd = UNetMMConfig(ratios=(0.1, 0.1, 0.1, 0.1), iem_depth=0)
    assert space.encode(odd, bounds) is None  # 0.1 is not a power of two
    assert space.encode(SubsetSkipsConfig(stages=(2,)), bounds) == {
        "design": "subset", "subset.s1": False, "subset.s2": True, "subset.s3": False,
        "subset.s4": False,
    }
    no_full = bounds_for("nafnet-w32", designs=("unetmm", "none"))
    assert space.encode(FullSkipsConfig(), no_full) is None
    with pytest.raises(ConfigError, match=r"space.points\[0\]: .*not a point"):
        encode_point(space, {"name": "unetmm", "ratios": [0.1] * 4}, bounds, "space.points[0]")
    with pytest.raises(ConfigError, match=r"space.points\[1\].*ratios.*needs 4 entries"):
        encode_point(space, {"name": "unetmm", "ratios": [0.5] * 3}, bounds, "space.points[1]")
    user = encode_point(space, {"name": "unetmm", "ratios": [0.125] * 4, "iem_depth": 0},
                        bounds, "space.points[2]")
    assert user["unetmm.r1_log2"] == -3 and user["unetmm.iem_depth"] == 0


@pytest.mark.parametrize(
    ("knobs", "message"),
    [
        ({"ratio_log2": (-4, 1)}, "ratio_log2"),
        ({"aggregated_log2": (9, 4)}, "low 9 > high 4"),
        ({"designs": ()}, "at least one"),
        ({"designs": ("full", "bogus")}, "designs"),
        ({"target_stages": (5,)}, r"target_stages: \[5\] out of range"),
        ({"iem_depth": (-1, 2)}, "iem_depth"),
        ({"shape": 3}, "shape"),
    ],
)
def test_bad_bounds_name_the_field(knobs, message):
    with pytest.raises(ValueError, match=message):
        bounds_for("nafnet-w32", **knobs)
