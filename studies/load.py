"""Open an existing study for reading: storage URL or SQLite file path, study name or the only one.

Mistakes become one-line ``ConfigError``s: a SQLite file that does not exist (Optuna would
silently create an empty one), a database that does not answer, an unknown study name (the
error lists the names there are), or several studies and no name.
"""

from __future__ import annotations

from pathlib import Path

import optuna

from nas.errors import ConfigError
from studies.storage import open_storage as _open
from studies.storage import shown


def storage_url(storage: str) -> str:
    """``runs/study.db`` -> ``sqlite:///runs/study.db``; URLs pass through unchanged."""
    if "://" not in storage:
        path = Path(storage)
        if not path.is_file():
            raise ConfigError(
                f"STORAGE: no such file {storage!r}; give a study .db file or a URL "
                "like sqlite:///runs/study.db or postgresql://user@host/db"
            )
        return f"sqlite:///{path}"
    if storage.startswith("sqlite:///"):
        path = Path(storage[len("sqlite:///") :])
        if str(path) not in ("", ":memory:") and not path.is_file():
            raise ConfigError(f"STORAGE: {storage!r} names no existing SQLite file ({path})")
    return storage


def safe_url(url: str) -> str:
    """The URL with any password masked, fit for reports and messages."""
    return shown(url)


def open_storage(
    storage: str, storage_class: type[optuna.storages.RDBStorage] = optuna.storages.RDBStorage
) -> optuna.storages.RDBStorage:
    """An existing storage (a ``.db`` path or a URL) opened as ``storage_class``."""
    return _open(storage_url(storage), storage_class)


def load_study(storage: str, study_name: str | None = None) -> optuna.Study:
    """The study named ``study_name`` in ``storage`` (or its only study when no name is given)."""
    store = open_storage(storage)
    names = [s.study_name for s in store.get_all_studies()]
    if study_name is None:
        if len(names) != 1:
            listed = ", ".join(sorted(names)) or "none"
            raise ConfigError(
                f"--study: {safe_url(storage_url(storage))} holds {len(names)} "
                f"studies ({listed}); pick one with --study NAME"
            )
        study_name = names[0]
    if study_name not in names:
        listed = ", ".join(sorted(names)) or "none"
        raise ConfigError(
            f"--study: no study {study_name!r} in {safe_url(storage_url(storage))}; "
            f"studies there: {listed}"
        )
    return optuna.load_study(study_name=study_name, storage=store)
