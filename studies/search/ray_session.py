"""Ray for one search: joined at an address, or started locally, quiet and offline.

``ray_session`` starts a local Ray with the run's CPUs and no dashboard (or joins a cluster at
``--ray-address``, failing in seconds when nothing answers there) and shuts it down afterwards;
an already initialised Ray is used as it is.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import sys
import tempfile
from collections.abc import Iterator
from typing import Any

from nas.errors import ConfigError

# Ray and Tune settings for a quiet, local, offline run (a user's own value wins).
RAY_ENV = {
    "TUNE_DISABLE_STRICT_METRIC_CHECKING": "1",  # results carry phase-specific keys
    "RAY_AIR_NEW_OUTPUT": "0",  # no Tune tables on stdout: Progress prints ours
    "RAY_USAGE_STATS_ENABLED": "0",
    "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1",  # no CSV/JSON/TensorBoard result files
    "RAY_DEDUP_LOGS": "0",
}


def check_address(address: str) -> None:
    """Fail in seconds, not minutes, when nothing listens at a Ray address ``host:port``."""
    if address in ("auto", "local") or address.startswith("ray://"):
        return
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=3):
            return
    except (OSError, ValueError):
        raise ConfigError(
            f"--ray-address: nothing answers at {address!r}; start a head with "
            "`ray start --head` and pass its address (host:port), or drop --ray-address"
        ) from None


@contextlib.contextmanager
def ray_session(address: str | None, num_cpus: int) -> Iterator[None]:
    """Ray for this run: joined at ``address``, or local with ``num_cpus`` and no dashboard;
    an already initialised Ray is used as it is (and left running)."""
    import ray

    for key, value in RAY_ENV.items():
        os.environ.setdefault(key, value)
    if ray.is_initialized():
        yield
        return
    if address:
        check_address(address)
        kwargs: dict[str, Any] = {"address": address}
    else:
        kwargs = {"address": "local", "num_cpus": num_cpus, "include_dashboard": False}
    with _quiet_stderr(enabled=bool(address)) as said:
        try:
            ray.init(**kwargs, logging_level=logging.ERROR, log_to_driver=False,
                     configure_logging=True)  # fmt: skip
        except (ConnectionError, RuntimeError) as exc:
            hint = ""
            if "AuthToken" in said() or "token" in str(exc).lower():
                hint = ("; the cluster wants token authentication: set RAY_AUTH_MODE=token and "
                        "RAY_AUTH_TOKEN (or RAY_AUTH_TOKEN_PATH) to the head's token")  # fmt: skip
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ConfigError(f"--ray-address: cannot join {address!r}: {first}{hint}") from None
    try:
        yield
    finally:
        ray.shutdown()


@contextlib.contextmanager
def _quiet_stderr(enabled: bool) -> Iterator[Any]:
    """Hold back what Ray's C++ client prints on file descriptor 2 while joining (a line a
    second while it retries); the caller can read it. Printed again unless discarded."""
    if not enabled:
        yield lambda: ""
        return
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as held:
        os.dup2(held.fileno(), 2)
        text = lambda: (held.seek(0), held.read().decode(errors="replace"))[1]  # noqa: E731
        failed = True
        try:
            yield text
            failed = False
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            if not failed:  # joined: show what Ray said, minus the retry noise
                lines = [ln for ln in text().splitlines() if "gcs_client.cc" not in ln]
                if lines:
                    print("\n".join(lines), file=sys.stderr)
