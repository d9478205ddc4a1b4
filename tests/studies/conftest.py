"""Fixtures of the study tests: real SQL storages (SQLite file, PostgreSQL server), real Ray.

PostgreSQL: ``UNETMM_TEST_POSTGRES_URL`` names a server (CI starts one); otherwise a throwaway
server is started with initdb/pg_ctl (as user ``postgres`` when run as root) in a temp dir on a
free port, and stopped at the end. If neither works the PostgreSQL cases skip with the reason,
unless ``UNETMM_REQUIRE_POSTGRES=1``, which makes them fail. Every test gets a fresh database.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_postgres(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


class PostgresServer:
    """A PostgreSQL server in a temp dir (user postgres, trust auth, 127.0.0.1 on a free port)
    that a test may stop and start again (a storage lost mid-search)."""

    def __init__(self) -> None:
        for tool in ("initdb", "pg_ctl"):
            if shutil.which(tool) is None:
                raise RuntimeError(f"{tool} is not on PATH")
        self.root = Path(tempfile.mkdtemp(prefix="unetmm-pg-"))
        self.data, self.port = self.root / "data", free_port()
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        try:
            self._run(["initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres",
                       "--no-sync"])  # fmt: skip
            self.start()
        except (subprocess.CalledProcessError, RuntimeError):
            shutil.rmtree(self.root, ignore_errors=True)
            raise

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, cmd: list[str]) -> None:
        try:
            subprocess.run(_as_postgres(cmd), check=True, capture_output=True, text=True,
                           timeout=120)  # fmt: skip
        except subprocess.CalledProcessError as exc:
            raise RuntimeError(f"{exc.cmd[-1]} failed: {exc.stderr.strip()[-300:]}") from None

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(["pg_ctl", "-D", str(self.data), "-l", str(self.root / "log"), "-w", "-t",
                   "60", "-o", options, "start"])  # fmt: skip

    def stop(self) -> None:
        """Stop at once (as a crash or a lost network would: no clean goodbye to clients)."""
        subprocess.run(_as_postgres(["pg_ctl", "-D", str(self.data), "-m", "immediate", "-w",
                                     "stop"]), capture_output=True, timeout=60, check=False)  # fmt: skip

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


@contextlib.contextmanager
def throwaway_postgres() -> Iterator[str]:
    """A PostgreSQL server in a temp dir for as long as the block runs; yields its URL."""
    server = PostgresServer()
    try:
        yield server.url
    finally:
        server.close()


@contextlib.contextmanager
def fresh_database(server_url: str) -> Iterator[str]:
    """A new, empty database on the server of ``server_url``; dropped afterwards."""
    import psycopg
    from sqlalchemy.engine import make_url

    url = make_url(server_url)
    name = f"unetmm_test_{uuid.uuid4().hex[:12]}"
    conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True, connect_timeout=10) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(conninfo, autocommit=True, connect_timeout=10) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def storage_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """One storage test suite over both backends: a SQLite file, a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'study.db'}"
        return
    server = request.getfixturevalue("postgres_server")
    with fresh_database(server) as url:
        yield url


