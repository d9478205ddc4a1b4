"""trainers.train and ``unetmm train``: checkpoints, resume after a real kill, result files."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from nas import ArchConfig
from nas.errors import ConfigError
from studies.cli import main
from trainers.config import DataConfig, Recipe, TrainConfig, load_train_config
from trainers.train import checkpoints, train

ROOT = Path(__file__).resolve().parents[2]


def _config(arch: ArchConfig, out: Path, iterations: int = 100, **recipe: object) -> TrainConfig:
    r = dict(iterations=iterations, batch=4, crop=32, val_crop=64, checkpoint_every=10,
             eval_every=25, log_every=5, threads=1, lr=2e-3)  # fmt: skip
    r.update(recipe)
    return TrainConfig(arch=arch, recipe=Recipe(**r), out_dir=str(out))


@pytest.mark.slow  # a subprocess start (torch import) and ~200 tiny steps: 10-45 s by load
def test_resume_after_kill_reproduces_the_uninterrupted_run(
    tmp_path: Path, tiny_unetmm: ArchConfig
) -> None:
    reference = train(_config(tiny_unetmm, tmp_path / "ref"), progress=False)
    assert reference.steps == 100 and len(reference.losses) == 100
    assert reference.resumed_from == 0 and [s for s, _ in reference.curve] == [25, 50, 75, 100]

    config = _config(tiny_unetmm, tmp_path / "killed")
    path = tmp_path / "train.yaml"
    path.write_text(config.to_yaml())
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "studies.cli", "train", str(path), "--quiet"],
                            env=env, cwd=ROOT, stderr=subprocess.PIPE)  # fmt: skip
    deadline = time.monotonic() + 240
    while not checkpoints(tmp_path / "killed") and proc.poll() is None:
        assert time.monotonic() < deadline, "no checkpoint appeared"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)  # no clean-up of any kind
    proc.wait()
    stderr = proc.stderr.read().decode() if proc.stderr else ""
    assert proc.returncode == -signal.SIGKILL, stderr
    assert not (tmp_path / "killed" / "result.json").exists()
    done = checkpoints(tmp_path / "killed")[-1][0]
    assert 10 <= done < 100

    # checkpoint_every is not part of the run's identity: a new interval still resumes
    resumed = train(config.model_copy(update={"recipe": config.recipe.model_copy(
        update={"checkpoint_every": 30, "keep_checkpoints": 20})}), progress=False)  # fmt: skip
    assert resumed.resumed_from == done
    after = [s for s, _ in checkpoints(tmp_path / "killed") if s > done]
    assert after == [s for s in (30, 60, 90, 100) if s > done]
    assert resumed.losses == reference.losses  # bit for bit, also the steps before the kill
    assert resumed.curve == reference.curve and resumed.psnr == reference.psnr
    a = torch.load(tmp_path / "ref" / "model.pt", weights_only=True)["model"]
    b = torch.load(tmp_path / "killed" / "model.pt", weights_only=True)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_checkpoints_and_results_on_disk(tmp_path: Path, tiny_arch: ArchConfig) -> None:
    config = _config(tiny_arch, tmp_path / "run", iterations=30, keep_checkpoints=2)
    result = train(config, progress=False)
    assert [s for s, _ in checkpoints(tmp_path / "run")] == [20, 30]  # 10 was rotated out
    state = torch.load(result.checkpoint, weights_only=True)
    assert state["step"] == 30 and state["losses"].shape == (30,)
    assert set(state) >= {"model", "optimizer", "scheduler", "rng", "step", "config"}
    assert state["scheduler"]["last_epoch"] == 30
    data = json.loads((tmp_path / "run" / "result.json").read_text())
    assert data["steps"] == 30 and data["psnr"] == pytest.approx(result.psnr)
    assert [s for s, _ in data["loss_curve"]] == [5, 10, 15, 20, 25, 30]
    assert data["loss_curve"][0][1] == pytest.approx(sum(result.losses[:5]) / 5)
    assert ArchConfig.from_dict(data["arch"]) == tiny_arch
    assert (tmp_path / "run" / "config.yaml").is_file()
    assert not [p.name for p in (tmp_path / "run").iterdir() if p.name.endswith(".tmp")]
    # finished: a second call trains nothing and reports the same model
    again = train(config, progress=False)
    assert again.resumed_from == 30 and again.losses == result.losses and again.psnr == result.psnr


def test_resume_refuses_another_config_and_no_resume_starts_over(
    tmp_path: Path, tiny_arch: ArchConfig
) -> None:
    run = tmp_path / "run"
    first = train(_config(tiny_arch, run, iterations=10), progress=False)
    # intervals and rotation do not change the math: the finished run is picked up as it is
    intervals = dict(checkpoint_every=3, eval_every=4, log_every=2, keep_checkpoints=5)
    again = train(_config(tiny_arch, run, iterations=10, **intervals), progress=False)
    assert again.resumed_from == 10 and again.losses == first.losses
    for change, field in ((dict(lr=1e-3), "recipe.lr"), (dict(iterations=20), "recipe.iterations")):
        changed = _config(tiny_arch, run, **{"iterations": 10, **change})
        with pytest.raises(ConfigError, match=rf"^{field}: differs from the run checkpointed"):
            train(changed, progress=False)
    # --no-resume checks the data before it deletes anything
    bad = _config(tiny_arch, run, iterations=10, lr=1e-3).model_copy(
        update={"data": DataConfig(val=str(tmp_path / "missing"))})  # fmt: skip
    with pytest.raises(ConfigError, match=r"^data.val: folder .* does not exist"):
        train(bad, resume=False, progress=False)
    assert [s for s, _ in checkpoints(run)] == [10]
    assert train(_config(tiny_arch, run, iterations=10), progress=False).resumed_from == 10
    fresh = train(_config(tiny_arch, run, iterations=10, lr=1e-3), resume=False, progress=False)
    assert fresh.resumed_from == 0 and [s for s, _ in checkpoints(run)] == [10]
    assert fresh.losses[0] == first.losses[0] and fresh.losses[1:] != first.losses[1:]


def test_nan_final_score_fails_without_writing_results(
    tmp_path: Path, tiny_arch: ArchConfig, capsys: pytest.CaptureFixture[str]
) -> None:
    """A checkpoint whose weights are NaN (as after a last step that blew up): resuming it runs
    the final evaluation on them, which must fail (exit 2), not write psnr NaN."""
    config = _config(tiny_arch, tmp_path / "run", iterations=10)
    result = train(config, progress=False)
    state = torch.load(result.checkpoint, weights_only=True)
    state["model"] = {k: torch.full_like(v, float("nan")) for k, v in state["model"].items()}
    torch.save(state, result.checkpoint)
    for name in ("result.json", "model.pt"):
        (tmp_path / "run" / name).unlink()
    path = tmp_path / "c.yaml"
    path.write_text(config.to_yaml())
    assert main(["train", str(path), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == ("error: training diverged: validation PSNR is nan at step 10; "
                   "lower the learning rate")  # fmt: skip
    assert not (tmp_path / "run" / "result.json").exists()
    assert not (tmp_path / "run" / "model.pt").exists()
    assert (tmp_path / "run" / "train.log").read_text().splitlines()[-1].endswith(
        "ERROR: training diverged: validation PSNR is nan at step 10; lower the learning rate")


def test_cli_trains_and_reports_bad_configs(
    tmp_path: Path, tiny_arch: ArchConfig, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(_config(tiny_arch, tmp_path / "unused", iterations=10).to_yaml())
    assert main(["train", str(path), "--out", str(tmp_path / "cli"), "--steps", "5",
                 "--batch", "2", "--crop", "24", "--quiet"]) == 0  # fmt: skip
    assert "step 5: val PSNR" in capsys.readouterr().out
    assert json.loads((tmp_path / "cli" / "result.json").read_text())["steps"] == 5
    saved = load_train_config(tmp_path / "cli" / "config.yaml").recipe
    assert (saved.iterations, saved.batch, saved.crop) == (5, 2, 24)
    assert main(["train", str(path), "--crop", "4"]) == 2
    assert capsys.readouterr().err.strip() == "error: --crop: must be >= 8, got 4"
    path.write_text(path.read_text().replace("batch: 4", "batch: -4"))
    assert main(["train", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.strip() == "error: recipe.batch: Input should be greater than or equal to 1"
    if not torch.cuda.is_available():
        path.write_text(path.read_text().replace("batch: -4", "batch: 4"))
        assert main(["train", str(path), "--out", str(tmp_path / "gpu"), "--device", "cuda"]) == 2
        assert capsys.readouterr().err.strip() == (
            "error: --device: cuda is not available on this machine; use cpu")
        path.write_text(path.read_text().replace("device: auto", "device: cuda"))
        assert main(["train", str(path), "--out", str(tmp_path / "gpu")]) == 2
        assert capsys.readouterr().err.strip() == (
            "error: recipe.device: cuda is not available on this machine; use cpu")
        assert not (tmp_path / "gpu").exists()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_training_matches_cpu_and_resumes_a_cpu_run(
    tmp_path: Path, tiny_arch: ArchConfig
) -> None:
    cpu = train(_config(tiny_arch, tmp_path / "run", iterations=10), progress=False)
    # the device is not part of the run's identity: the finished CPU run is evaluated on the GPU
    again = train(_config(tiny_arch, tmp_path / "run", iterations=10, device="cuda"),
                  progress=False)  # fmt: skip
    assert again.resumed_from == 10 and again.psnr == pytest.approx(cpu.psnr, abs=1e-3)
    gpu = train(_config(tiny_arch, tmp_path / "gpu", iterations=10, device="cuda"), progress=False)
    assert gpu.losses[0] == pytest.approx(cpu.losses[0], abs=1e-3)  # same init, same batch
    assert gpu.psnr == pytest.approx(cpu.psnr, abs=0.5)  # TF32 convolutions: not bit-exact
    model = torch.load(tmp_path / "gpu" / "model.pt", weights_only=True)["model"]
    assert all(v.device.type == "cpu" for v in model.values())
