"""The proxy score of one candidate: a short training run of its skip design on a narrow, shallow
backbone, scored by PSNR/SSIM on held-out images.

What carries over from the target design (``proxy_arch``) is the skip design with its
*absolute* skip-path widths: a UNet-- design keeps the target's reduced channels per stage, its
aggregated channels, target stage and IEM depth (``UNetMMConfig.with_absolute_channels``), not its
ratios (ratios applied to a width-16 proxy leave E1 one channel and score a different design).
Full / none / subset designs carry over unchanged.

``train_and_eval`` trains from a fixed seed with the task's loss (NAFNet's PSNR loss for
restoration, L1 for matting), Adam(W) and cosine annealing (paper Sec. 4.1) for ``budget.steps``
steps, evaluates every ``budget.eval_every`` steps (and at the end) and hands each validation PSNR
to ``callback(step, psnr)``; a True return stops the run early. For matting the PSNR is that of
the predicted alpha (data range 1), so studies rank matting designs unchanged; the task's other
scores (SAD, MSE, ...) are in ``ProxyResult.metrics``. How the steps execute (device, memory
format, fused kernels, compile) is a ``ProxyRuntime``, kept apart from the budget: it changes
scores by float rounding only.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
import time
from collections.abc import Callable
from typing import Any

import torch

from nas.backbones import NAFNetConfig
from nas.config import ArchConfig
from nas.errors import ConfigError
from nas.model import build_model
from trainers.config import DataConfig, ProxyBudget, ProxyRuntime, TaskConfig
from trainers.loop import (
    TrainingDiverged,
    compute_settings,
    evaluate,
    make_optimizer,
    make_scheduler,
    train_step,
)
from trainers.runtime import Executor
from trainers.tasks import TASKS

__all__ = [
    "ProxyResult",
    "ProxyRun",
    "TrainingDiverged",
    "default_proxy_backbone",
    "proxy_arch",
    "train_and_eval",
]

def default_proxy_backbone(target: Any | None = None) -> Any:
    """The proxy backbone for a target backbone config (None: NAFNet-4-stage): its own
    ``proxy()`` rule (the same family and number of stages, narrow, one block per stage)."""
    return (target if target is not None else NAFNetConfig()).proxy()


def proxy_arch(target: ArchConfig, proxy_backbone: Any | None = None) -> ArchConfig:
    """The target's skip design moved onto the proxy backbone, keeping absolute skip widths."""
    backbone = proxy_backbone if proxy_backbone is not None else default_proxy_backbone(
        target.backbone
    )
    n_target, n_proxy = len(target.backbone.stage_channels), len(backbone.stage_channels)
    if n_target != n_proxy:
        raise ConfigError(
            f"proxy backbone: has {n_proxy} stages but the target has {n_target}; "
            "a skip design only carries over between backbones of the same depth"
        )
    skip = target.skip.with_absolute_channels(target.backbone.stage_channels)
    skip.validate(backbone.stage_channels)
    return ArchConfig(backbone, skip)


@dataclasses.dataclass(frozen=True)
class ProxyResult:
    """A proxy run's outcome. ``psnr``/``ssim``: the last evaluation (at ``steps``);
    ``curve``: (step, val PSNR) of every evaluation; ``stopped``: the callback ended it early;
    ``input_psnr``: the do-nothing prediction's PSNR (the degraded input; matting: alpha 0.5);
    ``metrics``: every score of the last evaluation (``psnr``, ``ssim`` and the task's own, e.g.
    matting's ``sad``, ``mse``, ``sad_unknown``, ``mse_unknown``; see ``trainers.tasks``).
    ``seconds`` is the whole run, of which ``seconds_setup`` went to data and model preparation
    and ``seconds_eval`` to validation."""

    psnr: float
    ssim: float
    seconds: float
    steps: int
    curve: list[tuple[int, float]]
    stopped: bool = False
    input_psnr: float = math.nan
    seconds_setup: float = 0.0
    seconds_eval: float = 0.0
    metrics: dict[str, float] = dataclasses.field(default_factory=dict)


