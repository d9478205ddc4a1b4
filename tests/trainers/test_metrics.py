"""trainers.metrics against analytic values and scikit-image."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from trainers.metrics import psnr, psnr_loss, ssim


def _chw(img: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(img).permute(2, 0, 1)[None].double()


def test_psnr_of_a_known_mse() -> None:
    target = torch.zeros(2, 3, 16, 16)
    pred = torch.stack([torch.full((3, 16, 16), 0.1), torch.full((3, 16, 16), 0.01)])
    # MSE 0.01 -> 20 dB, MSE 1e-4 -> 40 dB
    assert psnr(pred, target).tolist() == pytest.approx([20.0, 40.0], abs=1e-4)


def test_psnr_clamps_predictions_to_the_image_range() -> None:
    target = torch.ones(1, 3, 8, 8)
    assert math.isinf(float(psnr(target + 0.5, target)[0]))  # clamped to 1 -> identical


def test_psnr_and_ssim_match_scikit_image_on_a_photo(photo: np.ndarray) -> None:
    clean = photo[100:228, 150:278].astype(np.float64) / 255
    rng = np.random.default_rng(0)
    noisy = np.clip(clean + rng.normal(0, 0.1, clean.shape), 0, 1)
    ref_psnr = peak_signal_noise_ratio(clean, noisy, data_range=1.0)
    ref_ssim = structural_similarity(
        clean, noisy, data_range=1.0, channel_axis=-1, gaussian_weights=True, sigma=1.5,
        use_sample_covariance=False,
    )  # fmt: skip
    assert float(psnr(_chw(noisy), _chw(clean))[0]) == pytest.approx(ref_psnr, abs=1e-6)
    assert float(ssim(_chw(noisy), _chw(clean))[0]) == pytest.approx(ref_ssim, abs=1e-6)
    assert 0.3 < ref_ssim < 0.6


def test_ssim_of_identical_images_is_one(photo: np.ndarray) -> None:
    x = _chw(photo[:64, :64].astype(np.float64) / 255).float()
    assert float(ssim(x, x)[0]) == pytest.approx(1.0, abs=1e-6)


def test_psnr_loss_is_minus_the_mean_psnr() -> None:
    gen = torch.Generator().manual_seed(0)
    target = torch.rand(4, 3, 16, 16, generator=gen)
    pred = (target + 0.05 * torch.randn(4, 3, 16, 16, generator=gen)).clamp(0, 1)
    assert float(psnr_loss(pred, target)) == pytest.approx(-float(psnr(pred, target).mean()),
                                                           abs=1e-4)  # fmt: skip