def child_env() -> dict[str, str]:
    """Environment for a child process: this checkout on the import path (so Ray workers and
    the CLI import it) and the session's cost cache (``UNETMM_CACHE_DIR``)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [os.environ.get("PYTHONPATH"), str(REPO)]))
    return env


@pytest.fixture
def subprocess_env() -> dict[str, str]:
    """``child_env()`` for the CLI tests (the cost cache of tests/conftest.py included)."""
    return child_env()


@dataclasses.dataclass(frozen=True)
class RayHead:
    address: str
    env: dict[str, str]  # what a driver needs to join (token authentication)


def _ray_auth() -> dict[str, str]:
    import secrets

    return {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}


def _start_node(log_path: Path, auth: dict[str, str], cpus: int, temp_dir: Path,
                head_port: int | None = None, join: str | None = None
                ) -> subprocess.Popen:  # fmt: skip
    """``ray start --block`` on 127.0.0.1 in its own process group: a head on ``head_port``,
    or a node joining the head at ``join``."""
    ray_bin = Path(sys.executable).with_name("ray")
    where = ["--head", f"--port={head_port}", "--include-dashboard=false"] if join is None \
        else [f"--address={join}"]
    cmd = [str(ray_bin), "start", *where, "--block", "--node-ip-address=127.0.0.1",
           f"--num-cpus={cpus}", "--disable-usage-stats", f"--temp-dir={temp_dir}"]  # fmt: skip
    with open(log_path, "w") as log:
        return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                env={**child_env(), **auth}, start_new_session=True)  # fmt: skip


def _wait_port(port: int, proc: subprocess.Popen, log_path: Path) -> None:
    deadline = time.time() + 90
    while True:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            break
        if proc.poll() is not None or time.time() > deadline:
            raise RuntimeError(f"ray head did not start: {log_path.read_text()[-2000:]}")
        time.sleep(0.5)
    time.sleep(2)  # the raylet registers after the GCS port opens


@pytest.fixture
def ray_head(tmp_path: Path) -> Iterator[RayHead]:
    """An existing Ray cluster: ``ray start --head --block`` on 127.0.0.1 (2 CPUs) with token
    authentication (Ray's default for clusters); stops exactly the processes it started."""
    port, auth = free_port(), _ray_auth()
    temp_dir = Path(tempfile.mkdtemp(prefix="rh", dir="/tmp"))  # short: Ray's socket paths
    log_path = tmp_path / "ray-head.log"
    proc = _start_node(log_path, auth, 2, temp_dir, head_port=port)
    try:
        _wait_port(port, proc, log_path)
        yield RayHead(f"127.0.0.1:{port}", auth)
    finally:
        _stop_group(proc)
        shutil.rmtree(temp_dir, ignore_errors=True)


class RayCluster:
    """A head and a worker node on this machine, one CPU each (a two-machine cluster in
    miniature): ``kill_worker`` kills the worker node's processes as a machine loss would,
    ``start_worker`` adds it again (a new node id)."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path, self.auth, self.port = tmp_path, _ray_auth(), free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.head_dir = Path(tempfile.mkdtemp(prefix="rc", dir="/tmp"))
        self.worker_dir: Path | None = None
        self.head = _start_node(tmp_path / "head.log", self.auth, 1, self.head_dir,
                                head_port=self.port)  # fmt: skip
        self.worker: subprocess.Popen | None = None
        _wait_port(self.port, self.head, tmp_path / "head.log")

    def start_worker(self) -> str:
        """Start the worker node; its node id once its raylet registered."""
        self.worker_dir = Path(tempfile.mkdtemp(prefix="rw", dir="/tmp"))
        self.worker = _start_node(self.tmp_path / "worker.log", self.auth, 1, self.worker_dir,
                                  join=self.address)  # fmt: skip
        deadline = time.time() + 90
        while time.time() < deadline:
            for log in self.worker_dir.glob("session_*/logs/raylet.out"):
                for line in log.read_text(errors="replace").splitlines():
                    if "Setting node ID node_id=" in line:
                        time.sleep(2)  # registered with the head a moment later
                        return line.rsplit("node_id=", 1)[1].strip()
            time.sleep(0.5)
        raise RuntimeError(f"worker node did not start: "
                           f"{(self.tmp_path / 'worker.log').read_text()[-2000:]}")

    def kill_worker(self) -> None:
        """SIGKILL every process of the worker node (raylet, its workers): a lost machine."""
        assert self.worker is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.worker.pid, signal.SIGKILL)
        self.worker.wait(timeout=60)
        self.worker = None

    def stop(self) -> None:
        for proc in (self.worker, self.head):
            if proc is not None:
                _stop_group(proc)
        for d in (self.head_dir, self.worker_dir):
            if d is not None:
                shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def ray_cluster(tmp_path: Path) -> Iterator[RayCluster]:
    cluster = RayCluster(tmp_path)
    try:
        yield cluster
    finally:
        cluster.stop()


def _stop_group(proc: subprocess.Popen) -> None:
    """SIGTERM the process group ``proc`` leads (what it started), SIGKILL what is left."""
    for sig, wait in ((signal.SIGTERM, 3), (signal.SIGKILL, 30)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # children that outlived the leader
        return
