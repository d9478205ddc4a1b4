"""PSNR and SSIM on RGB images in [0, 1] (torchmetrics), and NAFNet's PSNR loss.

Both metrics are per image, ``(B, C, H, W) -> (B,)``, on predictions clamped to [0, 1].

- PSNR: ``torchmetrics.functional.image.peak_signal_noise_ratio`` with ``data_range=1`` over
  each whole image (all channels), i.e. ``10 log10(1 / MSE)``.
- SSIM: torchmetrics' SSIM map (Gaussian window 11x11, sigma 1.5, K1=0.01, K2=0.03, computed per
  channel), averaged over the interior only (a 5-pixel border dropped), which is Wang et al.'s
  reference convention and equals scikit-image's ``structural_similarity(gaussian_weights=True,
  sigma=1.5, use_sample_covariance=False, data_range=1, channel_axis=-1)`` (tests check this).
  Plain torchmetrics averages over a reflect-padded border too, which differs by ~0.005.
"""

from __future__ import annotations

import math

import torch
from torchmetrics.functional.image import (
    peak_signal_noise_ratio,
    structural_similarity_index_measure,
)

SSIM_BORDER = 5  # (11 - 1) // 2: the Gaussian window's radius
_PSNR_SCALE = 10 / math.log(10)


def psnr(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-image PSNR in dB: ``(B, C, H, W) x 2 -> (B,)``."""
    return peak_signal_noise_ratio(
        pred.clamp(0, 1), target, data_range=1.0, dim=(1, 2, 3), reduction="none"
    )


def ssim(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-image SSIM (interior mean, see the module docstring): ``(B, C, H, W) x 2 -> (B,)``."""
    _, full = structural_similarity_index_measure(
        pred.clamp(0, 1), target, data_range=1.0, reduction="none", return_full_image=True
    )
    b = SSIM_BORDER
    interior = full[..., b:-b, b:-b] if min(full.shape[-2:]) > 2 * b else full
    return interior.reshape(interior.shape[0], -1).mean(-1)


def psnr_loss(pred: torch.Tensor, target: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """NAFNet's PSNR loss: the batch mean of ``10 log10(MSE_i + eps)`` (= minus the PSNR)."""
    mse = (pred - target).pow(2).mean(dim=(1, 2, 3))
    return _PSNR_SCALE * torch.log(mse + eps).mean()
