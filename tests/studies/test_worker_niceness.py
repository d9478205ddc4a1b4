"""Trial workers run at the search command's own priority (Ray's default is nice 15: every trial
then yields to any ordinary process), or at the study's ``worker_niceness``."""

from __future__ import annotations

import subprocess
import sys

import pytest

from nas.errors import ConfigError
from studies.search.ray_session import worker_niceness_env
from tests.studies.conftest import child_env

PROBE = """
import os, sys
os.nice(int(sys.argv[1]))
import ray
from studies.search.ray_session import ray_session
arg = None if sys.argv[2] == "none" else int(sys.argv[2])
with ray_session(None, 1, 1, arg):
    print("worker", ray.get(ray.remote(lambda: os.nice(0)).remote()))
"""


@pytest.mark.parametrize(("own", "asked", "worker"), [(0, "none", 0), (5, "none", 5),
                                                      (5, "12", 12)])  # fmt: skip
def test_local_ray_workers_run_at_the_commands_niceness(own, asked, worker) -> None:
    proc = subprocess.run([sys.executable, "-c", PROBE, str(own), asked], capture_output=True,
                          text=True, timeout=180, env=child_env())  # fmt: skip
    assert f"worker {worker}" in proc.stdout, proc.stderr[-2000:]


def test_a_niceness_that_would_raise_priority_is_refused(monkeypatch) -> None:
    import os

    monkeypatch.setattr(os, "nice", lambda inc: 5)
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert worker_niceness_env(None) == {"RAY_worker_niceness": "0"}
    assert worker_niceness_env(7) == {"RAY_worker_niceness": "2"}
    with pytest.raises(ConfigError, match="worker_niceness: 2 must be in 5..19"):
        worker_niceness_env(2)
    with pytest.raises(ConfigError, match="worker_niceness: 20 must be in 5..19"):
        worker_niceness_env(20)
