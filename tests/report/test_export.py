"""``unetmm export``: picks by rule under a budget, writes configs ``unetmm train`` and
``nas.load_config`` read, model cards, and a one-line error when nothing fits."""

from __future__ import annotations

import dataclasses
import json

import optuna
import pytest
import torch
import yaml

import nas
from nas.errors import ConfigError
from studies.cli import main
from studies.results import export, pareto
from trainers.config import DataConfig, load_train_config


def _eligible_by_design(built_study) -> list[pareto.TrialPoint]:
    study = optuna.load_study(study_name=built_study.name, storage=built_study.url)
    points = [p for p in pareto.load_points(study) if p.eligible(("psnr", "m_sc", "macs"))]
    best: dict[str, pareto.TrialPoint] = {}
    for p in sorted(points, key=lambda p: (-p.value("psnr"), p.number)):
        best.setdefault(json.dumps(p.attrs["arch"], sort_keys=True), p)
    return list(best.values())


def _points(built_study) -> list[pareto.TrialPoint]:
    return pareto.load_points(
        optuna.load_study(study_name=built_study.name, storage=built_study.url)
    )


def test_best_rule_takes_the_highest_psnr_under_the_budget(built_study) -> None:
    budget = 20 * 1024
    expected = sorted(
        (p for p in _eligible_by_design(built_study) if p.value("m_sc") <= budget),
        key=lambda p: (-p.value("psnr"), p.value("m_sc"), p.number),
    )
    picks = export.pick_trials(_points(built_study), {"m_sc": budget}, "best", top=3)
    assert [pk.point.number for pk in picks] == [p.number for p in expected[:3]]
    assert len({json.dumps(pk.point.attrs["arch"]) for pk in picks}) == 3  # distinct designs
    # Stopped trials score higher and fit the budget, but never get picked.
    stopped = [
        p for p in _points(built_study) if p.status == "stopped" and p.value("m_sc") <= budget
    ]
    assert stopped and max(p.value("psnr") for p in stopped) > picks[0].point.value("psnr")


def test_knee_rule_follows_the_knee_ranking(built_study) -> None:
    pool = [p for p in _eligible_by_design(built_study)]
    ranking = pareto.knee_ranking(pool, "m_sc", "psnr")
    picks = export.pick_trials(_points(built_study), {}, "knee", top=2)
    assert [(pk.point.number, pk.knee_score) for pk in picks] == [
        (p.number, s) for p, s in ranking[:2]
    ]
    assert picks[0].knee_score > 0
    # The knee is a front point: nothing eligible has both more PSNR and less M_sc.
    knee = picks[0].point
    assert not any(
        p.value("psnr") > knee.value("psnr") and p.value("m_sc") < knee.value("m_sc") for p in pool
    )


