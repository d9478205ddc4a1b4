"""Fixtures of the trainers tests: tiny real models and budgets, real scikit-image photos."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nas import ArchConfig, FullSkipsConfig, NAFNetConfig, UNetMMConfig
from trainers.config import ProxyBudget


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


@pytest.fixture
def tiny_arch() -> ArchConfig:
    """NAFNet width 8, two stages, full skips (~10k parameters)."""
    return ArchConfig(NAFNetConfig(8, (1, 1), 1, (1, 1)), FullSkipsConfig())


@pytest.fixture
def tiny_unetmm() -> ArchConfig:
    return ArchConfig(
        NAFNetConfig(8, (1, 1), 1, (1, 1)),
        UNetMMConfig(ratios=None, reduced_channels=(2, 4), aggregated_channels=16),
    )


@pytest.fixture
def tiny_budget() -> ProxyBudget:
    return ProxyBudget(steps=30, eval_every=10, crop=32, batch=4, val_crop=64, lr=5e-3)


@pytest.fixture
def photo() -> np.ndarray:
    """A real RGB photograph (uint8, 512x512x3)."""
    import skimage.data

    return skimage.data.astronaut()
