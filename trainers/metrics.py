"""PSNR and SSIM on RGB images in [0, 1] (torchmetrics), and NAFNet's PSNR loss.

Both metrics are per image, ``(B, C, H, W) -> (B,)``, on predictions clamped to [0, 1].

- PSNR: ``torchmetrics.functional.image.peak_signal_noise_ratio`` with ``data_range=1`` over
  each whole image (all channels), i.e. ``10 log10(1 / MSE)``.
- SSIM: torchmetrics' SSIM map (Gaussian window 11x11, sigma 1.5, K1=0.01, K2=0.03, computed per
  channel), averaged over the interior only (a 5-pixel border dropped), which is Wang et al.'s
  reference convention and equals scikit-image's ``structural_similarity(gaussian_weights=True,
  sigma=1.5, use_sample_covariance=False, data_range=1, channel_axis=-1)`` (tests check this).
  Plain torchmetrics averages over a reflect-padded border too, which differs by ~0.005.

Alpha matting (``(B, 1, H, W)`` mattes in [0, 1], predictions clamped to [0, 1]), the convention of
the Adobe/P3M evaluation scripts that the UNet-- paper's Table 7 uses:

- SAD: ``sum |pred - alpha| / 1000`` over the region (SAD "in thousands");
- MSE: ``sum (pred - alpha)**2 / pixels`` of the region, a plain mean in [0, 1] units (the paper
  prints it x1e3: its "MSE* 14.107" is 0.014107 here);
- the region is the whole image, or the trimap's unknown pixels (neither 0 nor 1); an image
  without unknown pixels has no unknown-region score (NaN).
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


def _region_sums(
    err: torch.Tensor, mask: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image sum of ``err`` over ``mask`` (None: everywhere) and the region's pixel count."""
    if mask is not None:
        err = err * mask
        count = mask.flatten(1).sum(-1)
    else:
        count = torch.full((err.shape[0],), float(err[0].numel()), dtype=err.dtype)
    return err.flatten(1).sum(-1), count


def sad(pred: torch.Tensor, alpha: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Per-image SAD / 1000 over ``mask`` (a 0/1 map like ``alpha``; None: the whole image):
    ``(B, 1, H, W) x 2 -> (B,)``; NaN where the mask is empty."""
    total, count = _region_sums((pred.clamp(0, 1) - alpha).abs(), mask)
    return torch.where(count > 0, total / 1000, torch.nan)


def mse(pred: torch.Tensor, alpha: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Per-image mean squared error over ``mask`` (None: the whole image): ``(B,)``; NaN where
    the mask is empty."""
    total, count = _region_sums((pred.clamp(0, 1) - alpha).square(), mask)
    return torch.where(count > 0, total / count.clamp(min=1), torch.nan)


def unknown_region(trimap: torch.Tensor) -> torch.Tensor:
    """The trimap's unknown pixels (neither 0 nor 1) as a 0/1 float map of the same shape."""
    return ((trimap > 0) & (trimap < 1)).to(torch.float32)


def l1_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute error over the batch (the alpha loss of matting)."""
    return (pred - target).abs().mean()


Scores = dict[str, torch.Tensor]  # score name -> per-image values (B,)


def restoration_scores(
    pred: torch.Tensor, target: torch.Tensor, trimap: torch.Tensor | None = None
) -> Scores:
    """``psnr`` and ``ssim`` per image (``trimap`` is ignored)."""
    return {"psnr": psnr(pred, target), "ssim": ssim(pred, target)}


def matting_scores(
    pred: torch.Tensor, alpha: torch.Tensor, trimap: torch.Tensor | None = None
) -> Scores:
    """``psnr``/``ssim`` of the alpha, ``sad``/``mse`` over the whole image and, with a trimap,
    ``sad_unknown``/``mse_unknown`` over its unknown region; per image."""
    out = {"psnr": psnr(pred, alpha), "ssim": ssim(pred, alpha),
           "sad": sad(pred, alpha), "mse": mse(pred, alpha)}  # fmt: skip
    if trimap is not None:
        region = unknown_region(trimap)
        out["sad_unknown"], out["mse_unknown"] = sad(pred, alpha, region), mse(pred, alpha, region)
    return out