class ProxyRun:
    """One proxy run, advanced a step at a time (``train_and_eval`` drives one to the end; a
    benchmark can interleave several). Building it prepares the task's data (cached per
    process: see ``trainers.data``) and the model from ``seed`` without touching the caller's
    torch RNG; ``runtime`` (default ``ProxyRuntime()``) says how the steps execute
    (``trainers.runtime.Executor``)."""

    def __init__(self, arch: ArchConfig, task: TaskConfig, budget: ProxyBudget,
                 data: DataConfig, seed: int = 0,
                 runtime: ProxyRuntime | None = None) -> None:  # fmt: skip
        t0 = time.perf_counter()
        self.budget, self.kind = budget, TASKS.get(task.name)
        self.kind.check_model(arch.backbone, task.name)  # from the config, before building
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = build_model(arch)
        self.val = self.kind.validation(data, task, budget.val_crop)
        self.stream = self.kind.stream(data, task, budget.crop, budget.batch, seed)
        self.executor = Executor.build(model, runtime or ProxyRuntime())
        self.optimizer = make_optimizer(self.executor.model.parameters(), budget,
                                        fused=self.executor.runtime.fused_optimizer)  # fmt: skip
        self.scheduler = make_scheduler(self.optimizer, budget, budget.steps)
        self.step, self.curve = 0, []
        self.scores: dict[str, float] = {}
        self.seconds_setup, self.seconds_eval = time.perf_counter() - t0, 0.0

    @property
    def done(self) -> bool:
        return self.step >= self.budget.steps

    def advance(self) -> float | None:
        """One training step; returns the validation PSNR when this step is evaluated (every
        ``eval_every`` steps and the last), else None. Raises ``TrainingDiverged``."""
        ex, step = self.executor, self.step + 1
        inp, target = ex.inputs(*self.stream.batch_at(step - 1))
        train_step(ex.train_forward, self.optimizer, self.scheduler, inp, target, step,
                   self.loss_for(inp), ex.precision)  # fmt: skip
        self.step = step
        if step % self.budget.eval_every and step != self.budget.steps:
            return None
        t0 = time.perf_counter()
        self.scores = evaluate(ex.model, self.val, step, self.kind.scores, ex.memory_format)
        self.seconds_eval += time.perf_counter() - t0
        self.curve.append((step, self.scores["psnr"]))
        return self.scores["psnr"]

    def loss_for(self, inp: torch.Tensor) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
        """The loss ``(output, target) -> scalar`` of the step on the batch ``inp``: the task's
        (a subclass may add terms that need the input, e.g. a teacher's output)."""
        return self.kind.loss

    def result(self, seconds: float, stopped: bool = False) -> ProxyResult:
        return ProxyResult(
            psnr=self.scores.get("psnr", math.nan),
            ssim=self.scores.get("ssim", math.nan),
            seconds=seconds,
            steps=self.step,
            curve=list(self.curve),
            stopped=stopped,
            input_psnr=self.val.input_psnr,
            seconds_setup=self.seconds_setup,
            seconds_eval=self.seconds_eval,
            metrics=dict(self.scores),
        )


def train_and_eval(
    arch: ArchConfig,
    task: TaskConfig,
    budget: ProxyBudget,
    data: DataConfig | None = None,
    callback: Callable[[int, float], bool | None] | None = None,
    threads: int | None = None,
    seed: int = 0,
    runtime: ProxyRuntime | None = None,
) -> ProxyResult:
    """Train ``arch`` (build it as given; see ``proxy_arch``) for ``budget`` and score it.

    ``callback(step, val_psnr)`` runs after every evaluation; returning True stops the run
    (``stopped=True``, the last score); its exceptions propagate unchanged. ``threads`` sets
    ``torch.set_num_threads`` for the run (see ``trainers.loop.compute_settings``); ``runtime``
    (default ``ProxyRuntime()``) how the steps execute, which changes scores by float rounding
    only. With ``budget.seeds`` n > 1, n runs (seeds ``seed * n + i``) advance in step and
    every score, the callback's included, is their mean (``average``). The caller's torch RNG
    state is left untouched.
    Raises ``TrainingDiverged`` on a NaN/inf loss or validation score, ``ConfigError`` for a
    device this machine lacks.
    """
    data = data if data is not None else DataConfig()
    t0 = time.perf_counter()
    n = budget.seeds
    with compute_settings(threads):
        runs = [ProxyRun(arch, task, budget, data, seed * n + i, runtime) for i in range(n)]
        stopped = False
        while not runs[0].done:
            scores = [run.advance() for run in runs]
            if scores[0] is not None and callback is not None \
                    and callback(runs[0].step, statistics.fmean(scores)):  # fmt: skip
                stopped = True
                break
    seconds = time.perf_counter() - t0
    return average([run.result(seconds, stopped) for run in runs])


def average(results: list[ProxyResult]) -> ProxyResult:
    """One result of runs that advanced in step: mean scores and curve, their summed setup and
    evaluation seconds (``seconds`` is the first's: the whole)."""
    if len(results) == 1:
        return results[0]
    first = results[0]
    mean = statistics.fmean
    return dataclasses.replace(
        first,
        psnr=mean(r.psnr for r in results),
        ssim=mean(r.ssim for r in results),
        curve=[(step, mean(r.curve[i][1] for r in results))
               for i, (step, _) in enumerate(first.curve)],  # fmt: skip
        seconds_setup=sum(r.seconds_setup for r in results),
        seconds_eval=sum(r.seconds_eval for r in results),
        metrics={k: mean(r.metrics[k] for r in results) for k in first.metrics},
    )
