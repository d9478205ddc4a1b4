"""``unetmm dashboard STORAGE``: optuna-dashboard on the study storage, on 127.0.0.1."""

from __future__ import annotations

import argparse

from studies.cli.common import add_storage_argument


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_storage_argument(p)
    p.add_argument(
        "--port", type=int, default=8080, help="port to listen on (default 8080; 0: any free)"
    )
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to bind (default 127.0.0.1; anything else exposes the study)",
    )
    p.add_argument("--study", metavar="NAME", help="print the URL of this study's page")


def run(args: argparse.Namespace) -> int:
    from studies.results.dashboard import WILDCARD_HOSTS, serve

    def announce(url: str) -> None:
        note = "; it listens on all interfaces" if args.host in WILDCARD_HOSTS else ""
        print(f"optuna-dashboard on {url}  (Ctrl-C stops it{note})", flush=True)

    serve(args.storage, args.host, args.port, args.study, announce)
    return 0
