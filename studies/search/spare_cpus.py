"""Spare CPUs at the end of a local search go to the trials still running.

Once a run has started its last trial, a slot that frees has nothing left to run: at 40
trials and concurrency 2 the last trial ran 48-66 s alone on a 2-core machine while the other
core idled (``benchmarks/search_overhead.py``, "idle end"). ``SpareCpus`` (a Ray Tune callback
in the driver) then writes the threads each running trial may use, the run's CPUs shared
among them, to a file in the run's scratch folder; ``threads_now`` (in the worker, at each
validation) reads it and the proxy goes on with that many threads (``worker.train``).

A share is only taken for cores that are really idle: the worker measures the machine's idle
cores (``/proc/stat``) and the cores its own process got since its last validation
(``CpuMeter``), takes at most the idle ones (``spare_threads``), and gives the extra threads back
at its next validation when it no longer gets the cores they need (another process came).
Without ``/proc/stat`` no share is taken.

Only for a local Ray on CPU trials (the driver passes no file otherwise): on a cluster a free
CPU belongs to Ray's other work. More threads change a score by float rounding only, as
``cpus_per_trial`` does (the score cache ignores thread counts for the same reason).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ray.tune import Callback

from nas.files import write_text_atomic

FILE_NAME = "spare_cpus"


class SpareCpus(Callback):
    """Writes ``threads per running trial`` to ``path`` whenever a trial ends after the run's
    ``n_trials``-th has started, or after ``finished()`` says the searcher will start no more
    (it found nothing new to judge); ``total_cpus`` are the run's."""

    def __init__(self, path: str, n_trials: int, total_cpus: int, cpus_per_trial: int,
                 finished: Callable[[], bool] | None = None) -> None:  # fmt: skip
        self.path, self.n_trials = path, n_trials
        self.total_cpus, self.cpus_per_trial = total_cpus, cpus_per_trial
        self.finished = finished
        self.started = 0
        self.running: set[str] = set()

    def __getstate__(self) -> dict[str, Any]:  # Ray may pickle callbacks with the Tuner
        return {**vars(self), "finished": None}

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.started += 1
        self.running.add(trial.trial_id)

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._ended(trial)

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._ended(trial)

    def _ended(self, trial: Any) -> None:
        self.running.discard(trial.trial_id)
        last_started = self.started >= self.n_trials or (self.finished and self.finished())
        if not last_started or not self.running:
            return
        share = max(self.cpus_per_trial, self.total_cpus // len(self.running))
        write_text_atomic(self.path, str(share))  # a worker reads the old number or the new one


class CpuMeter:
    """Cores the machine left idle, and cores this process used, between two ``sample()`` calls
    (the first interval starts at construction). Linux only: elsewhere ``sample()`` is None."""

    def __init__(self) -> None:
        self._last = self._read()

    @staticmethod
    def _read() -> tuple[float, float, float, float] | None:
        try:
            with open("/proc/stat") as f:
                fields = [float(v) for v in f.readline().split()[1:]]
        except (OSError, ValueError, IndexError):
            return None
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0.0)  # idle + iowait
        return idle, sum(fields[:8]), time.process_time(), time.monotonic()

    def sample(self) -> tuple[float, float] | None:
        """``(idle cores, cores this process used)`` averaged since the last sample."""
        now, last = self._read(), self._last
        self._last = now
        if now is None or last is None or now[1] <= last[1] or now[3] <= last[3]:
            return None
        cores = os.cpu_count() or 1
        idle = cores * (now[0] - last[0]) / (now[1] - last[1])
        return idle, (now[2] - last[2]) / (now[3] - last[3])


def spare_threads(share: int, own: int, current: int, idle: float, used: float) -> int:
    """The threads to run with: ``own`` plus at most the ``idle`` cores, up to ``share``. A run
    with extra threads (``current > own``) that used half a core less than it has threads was
    crowded out: it goes back to ``own``."""
    if share <= own:
        return own
    if current > own and used < current - 0.5:
        return own
    return max(own, min(share, current + math.floor(idle + 0.2)))


def threads_now(path: str | None, threads: int, current: int | None = None,
                meter: CpuMeter | None = None) -> int:  # fmt: skip
    """The threads a trial may use now: its own ``threads``, or more when ``SpareCpus`` wrote a
    larger share to ``path`` and ``meter`` saw idle cores for them (``spare_threads``; a missing
    or unreadable file, or no ``meter`` reading: its own). ``current``: the threads it runs
    with now (default: its own)."""
    if path is None:
        return threads
    try:
        share = int(Path(path).read_text())
    except (OSError, ValueError):
        return threads
    if share <= threads:
        return threads
    reading = meter.sample() if meter is not None else None
    if reading is None:
        return threads
    return spare_threads(share, threads, threads if current is None else current, *reading)
