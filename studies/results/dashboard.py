"""Serve optuna-dashboard on a study storage, bound to 127.0.0.1 unless told otherwise.

Nothing is translated on the way: the search stores what a plain ``optuna-dashboard`` reads
(``studies.schema``): objective names with units, constraints in the list form it reads as
well as Optuna 5's named form, short user attributes. What ``unetmm dashboard`` adds is the
study's artifact store (``studies.artifacts``), so the dashboard can show each trial's
``arch.json`` and ``results.json``. Two gaps remain that only ``unetmm report`` closes: the
dashboard's server-side "best trials" list ignores constraints, and it cannot know that trials
with status ``stopped`` hold partial scores. Trials written before the list form (constraints
only as ``constraints:<name>``) look feasible to it: ``old_constraint_trials`` counts them, and
the command says so.
"""

from __future__ import annotations

import socket
import socketserver
import sys
from collections.abc import Callable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import optuna

from nas.errors import ConfigError
from studies import schema
from studies.artifacts import artifact_store
from studies.storage import open_existing, shown, storage_url


def old_constraint_trials(store: optuna.storages.BaseStorage, study_id: int) -> int:
    """Trials of the study whose constraints optuna-dashboard cannot see (named form only)."""
    return sum(
        1
        for t in store.get_all_trials(study_id, deepcopy=False)
        if schema.CONSTRAINT_LIST not in t.system_attrs
        and any(k.startswith(schema.CONSTRAINT_PREFIX) for k in t.system_attrs)
    )


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

    app = optuna_dashboard.wsgi(store, artifact_store=artifact_store(store))
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
    store = open_existing(storage_url(storage))
    study_id = None
    if study is not None:
        names = [s.study_name for s in store.get_all_studies()]
        if study not in names:
            raise ConfigError(
                f"--study: no study {study!r} in {shown(storage_url(storage))}; "
                f"studies there: {', '.join(sorted(names)) or 'none'}"
            )
        study_id = store.get_study_id_from_name(study)
    ids = (
        [study_id]
        if study_id is not None
        else [store.get_study_id_from_name(s.study_name) for s in store.get_all_studies()]
    )
    old = sum(old_constraint_trials(store, i) for i in ids)
    if old:
        print(f"note: {old} trial(s) were stored before constraints were written in the form "
              "optuna-dashboard reads: it shows them as feasible (unetmm report tells them "
              "apart)", file=sys.stderr)  # fmt: skip
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
