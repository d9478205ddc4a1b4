"""Full training as BasicSR/NAFNet users expect: the device, DataLoader workers, the run folder
(``train.log``, ``metrics.csv``, TensorBoard events) and a start from an official NAFNet checkpoint."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from nas import ArchConfig, build_model
from studies.cli import main
from tests.nas.official_nafnet import official_state
from trainers.config import DataConfig, Recipe, TaskConfig, TrainConfig, load_train_config
from trainers.loader import effective_workers, step_batches
from trainers.run_log import COLUMNS
from trainers.tasks import TASKS
from trainers.train import checkpoints, train


def _config(arch: ArchConfig, out: Path, **recipe: object) -> TrainConfig:
    r: dict[str, object] = {"iterations": 10, "batch": 4, "crop": 32, "val_crop": 64,
                            "checkpoint_every": 5, "keep_checkpoints": 5, "eval_every": 5,
                            "log_every": 2, "threads": 1, "lr": 2e-3, "workers": 0}  # fmt: skip
    r.update(recipe)
    return TrainConfig(arch=arch, recipe=Recipe(**r), out_dir=str(out))


def _rows(run: Path) -> list[dict[str, str]]:
    with (run / "metrics.csv").open(newline="") as fh:
        return list(csv.DictReader(fh))


def _scalars(run: Path, tag: str) -> list[tuple[int, float]]:
    acc = EventAccumulator(str(run))
    acc.Reload()
    return [(e.step, e.value) for e in acc.Scalars(tag)]


def _same_curve(got: list[tuple[int, float]], expected: list[tuple[int, float]]) -> bool:
    return [s for s, _ in got] == [s for s, _ in expected] and [v for _, v in got] == (
        pytest.approx([v for _, v in expected], rel=1e-6))


def test_device_defaults_to_auto_and_cuda_without_a_gpu_is_refused_first(
    tmp_path: Path, tiny_arch: ArchConfig, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    assert Recipe().device == "auto" and "device: auto" in TrainConfig(arch=tiny_arch).to_yaml()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # the same on a GPU machine
    path = tmp_path / "c.yaml"
    path.write_text(_config(tiny_arch, tmp_path / "run", iterations=2).model_copy(
        update={"recipe": Recipe(iterations=2, batch=2, crop=16, val_crop=32, threads=1)}
    ).to_yaml())  # fmt: skip
    assert main(["train", str(path), "--quiet", "--workers", "0"]) == 0
    assert "device cpu (recipe.device auto)" in (tmp_path / "run" / "train.log").read_text()
    assert load_train_config(tmp_path / "run" / "config.yaml").recipe.device == "auto"
    capsys.readouterr()
    for args, field in ((["--device", "cuda"], "--device"), ([], "recipe.device")):
        if not args:
            path.write_text(path.read_text().replace("device: auto", "device: cuda"))
        assert main(["train", str(path), "--out", str(tmp_path / "gpu"), *args]) == 2
        assert capsys.readouterr().err.splitlines() == [
            f"error: {field}: cuda is not available on this machine; use cpu"]  # fmt: skip
        assert not (tmp_path / "gpu").exists()  # before any work


@pytest.mark.parametrize("task", ["denoise", "matting"])
def test_loader_gives_the_same_batches_with_0_and_2_workers(task: str) -> None:
    stream = TASKS.get(task).stream(DataConfig(), TaskConfig(name=task), 32, 3, 7)
    assert effective_workers(2) == 2  # Linux: forked workers really run
    in_process = list(step_batches(stream, 4, 10, workers=0))
    with_workers = list(step_batches(stream, 4, 10, workers=2))
    assert len(in_process) == len(with_workers) == 6
    for k, ((a, b), (c, d)) in enumerate(zip(in_process, with_workers)):
        assert torch.equal(a, c) and torch.equal(b, d)
        e, f = stream.batch_at(4 + k)
        assert torch.equal(a, e) and torch.equal(b, f)
    assert not torch.equal(in_process[0][1], in_process[1][1])  # real, different batches
    assert in_process[0][0].shape[0] == 3 and in_process[0][0].std() > 0.05


def test_training_with_workers_is_the_run_without_them(tmp_path: Path,
                                                        tiny_arch: ArchConfig) -> None:  # fmt: skip
    none = train(_config(tiny_arch, tmp_path / "w0", iterations=6, workers=0), progress=False)
    two = train(_config(tiny_arch, tmp_path / "w2", iterations=6, workers=2), progress=False)
    assert none.losses == two.losses and none.psnr == two.psnr
    assert "2 data worker(s)" in (tmp_path / "w2" / "train.log").read_text()


def test_run_folder_logs_csv_and_tensorboard_and_a_resume_reads_as_one_run(
    tmp_path: Path, tiny_arch: ArchConfig
) -> None:
    run = tmp_path / "run"
    config = _config(tiny_arch, run)
    first = train(config, progress=False)
    rows = _rows(run)
    assert tuple(rows[0]) == COLUMNS
    assert [int(r["step"]) for r in rows] == [2, 4, 5, 6, 8, 10]  # log_every 2, eval_every 5
    by_step = {int(r["step"]): r for r in rows}
    assert float(by_step[4]["loss"]) == pytest.approx(sum(first.losses[2:4]) / 2, rel=1e-5)
    assert float(by_step[5]["loss"]) == pytest.approx(sum(first.losses[3:5]) / 2, rel=1e-5)
    assert _same_curve([(s, float(by_step[s]["val_psnr_db"])) for s in (5, 10)], first.curve)
    assert float(by_step[10]["val_ssim"]) == pytest.approx(first.ssim, rel=1e-5)
    assert by_step[4]["val_psnr_db"] == by_step[4]["val_ssim"] == ""
    # the lr the step used: cosine from 2e-3 to 1e-7 over 10 steps, step 2 runs at index 1
    cosine = 1e-7 + (2e-3 - 1e-7) * (1 + math.cos(math.pi * 1 / 10)) / 2
    assert float(by_step[2]["lr"]) == pytest.approx(cosine, rel=1e-5)
    seconds = [float(r["seconds"]) for r in rows]
    assert seconds == sorted(seconds) and seconds[-1] <= first.seconds + 1e-6
    # TensorBoard holds the same numbers
    losses = _scalars(run, "train/loss")
    assert [s for s, _ in losses] == [2, 4, 5, 6, 8, 10]
    assert [v for _, v in losses] == pytest.approx([float(r["loss"]) for r in rows], rel=1e-5)
    assert _same_curve(_scalars(run, "val/psnr"), first.curve)
    assert _scalars(run, "val/ssim")[-1][1] == pytest.approx(first.ssim, rel=1e-6)
    assert _scalars(run, "train/lr")[0][1] == pytest.approx(cosine, rel=1e-5)
    log = (run / "train.log").read_text()
    assert "step 10/10  loss" in log and "| val psnr" in log and "done: step 10, psnr" in log

    # killed after step 10 was logged but before its checkpoint: the resume redoes steps 6-10
    (run / "ckpt_00000010.pt").unlink()
    (run / "result.json").unlink()
    again = train(config, progress=False)
    assert again.resumed_from == 5 and again.losses == first.losses
    assert [int(r["step"]) for r in _rows(run)] == [2, 4, 5, 6, 8, 10]  # no step twice
    assert [r["loss"] for r in _rows(run)] == [r["loss"] for r in rows]  # exact resume
    assert [s for s, _ in _scalars(run, "train/loss")] == [2, 4, 5, 6, 8, 10]  # purged
    assert _same_curve(_scalars(run, "val/psnr"), first.curve)
    log = (run / "train.log").read_text()
    assert "resumed from step 5" in log
    assert log.count("done: step 10") == 2  # appended, the first run's lines kept

    # a fresh start (--no-resume) starts the logs over
    train(config.model_copy(update={"recipe": config.recipe.model_copy(
        update={"iterations": 4})}), resume=False, progress=False)  # fmt: skip
    assert [int(r["step"]) for r in _rows(run)] == [2, 4]
    assert [s for s, _ in _scalars(run, "train/loss")] == [2, 4]
    assert "resumed" not in (run / "train.log").read_text()


def test_init_warm_starts_a_unetmm_model_from_an_official_nafnet_checkpoint(
    tmp_path: Path, tiny_unetmm: ArchConfig, capsys: pytest.CaptureFixture[str]
) -> None:
    state = official_state(tiny_unetmm.backbone, seed=4)
    ckpt = tmp_path / "NAFNet-tiny.pth"
    torch.save({"params": state}, ckpt)
    path = tmp_path / "c.yaml"
    path.write_text(_config(tiny_unetmm, tmp_path / "run", iterations=1, lr=1e-12,
                            lr_min=0.0).to_yaml())  # fmt: skip
    assert main(["train", str(path), "--init", str(ckpt), "--quiet"]) == 0
    out = capsys.readouterr().out
    torch.manual_seed(0)  # recipe.seed: the skips' initialisation the run had
    fresh = build_model(tiny_unetmm).state_dict()
    n_skip = sum(k.startswith("skip.") for k in fresh)
    assert (f"init {ckpt}: loaded {len(state)} tensors (backbone: {len(state)}) of an official "
            f"NAFNet checkpoint; {n_skip} new (skip: {n_skip})") in out  # fmt: skip
    trained = torch.load(tmp_path / "run" / "model.pt", weights_only=True)["model"]
    for key, value in state.items():  # one step at lr 1e-12: the loaded values
        ours = tiny_unetmm.backbone.official_to_ours(key)
        torch.testing.assert_close(trained[ours], value, atol=1e-6, rtol=0)
    for key in (k for k in fresh if k.startswith("skip.")):
        torch.testing.assert_close(trained[key], fresh[key], atol=1e-6, rtol=0)
    log = (tmp_path / "run" / "train.log").read_text()
    assert "init: new (as initialised): skip." in log
    assert load_train_config(tmp_path / "run" / "config.yaml").init == str(ckpt)
    # a resume continues from its checkpoint: the init file is not read again
    ckpt.unlink()
    assert main(["train", str(path), "--init", str(ckpt), "--steps", "2", "--out",
                 str(tmp_path / "run2"), "--quiet"]) == 2  # fmt: skip
    assert capsys.readouterr().err.strip() == f"error: init: no checkpoint file '{ckpt}'"
    assert not (tmp_path / "run2").exists()
    assert checkpoints(tmp_path / "run") and main(
        ["train", str(path), "--init", str(ckpt), "--quiet"]) == 0  # fmt: skip
    wide = official_state(tiny_unetmm.backbone.replace(width=16))
    torch.save({"params": wide}, tmp_path / "wide.pth")
    assert main(["train", str(path), "--init", str(tmp_path / "wide.pth"), "--out",
                 str(tmp_path / "run3"), "--quiet"]) == 2  # fmt: skip
    assert capsys.readouterr().err.strip() == (
        "error: init: the checkpoint's NAFNet has width 16, the model's backbone.width is 8")
