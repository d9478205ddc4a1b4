"""Serve optuna-dashboard on a study storage, bound to 127.0.0.1 unless told otherwise.

optuna-dashboard 0.21 reads constraint values only from the old ``constraints`` list system
attribute, while Optuna 5's ``Trial.set_constraint`` stores one ``constraints:<name>`` attribute
each, so its Pareto plot would call every trial feasible. ``ConstraintListStorage`` shows the
dashboard both forms (read side only; the database is not changed). Two gaps remain that only
``unetmm report`` closes: the dashboard's server-side "best trials" list ignores constraints, and
it cannot know that trials with status ``stopped`` hold partial scores.
"""

from __future__ import annotations

import socket
import socketserver
import sys
from collections.abc import Callable, Container
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import optuna
from optuna.trial import FrozenTrial, TrialState

from nas.errors import ConfigError
from studies import compat
from studies.storage import open_existing, shown, storage_url

_PREFIX = "constraints:"


def with_constraint_list(trial: FrozenTrial) -> FrozenTrial:
    """``trial`` with its ``constraints:<name>`` values also under the old ``constraints`` list."""
    attrs = trial.system_attrs
    if "constraints" in attrs or not any(k.startswith(_PREFIX) for k in attrs):
        return trial
    values = [float(attrs[k]) for k in sorted(attrs) if k.startswith(_PREFIX)]
    return compat.with_system_attrs(trial, {"constraints": values})


class ConstraintListStorage(optuna.storages.RDBStorage):
    """An ``RDBStorage`` whose trials also carry the old ``constraints`` list (dashboard only)."""

    def get_all_trials(
        self, study_id: int, deepcopy: bool = True, states: Container[TrialState] | None = None
    ) -> list[FrozenTrial]:
        return [with_constraint_list(t) for t in super().get_all_trials(study_id, deepcopy, states)]

    def get_trial(self, trial_id: int) -> FrozenTrial:
        return with_constraint_list(super().get_trial(trial_id))


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


class _ThreadingServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True


def make_dashboard_server(
    store: optuna.storages.BaseStorage, host: str = "127.0.0.1", port: int = 8080
) -> WSGIServer:
    """A WSGI server for optuna-dashboard on ``store`` (port 0 picks a free port)."""
    import optuna_dashboard

    app = optuna_dashboard.wsgi(store)
    try:
        return make_server(
            host, port, app, server_class=_ThreadingServer, handler_class=_QuietHandler
        )
    except OSError as exc:
        raise ConfigError(
            f"--port: cannot listen on {host}:{port} ({exc.strerror}); "
            "pick another port or 0 for any free one"
        ) from None


WILDCARD_HOSTS = ("0.0.0.0", "::", "")  # bind to every interface


def dashboard_url(server: WSGIServer, study_id: int | None = None) -> str:
    """A URL a browser on this machine can open: a server bound to every interface (0.0.0.0,
    ::) is reached on the loopback address."""
    host, port = server.server_address[:2]
    if host in WILDCARD_HOSTS:
        host = "127.0.0.1" if server.address_family == socket.AF_INET else "[::1]"
    elif ":" in host:
        host = f"[{host}]"
    path = f"/dashboard/studies/{study_id}" if study_id is not None else "/dashboard"
    return f"http://{host}:{port}{path}"


def open_dashboard(
    storage: str, host: str = "127.0.0.1", port: int = 8080, study: str | None = None
) -> tuple[WSGIServer, str]:
    """A listening (not yet serving) dashboard server on ``storage`` and its URL (of
    ``study``'s page if given)."""
    store = open_existing(storage_url(storage), ConstraintListStorage)
    study_id = None
    if study is not None:
        names = [s.study_name for s in store.get_all_studies()]
        if study not in names:
            raise ConfigError(
                f"--study: no study {study!r} in {shown(storage_url(storage))}; "
                f"studies there: {', '.join(sorted(names)) or 'none'}"
            )
        study_id = store.get_study_id_from_name(study)
    server = make_dashboard_server(store, host, port)
    return server, dashboard_url(server, study_id)


def serve(
    storage: str,
    host: str = "127.0.0.1",
    port: int = 8080,
    study: str | None = None,
    announce: Callable[[str], None] | None = None,
) -> None:
    """Serve until interrupted; ``announce`` gets the URL (see ``open_dashboard``) once the
    socket listens."""
    server, url = open_dashboard(storage, host, port, study)
    (announce or (lambda s: print(s, flush=True)))(url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("dashboard stopped", file=sys.stderr)
    finally:
        server.server_close()
