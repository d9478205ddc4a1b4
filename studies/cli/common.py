"""Arguments that several ``unetmm`` subcommands share."""

from __future__ import annotations

import argparse

STUDY_HELP = "study name (default: the storage's only study)"


def add_storage_argument(p: argparse.ArgumentParser) -> None:
    """The positional STORAGE argument that report, export and dashboard share."""
    p.add_argument(
        "storage",
        metavar="STORAGE",
        help="study storage: a SQLite .db file or a URL (sqlite:///..., postgresql://...)",
    )
