"""trainers.degrade: noise level, blur kernels, bicubic down/up, reproducibility."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from trainers.config import TaskConfig
from trainers.degrade import blur_kernel, degrade, gaussian_kernel, motion_kernel
from trainers.metrics import psnr


def _photo_batch(photo: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(photo[200:328, 200:328].astype(np.float32) / 255).permute(2, 0, 1)[None]


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_denoise_adds_gaussian_noise_of_sigma(photo: np.ndarray) -> None:
    clean = _photo_batch(photo)
    noisy = degrade(clean, TaskConfig(name="denoise", sigma=25), _gen())
    diff = noisy - clean
    assert float(diff.std()) == pytest.approx(25 / 255, rel=0.02)
    assert abs(float(diff.mean())) < 0.002
    # PSNR of unclipped sigma-25 noise: 20 log10(255 / 25) = 20.17 dB; clamping only helps
    assert -10 * np.log10(float(diff.pow(2).mean())) == pytest.approx(20.17, abs=0.2)
    assert float(psnr(noisy, clean)[0]) >= 20.17 - 0.2


def test_noise_is_a_function_of_the_generator_seed(photo: np.ndarray) -> None:
    clean, task = _photo_batch(photo), TaskConfig()
    a, b = degrade(clean, task, _gen(1)), degrade(clean, task, _gen(1))
    assert torch.equal(a, b)
    assert not torch.equal(a, degrade(clean, task, _gen(2)))


def test_gaussian_kernel_is_normalised_and_symmetric() -> None:
    k = gaussian_kernel(15, 2.0)
    assert k.shape == (15, 15) and float(k.sum()) == pytest.approx(1.0, abs=1e-6)
    assert torch.allclose(k, k.T) and torch.allclose(k, k.flip(0))
    assert int(k.argmax()) == 7 * 15 + 7


@pytest.mark.parametrize(("angle", "axis"), [(0.0, 0), (90.0, 1)])
def test_motion_kernel_is_a_line_through_the_centre(angle: float, axis: int) -> None:
    k = motion_kernel(15, 9, angle)
    assert float(k.sum()) == pytest.approx(1.0, abs=1e-6)
    line = k[7] if axis == 0 else k[:, 7]  # the centre row (horizontal) or column (vertical)
    assert float(line.sum()) == pytest.approx(1.0, abs=1e-4)
    assert int((line > 1e-3).sum()) == 9  # nine pixels long


@pytest.mark.parametrize("task", [
    TaskConfig(name="deblur", blur="gaussian", kernel_size=15, blur_sigma=2.0),
    TaskConfig(name="deblur", blur="motion", kernel_size=15, motion_length=11, motion_angle=30),
    TaskConfig(name="sr", scale=2),
    TaskConfig(name="sr", scale=4),
])  # fmt: skip
def test_blur_and_sr_keep_flat_images_and_lose_detail(photo: np.ndarray, task: TaskConfig) -> None:
    flat = torch.full((2, 3, 40, 56), 0.3)
    out = degrade(flat, task, _gen())
    assert out.shape == flat.shape and torch.allclose(out, flat, atol=1e-5)
    clean = _photo_batch(photo)
    low = degrade(clean, task, _gen())
    assert low.shape == clean.shape
    assert 20 < float(psnr(low, clean)[0]) < 35  # visibly degraded, still the same image


def test_sr_x4_loses_more_than_x2(photo: np.ndarray) -> None:
    clean = _photo_batch(photo)
    x2 = float(psnr(degrade(clean, TaskConfig(name="sr", scale=2), _gen()), clean)[0])
    x4 = float(psnr(degrade(clean, TaskConfig(name="sr", scale=4), _gen()), clean)[0])
    assert x4 < x2 - 2


def test_blur_kernel_follows_the_task() -> None:
    assert torch.equal(blur_kernel(TaskConfig(name="deblur")), gaussian_kernel(15, 2.0))
    motion = TaskConfig(name="deblur", blur="motion", kernel_size=9, motion_length=5)
    assert torch.equal(blur_kernel(motion), motion_kernel(9, 5, 0.0))
