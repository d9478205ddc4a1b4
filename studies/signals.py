"""SIGTERM handled like Ctrl-C, so ``kill PID`` (or a scheduler's stop) ends a command cleanly.

While a search runs its trials (``graceful_stop``), the first Ctrl-C or SIGTERM asks it to stop:
Ray Tune stops the running trials (a stopper reads the request), the search fails and re-queues
them and shuts Ray down; a second one stops at once. ``stop_requested`` tells afterwards that
the run was cut short even when no trial was running at that moment.

Ray's ``ray.init`` replaces the SIGTERM handler with one that exits at once (and Ray's C++ core
prints a stack dump on the way out), leaving RUNNING trials and orphan workers behind.
``sigterm_as_interrupt`` installs a handler that does whatever SIGINT does at that moment: Ray
Tune's graceful stop while a search runs (trials failed and re-queued, workers stopped), else a
``KeyboardInterrupt``. The CLI installs it for every command, and ``ray_session`` again after
``ray.init``.

A scheduler often sends SIGTERM to every process of the job at once (``systemd``, Slurm,
``timeout``, ``kill -TERM -PGID``), not to the search process alone. Ray already shields the
processes it starts from Ctrl-C (SIGINT blocked); ``children_ignore_sigterm`` does the same for
SIGTERM while a local Ray starts, so its servers and workers live on until the search has
stopped its trials and shuts them down itself (``ray.shutdown`` ends them with SIGKILL after a
second's grace).
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Iterator
from types import FrameType


def interrupt_on_sigterm(signum: int, frame: FrameType | None) -> None:
    """A SIGTERM handler: call the current SIGINT handler (KeyboardInterrupt by default)."""
    handler = signal.getsignal(signal.SIGINT)
    if callable(handler):
        handler(signal.SIGINT, frame)
    else:  # SIG_DFL / SIG_IGN: what Python's default SIGINT handler would do
        raise KeyboardInterrupt


# SIGHUP (a closed terminal, an ssh session that drops) stops a command as SIGTERM does: by
# default it would kill the process at once, with no message and its trials left RUNNING
STOP_SIGNALS = tuple(getattr(signal, n) for n in ("SIGTERM", "SIGHUP") if hasattr(signal, n))


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Handle SIGTERM and SIGHUP like Ctrl-C inside the block (main thread only; elsewhere a
    no-op)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, interrupt_on_sigterm) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def ignore_stop_signals() -> None:
    """Ignore Ctrl-C, SIGTERM and SIGHUP from now on: the command is already ending."""
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, *STOP_SIGNALS):
            signal.signal(sig, signal.SIG_IGN)


_STOP = threading.Event()


def stop_requested() -> bool:
    """Whether Ctrl-C or SIGTERM asked the last ``graceful_stop`` block to stop."""
    return _STOP.is_set()


@contextlib.contextmanager
def graceful_stop(notice: str = "") -> Iterator[threading.Event]:
    """Inside the block the first Ctrl-C or SIGTERM only sets the event it yields (and prints
    ``notice`` on stderr): the caller winds its work down. A second one raises
    ``KeyboardInterrupt``. Main thread only; elsewhere the event is never set by a signal."""
    _STOP.clear()
    if threading.current_thread() is not threading.main_thread():
        yield _STOP
        return

    def request(signum: int, frame: FrameType | None) -> None:
        if _STOP.is_set():
            raise KeyboardInterrupt
        _STOP.set()
        if notice:
            print(notice, file=sys.stderr, flush=True)

    previous = {sig: signal.signal(sig, request) for sig in (signal.SIGINT, *STOP_SIGNALS)}
    try:
        yield _STOP
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextlib.contextmanager
def children_ignore_sigterm() -> Iterator[None]:
    """Processes started inside the block (and theirs) have SIGTERM blocked: it stays pending,
    never delivered (a signal mask is inherited through fork and exec and kept by handlers).
    This thread's own mask is restored afterwards. Main thread on POSIX only; else a no-op."""
    if not hasattr(signal, "pthread_sigmask") or (
        threading.current_thread() is not threading.main_thread()
    ):
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, set(STOP_SIGNALS))
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
