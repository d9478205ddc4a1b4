"""SIGTERM handled like Ctrl-C, so ``kill PID`` (or a scheduler's stop) ends a command cleanly.

Ray's ``ray.init`` replaces the SIGTERM handler with one that exits at once (and Ray's C++ core
prints a stack dump on the way out), leaving RUNNING trials and orphan workers behind.
``sigterm_as_interrupt`` installs a handler that does whatever SIGINT does at that moment: Ray
Tune's graceful stop while a search runs (trials failed and re-queued, workers stopped), else a
``KeyboardInterrupt``. The CLI installs it for every command, and ``ray_session`` again after
``ray.init``.
"""

from __future__ import annotations

import contextlib
import signal
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


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Handle SIGTERM like Ctrl-C inside the block (main thread only; elsewhere a no-op)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, interrupt_on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
