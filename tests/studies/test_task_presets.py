"""The task presets (matting, deblurring, super-resolution) and the KBNet preset run end to end
with a tiny budget: a real search on local Ray into a SQLite file, the shipped YAML with only the
budget shrunk."""

from __future__ import annotations

import math

import optuna
import pytest
from optuna.trial import TrialState

from nas.errors import ConfigError
from studies.artifacts import trial_data
from studies.search.driver import run_search
from studies.spec import load_spec, parse_spec

TINY_BUDGET = {"steps": 4, "eval_every": 2, "batch": 2, "crop": 32, "val_crop": 48}


@pytest.mark.slow
@pytest.mark.parametrize(
    ("preset", "backbone", "task"),
    [
        ("matting_mscan", "mscan", "matting"),
        ("deblur_gopro", "nafnet", "deblur"),
        ("sr_x2", "nafnet", "sr"),
        ("sr_x4", "nafnet", "sr"),
        ("kbnet_sidd", "kbnet", "denoise"),
    ],
)
def test_task_preset_runs_end_to_end(preset: str, backbone: str, task: str, tmp_path,
                                     local_ray) -> None:  # fmt: skip
    data = load_spec(preset).model_dump(mode="json")
    assert data["target"]["backbone"] and data["proxy"]["task"]["name"] == task
    data["proxy"]["budget"].update(TINY_BUDGET)
    data["proxy"]["data"]["val_limit"] = 2
    data.update(n_trials=2, concurrency=1, early_stopping={"enabled": False})
    data["constraints"] = []  # both references train (kbnet_sidd's M_sc bound rules out full)
    if task == "matting":  # matting's own scores as objectives
        data["objectives"] = ["sad", "mse", "m_sc"]
    spec = parse_spec(data, preset)
    url = f"sqlite:///{tmp_path / 'study.db'}"
    result = run_search(spec, url)
    assert result.trials_after == 2 and result.statuses == {"complete": 2}
    trials = optuna.load_study(study_name=preset, storage=url).get_trials()
    full, none = trials
    assert [t.user_attrs["reference"] for t in trials] == ["full", "none"]
    study = optuna.load_study(study_name=preset, storage=url)
    for t in trials:
        a = trial_data(study, t)  # user attributes and artifacts (the arch)
        assert t.state == TrialState.COMPLETE and a["arch"]["backbone"]["name"] == backbone
        assert a["steps"] == 4 and math.isfinite(a["psnr_db"]) and math.isfinite(a["input_psnr_db"])
    assert full.user_attrs["m_sc_bytes"] > 0 and none.user_attrs["m_sc_bytes"] == 0
    if task == "matting":
        assert study.metric_names == ["alpha SAD (thousands)", "alpha MSE", "skip memory M_sc [bytes]"]
        for t in trials:
            sad, mse = t.user_attrs["sad_thousands"], t.user_attrs["mse"]
            assert t.values[:2] == [sad, mse] and sad > 0 and 0 < mse < 1
    else:
        assert "sad_thousands" not in full.user_attrs


def test_matting_scores_are_objectives_of_matting_studies_only() -> None:
    data = load_spec("matting_mscan").model_dump(mode="json") | {"objectives": ["sad", "m_sc"]}
    assert parse_spec(data, "").objective_keys == ["sad_thousands", "m_sc_bytes"]
    data = load_spec("nafnet_sidd").model_dump(mode="json")
    with pytest.raises(ConfigError, match=r"objectives: sad is measured by the matting task "
                                          r"only; this study's proxy.task.name is 'denoise'"):
        parse_spec(data | {"objectives": ["psnr", "sad"]}, "")
    with pytest.raises(ConfigError, match=r"constraints\[1\]: mse is measured by the matting"):
        parse_spec(data | {"constraints": ["m_sc <= 1 MiB", "mse <= 0.01"]}, "")


@pytest.mark.parametrize("preset", ["matting_mscan", "deblur_gopro", "sr_x2", "sr_x4"])
def test_task_preset_proxy_fits_its_task(preset: str) -> None:
    """Cheap: the preset validates and its proxy model has the channels its task needs."""
    from nas import ArchConfig, FullSkipsConfig, build_model
    from trainers.tasks import TASKS

    spec = load_spec(preset)
    proxy = spec.proxy.backbone_config(spec.target.backbone_config())
    check = TASKS.get(spec.proxy.task.name).check_model
    check(proxy, spec.proxy.task.name)  # the config states its channels ...
    check(build_model(ArchConfig(proxy, FullSkipsConfig())).backbone, spec.proxy.task.name)
