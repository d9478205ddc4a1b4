"""A proxy candidate for issue 25: distillation from a full-skip teacher.

The teacher is the full-skip design on the proxy backbone, trained once at 4x the proxy's steps
(what a search would train once, before its trials). Each candidate then trains on the proxy
budget with the loss ``(1 - w) * task_loss(out, clean) + w * task_loss(out, teacher(noisy))``:
the teacher's output is a target the narrow student can reach, which may rank designs by what
they can learn rather than by how fast. Scores stay PSNR against the clean images.

Used by ``benchmarks/target_fidelity.py --part variant --proxy-variant distill``; the teacher is
trained once per process (seed 0) and its seconds go into every record (``teacher_seconds``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import torch

from benchmarks.proxy_fidelity import designs
from nas import ArchConfig
from trainers.config import DataConfig, ProxyBudget, TaskConfig
from trainers.loop import compute_settings
from trainers.proxy import ProxyResult, ProxyRun, proxy_arch

WEIGHT = 0.5  # w: the teacher term's share of the loss
TEACHER_FACTOR = 4.0  # the teacher's steps, in proxy budgets


class DistilledRun(ProxyRun):
    """A proxy run whose loss adds the distance to ``teacher``'s output on the same batch."""

    def __init__(self, *args: Any, teacher: torch.nn.Module, weight: float = WEIGHT,
                 **kwargs: Any) -> None:  # fmt: skip
        super().__init__(*args, **kwargs)
        self.teacher, self.weight = teacher.eval(), weight

    def loss_for(self, inp: torch.Tensor) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
        with torch.no_grad():
            soft = self.teacher(inp).float()
        task_loss, w = self.kind.loss, self.weight
        return lambda out, clean: (1 - w) * task_loss(out, clean) + w * task_loss(out, soft)


def run_to_end(run: ProxyRun) -> ProxyRun:
    while not run.done:
        run.advance()
    return run


class Distiller:
    """``Distiller(target)(arch, task, budget, threads, seed)`` trains ``arch`` distilled from the
    full-skip teacher of ``target``'s proxy (trained on first use) and returns its result."""

    def __init__(self, target: Any) -> None:
        self.target = target
        self.teacher: torch.nn.Module | None = None
        self.teacher_seconds = 0.0

    def _teacher(self, task: TaskConfig, budget: ProxyBudget) -> torch.nn.Module:
        if self.teacher is None:
            t0 = time.perf_counter()
            full = proxy_arch(designs(self.target, quick=False)["full"])
            teacher_budget = budget.scaled(TEACHER_FACTOR)
            run = run_to_end(ProxyRun(full, task, teacher_budget, DataConfig(), seed=0))
            self.teacher = run.executor.model
            self.teacher_seconds = time.perf_counter() - t0
        return self.teacher

    def __call__(self, arch: ArchConfig, task: TaskConfig, budget: ProxyBudget,
                 threads: int | None, seed: int) -> ProxyResult:  # fmt: skip
        with compute_settings(threads):
            teacher = self._teacher(task, budget)
            t0 = time.perf_counter()
            run = run_to_end(DistilledRun(arch, task, budget, DataConfig(), seed,
                                          teacher=teacher))  # fmt: skip
            return run.result(time.perf_counter() - t0)

    def fields(self) -> dict[str, float]:
        """What a record adds: the teacher's one-off training seconds."""
        return {"teacher_seconds": round(self.teacher_seconds, 1)}
