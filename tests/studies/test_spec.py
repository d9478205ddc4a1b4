"""StudySpec: presets load, bad values give one line naming the field, constraints parse."""

from __future__ import annotations

import pytest

from nas.cost import MIB
from nas.errors import ConfigError
from nas.presets import reference_designs
from studies.constraints import Constraint
from studies.spec import StudySpec, load_spec, parse_spec, preset_names


def test_presets_ship_and_load():
    assert {"quick", "nafnet_sidd"} <= set(preset_names())
    paper = load_spec("nafnet_sidd")
    target = paper.target.backbone_config()
    assert (target.width, paper.target.input_size, paper.target.bits) == (32, (256, 256), 8)
    assert paper.directions == ["maximize", "minimize", "minimize"]
    assert paper.objective_keys == ["psnr", "m_sc_bytes", "macs"]
    m_sc, macs = paper.parsed_constraints
    assert m_sc.value(256 * 32 * 32) == 0.0  # the paper's UNet--: exactly 0.25 MiB, feasible
    assert macs.value(18.5e9) == pytest.approx(0.5)
    quick = load_spec("quick")
    assert quick.needs_training and quick.n_trials == 8 and quick.cpus_per_trial == 1
    assert quick.proxy.backbone_config(quick.target.backbone_config()).width == 16


def test_reference_points_of_a_preset_are_the_papers():
    spec = load_spec("nafnet_sidd")
    refs = spec.reference_params()
    assert set(refs) == {"full", "none", "unetmm"} and None not in refs.values()
    assert refs["unetmm"]["unetmm.agg_log2"] == 8  # 256 aggregated channels
    assert [refs["unetmm"][f"unetmm.r{s}_log2"] for s in range(1, 5)] == [-4, -4, -4, -3]
    assert spec.bounds.stage_channels == reference_designs(spec.target.backbone_config())[
        "full"].backbone.stage_channels  # fmt: skip


def test_yaml_file_and_overrides(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(
        "name: mine\ntarget: {backbone: {name: unet, width: 16, depth: 3}, input_size: [64, 96]}\n"
        "objectives: [m_sc, params]\nconstraints: ['peak_memory <= 2 MiB']\n"
        "space: {points: [{name: unetmm, ratios: [0.25, 0.25, 0.5], aggregated_channels: 64}]}\n"
    )
    spec = load_spec(path)
    assert spec.target.input_size == (64, 96) and spec.target.backbone_config().depth == 3
    assert not spec.needs_training  # cost objectives only: trials are never trained
    assert spec.point_params()[0]["unetmm.r3_log2"] == -1
    more = spec.with_overrides(n_trials=3, seed=7, sampler="nsga2", concurrency=None)
    assert (more.n_trials, more.seed, more.sampler.name, more.concurrency) == (3, 7, "nsga2", 2)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"name": "x", "n_trials": 0}, "n_trials: Input should be greater than or equal to 1"),
        ({"name": "a b"}, "name: 'a b': use letters"),
        ({"name": "x", "target": {"backbone": "resnet"}}, "target.backbone: unknown backbone preset 'resnet'"),
        ({"name": "x", "target": {"backbone": {"name": "nafnet", "width": 0}}}, "target.backbone.width: must be >= 1"),
        ({"name": "x", "target": {"bits": 7}}, "target.bits: 7 is not supported"),
        ({"name": "x", "objectives": ["psnr", "speed"]}, "objectives: unknown ['speed']"),
        ({"name": "x", "constraints": ["m_sc <= 3 G"]}, "constraints[0]: unit 'G' does not fit m_sc"),
        ({"name": "x", "constraints": ["m_sc < 3 MiB"]}, "constraints[0]: 'm_sc < 3 MiB' is not a constraint"),
        ({"name": "x", "sampler": "cmaes"}, "sampler.name: unknown sampler 'cmaes'"),
        ({"name": "x", "sampler": {"name": "nsga2", "population_size": 1}}, "sampler.nsga2: `population_size`"),
        ({"name": "x", "proxy": {"task": {"sigma": -1}}}, "proxy.task.sigma: Input should be greater"),
        ({"name": "x", "early_stopping": {"grace_steps": 300}}, "early_stopping.grace_steps: 300 is not below"),
        ({"name": "x", "space": {"bounds": {"target_stages": [9]}}}, "space.bounds: target_stages: [9] out of range"),
        ({"name": "x", "space": {"name": "nope"}}, "space.name: unknown space 'nope'"),
        ({"name": "x", "space": {"points": [{"name": "unetmm", "ratios": [0.1] * 4}]}}, "space.points[0]:"),
        ({"name": "x", "storage": "study.db"}, "storage: 'study.db' is not a SQLAlchemy URL"),
        ({"name": "x", "n_trails": 3}, "n_trails: unknown field"),
    ],
)
def test_bad_values_name_the_field(data, message):
    with pytest.raises(ConfigError) as info:
        parse_spec(data, "s.yaml")
    text = str(info.value)
    assert text.startswith("s.yaml: ") and message in text and "\n" not in text


def test_unknown_preset_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="no such file and no such preset; presets: .*quick"):
        load_spec("quik")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_spec(bad)
    with pytest.raises(ConfigError, match="cannot be read"):
        load_spec(tmp_path / "missing.yaml")


@pytest.mark.parametrize(
    ("text", "measured", "value"),
    [
        ("m_sc <= 0.25 MiB", 0.5 * MIB, 0.25),  # over by 0.25 MiB: infeasible
        ("m_sc <= 300 KB", 262_144, -37.856),  # 262.144 KB: feasible
        ("macs <= 18 G", 17.06e9, -0.94),
        ("params <= 29.5 M", 29_895_000, 0.395),
        ("psnr >= 28 dB", 26.5, 1.5),  # 1.5 dB short
        ("ssim >= 0.8", 0.9, -0.1),
    ],
)
def test_constraint_values_are_in_the_constraints_unit(text, measured, value):
    c = Constraint.parse(text)
    assert c.value(measured) == pytest.approx(value)
    assert c.is_cost == (c.metric not in ("psnr", "ssim"))


def test_spec_round_trips_through_json():
    spec = load_spec("nafnet_sidd")
    assert StudySpec.model_validate(spec.model_dump(mode="json")) == spec
