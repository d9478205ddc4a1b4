"""Shared test setup: an isolated cost cache and single-threaded torch for every test session."""

from __future__ import annotations

import os

import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    os.environ["UNETMM_CACHE_DIR"] = str(tmp_path_factory.mktemp("unetmm-cache"))
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # for the CLI subprocesses the tests start
    torch.set_num_threads(1)  # tiny models; OpenMP spinning on a busy 2-core box costs more
