"""Training batches through a ``torch.utils.data.DataLoader`` with worker processes.

A stream's ``batch_at(step)`` is a pure function of ``(seed, step)`` (``trainers.data``), so the
loader's item ``k`` is simply ``batch_at(k)``, asked for in step order: 0 workers and N workers
give the same batches, bit for bit, and a resumed run starts the loader at its step. The loader
draws nothing from the caller's random generators (its own ``torch.Generator``), so adding it
changes no other random number of a run.

Workers are forked (the streams hold their decoded images and loaders that need not pickle); on
a platform without ``fork`` the batches are made in the training process (``effective_workers``
says how many workers really run). Each worker keeps its own decoded-image cache (up to
``data.cache_mb``).
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterable, Iterator

import torch
from torch.utils.data import DataLoader, Dataset

from trainers.tasks import Stream

MAX_DEFAULT_WORKERS = 4

Batch = tuple[torch.Tensor, torch.Tensor]


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def effective_workers(workers: int | None) -> int:
    """``workers`` as it will run: None -> ``min(4, usable CPUs)``; 0 where ``fork`` is missing."""
    if "fork" not in multiprocessing.get_all_start_methods():
        return 0
    return min(MAX_DEFAULT_WORKERS, usable_cpus()) if workers is None else workers


class StepBatches(Dataset[Batch]):
    """Map-style dataset whose item ``k`` is ``stream.batch_at(k)`` (already a whole batch)."""

    def __init__(self, stream: Stream) -> None:
        self.stream = stream

    def __getitem__(self, k: int) -> Batch:
        return self.stream.batch_at(k)


def step_batches(stream: Stream, first: int, stop: int, workers: int | None = None,
                 pin_memory: bool = False) -> Iterator[Batch]:  # fmt: skip
    """``batch_at(first), ..., batch_at(stop - 1)`` in order, made by ``effective_workers
    (workers)`` processes (two batches ahead each); ``pin_memory`` for fast copies to a GPU."""
    n = effective_workers(workers)
    steps: Iterable[int] = range(first, stop)
    if first >= stop:  # a finished run: start no workers
        return iter(())
    loader = DataLoader(
        StepBatches(stream),
        batch_size=None,  # an item is a batch already
        sampler=steps,  # type: ignore[arg-type]
        num_workers=n,
        pin_memory=pin_memory,
        multiprocessing_context="fork" if n else None,
        generator=torch.Generator(),  # its base seed is drawn here, not from the global RNG
    )
    return iter(loader)
