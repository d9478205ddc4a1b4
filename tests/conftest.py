"""Shared test setup: an isolated cost cache and single-threaded torch for every test session."""

from __future__ import annotations

import os

import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    os.environ["UNETMM_CACHE_DIR"] = str(tmp_path_factory.mktemp("unetmm-cache"))
    torch.set_num_threads(min(2, torch.get_num_threads()))