def test_no_match_is_one_line_naming_the_closest_trial(built_study, tmp_path, capsys) -> None:
    closest = min(
        _eligible_by_design(built_study), key=lambda p: (p.value("m_sc"), -p.value("psnr"))
    )
    rc = main(
        [
            "export",
            str(built_study.path),
            "--study",
            built_study.name,
            "--max-m-sc",
            "1KiB",
            "--out",
            str(tmp_path),
        ]
    )
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1
    assert err.startswith(
        "error: no complete, feasible trial of study 'report-test' has M_sc <= 1 KiB"
    )
    assert f"the closest is trial {closest.number} ({closest.design}: M_sc " in err
    assert not list(tmp_path.iterdir())
    for bad in (["--max-m-sc", "0.25M"], ["--rule", "top"], ["--top", "0"]):
        assert main(["export", str(built_study.path), *bad, "--out", str(tmp_path)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert [line.split(":")[1].strip() for line in lines] == [
        "--max-m-sc",
        "unknown export rule 'top'; choose one of",
        "--top",
    ]


def test_exported_config_is_a_train_config_and_builds(built_study, tmp_path, capsys) -> None:
    rc = main(
        [
            "export",
            str(built_study.path),
            "--max-m-sc",
            "0.03125MiB",
            "--rule",
            "best",
            "--out",
            str(tmp_path),
        ]
    )
    assert rc == 0
    pick = export.pick_trials(_points(built_study), {"m_sc": 32 * 1024}, "best")[0].point
    stem = f"{built_study.name}-trial{pick.number}"
    assert f"#1 trial {pick.number} ({pick.design})" in capsys.readouterr().out
    config = load_train_config(tmp_path / f"{stem}.yaml")
    assert config.arch == nas.ArchConfig.from_dict(pick.attrs["arch"])
    recipe = config.recipe  # the paper's SIDD recipe
    assert (recipe.optimizer, recipe.betas, recipe.weight_decay) == ("adam", (0.9, 0.9), 0.0)
    assert (recipe.lr, recipe.lr_min, recipe.schedule) == (1e-3, 1e-7, "cosine")
    assert (recipe.iterations, recipe.batch, recipe.crop) == (200_000, 32, 256)
    assert recipe.device == "auto"  # a GPU where there is one: never a CPU-only recipe
    assert config.out_dir == f"runs/{stem}"
    # The study's task and data (its stored spec), less what only sized the proxy run: the
    # study validated on 1 image with a 64 MB cache; full training uses every image.
    assert (config.task.name, config.task.sigma) == ("denoise", 30.0)
    study = optuna.load_study(study_name=built_study.name, storage=built_study.url)
    assert study.user_attrs["spec"]["proxy"]["data"] == {"val_limit": 1, "cache_mb": 64}
    assert config.data == DataConfig()
    raw = yaml.safe_load((tmp_path / f"{stem}.yaml").read_text())
    assert next(iter(raw)) == "arch"
    assert raw["data"]["val_limit"] is None and raw["data"]["cache_mb"] == DataConfig().cache_mb
    # nas reads the same file, and the model runs with the measured parameter count.
    arch = nas.load_config(tmp_path / f"{stem}.yaml")
    model = nas.build_model(arch)
    assert sum(p.numel() for p in model.parameters()) == pick.attrs["params"]
    with torch.no_grad():
        assert model(torch.rand(1, 3, 32, 48)).shape == (1, 3, 32, 48)
    card = (tmp_path / f"{stem}.md").read_text()
    assert f"Trial **{pick.number}** of study `{built_study.name}`" in card
    assert (
        f"{pick.attrs['m_sc_bytes']:,} bytes" in card and f"{pick.attrs['macs_fvcore']:,}" in card
    )
    assert f"PSNR: {pick.attrs['psnr_db']:.3f} dB" in card
    assert f"unetmm train {stem}.yaml" in card
    assert main(["export", str(built_study.path), "--max-m-sc", "0.03125MiB", "--device", "cuda",
                 "--out", str(tmp_path / "gpu")]) == 0  # fmt: skip
    assert load_train_config(tmp_path / "gpu" / f"{stem}.yaml").recipe.device == "cuda"


def test_nothing_eligible_names_the_closest_costed_trial_and_why(built_study) -> None:
    """A study where every finished trial is stopped or infeasible: the error still names the
    trial nearest the budget, its costs, and what keeps it out."""
    ineligible = [p for p in _points(built_study) if not p.eligible(("psnr", "m_sc", "macs"))]
    # Under 1 KiB only no skips (M_sc 0) fits; it trained but breaks the PSNR floor.
    with pytest.raises(ConfigError) as info:
        export.pick_trials(ineligible, {"m_sc": 1024}, "best", study_name="study 's'")
    none = next(p for p in ineligible if p.reference == "none")
    message = str(info.value)
    assert "\n" not in message and message.startswith(
        f"study 's' has no complete, feasible trial to export yet ({len(ineligible)} trials, "
    )
    assert (
        f"the closest to M_sc <= 1 KiB is trial {none.number} ({none.design}: M_sc 0 B, MACs "
        in message
    )
    assert f"PSNR {none.value('psnr'):.2f} dB), not eligible: breaks 'psnr >= 22 dB';" in message
    # Under 40 KiB the stopped trials fit too and score best (partial scores): the best of them.
    with pytest.raises(ConfigError) as info:
        export.pick_trials(ineligible, {"m_sc": 40 * 1024}, "knee")
    stopped = [p for p in ineligible if p.status == "stopped" and p.value("m_sc") <= 40 * 1024]
    best = max(stopped, key=lambda p: (p.value("psnr"), -p.number))
    assert f"is trial {best.number} ({best.design}: M_sc " in str(info.value)
    assert "not eligible: stopped early by the scheduler (partial score)" in str(info.value)
    # Nothing fits 1 KiB but full skips: it is named with the constraint it breaks.
    full = next(p for p in ineligible if p.reference == "full")
    with pytest.raises(ConfigError) as info:
        export.pick_trials([full], {"m_sc": 1024}, "best")
    assert f"is trial {full.number} (full skips: full: M_sc 120 KiB, MACs " in str(info.value)
    assert "not eligible: breaks 'm_sc <= 40 KiB'" in str(info.value)


def test_trials_without_an_arch_are_skipped(built_study) -> None:
    """Trials that lack ``arch`` (another tool's, an old version's) are not one design."""
    points = _points(built_study)
    first, second = (pk.point for pk in export.pick_trials(points, {}, "best", top=2))
    stripped = {
        p.number: dataclasses.replace(p, attrs={k: v for k, v in p.attrs.items() if k != "arch"})
        for p in points
        if p.number != second.number
    }
    mixed = [stripped.get(p.number, p) for p in points]
    picks = export.pick_trials(mixed, {}, "best", top=3)
    assert [pk.point.number for pk in picks] == [second.number]
    with pytest.raises(ConfigError, match="has no complete, feasible trial to export yet"):
        export.pick_trials(list(stripped.values()), {}, "best")
    assert first.number in stripped
