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
    assert paper.objective_keys == ["psnr_db", "m_sc_bytes", "macs_fvcore"]
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
        ({"name": "x", "proxy": {"budget": {"steps": 200, "eval_every": 200}}}, "early_stopping.grace_steps: no validation (every proxy.budget.eval_every = 200 steps) falls in [100, 200), so ASHA would judge final scores; lower proxy.budget.eval_every"),
        ({"name": "x", "proxy": {"budget": {"steps": 300, "eval_every": 80}}, "early_stopping": {"grace_steps": 250}}, "falls in [250, 300), so ASHA would judge final scores; lower it to 240 or less"),
        ({"name": "x", "constraints": ["params <= 29.5 M", "params<=29.5M"]}, "constraints[1]: 'params<=29.5M' is constraints[0] again ('params <= 29.5 M'); remove one"),
        ({"name": "x", "constraints": ["params <= 29.5 M", "params <= 29500001"]}, "constraints[1]: params is limited by constraints[0] already ('params <= 29.5 M'); keep the one you mean"),
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


def test_constraint_names_are_exact_and_read_back_by_the_report():
    limits = {"params <= 29159715": 29_159_715, "params <= 29159716": 29_159_716,
              "m_sc <= 0.25 MiB": 2**18, "macs <= 18.000000001 G": 18_000_000_001,
              "psnr >= 28.125 dB": 28.125, "ssim >= 0.8": 0.8}  # fmt: skip
    names = [Constraint.parse(text).name for text in limits]
    assert names == list(limits)  # each limit written exactly, as the user wrote it
    for name, limit in zip(names, limits.values()):
        assert Constraint.read_back(name, []).limit_in_key_unit == limit
    spec = parse_spec({"name": "x", "constraints": list(limits)[2:]}, "")
    assert [c.name for c in spec.parsed_constraints] == list(limits)[2:]  # all kept
    with pytest.raises(ConfigError, match=r"constraints\[1\]: params is limited by "
                                          r"constraints\[0\] already"):  # fmt: skip
        parse_spec({"name": "x", "constraints": list(limits)[:2]}, "")


def test_asha_never_judges_a_final_validation():
    """Budget 130 steps, a validation every 50, grace 30, factor 2: rungs used to be 30, 60,
    120 (below step 130), so the final score at 130 was judged at rung 120 and could be
    stopped. Rungs now stop at the last validation before the final one (100)."""
    from ray.tune.experiment import Trial
    from ray.tune.schedulers import TrialScheduler

    from studies.search.early_stopping import make_trial_scheduler

    spec = parse_spec({"name": "x", "proxy": {"budget": {"steps": 130, "eval_every": 50}},
                       "early_stopping": {"rule": "asha", "grace_steps": 30,
                                          "reduction_factor": 2}}, "")  # fmt: skip
    assert spec.last_rung_step == 100
    asha = make_trial_scheduler(spec)
    strong, weak = Trial("x", config={}, stub=True), Trial("x", config={}, stub=True)
    for trial in (strong, weak):
        asha.on_trial_add(None, trial)
    decisions = {}
    for trial, scores in ((strong, (20.0, 21.0, 25.0)), (weak, (22.0, 23.0, 10.0))):
        for step, psnr in zip((50, 100, 130), scores):
            result = {"step": step, "val_psnr": psnr}
            decisions[trial.trial_id, step] = asha.on_trial_result(None, trial, result)
    assert set(decisions.values()) == {TrialScheduler.CONTINUE}  # 10 dB at the end: not stopped
    late = Trial("x", config={}, stub=True)
    asha.on_trial_add(None, late)
    assert asha.on_trial_result(None, late, {"step": 50, "val_psnr": 5.0}) == TrialScheduler.STOP


def test_spec_round_trips_through_json():
    spec = load_spec("nafnet_sidd")
    assert StudySpec.model_validate(spec.model_dump(mode="json")) == spec
