"""The task presets (matting, deblurring, super-resolution) run end to end with a tiny budget:
a real search on local Ray into a SQLite file, the shipped YAML with only the budget shrunk."""

from __future__ import annotations

import math

import optuna
import pytest
from optuna.trial import TrialState

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
    ],
)
def test_task_preset_runs_end_to_end(preset: str, backbone: str, task: str, tmp_path,
                                     local_ray) -> None:  # fmt: skip
    data = load_spec(preset).model_dump(mode="json")
    assert data["target"]["backbone"] and data["proxy"]["task"]["name"] == task
    data["proxy"]["budget"].update(TINY_BUDGET)
    data["proxy"]["data"]["val_limit"] = 2
    data.update(n_trials=2, concurrency=1, early_stopping={"enabled": False})
    spec = parse_spec(data, preset)
    url = f"sqlite:///{tmp_path / 'study.db'}"
    result = run_search(spec, url)
    assert result.trials_after == 2 and result.statuses == {"complete": 2}
    trials = optuna.load_study(study_name=preset, storage=url).get_trials()
    full, none = trials
    assert [t.user_attrs["reference"] for t in trials] == ["full", "none"]
    for t in trials:
        a = t.user_attrs
        assert t.state == TrialState.COMPLETE and a["arch"]["backbone"]["name"] == backbone
        assert a["steps"] == 4 and math.isfinite(a["psnr"]) and math.isfinite(a["input_psnr"])
    assert full.user_attrs["m_sc_bytes"] > 0 and none.user_attrs["m_sc_bytes"] == 0


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
