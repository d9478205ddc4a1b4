"""``unetmm dashboard [STORAGE] [--study NAME]``: optuna-dashboard on the study storage, on
127.0.0.1."""

from __future__ import annotations

import argparse

from nas.errors import ConfigError
from studies.cli.common import add_storage_argument, storage_of


def port(text: str) -> int:
    """A TCP port number, 0 to 65535 (0: any free port)."""
    if not text.isdigit() or int(text) > 65535:
        raise ConfigError(f"--port: {text!r} is not a port; give 0 to 65535 (0: any free port)")
    return int(text)


def host(text: str) -> str:
    """An address this machine can bind (a name must resolve)."""
    import socket

    try:
        socket.getaddrinfo(text or None, None)
    except (OSError, UnicodeError) as exc:
        raise ConfigError(f"--host: cannot use {text!r} ({exc}); give an address of this "
                          "machine, e.g. 127.0.0.1") from None  # fmt: skip
    return text


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_storage_argument(p, study_help="print the URL of this study's page")
    p.add_argument("--port", default="8080", help="port to listen on (default 8080; 0: any free)")
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to bind (default 127.0.0.1; anything else exposes the study)",
    )


def run(args: argparse.Namespace) -> int:
    from studies.results.dashboard import WILDCARD_HOSTS, serve

    def announce(url: str) -> None:
        note = "; it listens on all interfaces" if args.host in WILDCARD_HOSTS else ""
        print(f"optuna-dashboard on {url}  (Ctrl-C stops it{note})", flush=True)

    serve(storage_of(args), host(args.host), port(args.port), args.study, announce)
    return 0
