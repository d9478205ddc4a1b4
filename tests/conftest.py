"""Shared test setup: an isolated cost cache and single-threaded torch for every test session;
the session-wide services every folder's tests share (one PostgreSQL server, one local Ray)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import torch

from tests.studies.conftest import throwaway_postgres


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    os.environ["UNETMM_CACHE_DIR"] = str(tmp_path_factory.mktemp("unetmm-cache"))
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # for the CLI subprocesses the tests start
    torch.set_num_threads(1)  # tiny models; OpenMP spinning on a busy 2-core box costs more


# -- one instance a session, whichever folder's tests ask first -------------------------------
@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """URL of a PostgreSQL server (its maintenance database) for this test session."""
    url = os.environ.get("UNETMM_TEST_POSTGRES_URL")
    if url:
        yield url
        return
    try:
        with throwaway_postgres() as started:
            yield started
    except RuntimeError as exc:
        reason = f"no PostgreSQL: UNETMM_TEST_POSTGRES_URL is unset, a local server failed: {exc}"
        if os.environ.get("UNETMM_REQUIRE_POSTGRES") == "1":
            pytest.fail(reason)
        pytest.skip(reason)


@pytest.fixture(scope="session")
def local_ray() -> Iterator[None]:
    """A local Ray with 2 CPUs shared by the in-process search tests (run_search reuses it)."""
    import logging

    import ray

    from studies.search.ray_session import RAY_ENV, worker_niceness_env

    for key, value in {**RAY_ENV, **worker_niceness_env(None)}.items():
        os.environ.setdefault(key, value)
    ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level=logging.ERROR,
             log_to_driver=False)  # fmt: skip
    yield
    ray.shutdown()
