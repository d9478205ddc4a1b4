"""What the proxy run and full training share: optimizer, schedule, one step, evaluation.

One optimisation step is ``loss -> backward -> optimizer.step -> scheduler.step`` (the task's loss:
NAFNet's PSNR loss for restoration, L1 for matting); a loss or a validation score that is NaN or
infinite raises ``TrainingDiverged`` naming the step (never a silent score).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import torch
from torch import nn

from nas.errors import UnetmmError
from trainers.config import _Optim
from trainers.data import ValSet
from trainers.metrics import Scores, psnr_loss, restoration_scores

ScoreFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor | None], Scores]


class TrainingDiverged(UnetmmError):
    """The training loss or a validation score became NaN or infinite."""


def make_optimizer(
    params: Iterable[nn.Parameter], opt: _Optim, fused: bool = False
) -> torch.optim.Optimizer:
    """Adam or AdamW as ``opt`` says; ``fused``: the single-kernel implementation (same update
    up to float rounding)."""
    cls = torch.optim.AdamW if opt.optimizer == "adamw" else torch.optim.Adam
    return cls(params, lr=opt.lr, betas=opt.betas, weight_decay=opt.weight_decay,
               fused=fused or None)  # fmt: skip


def make_scheduler(
    optimizer: torch.optim.Optimizer, opt: _Optim, total_steps: int
) -> torch.optim.lr_scheduler.LRScheduler:
    """Cosine annealing from ``lr`` to ``lr_min`` over ``total_steps`` (or a constant lr)."""
    if opt.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(
            optimizer, T_max=total_steps, eta_min=opt.lr_min
        )
    return torch.optim.lr_scheduler.ConstantLR(optimizer, factor=1.0, total_iters=0)


def train_step(
    model: Callable[[torch.Tensor], torch.Tensor],
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    inp: torch.Tensor,
    target: torch.Tensor,
    step: int,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = psnr_loss,
    precision: Callable[[], contextlib.AbstractContextManager[Any]] = contextlib.nullcontext,
) -> float:
    """One optimisation step; returns the loss (by default NAFNet's: minus the batch PSNR, dB).
    ``model`` is any forward (a module or its compiled form); it runs inside ``precision()``
    (e.g. autocast), the loss in float32."""
    with precision():
        out = model(inp)
    loss = loss_fn(out.float(), target)
    value = float(loss.detach())
    if not math.isfinite(value):
        raise TrainingDiverged(
            f"training diverged: loss is {value} at step {step}; lower the learning rate"
        )
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    scheduler.step()
    return value


@torch.inference_mode()
def evaluate(
    model: nn.Module,
    val: ValSet,
    step: int,
    scores: ScoreFn = restoration_scores,
    memory_format: torch.memory_format = torch.contiguous_format,
) -> dict[str, float]:
    """Mean per-image scores of ``model`` on ``val`` (eval mode, then back to train):
    ``{"psnr": .., "ssim": .., ...}``, whatever ``scores`` computes (a task's, see
    ``trainers.tasks``). A score that is NaN for some images (e.g. SAD over an empty unknown
    region) is averaged over the others and left out if NaN for all.

    The images are moved to the model's device, inputs in ``memory_format``. Raises
    ``TrainingDiverged`` naming ``step`` and the metric if a score is infinite, or PSNR/SSIM NaN
    (e.g. weights that became NaN in the last optimizer step)."""
    was_training = model.training
    device = next(model.parameters()).device
    model.eval()
    seen: dict[str, list[torch.Tensor]] = {}
    try:
        for inp, target, trimap in val.items():
            out = model(inp.to(device, memory_format=memory_format))
            trimap = None if trimap is None else trimap.to(device)
            for name, values in scores(out, target.to(device), trimap).items():
                seen.setdefault(name, []).append(values.detach().cpu().double())
    finally:
        model.train(was_training)
    means = {name: float(torch.cat(v).nanmean()) for name, v in seen.items()}
    for metric, value in means.items():
        if math.isinf(value) or (math.isnan(value) and metric in ("psnr", "ssim")):
            raise TrainingDiverged(
                f"training diverged: validation {metric.upper()} is {value} at step {step}; "
                "lower the learning rate"
            )
    return {name: value for name, value in means.items() if not math.isnan(value)}


def flushing_denormals() -> bool:
    """Whether this thread flushes subnormal floats to zero (torch has no getter: 1e-30 * 1e-10
    is subnormal in float32, so it comes out 0 exactly when flushing is on)."""
    return bool((torch.tensor([1e-30]) * 1e-10 == 0).item())


@contextlib.contextmanager
def compute_settings(threads: int | None) -> Iterator[None]:
    """Inside the block: ``torch.set_num_threads(threads)`` (unchanged when None) and denormals
    flushed to zero. NAFNet's zero-initialised block scales make early gradients subnormal, which
    runs ~5x slower on CPU; flushing them changes no score measurably. Afterwards the caller's
    thread count and denormal flushing are restored."""
    before, flushing = torch.get_num_threads(), flushing_denormals()
    if threads is not None:
        torch.set_num_threads(threads)
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(flushing)
        torch.set_num_threads(before)
