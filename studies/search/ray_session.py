"""Ray for one search: joined at an address, or started locally, quiet, offline and private.

``ray_session`` starts a local Ray with the run's CPUs and no dashboard, listening on 127.0.0.1
only (or joins a cluster at ``--ray-address``, failing in seconds when nothing answers there or
when no node has the CPUs one trial asks for) and shuts it down afterwards; an already
initialised Ray is used as it is. Each run gets a scratch folder (``unetmm-run-*`` in the temp
dir: Tune's files and a local Ray's session files), removed at the end; the folders of runs that
were killed (their process is gone) are removed when the next run starts. While the session is
up, Ray Tune's log of a lost storage is held back (``studies.storage.LostStorageLogFilter``), so
is its traceback of a trial whose worker or node died (``LostWorkerLogFilter``: one line says it),
SIGTERM is handled like Ctrl-C again (``studies.signals``; ``ray.init`` replaces it), and a
local Ray's own processes ignore it, so a SIGTERM to the whole process group stops the search
as cleanly as one to the search alone.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import socket
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from nas.errors import ConfigError
from studies import compat
from studies.search.heartbeat import driver_alive, driver_id
from studies.signals import children_ignore_sigterm, sigterm_as_interrupt
from studies.storage import LostStorageLogFilter

# Ray and Tune settings for a quiet, local, offline run (a user's own value wins).
RAY_ENV = {
    "TUNE_DISABLE_STRICT_METRIC_CHECKING": "1",  # results carry phase-specific keys
    "RAY_AIR_NEW_OUTPUT": "0",  # no Tune tables on stdout: Progress prints ours
    "RAY_USAGE_STATS_ENABLED": "0",
    "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1",  # no CSV/JSON/TensorBoard result files
    "RAY_DEDUP_LOGS": "0",
    "TUNE_DISABLE_SIGINT_HANDLER": "1",  # Ctrl-C is ours: studies.signals.graceful_stop
}
# where Tune logs searcher errors and lost trials, and where Optuna's RDB storage warns of a
# broken query
QUIET_LOGGERS = ("ray.tune.execution.tune_controller", "ray.tune.tune",
                 "optuna.storages._rdb.storage")  # fmt: skip


class LostWorkerLogFilter(logging.Filter):
    """Shortens Tune's log of a trial whose worker or node died (Ray's ``RayActorError``,
    ``NodeDiedError``, ``WorkerCrashedError``, ``OutOfMemoryError``) to one line with Ray's
    reason, without the traceback, and drops the closing "Trials did not complete": the
    searcher tells such a trial as lost and queues its design again, and the progress prints a
    line for it (``StudySearcher.lost_numbers``). A trial's own error never reaches Tune
    (``worker.run_trial`` reports it), so any other traceback is a bug and stays whole."""

    def filter(self, record: logging.LogRecord) -> bool:
        import ray.exceptions as rex

        lost = (rex.RayActorError, rex.NodeDiedError, rex.WorkerCrashedError,
                rex.OutOfMemoryError)  # fmt: skip
        exc = record.exc_info[1] if record.exc_info else None
        if exc is not None and isinstance(exc, lost):
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            record.msg, record.args, record.exc_info = (
                f"{record.getMessage()}: its worker or node was lost: {reason[:300]}", (), None)
            return True
        return not record.getMessage().startswith("Trials did not complete")
RUN_PREFIX = "unetmm-run-"
OWNER_FILE = "owner"  # driver_id() of the run that made the folder
SOCKET_ROOM = 64  # what Ray appends to its temp dir for its longest socket path
MAX_SOCKET_PATH = 107  # AF_UNIX limit on Linux


def check_address(address: str) -> None:
    """Fail in seconds, not minutes, when nothing listens at a Ray address ``host:port``."""
    if address in ("auto", "local") or address.startswith("ray://"):
        return
    host, _, port = address.rpartition(":")
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(
            f"--ray-address: {address!r} needs a port from 1 to 65535, as host:port "
            "(e.g. 10.0.0.5:6379), or auto"
        )
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=3):
            return
    except (OSError, ValueError):
        raise ConfigError(
            f"--ray-address: nothing answers at {address!r}; start a head with "
            "`ray start --head` and pass its address (host:port), or drop --ray-address"
        ) from None


def worker_niceness_env(niceness: int | None) -> dict[str, str]:
    """Ray's ``RAY_worker_niceness`` for a local Ray whose trial workers run at ``niceness``
    (None: this process's own). Ray adds it to the niceness its processes inherit from this
    one, and defaults to 15: then every trial yields to any ordinary process on the machine (a
    quick-preset trial took 7 min 51 s instead of ~25 s beside one nice-5 job). ``ConfigError``
    for a niceness below this process's (only root may raise priority) or outside 0..19."""
    own = os.nice(0)
    if niceness is None:
        return {"RAY_worker_niceness": "0"}
    if not 0 <= niceness <= 19 or (niceness < own and os.geteuid() != 0):
        raise ConfigError(f"worker_niceness: {niceness} must be in {own}..19 (this command "
                          f"runs at nice {own}; only root may run trials at a higher "
                          "priority)")  # fmt: skip
    return {"RAY_worker_niceness": str(niceness - own)}


@contextlib.contextmanager
def ray_session(
    address: str | None, num_cpus: int, cpus_per_trial: int | None = None,
    worker_niceness: int | None = None,
) -> Iterator[Path]:
    """Ray for this run: joined at ``address``, or local with ``num_cpus``, no dashboard, and
    trial workers at ``worker_niceness`` (None: this command's own; ``worker_niceness_env``);
    an already initialised Ray is used as it is (and left running). Yields the run's scratch
    folder (removed afterwards). A cluster joined at ``address`` keeps its own workers' niceness
    (``ray start`` reads ``RAY_worker_niceness`` from its environment)."""
    for key, value in RAY_ENV.items():
        os.environ.setdefault(key, value)
    nice_env = worker_niceness_env(worker_niceness) if not address else {}
    remove_stale_run_dirs()
    run_dir = new_run_dir()
    filters = (LostStorageLogFilter(), LostWorkerLogFilter())
    try:
        for name in QUIET_LOGGERS:
            for quiet in filters:
                logging.getLogger(name).addFilter(quiet)
        with _environ(nice_env), _ray(address, num_cpus, cpus_per_trial, run_dir):
            yield run_dir
    finally:
        for name in QUIET_LOGGERS:
            for quiet in filters:
                logging.getLogger(name).removeFilter(quiet)
        shutil.rmtree(run_dir, ignore_errors=True)


@contextlib.contextmanager
def _environ(values: dict[str, str]) -> Iterator[None]:
    """``values`` in ``os.environ`` while Ray starts (its raylet reads them), then as before."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


@contextlib.contextmanager
def _ray(address: str | None, num_cpus: int, cpus_per_trial: int | None, run_dir: Path
         ) -> Iterator[None]:  # fmt: skip
    import ray

    if ray.is_initialized():
        yield
        return
    with contextlib.ExitStack() as stack:
        if address:
            check_address(address)
            kwargs: dict[str, Any] = {"address": address}
        else:
            warn_if_oversubscribed(num_cpus)
            local = stack.enter_context(compat.local_ray_options(str(run_dir / "ray")))
            kwargs = {"address": "local", "num_cpus": num_cpus, "include_dashboard": False,
                      **local}  # fmt: skip
        # A local Ray's processes ignore SIGTERM (this one stops them); one that arrives while
        # Ray starts is held, and delivered once our handler replaced the one ray.init set.
        with children_ignore_sigterm() if not address else contextlib.nullcontext():
            _init(ray, kwargs, address)
            stack.callback(ray.shutdown)
            stack.enter_context(sigterm_as_interrupt())
        if address and cpus_per_trial:
            check_fits(address, cpus_per_trial)
        yield


def _init(ray: Any, kwargs: dict[str, Any], address: str | None) -> None:
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


def signal_stopper() -> Any:
    """A Ray Tune stopper that ends the experiment once Ctrl-C or SIGTERM asked to stop
    (``studies.signals.graceful_stop``): Tune then stops every trial without telling the
    searcher, so the search fails and re-queues them."""
    from ray import tune

    from studies.signals import stop_requested

    class SignalStopper(tune.Stopper):
        def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
            return False

        def stop_all(self) -> bool:
            return stop_requested()

    return SignalStopper()


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask, else the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def warn_if_oversubscribed(num_cpus: int) -> None:
    """One ``warning:`` line on stderr when a local run asks for more CPUs than there are."""
    have = available_cpus()
    if num_cpus > have:
        print(f"warning: this search runs concurrency x cpus_per_trial = {num_cpus} CPU(s) of "
              f"work at once, but {have} CPU(s) are available: trials share CPUs, run slower "
              "and their timings mislead; lower --concurrency or --cpus-per-trial",
              file=sys.stderr)  # fmt: skip


def check_fits(address: str, cpus_per_trial: int) -> None:
    """``ConfigError`` when no node of the joined cluster has ``cpus_per_trial`` CPUs (Ray Tune
    would wait for them forever)."""
    import ray

    largest = max((n.get("Resources", {}).get("CPU", 0) for n in ray.nodes() if n.get("Alive")),
                  default=0)  # fmt: skip
    if largest < cpus_per_trial:
        raise ConfigError(
            f"--cpus-per-trial: a trial asks for {cpus_per_trial} CPU(s), but the largest node "
            f"of the Ray cluster at {address!r} has {largest:g}, so no trial could start; lower "
            "it or add a larger node"
        )


# -- scratch folders ---------------------------------------------------------------------------
def _temp_root() -> Path:
    """The temp dir, unless Ray's socket paths below it would be too long (then /tmp)."""
    root = Path(tempfile.gettempdir())
    if len(str(root)) + len(RUN_PREFIX) + 8 + SOCKET_ROOM > MAX_SOCKET_PATH and Path("/tmp").is_dir():
        return Path("/tmp")
    return root


def new_run_dir() -> Path:
    """A fresh ``unetmm-run-*`` folder, marked with this process's ``driver_id``."""
    path = Path(tempfile.mkdtemp(prefix=RUN_PREFIX, dir=_temp_root()))
    (path / OWNER_FILE).write_text(driver_id())
    return path


def remove_stale_run_dirs() -> list[Path]:
    """Remove the scratch folders of runs on this host whose process is gone (killed runs);
    returns them. Folders of live runs, other hosts or other users stay."""
    removed = []
    for path in _temp_root().glob(f"{RUN_PREFIX}*"):
        try:
            owner = (path / OWNER_FILE).read_text().strip()
        except OSError:
            continue
        if driver_alive(owner) is False:
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


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


def check_gpus(gpus_per_trial: float, fallback: bool, address: str | None) -> float:
    """The GPUs per trial this run asks Ray for. Locally a GPU request needs a GPU torch can
    see: without one it is a ``ConfigError`` before any trial, or with ``fallback`` 0 (the
    trials run on the CPU) and one ``warning:`` line. A joined cluster is checked once joined
    (``check_cluster_gpus``)."""
    if gpus_per_trial <= 0 or address:
        return max(gpus_per_trial, 0.0)
    import torch

    if torch.cuda.is_available():
        return gpus_per_trial
    if fallback:
        print(f"warning: gpus_per_trial: {gpus_per_trial:g} but torch sees no GPU here; the "
              "trials run on the CPU (gpu_fallback: true)", file=sys.stderr, flush=True)  # fmt: skip
        return 0.0
    raise ConfigError(
        f"gpus_per_trial: {gpus_per_trial:g} asks for a GPU share per trial, but torch sees no "
        "GPU on this machine (torch.cuda.is_available() is False); set gpus_per_trial: 0, or "
        "gpu_fallback: true to run on the CPU, or join a GPU cluster with --ray-address"
    )


def check_cluster_gpus(gpus_per_trial: float) -> None:
    """``ConfigError`` when the joined Ray cluster has fewer GPUs than one trial asks for
    (Ray would keep the trials pending forever)."""
    import ray

    have = float(ray.cluster_resources().get("GPU", 0))
    if gpus_per_trial > have:
        raise ConfigError(
            f"--gpus-per-trial: a trial asks for {gpus_per_trial:g} GPU(s), but the cluster has "
            f"{have:g}; lower it, or join a cluster with GPUs"
        )
