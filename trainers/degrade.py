"""Synthetic degradations, one per task: ``DEGRADATIONS.get(task.name)(clean, task, generator)``.

Each takes a clean batch ``(B, C, H, W)`` in [0, 1] and returns the degraded batch of the same
shape; randomness comes only from the ``torch.Generator`` passed in (so a batch is reproducible
from its seed, and validation noise is fixed).

- ``denoise``: ``clean + N(0, (sigma / 255)^2)``, not clipped (as DnCNN-style benchmarks);
- ``deblur``: a fixed Gaussian or linear-motion kernel (``blur_kernel``), reflect padding;
- ``sr``: bicubic downscale by ``scale`` (antialiased) then bicubic upscale back to (H, W),
  clamped to [0, 1]; the model restores detail at full size.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import lru_cache

import torch
import torch.nn.functional as F

from nas.registry import Registry
from trainers.config import TaskConfig

Degradation = Callable[[torch.Tensor, TaskConfig, torch.Generator], torch.Tensor]
DEGRADATIONS: Registry[Degradation] = Registry("task")


@DEGRADATIONS.register("denoise")
def add_noise(clean: torch.Tensor, task: TaskConfig, gen: torch.Generator) -> torch.Tensor:
    noise = torch.randn(clean.shape, generator=gen, dtype=clean.dtype)
    return clean + noise * (task.sigma / 255.0)


def gaussian_kernel(size: int, sigma: float) -> torch.Tensor:
    """A normalised ``(size, size)`` Gaussian kernel."""
    r = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(r**2) / (2 * sigma**2))
    k = torch.outer(g, g)
    return (k / k.sum()).float()


def motion_kernel(size: int, length: int, angle_deg: float) -> torch.Tensor:
    """A normalised ``(size, size)`` line of ``length`` pixels through the centre at ``angle_deg``
    (0 = horizontal, counter-clockwise), drawn with bilinear splatting of sub-pixel samples."""
    k = torch.zeros(size, size, dtype=torch.float64)
    c = (size - 1) / 2
    a = math.radians(angle_deg)
    for t in torch.linspace(-(length - 1) / 2, (length - 1) / 2, 8 * length).tolist():
        x, y = c + t * math.cos(a), c - t * math.sin(a)
        x0, y0 = math.floor(x), math.floor(y)
        fx, fy = x - x0, y - y0
        for dx, dy, w in ((0, 0, (1 - fx) * (1 - fy)), (1, 0, fx * (1 - fy)),
                          (0, 1, (1 - fx) * fy), (1, 1, fx * fy)):  # fmt: skip
            if 0 <= x0 + dx < size and 0 <= y0 + dy < size:
                k[y0 + dy, x0 + dx] += w
    return (k / k.sum()).float()


@lru_cache(maxsize=16)
def blur_kernel(task: TaskConfig) -> torch.Tensor:
    """The task's ``(kernel_size, kernel_size)`` blur kernel (sums to 1)."""
    if task.blur == "gaussian":
        return gaussian_kernel(task.kernel_size, task.blur_sigma)
    return motion_kernel(task.kernel_size, task.motion_length, task.motion_angle)


@DEGRADATIONS.register("deblur")
def blur(clean: torch.Tensor, task: TaskConfig, gen: torch.Generator) -> torch.Tensor:
    c = clean.shape[1]
    k = blur_kernel(task).to(clean.dtype)
    p = k.shape[-1] // 2
    mode = "reflect" if min(clean.shape[-2:]) > p else "replicate"
    x = F.pad(clean, (p, p, p, p), mode=mode)
    # depthwise: one (1, K, K) filter per channel
    return F.conv2d(x, k.expand(c, 1, *k.shape), groups=c)


@DEGRADATIONS.register("sr")
def bicubic_down_up(clean: torch.Tensor, task: TaskConfig, gen: torch.Generator) -> torch.Tensor:
    h, w = clean.shape[-2:]
    small = (max(1, h // task.scale), max(1, w // task.scale))
    lo = F.interpolate(clean, size=small, mode="bicubic", align_corners=False, antialias=True)
    return F.interpolate(lo, size=(h, w), mode="bicubic", align_corners=False).clamp(0, 1)


def degrade(clean: torch.Tensor, task: TaskConfig, gen: torch.Generator) -> torch.Tensor:
    """Apply ``task``'s degradation to ``clean`` (B, C, H, W)."""
    return DEGRADATIONS.get(task.name)(clean, task, gen)
