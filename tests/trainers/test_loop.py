"""trainers.loop: compute settings are restored for the caller."""

from __future__ import annotations

import pytest
import torch

from trainers.loop import compute_settings, flushing_denormals


def _subnormal_product() -> float:
    return (torch.tensor([1e-30]) * 1e-10).item()  # 1e-40: subnormal in float32


@pytest.mark.parametrize("caller_flushes", [True, False])
def test_compute_settings_restores_threads_and_denormal_flushing(caller_flushes: bool) -> None:
    torch.set_num_threads(2)
    torch.set_flush_denormal(caller_flushes)
    try:
        assert flushing_denormals() is caller_flushes
        with compute_settings(1):
            assert torch.get_num_threads() == 1 and _subnormal_product() == 0.0
        assert torch.get_num_threads() == 2 and flushing_denormals() is caller_flushes
        assert (_subnormal_product() == 0.0) is caller_flushes
    finally:
        torch.set_flush_denormal(False)
        torch.set_num_threads(1)
