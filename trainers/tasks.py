"""How each task trains and is scored: ``TASKS.get(task.name)`` is a ``TaskKind``.

A ``TaskKind`` gives, for a task config and data config:

- ``stream(data, task, crop, batch, seed)``: an object whose ``batch_at(step)`` returns
  ``(input, target)`` batches (a pure function of ``(seed, step)``);
- ``validation(data, task, val_crop)``: the ``ValSet`` scored during training (cached);
- ``loss(pred, target)``: the scalar training loss;
- ``scores(pred, target, trimap)``: per-image scores ``name -> (B,)``; always ``psnr`` and
  ``ssim`` (the proxy's ranking score is ``psnr``, whatever the task), plus the task's own;
- ``check_model(backbone, task_name)``: raises ``ConfigError`` unless the backbone's input/output
  channels fit the task; ``backbone`` is a backbone config or module (both state
  ``in_channels`` and ``out_channels``), so a study can check before building anything.

Restoration (``denoise``, ``deblur``, ``sr``): the model maps a degraded image to the clean one;
NAFNet's PSNR loss; PSNR and SSIM. Matting: an RGB image to a 1-channel alpha; L1 loss; PSNR and
SSIM of the alpha, ``sad``/``mse`` over the whole image and, with trimaps, ``sad_unknown``/
``mse_unknown`` over their unknown region (conventions in ``trainers.metrics``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, Protocol

import torch

from nas.errors import ConfigError
from nas.registry import Registry
from trainers.config import DataConfig, TaskConfig
from trainers.data import TrainStream, ValSet, train_source, validation_set
from trainers.matting import MattingStream, matting_validation_set
from trainers.metrics import Scores, l1_loss, matting_scores, psnr_loss, restoration_scores


class Stream(Protocol):
    def batch_at(self, step: int) -> tuple[torch.Tensor, torch.Tensor]: ...


@dataclasses.dataclass(frozen=True)
class TaskKind:
    """One kind of task (see the module docstring)."""

    stream: Callable[[DataConfig, TaskConfig, int, int, int], Stream]
    validation: Callable[[DataConfig, TaskConfig, int | None], ValSet]
    loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    scores: Callable[[torch.Tensor, torch.Tensor, torch.Tensor | None], Scores]
    check_model: Callable[[Any, str], None]


def _same_channels(backbone: Any, task: str) -> None:
    if backbone.out_channels != backbone.in_channels:
        raise ConfigError(
            f"task {task}: the model must output an image like its input, but the backbone maps "
            f"{backbone.in_channels} channels to {backbone.out_channels}; use a restoration "
            "backbone (e.g. out_channels: 3, residual: true)"
        )


def _alpha_head(backbone: Any, task: str) -> None:
    if backbone.in_channels != 3 or backbone.out_channels != 1:
        raise ConfigError(
            f"task {task}: the model must map an RGB image (3 channels) to an alpha (1 channel), "
            f"but the backbone maps {backbone.in_channels} to {backbone.out_channels}; use "
            "mscan-tiny or a backbone with in_channels: 3, out_channels: 1"
        )


RESTORATION = TaskKind(
    stream=lambda data, task, crop, batch, seed: TrainStream(
        train_source(data), task, crop, batch, seed),
    validation=validation_set,
    loss=psnr_loss,
    scores=restoration_scores,
    check_model=_same_channels,
)
MATTING = TaskKind(
    stream=lambda data, task, crop, batch, seed: MattingStream(data, crop, batch, seed),
    validation=lambda data, task, val_crop: matting_validation_set(data, val_crop),
    loss=l1_loss,
    scores=matting_scores,
    check_model=_alpha_head,
)

TASKS: Registry[TaskKind] = Registry("task")
for _name in ("denoise", "deblur", "sr"):
    TASKS.register(_name)(RESTORATION)
TASKS.register("matting")(MATTING)
