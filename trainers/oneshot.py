"""Training a weight-sharing supernet SPOS-style, and scoring its designs with the inherited
weights (``search_spaces.nni_supernet``; the supernet is any module with ``names`` and
``select(name)``, so this module imports nothing of NNI).

``train_supernet`` draws one design uniformly at random per step (seeded), selects its path and
takes one optimisation step of the task's loss, over ``steps`` steps with the budget's
optimiser and schedule; ``score_designs`` selects each design in turn and scores it on the
task's validation set (``trainers.loop.evaluate``: PSNR, SSIM, ...), nothing retrained.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np
from torch import nn

from trainers.config import DataConfig, ProxyBudget, TaskConfig
from trainers.loop import evaluate, make_optimizer, make_scheduler, train_step
from trainers.tasks import TASKS


class Supernet(Protocol):
    names: list[str]

    def select(self, name: str) -> None: ...


def train_supernet(net: Any, task: TaskConfig, budget: ProxyBudget, steps: int,
                   data: DataConfig | None = None, seed: int = 0) -> dict[str, int]:  # fmt: skip
    """Train ``net`` (an ``nn.Module`` and a ``Supernet``) for ``steps`` steps; returns how
    often each design was drawn. Raises ``TrainingDiverged`` like a proxy run."""
    assert isinstance(net, nn.Module)
    kind, data = TASKS.get(task.name), data or DataConfig()
    stream = kind.stream(data, task, budget.crop, budget.batch, seed)
    optimizer = make_optimizer(net.parameters(), budget)
    scheduler = make_scheduler(optimizer, budget, steps)
    rng, names = np.random.default_rng(seed), list(net.names)
    drawn = dict.fromkeys(names, 0)
    for step in range(1, steps + 1):
        name = names[int(rng.integers(len(names)))]
        net.select(name)
        drawn[name] += 1
        inp, target = stream.batch_at(step - 1)[:2]
        train_step(net, optimizer, scheduler, inp, target, step, kind.loss)
    return drawn


def score_designs(net: Any, task: TaskConfig, budget: ProxyBudget, step: int = 0,
                  data: DataConfig | None = None) -> dict[str, dict[str, float]]:  # fmt: skip
    """Every design of ``net`` scored with the inherited weights: name -> scores."""
    kind = TASKS.get(task.name)
    val = kind.validation(data or DataConfig(), task, budget.val_crop)
    out = {}
    for name in net.names:
        net.select(name)
        out[name] = evaluate(net, val, step, kind.scores)
    return out
