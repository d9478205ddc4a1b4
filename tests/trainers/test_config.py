"""trainers.config: defaults, YAML round trip, one-line errors naming the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from nas import ArchConfig
from nas.errors import ConfigError
from trainers.config import (
    DataConfig,
    ProxyBudget,
    Recipe,
    TaskConfig,
    TrainConfig,
    load_train_config,
)


def test_recipe_defaults_are_the_papers_sidd_recipe() -> None:
    r = Recipe()
    assert (r.optimizer, r.betas, r.weight_decay) == ("adam", (0.9, 0.9), 0.0)
    assert (r.lr, r.lr_min, r.schedule) == (1e-3, 1e-7, "cosine")
    assert (r.iterations, r.batch, r.crop) == (200_000, 32, 256)


def test_train_config_yaml_round_trip(tmp_path: Path, tiny_unetmm: ArchConfig) -> None:
    config = TrainConfig(
        arch=tiny_unetmm,
        task=TaskConfig(name="deblur", blur="motion", motion_length=7),
        data=DataConfig(val_limit=2),
        recipe=Recipe(iterations=10, batch=2),
        out_dir=str(tmp_path / "run"),
    )
    path = tmp_path / "c.yaml"
    path.write_text(config.to_yaml())
    back = load_train_config(path)
    assert back == config and hash(back) == hash(config)
    assert isinstance(back.arch, ArchConfig) and back.arch.key() == tiny_unetmm.key()
    # the arch section is the mapping nas reads (what `unetmm export` writes)
    assert ArchConfig.from_dict(config.model_dump(mode="json")["arch"]) == tiny_unetmm


def test_budget_scaled_multiplies_steps_and_eval_interval() -> None:
    b = ProxyBudget(steps=300, eval_every=100).scaled(4)
    assert (b.steps, b.eval_every, b.crop) == (1200, 400, ProxyBudget().crop)


ARCH = "arch: {backbone: {name: nafnet, width: 8, enc_blk_nums: [1], dec_blk_nums: [1]}}\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (ARCH + "recipe: {lr: -1}", "recipe.lr: Input should be greater than 0"),
        (ARCH + "recipe: {lrr: 1}", "recipe.lrr: unknown field"),
        (ARCH + "recipe: {lr_min: 0.1}", "recipe.lr_min: 0.1 is above lr 0.001"),
        (ARCH + "recipe: {betas: [1.5, 0.9]}", "recipe.betas: each beta must be in [0, 1)"),
        (ARCH + "recipe: {device: gpu}", "recipe.device: Input should be 'auto', 'cpu' or 'cuda'"),
        (ARCH + "task: {name: inpaint}", "task.name: unknown task 'inpaint'; choose one of ['denoise', 'deblur', 'sr', 'matting']"),
        (ARCH + "task: {name: sr, scale: 3}", "task.scale: Input should be 2 or 4"),
        (ARCH + "task: {kernel_size: 8}", "task.kernel_size: must be odd"),
        (ARCH + "task: {kernel_size: 5, motion_length: 9}", "task.motion_length: 9 does not fit"),
        (ARCH + "data: {paired: true}", "data.paired: true needs folders"),
        (ARCH + "data: {val_limit: 0}", "data.val_limit: Input should be greater than or equal"),
        (ARCH + "data: {input_pattern: NOISY, target_pattern: GT}",
         "data.input_pattern: pairs files by name; it needs paired: true"),
        (ARCH + "data: {train: t, val: v, paired: true, input_pattern: NOISY}",
         "data.target_pattern: set input_pattern and target_pattern together"),
        (ARCH + "data: {train: t, val: v, paired: true, input_pattern: GT, target_pattern: GT}",
         "data.target_pattern: must differ from input_pattern"),
        ("arch: {backbone: {name: nafnet, width: 0}}", "arch.backbone.width: must be >= 1"),
        ("arch: {backbone: {name: resnet}}", "arch: unknown backbone 'resnet'"),
        ("task: {name: denoise}", "arch: missing"),
        ("[1, 2]", "expected a mapping"),
        ("arch: {backbone: [", "is not valid YAML"),
    ],
)
def test_bad_configs_raise_one_line_errors(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_train_config(path)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_missing_config_file_names_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot be read"):
        load_train_config(tmp_path / "nope.yaml")
