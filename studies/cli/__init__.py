"""The ``unetmm`` command line: one subcommand per module in this package
(``studies.cli.<command>``; ``common`` holds the arguments several share).

Each command module defines ``add_arguments(parser)`` and ``run(args) -> int``; it is imported
only when its subcommand runs, so ``unetmm measure`` never pays for importing Ray. A user mistake
(any ``UnetmmError``) prints one ``error: ...`` line and exits 2; Ctrl-C exits 130.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from nas.errors import UnetmmError

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


def build_parser(argv: Sequence[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="unetmm", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    chosen = next((a for a in argv if not a.startswith("-")), None)
    for name, help_text in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name == chosen:  # import only the module that will run
            _module(name).add_arguments(p)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    try:
        return int(_module(args.command).run(args) or 0)
    except UnetmmError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
