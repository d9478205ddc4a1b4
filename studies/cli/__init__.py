"""The ``unetmm`` command line: one subcommand per module in this package
(``studies.cli.<command>``; ``common`` holds the arguments several share).

Each command module defines ``add_arguments(parser)`` and ``run(args) -> int``; it is imported
only when its subcommand runs, so ``unetmm measure`` never pays for importing Ray. A user mistake
(any ``UnetmmError``, or a command line argparse cannot parse) prints one ``error: ...`` line
and exits 2; Ctrl-C, SIGTERM and SIGHUP print ``interrupted`` and exit 130
(``studies.signals``), also while the command's modules are still being imported (this module
imports nothing heavy: ``nas`` brings torch).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import NoReturn

from studies.signals import ignore_stop_signals, sigterm_as_interrupt

USAGE = """\
unetmm searches U-Net skip-connection designs (full, none, subsets, UNet--'s MSIAM + IEM) for
the best restoration accuracy per byte of skip memory (M_sc) and per MAC.

a typical session:
  unetmm measure                            costs of the paper's designs (Table 4)
  unetmm search quick                       a short search; the study goes to ./unetmm.db
  unetmm search quick                       the same command again resumes it (more trials)
  unetmm report --out report/               the Pareto front as HTML and PNGs
  unetmm export --max-m-sc 1MiB --out picks/  the best design within a budget, as a config
  unetmm train picks/quick-trial7.yaml      full training of the design it picked

Studies live in a storage: a SQLite .db file or a PostgreSQL URL, given as STORAGE or
--storage (default ./unetmm.db); a storage holding several studies needs --study NAME.
"""
EPILOG = "Help on one command: unetmm COMMAND --help."

COMMANDS: dict[str, str] = {
    "measure": "Print a Table-4-style cost comparison of skip designs (M_sc, MACs, params).",
    "search": "Run (or resume) a skip-design search from a study YAML or a preset name.",
    "report": "Write the HTML/PNG Pareto report of a stored study.",
    "dashboard": "Serve optuna-dashboard on a study storage (127.0.0.1).",
    "confirm": "Re-train a study's front at a higher fidelity and compare the rankings.",
    "export": "Export the best feasible designs of a study as training configs.",
    "train": "Train an exported (or hand-written) config, with checkpoints and resume.",
}


def _module(name: str):  # type: ignore[no-untyped-def]
    return importlib.import_module(f"studies.cli.{name}")


class Parser(argparse.ArgumentParser):
    """argparse, with a mistake on the command line reported in one ``error:`` line."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {self.prog}: {message} (see {self.prog} --help)\n")


def version() -> str:
    """The installed unetmm version ("unknown" when run from a source tree without install)."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed("unetmm")
    except PackageNotFoundError:
        return "unknown"


def build_parser(argv: Sequence[str]) -> argparse.ArgumentParser:
    parser = Parser(prog="unetmm", description=USAGE, epilog=EPILOG,
                    formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--version", action="version", version=f"unetmm {version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True,
                                title="commands")  # fmt: skip
    chosen = next((a for a in argv if not a.startswith("-")), None)
    for name, help_text in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name == chosen:  # import only the module that will run
            _module(name).add_arguments(p)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        with sigterm_as_interrupt():  # from the start: importing a command takes seconds
            parser = build_parser(argv)
            if not argv:  # what to do is the question: the overview answers it
                parser.print_help()
                return 2
            args = parser.parse_args(argv)
            return int(_module(args.command).run(args) or 0)
    except KeyboardInterrupt:
        ignore_stop_signals()  # a second Ctrl-C must not print a traceback over the message
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        from nas.errors import UnetmmError  # imported late: ``nas`` imports torch (seconds)

        if not isinstance(exc, UnetmmError):
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
