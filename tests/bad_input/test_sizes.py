"""Sizes that cannot fit: a training run whose lower bound of memory (``nas.cost.fits``) is
over what this machine has is refused before any run folder or trial, naming the size, what it
needs and what there is; a tiling whose tile does not suit the input is refused too."""

from __future__ import annotations

import pytest

from nas import model_config, save_config


@pytest.fixture
def config(tmp_path_factory):
    folder = tmp_path_factory.mktemp("configs")
    path = folder / "train.yaml"
    arch = model_config("nafnet-w16-full")
    import yaml

    path.write_text(yaml.safe_dump({"arch": arch.to_dict(), "out_dir": "runs/x"}))
    save_config(arch, folder / "arch.yaml")
    return path


@pytest.mark.parametrize(("flags", "needle"), [
    (["--crop", "30000", "--batch", "2"], "on batch 2 of 30000x30000 crops needs at least"),
    (["--crop", "64", "--batch", "200000"], "on batch 200000 of 64x64 crops needs at least"),
    (["--crop", "20000", "--batch", "1"], "of 20000x20000 crops needs at least"),
])  # fmt: skip
def test_train_refuses_a_run_that_cannot_fit(refused, config, flags, needle) -> None:
    line = refused(["train", config, "--steps", "2", *flags], needle)
    assert "available; lower the batch or the crop" in line


@pytest.mark.parametrize(("budget", "needle"), [
    ({"crop": 30000, "batch": 2}, "proxy.budget.batch/crop: a proxy trial (full skips) on batch 2"),
    ({"crop": 64, "batch": 300000}, "proxy.budget.batch/crop: a proxy trial (full skips) on batch 300000"),
])  # fmt: skip
def test_search_refuses_a_proxy_that_cannot_fit(refused, spec_file, budget, needle) -> None:
    spec = spec_file(objectives=["psnr", "m_sc"], proxy={"budget": budget})
    refused(["search", spec, "s.db"], needle)


@pytest.mark.parametrize(("tiling", "needle"), [
    ({"tile": 24, "split": 4}, "target.tiling.tile: 24 is not a multiple of 16"),
    ({"tile": 128}, "target.tiling.tile: 128 is larger than the input (64x64 after padding)"),
    ({"tile": 0}, "target.tiling.tile: Input should be greater than or equal to 1"),
    ({"tile": 64, "split": 7}, "target.tiling.split: must be a stage 1..4"),
    ({"tile": 64, "split": "deep"}, "target.tiling.split"),
    ({"tile": 64, "extra": 1}, "target.tiling.extra"),
])  # fmt: skip
def test_a_tiling_the_target_cannot_run_is_refused(refused, spec_file, tiling, needle) -> None:
    refused(["search", spec_file(target={"input_size": 64, "tiling": tiling}), "s.db"], needle)


@pytest.mark.parametrize(("size", "needle"), [
    (0, "target.input_size: sizes must be >= 1"),
    (-5, "target.input_size: sizes must be >= 1"),
    ([64], "target.input_size"),
    ("big", "target.input_size"),
])  # fmt: skip
def test_bad_input_sizes(refused, spec_file, size, needle) -> None:
    refused(["search", spec_file(target={"input_size": size}), "s.db"], needle)
