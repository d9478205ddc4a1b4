"""The study storage: one SQLAlchemy URL (SQLite file by default, PostgreSQL for many machines).

``open_storage`` fails fast with one line naming the URL (password hidden) and the fix, instead
of retrying for minutes: PostgreSQL gets a connect timeout, SQLite a busy timeout for the
moments when two processes write at once. Reading commands (report, export, dashboard) name an
existing storage as a ``.db`` path or a URL (``storage_url``) and open a study in it with
``load_study``: a SQLite file that does not exist (Optuna would silently create an empty one), an
unknown study name (the error lists the names there are), or several studies and no name are
one-line ``ConfigError``s too.
"""

from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path
from typing import Any

import optuna
import sqlalchemy.exc
from sqlalchemy.engine import make_url

from nas.errors import ConfigError
from studies.schema import STUDY_ATTR_CONFIRM_OF

DEFAULT_DB = "unetmm.db"
CONNECT_TIMEOUT_S = 5
SQLITE_BUSY_TIMEOUT_S = 30


def default_storage_url(workdir: str | Path | None = None) -> str:
    """``sqlite:///<workdir>/unetmm.db`` (absolute, so Ray workers and other tools agree)."""
    return f"sqlite:///{(Path(workdir or Path.cwd()) / DEFAULT_DB).resolve()}"


def normalize_url(url: str) -> str:
    """``postgresql://`` means psycopg 3 here (psycopg2 is not a dependency)."""
    try:
        parsed = make_url(url)
    except sqlalchemy.exc.ArgumentError:
        raise ConfigError(
            f"storage: {url!r} is not a SQLAlchemy URL; write sqlite:///study.db or "
            "postgresql+psycopg://user@host:5432/db"
        ) from None
    if parsed.drivername == "postgresql" and importlib.util.find_spec("psycopg2") is None:
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def require_persistent(url: str) -> None:
    """ConfigError for an in-memory SQLite URL (``sqlite://``, ``sqlite:///:memory:``): a search
    there loses its trials when it ends and cannot be resumed or read by another process."""
    parsed = make_url(url)
    database = parsed.database or ""
    memory = database in ("", ":memory:") or database.startswith("file::memory:")
    if parsed.get_backend_name() == "sqlite" and (memory or parsed.query.get("mode") == "memory"):
        raise ConfigError(
            f"storage: {url!r} keeps the study in memory, so its trials vanish when the search "
            "ends and it cannot be resumed; use a file, e.g. sqlite:///unetmm.db"
        )


def shown(url: str) -> str:
    """The URL with its password masked, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except sqlalchemy.exc.ArgumentError:
        return url


def storage_url(storage: str) -> str:
    """An existing storage as a URL: ``runs/study.db`` -> ``sqlite:///runs/study.db``; URLs pass
    through (a ``sqlite:///`` one must name an existing file)."""
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


def _engine_kwargs(url: str) -> dict[str, Any]:
    backend = make_url(url).get_backend_name()
    if backend == "postgresql":
        return {"connect_args": {"connect_timeout": CONNECT_TIMEOUT_S}, "pool_pre_ping": True}
    if backend == "sqlite":
        return {"connect_args": {"timeout": SQLITE_BUSY_TIMEOUT_S}}
    return {}


def open_storage(
    url: str,
    storage_class: type[optuna.storages.RDBStorage] = optuna.storages.RDBStorage,
    **options: Any,
) -> optuna.storages.RDBStorage:
    """A ``storage_class`` (Optuna's ``RDBStorage`` or a subclass) on ``url`` (``options`` go to
    it), or ``ConfigError`` if it cannot be reached."""
    url = normalize_url(url)
    where = shown(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        folder = Path(parsed.database).expanduser().resolve().parent
        if not folder.is_dir():
            raise ConfigError(
                f"storage: folder {str(folder)!r} of {where} does not exist; create it or "
                "choose another --storage"
            )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return storage_class(url, engine_kwargs=_engine_kwargs(url), **options)
    except sqlalchemy.exc.OperationalError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc).splitlines()[0]
        raise ConfigError(
            f"storage: cannot reach {where}: {reason}; start the database server or fix --storage"
        ) from None
    except (ImportError, sqlalchemy.exc.ArgumentError) as exc:
        raise ConfigError(
            f"storage: {where} names an unavailable database driver ({exc}); use sqlite:/// or "
            "postgresql+psycopg://"
        ) from None
    except sqlalchemy.exc.SQLAlchemyError as exc:
        raise ConfigError(f"storage: {where}: {str(exc).splitlines()[0]}") from None


def load_study(storage: str, study_name: str | None = None) -> optuna.Study:
    """The study named ``study_name`` in the existing ``storage`` (a ``.db`` path or a URL; its
    only study when no name is given, not counting the confirmations of ``unetmm confirm``)."""
    url = storage_url(storage)
    store = open_storage(url)
    studies = store.get_all_studies()
    names = [s.study_name for s in studies]
    if study_name is None:  # a confirmation (``unetmm confirm``) does not count as a choice
        names = [s.study_name for s in studies if STUDY_ATTR_CONFIRM_OF not in s.user_attrs] or names
        if len(names) != 1:
            listed = ", ".join(sorted(names)) or "none"
            raise ConfigError(
                f"--study: {shown(url)} holds {len(names)} studies ({listed}); "
                "pick one with --study NAME"
            )
        study_name = names[0]
    if study_name not in [s.study_name for s in studies]:
        listed = ", ".join(sorted(names)) or "none"
        raise ConfigError(
            f"--study: no study {study_name!r} in {shown(url)}; studies there: {listed}"
        )
    return optuna.load_study(study_name=study_name, storage=store)
