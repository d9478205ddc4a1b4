"""Arguments and checks that several ``unetmm`` subcommands share.

- The study storage: every command takes it as a positional STORAGE or as ``--storage`` (the
  same thing twice is fine, two different ones are refused), and the study as ``--study`` or
  ``--study-name``; reading commands default to ``unetmm.db`` in the working directory, as
  ``unetmm search`` does.
- Outputs: ``output_folder`` and ``output_file`` check a path before any work is done (a file
  where a folder belongs, a folder that cannot be created or written, a missing parent folder,
  an unsupported plot format), and a failed command leaves no empty folder it created behind.
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from nas.errors import ConfigError

STUDY_HELP = "study name (default: the storage's only study)"
STORAGE_HELP = ("study storage: a SQLite .db file or a URL (sqlite:///..., postgresql://...); "
                "default unetmm.db in the working directory")  # fmt: skip
DEFAULT_STORAGE = "unetmm.db"


def add_storage_argument(p: argparse.ArgumentParser, study_help: str = STUDY_HELP) -> None:
    """[STORAGE] or --storage URL, and --study/--study-name NAME (report, export, dashboard)."""
    p.add_argument("storage", nargs="?", metavar="STORAGE", help=STORAGE_HELP)
    add_storage_flags(p, study_help)


def add_storage_flags(p: argparse.ArgumentParser, study_help: str) -> None:
    """--storage URL and --study/--study-name NAME, in every command that opens a study."""
    p.add_argument("--storage", dest="storage_flag", metavar="URL", help="the same as STORAGE")
    p.add_argument("--study", "--study-name", dest="study", metavar="NAME", help=study_help)


def storage_of(args: argparse.Namespace, default: str | None = DEFAULT_STORAGE) -> str | None:
    """The storage STORAGE or --storage names (refused if they differ), else ``default``."""
    given = [s for s in (args.storage, args.storage_flag) if s]
    if len(set(given)) > 1:
        raise ConfigError(
            "--storage: STORAGE and --storage name different storages; give one of them"
        )
    return given[0] if given else default


# -- outputs ---------------------------------------------------------------------------------
def _probe(folder: Path, flag: str, shown: str) -> None:
    """ConfigError unless a file can be created in ``folder``."""
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise ConfigError(f"{flag}: cannot write in {shown!r} ({exc.strerror})") from None


@contextlib.contextmanager
def output_folder(path: str | Path, flag: str) -> Iterator[Path]:
    """``path`` as a writable folder, created with its missing parents; if the block fails,
    the folders created here are removed again while they are empty."""
    folder = Path(path).expanduser()
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"{flag}: {str(path)!r} is a file, not a folder; give a folder")
    created = [p for p in (folder, *folder.parents) if not p.exists()]
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        _remove_empty(created)
        where = exc.filename or path
        raise ConfigError(f"{flag}: cannot create folder {str(where)!r} ({exc.strerror})") from None
    try:
        _probe(folder, flag, str(path))
        yield folder
    except BaseException:
        _remove_empty(created)
        raise


def _remove_empty(folders: Sequence[Path]) -> None:
    """Remove ``folders`` (deepest first) that exist and are empty."""
    for folder in folders:  # deepest first: (folder, *folder.parents) order
        with contextlib.suppress(OSError):
            folder.rmdir()


def output_file(path: str | Path, flag: str, suffixes: Sequence[str] | None = None) -> Path:
    """``path`` as a file that can be written: its folder exists and takes files, it is not a
    folder, and its suffix is one of ``suffixes`` (if given)."""
    file = Path(path).expanduser()
    if file.is_dir():
        raise ConfigError(f"{flag}: {str(path)!r} is a folder; give a file name")
    if suffixes is not None and file.suffix.lower() not in suffixes:
        raise ConfigError(
            f"{flag}: {str(path)!r} has no known format; end it with one of {', '.join(suffixes)}"
        )
    parent = file.parent
    if parent.exists() and not parent.is_dir():
        raise ConfigError(f"{flag}: {str(parent)!r} is a file, not a folder; choose another path")
    if not parent.is_dir():
        raise ConfigError(
            f"{flag}: folder {str(parent)!r} does not exist; create it or choose another path"
        )
    _probe(parent, flag, str(parent))
    return file
