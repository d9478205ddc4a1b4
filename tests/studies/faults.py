"""Helpers of the fault tests: a storage that can be broken and mended, the processes a command
started, and the TCP ports they listen on (read from /proc, Linux)."""

from __future__ import annotations

import contextlib
import ipaddress
import os
import socket
import stat
import subprocess
import time
from pathlib import Path

import optuna
import pytest

from tests.studies.conftest import PostgresServer

COST_ONLY = "objectives: [m_sc, macs]\nspace: {references: []}\nconcurrency: 1\n"


class BreakableStorage:
    """A study storage a test can make stop answering (``break_``) and come back (``mend``):
    a PostgreSQL server of its own that is stopped and started again, or a SQLite file made
    read-only (root ignores file modes: ``chattr +i`` then)."""

    def __init__(self, kind: str, tmp_path: Path) -> None:
        self.kind, self.server, self.file = kind, None, tmp_path / "study.db"
        self.broken = False
        if kind == "postgresql":
            try:
                self.server = PostgresServer()
            except RuntimeError as exc:
                if os.environ.get("UNETMM_REQUIRE_POSTGRES") == "1":
                    pytest.fail(f"no PostgreSQL server: {exc}")
                pytest.skip(f"no PostgreSQL server: {exc}")

    @property
    def url(self) -> str:
        return self.server.url if self.server else f"sqlite:///{self.file}"

    def break_(self) -> None:
        self.broken = True
        if self.server:
            self.server.stop()
        elif os.geteuid() == 0:
            done = subprocess.run(["chattr", "+i", str(self.file)], capture_output=True, check=False)
            if done.returncode:
                pytest.skip(f"cannot make a file read-only for root: {done.stderr.strip()!r}")
        else:
            self.file.chmod(stat.S_IRUSR | stat.S_IRGRP)
            self.file.parent.chmod(stat.S_IRUSR | stat.S_IXUSR)

    def mend(self) -> None:
        if not self.broken:
            return
        self.broken = False
        if self.server:
            self.server.start()
        elif os.geteuid() == 0:
            subprocess.run(["chattr", "-i", str(self.file)], capture_output=True, check=False)
        else:
            self.file.parent.chmod(stat.S_IRWXU)
            self.file.chmod(stat.S_IRUSR | stat.S_IWUSR)

    def close(self) -> None:
        if self.server:
            self.server.close()
        else:
            self.mend()


def finished(url: str, name: str) -> list[optuna.trial.FrozenTrial]:
    """The finished trials of study ``name`` ([] while it does not exist yet)."""
    try:
        study = optuna.load_study(study_name=name, storage=url)
    except KeyError:
        return []
    return [t for t in study.get_trials(deepcopy=False) if t.state.is_finished()]


def wait_for(predicate, timeout: float, what: str, proc: subprocess.Popen | None = None):  # type: ignore[no-untyped-def]
    """Poll ``predicate`` every second until it returns something true; fail after ``timeout``
    or when ``proc`` ends first."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"the command ended (exit {proc.returncode}) before {what}")
        value = predicate()
        if value:
            return value
        time.sleep(1)
    pytest.fail(f"timed out waiting for {what}")


def group_pids(pgid: int) -> list[int]:
    """Live processes of process group ``pgid`` (what a command started with a new session)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid and fields[0] != "Z":
                pids.append(int(entry.name))
    return pids


def _address(hex_addr: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    raw = bytes.fromhex(hex_addr)
    if len(raw) == 4:
        return ipaddress.ip_address(socket.inet_ntop(socket.AF_INET, raw[::-1]))
    words = b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4))
    return ipaddress.ip_address(socket.inet_ntop(socket.AF_INET6, words))


def listening(pids: list[int]) -> list[tuple[int, str]]:
    """``(pid, address)`` of each TCP socket the processes ``pids`` listen on."""
    by_inode = {}
    for table in ("tcp", "tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/net/{table}").read_text().splitlines()[1:]:
                cols = line.split()
                if cols[3] == "0A":  # LISTEN
                    by_inode[cols[9]] = cols[1].split(":")[0]
    found = []
    for pid in pids:
        with contextlib.suppress(OSError):
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                with contextlib.suppress(OSError):
                    target = os.readlink(fd)
                    inode = target[len("socket:[") : -1] if target.startswith("socket:[") else ""
                    if inode in by_inode:
                        found.append((pid, str(_address(by_inode[inode]))))
    return found


def is_loopback(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    mapped = getattr(ip, "ipv4_mapped", None)
    return ip.is_loopback or bool(mapped and mapped.is_loopback)
