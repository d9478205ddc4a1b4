"""The search driver's heartbeat for the trials it runs (what crash recovery reads).

Ray's OptunaSearch uses ask/tell, where Optuna records no heartbeats; this thread records one
(``storage.record_heartbeat``, Optuna's own table) for every live trial every ``interval``
seconds, so another search on the same storage can tell a trial whose driver died from one
that is still running elsewhere.
"""

from __future__ import annotations

import os
import socket
import threading

import optuna


def _start_ticks(pid: int | str) -> int:
    """When process ``pid`` started, in clock ticks since boot (Linux); 0 where unknown."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return int(fh.read().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return 0


def driver_id() -> str:
    """``host:pid:start`` of this process (start: its start time, so a reused pid differs)."""
    return f"{socket.gethostname()}:{os.getpid()}:{_start_ticks('self')}"


def driver_alive(driver: str) -> bool | None:
    """Whether the process named by ``driver_id`` still runs; None if it ran on another host."""
    try:
        host, pid, started = driver.rsplit(":", 2)
        pid_, started_ = int(pid), int(started)
    except ValueError:
        return None
    if host != socket.gethostname():
        return None
    try:
        os.kill(pid_, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        pass
    return not started_ or _start_ticks(pid_) in (0, started_)


class Heartbeat:
    """A daemon thread beating for ``add``-ed trial ids until ``discard``/``stop``."""

    def __init__(self, storage: optuna.storages.RDBStorage, interval: float) -> None:
        self._db = storage
        self._interval = interval
        self._live: set[int] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="unetmm-heartbeat", daemon=True)

    def start(self) -> Heartbeat:
        if not self._thread.is_alive():
            self._thread.start()
        return self

    def add(self, trial_id: int) -> None:
        with self._lock:
            self._live.add(trial_id)
        self._db.record_heartbeat(trial_id)

    def discard(self, trial_id: int) -> None:
        with self._lock:
            self._live.discard(trial_id)

    @property
    def live(self) -> set[int]:
        with self._lock:
            return set(self._live)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            for trial_id in self.live:
                try:
                    self._db.record_heartbeat(trial_id)
                except Exception:  # noqa: BLE001  (a missed beat is retried next interval)
                    pass

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=self._interval + 5)
