"""PSNR and SSIM on RGB images in [0, 1], and NAFNet's PSNR loss.

Both metrics are per image, ``(B, C, H, W) -> (B,)``, on predictions clamped to [0, 1]. Written
here in plain torch (torchmetrics' image module imports scipy and matplotlib: ~2 s in every
fresh trial worker); the tests check both against scikit-image.

- PSNR: ``10 log10(1 / MSE)`` over each whole image (all channels), data range 1.
- SSIM: Wang et al.'s map (Gaussian window 11x11, sigma 1.5, K1=0.01, K2=0.03, per channel,
  population variances), averaged over the interior only: the positions where the whole window
  fits, i.e. a 5-pixel border dropped. This is the reference convention and equals
  scikit-image's ``structural_similarity(gaussian_weights=True, sigma=1.5,
  use_sample_covariance=False, data_range=1, channel_axis=-1)``. An image under 11 pixels on a
  side is reflect-padded by 5 first (every position then counts).

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
import torch.nn.functional as F

SSIM_WINDOW, SSIM_SIGMA, SSIM_K = 11, 1.5, (0.01, 0.03)
SSIM_BORDER = SSIM_WINDOW // 2  # the Gaussian window's radius: 5
_PSNR_SCALE = 10 / math.log(10)


def psnr(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-image PSNR in dB: ``(B, C, H, W) x 2 -> (B,)`` (inf for identical images)."""
    mse = (pred.clamp(0, 1) - target).pow(2).mean(dim=(1, 2, 3))
    return -_PSNR_SCALE * torch.log(mse)


def _blur(x: torch.Tensor, window: torch.Tensor) -> torch.Tensor:
    """Each channel convolved with the separable Gaussian ``window``, valid positions only."""
    c, n = x.shape[1], window.numel()
    x = F.conv2d(x, window.view(1, 1, 1, n).expand(c, 1, 1, n), groups=c)
    return F.conv2d(x, window.view(1, 1, n, 1).expand(c, 1, n, 1), groups=c)


def ssim(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-image SSIM (interior mean, see the module docstring): ``(B, C, H, W) x 2 -> (B,)``."""
    x, y = pred.clamp(0, 1), target.to(pred.dtype)
    if min(x.shape[-2:]) < SSIM_WINDOW:
        x, y = (F.pad(t, (SSIM_BORDER,) * 4, mode="reflect") for t in (x, y))
    offsets = torch.arange(SSIM_WINDOW, dtype=x.dtype, device=x.device) - SSIM_BORDER
    window = torch.exp(-offsets.pow(2) / (2 * SSIM_SIGMA**2))
    window = window / window.sum()
    mx, my = _blur(x, window), _blur(y, window)
    vx, vy = _blur(x * x, window) - mx * mx, _blur(y * y, window) - my * my
    cov = _blur(x * y, window) - mx * my
    c1, c2 = SSIM_K[0] ** 2, SSIM_K[1] ** 2
    s = (2 * mx * my + c1) * (2 * cov + c2) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return s.flatten(1).mean(1)


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
