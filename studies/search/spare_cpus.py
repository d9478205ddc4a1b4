"""Spare CPUs at the end of a local search go to the trials still running.

Once a run has started its last trial, a slot that frees has nothing left to run: at 40
trials and concurrency 2 the last trial ran 48-66 s alone on a 2-core machine while the other
core idled (``benchmarks/search_overhead.py``, "idle end"). ``SpareCpus`` (a Ray Tune callback
in the driver) then writes the threads each running trial may use, the run's CPUs shared
among them, to a file in the run's scratch folder; ``threads_now`` (in the worker, at each
validation) reads it and the proxy goes on with that many threads (``worker.train``).

Only for a local Ray on CPU trials (the driver passes no file otherwise): on a cluster a free
CPU belongs to Ray's other work. More threads change a score by float rounding only, as
``cpus_per_trial`` does (the score cache ignores thread counts for the same reason).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ray.tune import Callback

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
        tmp = f"{self.path}.{os.getpid()}.tmp"
        Path(tmp).write_text(str(share))
        os.replace(tmp, self.path)  # a worker reads the old number or the new one, whole


def threads_now(path: str | None, threads: int) -> int:
    """The threads a trial may use now: its own ``threads``, or the share ``SpareCpus`` wrote
    to ``path`` when that is more (a missing or unreadable file: its own)."""
    if path is None:
        return threads
    try:
        return max(threads, int(Path(path).read_text()))
    except (OSError, ValueError):
        return threads
