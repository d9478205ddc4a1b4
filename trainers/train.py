"""Full training of a ``TrainConfig`` with checkpoints and exact resume (``unetmm train``).

``out_dir`` holds:

- ``config.yaml``: the config as run;
- ``ckpt_00001000.pt`` ...: every ``checkpoint_every`` steps and at the end (the last
  ``keep_checkpoints`` are kept), each with the model, optimizer, scheduler, torch RNG state, step,
  per-step losses, the validation curve and the config; loaded with
  ``torch.load(..., weights_only=True)``;
- ``result.json``: final PSNR/SSIM (and the noisy input's), steps, seconds, the validation curve,
  the loss curve (mean of every ``log_every`` steps), and the ONNX check when asked;
- ``model.pt``: ``{"arch": ..., "model": state_dict}`` of the final model;
- ``model.onnx`` with ``--onnx``;
- ``train.log``, ``metrics.csv`` and TensorBoard event files (``trainers.run_log``).

Checkpoints, ``config.yaml``, ``model.pt`` and ``result.json`` are written atomically (a temporary
file in ``out_dir``, then ``os.replace``). A NaN/inf loss or validation score raises
``TrainingDiverged`` before ``model.pt`` and ``result.json`` are written.

Device: ``recipe.device`` (``auto``: CUDA when torch sees a GPU, else the CPU); asking for
``cuda`` without one raises ``ConfigError`` before any work. Batches come from a DataLoader with
``recipe.workers`` processes (``trainers.loader``; the same batches with any number). ``init``:
a fresh run's model starts from that checkpoint (official NAFNet/KBNet or unetmm layout,
``nas.checkpoints``; a UNet-- design's skips stay as initialised: a warm start).

Resume: a batch is a function of (seed, step) (see ``trainers.data``), and everything else that
changes during training is in the checkpoint, so a run killed and restarted reproduces the
uninterrupted run's per-step losses exactly (same thread count; tests check it bit for bit).
A resume needs the same arch, task, data and recipe as the checkpointed run, except for what does
not change the math: ``out_dir``, ``data.cache_mb``, ``recipe.threads``, ``recipe.device``,
``recipe.workers``, ``checkpoint_every``, ``keep_checkpoints``, ``eval_every`` and ``log_every``,
and ``init`` (a resume continues from its own checkpoint). A different ``iterations`` is
refused (the cosine schedule spans them).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import re
import time
import warnings
from pathlib import Path
from typing import Any

import torch

from nas.checkpoints import LoadReport, load_official, read_state_dict
from nas.errors import ConfigError
from nas.extras import require_extra
from nas.files import replace_atomically, write_text_atomic
from nas.model import build_model
from trainers.config import TrainConfig
from trainers.loader import effective_workers, step_batches
from trainers.loop import (
    TrainingDiverged,
    compute_settings,
    evaluate,
    make_optimizer,
    make_scheduler,
    train_step,
)
from trainers.progress import progress_bar
from trainers.run_log import RunLog
from trainers.runtime import resolve_device
from trainers.tasks import TASKS, Stream, TaskKind

CKPT = re.compile(r"^ckpt_(\d{8})\.pt$")


@dataclasses.dataclass(frozen=True)
class TrainResult:
    """Outcome of ``train``: final validation scores, per-step ``losses`` (index k = step k+1,
    including steps run before a resume), ``curve`` of (step, val PSNR), where things were
    written, and ``resumed_from`` (the checkpoint step it continued from; 0 = fresh);
    ``metrics``: every final score (the task's own too: matting's ``sad``, ``mse``, ...);
    ``init``: what loading ``config.init`` did (None: not loaded)."""

    psnr: float
    ssim: float
    input_psnr: float
    steps: int
    seconds: float
    losses: list[float]
    curve: list[tuple[int, float]]
    out_dir: Path
    checkpoint: Path
    resumed_from: int = 0
    onnx: Path | None = None
    onnx_max_abs_diff: float | None = None
    metrics: dict[str, float] = dataclasses.field(default_factory=dict)
    init: LoadReport | None = None


def checkpoints(out_dir: Path) -> list[tuple[int, Path]]:
    """(step, path) of the checkpoints in ``out_dir``, oldest first."""
    if not out_dir.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in out_dir.iterdir() if (m := CKPT.match(p.name))]
    return sorted(found)


# what may change between a checkpointed run and its resume (nothing here changes the math)
_NOT_IDENTITY = {
    "": ("out_dir", "init"),
    "data": ("cache_mb",),
    "recipe": ("threads", "device", "workers", "checkpoint_every", "keep_checkpoints", "eval_every",
               "log_every"),
}


def _identity(d: dict[str, Any]) -> dict[str, Any]:
    """A config mapping (``model_dump(mode="json")``) without the ``_NOT_IDENTITY`` fields."""
    d = {k: dict(v) if isinstance(v, dict) else v for k, v in d.items()}
    for section, keys in _NOT_IDENTITY.items():
        for key in keys:
            (d[section] if section else d).pop(key, None)
    return d


def _comparable(config: TrainConfig) -> dict[str, Any]:
    """What must match for a resume: the config without the ``_NOT_IDENTITY`` fields."""
    return _identity(config.model_dump(mode="json"))


def _diff(a: Any, b: Any, where: str = "") -> str | None:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            d = _diff(a.get(k), b.get(k), f"{where}.{k}" if where else k)
            if d:
                return d
        return None
    return None if a == b else where


def _load_latest(out_dir: Path, config: TrainConfig) -> dict[str, Any] | None:
    """The newest readable checkpoint of this config in ``out_dir`` (None if there is none)."""
    for step, path in reversed(checkpoints(out_dir)):
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001  (a torn or corrupt file: try the previous one)
            warnings.warn(f"skipping unreadable checkpoint {path}: {exc}", stacklevel=2)
            continue
        field = _diff(_identity(state["config"]), _comparable(config))
        if field:
            raise ConfigError(
                f"{field}: differs from the run checkpointed in {str(out_dir)!r} (step {step}); "
                "use --no-resume to start over or --out for another folder"
            )
        return state
    return None


def _cpu(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.cpu() for k, v in state.items()}


def _save_atomic(obj: Any, path: Path) -> None:
    replace_atomically(path, lambda tmp: torch.save(obj, tmp))


def _write_text_atomic(path: Path, text: str) -> None:
    write_text_atomic(path, text)


class _Run:
    """The mutable state of one training run (model, optimizer, ...) and its checkpoints."""

    def __init__(self, config: TrainConfig, device: torch.device,
                 init: dict[str, torch.Tensor] | None = None) -> None:  # fmt: skip
        self.config, r = config, config.recipe
        self.out_dir = Path(config.out_dir)
        torch.manual_seed(r.seed)
        model = build_model(config.arch)  # initialised on the CPU either way
        self.init = None if init is None else load_official(model, init, False, "init")
        self.model = model.to(device)
        self.optimizer = make_optimizer(self.model.parameters(), r)
        self.scheduler = make_scheduler(self.optimizer, r, r.iterations)
        self.step, self.seconds = 0, 0.0
        self.losses: list[float] = []
        self.curve: list[tuple[int, float]] = []

    def restore(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["rng"]["torch"])
        self.step, self.seconds = int(state["step"]), float(state["seconds"])
        self.losses = state["losses"].tolist()
        self.curve = [(int(s), float(p)) for s, p in state["curve"].tolist()]

    def save(self) -> Path:
        path = self.out_dir / f"ckpt_{self.step:08d}.pt"
        _save_atomic(
            {
                "step": self.step,
                "seconds": self.seconds,
                "model": _cpu(self.model.state_dict()),
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "rng": {"torch": torch.get_rng_state()},
                "losses": torch.tensor(self.losses, dtype=torch.float64),
                "curve": torch.tensor(self.curve, dtype=torch.float64).reshape(-1, 2),
                "config": _comparable(self.config),
            },
            path,
        )
        for _, old in checkpoints(self.out_dir)[: -self.config.recipe.keep_checkpoints]:
            old.unlink(missing_ok=True)
        return path


def train(config: TrainConfig, resume: bool = True, onnx: bool = False,
          progress: bool = True) -> TrainResult:  # fmt: skip
    """Train ``config`` to ``recipe.iterations`` steps, resuming from the newest checkpoint in
    ``out_dir`` unless ``resume`` is False (then, once the data has been checked, its old
    checkpoints are removed). With ``onnx`` the final model is exported to ``model.onnx`` and
    checked with onnxruntime. Raises ``ConfigError`` (bad data, or a checkpointed run that differs)
    and ``TrainingDiverged`` (NaN/inf loss or validation score)."""
    r = config.recipe
    out_dir = Path(config.out_dir)
    device = resolve_device(r.device, "recipe.device")  # ConfigError before any work
    if onnx:
        require_extra("onnx", "--onnx")
    with compute_settings(r.threads), torch.random.fork_rng(devices=[]):
        kind = TASKS.get(config.task.name)
        kind.check_model(config.arch.backbone, config.task.name)
        if device.type == "cpu":  # before anything is read or made
            from nas.cost.fits import check_fits

            check_fits(config.arch, r.batch, r.crop, "training", "recipe.batch/crop")
        state = _load_latest(out_dir, config) if resume else None  # reads, changes nothing
        init = read_state_dict(config.init, "init") if config.init and state is None else None
        val = kind.validation(config.data, config.task, r.val_crop)
        stream = kind.stream(config.data, config.task, r.crop, r.batch, r.seed)
        run = _Run(config, device, init)
        out_dir.mkdir(parents=True, exist_ok=True)
        if not resume:  # only now: a bad config above leaves the old run untouched
            for _, path in checkpoints(out_dir):
                path.unlink()
        if state is not None:
            run.restore(state)
        resumed_from = run.step
        _write_text_atomic(out_dir / "config.yaml", config.to_yaml())
        with contextlib.closing(RunLog(out_dir, resumed_from)) as log:
            _log_start(log, run, device)
            try:
                ckpt = _train_loop(run, kind, stream, val, progress, log, device)
                scores = evaluate(run.model, val, run.step, kind.scores)
            except TrainingDiverged as exc:
                log.logger.error(str(exc))
                raise
            log.info(f"done: step {run.step}, "
                     + ", ".join(f"{k} {v:.4f}" for k, v in scores.items())
                     + f" (input psnr {val.input_psnr:.4f}); {run.seconds:.1f} s")  # fmt: skip
        run.model.cpu()  # model.pt, ONNX export and check are CPU-side
    result = TrainResult(
        psnr=scores["psnr"], ssim=scores["ssim"], input_psnr=val.input_psnr, steps=run.step,
        seconds=run.seconds, losses=run.losses, curve=run.curve, out_dir=out_dir,
        checkpoint=ckpt, resumed_from=resumed_from, metrics=scores, init=run.init,
    )  # fmt: skip
    _save_atomic({"arch": config.arch.to_dict(), "model": run.model.state_dict()},
                 out_dir / "model.pt")  # fmt: skip
    if onnx:
        from trainers.onnx_export import check_onnx, export_onnx

        report = check_onnx(export_onnx(run.model, out_dir / "model.onnx"), run.model)
        result = dataclasses.replace(result, onnx=report.path,
                                     onnx_max_abs_diff=report.max_abs_diff)  # fmt: skip
    _write_result(result, config)
    return result


def _log_start(log: RunLog, run: _Run, device: torch.device) -> None:
    r = run.config.recipe
    log.info(f"run folder {str(run.out_dir)!r}: device {device} (recipe.device {r.device}), "
             f"{effective_workers(r.workers)} data worker(s), "
             f"{sum(p.numel() for p in run.model.parameters()):,} parameters")  # fmt: skip
    log.info("config:\n" + run.config.to_yaml().rstrip())
    if run.step:
        log.info(f"resumed from step {run.step} (its checkpoint holds the weights)")
    elif run.init is not None:
        log.info(f"init {run.config.init}: {run.init.summary()}")
        if run.init.new:
            log.info("init: new (as initialised): " + ", ".join(run.init.new))


def _train_loop(run: _Run, kind: TaskKind, stream: Stream, val: Any, progress: bool,
                log: RunLog, device: torch.device) -> Path:  # fmt: skip
    r = run.config.recipe
    ckpt = checkpoints(run.out_dir)[-1][1] if run.step and checkpoints(run.out_dir) else None
    bar = progress_bar("train", disable=not progress)
    task = bar.add_task("", total=r.iterations, completed=run.step)
    # batch k is stream.batch_at(k), the batch of step k + 1
    batches = step_batches(stream, run.step, r.iterations, r.workers, device.type == "cuda")
    t0 = time.perf_counter()
    try:
        with bar:
            for inp, target in batches:
                step = run.step + 1
                lr = float(run.optimizer.param_groups[0]["lr"])
                inp, target = inp.to(device, non_blocking=True), target.to(device, non_blocking=True)
                loss = train_step(run.model, run.optimizer, run.scheduler, inp, target, step,
                                  kind.loss)
                run.losses.append(loss)
                run.step = step
                scores = None
                if step % r.eval_every == 0 or step == r.iterations:
                    scores = evaluate(run.model, val, step, kind.scores)
                    run.curve.append((step, scores["psnr"]))
                if scores or step % r.log_every == 0 or step == r.iterations:
                    window = run.losses[-r.log_every :]
                    mean = sum(window) / len(window)
                    log.row(step, r.iterations, mean, lr,
                            run.seconds + time.perf_counter() - t0, scores)  # fmt: skip
                    info = f"loss {mean:.3f}"
                    if run.curve:
                        info += f", val PSNR {run.curve[-1][1]:.2f} dB"
                    bar.update(task, description=info)
                bar.advance(task)
                if step % r.checkpoint_every == 0 or step == r.iterations:
                    run.seconds += time.perf_counter() - t0
                    t0 = time.perf_counter()
                    ckpt = run.save()
    finally:
        del batches  # stops the loader's workers now, also when a step raised
    run.seconds += time.perf_counter() - t0
    if ckpt is None:  # nothing ran and nothing was saved (cannot happen with iterations >= 1)
        ckpt = run.save()
    return ckpt


def _write_result(result: TrainResult, config: TrainConfig) -> None:
    every = config.recipe.log_every
    losses = result.losses
    loss_curve = [
        (min(i + every, len(losses)), sum(losses[i : i + every]) / len(losses[i : i + every]))
        for i in range(0, len(losses), every)
    ]
    data = {
        "arch": config.arch.to_dict(),
        "task": config.task.model_dump(mode="json"),
        "steps": result.steps,
        "psnr": result.psnr,
        "ssim": result.ssim,
        "input_psnr": result.input_psnr,
        "metrics": result.metrics,
        "seconds": result.seconds,
        "resumed_from": result.resumed_from,
        "checkpoint": result.checkpoint.name,
        "curve": result.curve,
        "loss_curve": loss_curve,
    }
    if result.onnx is not None:
        data["onnx"] = {"path": result.onnx.name, "max_abs_diff": result.onnx_max_abs_diff}
    _write_text_atomic(result.out_dir / "result.json", json.dumps(data, indent=1))
