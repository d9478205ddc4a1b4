"""The study storage: one SQLAlchemy URL (SQLite file by default, PostgreSQL for many machines).

``open_storage`` fails fast with one line naming the URL (password hidden) and the fix, instead
of retrying for minutes: PostgreSQL gets a connect timeout, SQLite a busy timeout for the
moments when two processes write at once. Reading commands (report, export, dashboard) name an
existing storage as a ``.db`` path or a URL (``storage_url``) and open a study in it with
``load_study``: a SQLite file that does not exist (Optuna would silently create an empty one), an
unknown study name (the error lists the names there are), or several studies and no name are
one-line ``ConfigError``s too. They open it with ``open_existing``, which creates nothing: a
database without Optuna's tables (an empty file, another program's database) is refused before
Optuna would add its schema to it.

A storage that stops answering mid-search (a PostgreSQL server stopped, a SQLite file turned
read-only) surfaces as a chain of SQLAlchemy and Optuna errors, often wrapped by Ray Tune;
``raise_if_lost`` turns such a chain into one ``StorageLost`` line, and ``ignoring_lost``
lets the clean-up that follows skip the writes the storage cannot take any more (a re-run
recovers the trials left RUNNING: their driver is gone).
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import random
import re
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import optuna
import sqlalchemy.exc
from sqlalchemy.engine import make_url

from nas.errors import ConfigError, UnetmmError
from nas.extras import require_extra
from studies.schema import STUDY_ATTR_CONFIRM_OF

DEFAULT_DB = "unetmm.db"
CONNECT_TIMEOUT_S = 5
SQLITE_BUSY_TIMEOUT_S = 30
# Tables every Optuna RDB schema has (the rest came with later schema versions)
OPTUNA_TABLES = ("studies", "trials", "version_info", "alembic_version")
CREATION_RETRIES = 10  # tries at creating the tables of a fresh database that others create too


def default_storage_url(workdir: str | Path | None = None) -> str:
    """``sqlite:///<workdir>/unetmm.db`` (absolute, so Ray workers and other tools agree)."""
    return f"sqlite:///{(Path(workdir or Path.cwd()) / DEFAULT_DB).resolve()}"


SUPPORTED_BACKENDS = ("sqlite", "postgresql")


def normalize_url(url: str, field: str = "storage") -> str:
    """The URL of a study storage, checked: SQLite (``sqlite:///relative.db``,
    ``sqlite:////absolute.db``) or PostgreSQL (``postgresql://`` means psycopg 3 here:
    psycopg2 is not a dependency). Anything else is a ``ConfigError`` naming ``field``."""
    try:
        parsed = make_url(url)
    except sqlalchemy.exc.ArgumentError:
        raise ConfigError(
            f"{field}: {masked(url)!r} is not a SQLAlchemy URL; write sqlite:///study.db or "
            "postgresql+psycopg://user@host:5432/db"
        ) from None
    backend = parsed.get_backend_name()
    if backend not in SUPPORTED_BACKENDS:
        raise ConfigError(f"{field}: {shown(url)!r} names the {backend} backend; unetmm keeps "
                          "studies in SQLite (sqlite:///study.db) or PostgreSQL "
                          "(postgresql+psycopg://user@host:5432/db)")  # fmt: skip
    if backend == "sqlite" and (parsed.host or parsed.port or parsed.username):
        path = (parsed.host or "") + (f"/{parsed.database}" if parsed.database else "")
        raise ConfigError(f"{field}: {shown(url)!r} puts a host into a SQLite URL (two "
                          f"slashes); a file takes three: sqlite:///{path} (relative) or four: "
                          f"sqlite:////abs/path/{path}")  # fmt: skip
    if parsed.drivername == "postgresql" and importlib.util.find_spec("psycopg2") is None:
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.drivername == "postgresql+psycopg":
        require_extra("postgres", f"{field}: {shown(url)!r}")
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
        return masked(url)


_USERINFO = re.compile(r"(://[^:/@\s]*:)[^@\s]*@")


def masked(text: str) -> str:
    """``text`` with the password of any ``scheme://user:password@`` in it replaced by ``***``
    (for strings that are not valid URLs, where SQLAlchemy cannot parse out the password)."""
    return _USERINFO.sub(r"\1***@", text)


def storage_url(storage: str) -> str:
    """An existing storage as a URL: ``runs/study.db`` -> ``sqlite:///runs/study.db``; URLs are
    checked (``normalize_url``) and a ``sqlite:///`` one must name an existing file."""
    if "://" in storage:
        normalize_url(storage, "STORAGE")
    if "://" not in storage:
        path = Path(storage)
        if not path.is_file():
            raise ConfigError(
                f"STORAGE: no such file {storage!r}; give a study .db file or a URL "
                "like sqlite:///runs/study.db or postgresql://user@host/db"
            )
        return f"sqlite:///{path}"
    if storage.startswith("sqlite:"):
        database = make_url(storage).database or ""
        if database in ("", ":memory:"):
            raise ConfigError(f"STORAGE: {storage!r} is an empty in-memory database; give the "
                              "study's file, e.g. sqlite:///unetmm.db")  # fmt: skip
        if not Path(database).is_file():
            raise ConfigError(f"STORAGE: {storage!r} names no existing SQLite file ({database})")
    return storage


DB_SUFFIXES = (".db", ".sqlite", ".sqlite3")


def writer_url(storage: str, field: str = "STORAGE") -> str:
    """The storage a search writes, as a URL: a URL (checked), an existing file, or a new file
    ending in ``.db``/``.sqlite``/``.sqlite3``. A bare word that is none of these is refused
    (a typo must not become a new, empty study)."""
    if "://" in storage:
        return normalize_url(storage, field)
    path = Path(storage).expanduser()
    if not path.is_file() and path.suffix.lower() not in DB_SUFFIXES:
        raise ConfigError(f"{field}: {storage!r} is neither a URL nor an existing file, and a new "
                          f"study file ends in .db; write {storage}.db or sqlite:///{storage}")  # fmt: skip
    return f"sqlite:///{path.resolve()}"


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
        for attempt in range(CREATION_RETRIES):
            try:
                return _create(storage_class, url, options)
            except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.ProgrammingError,
                    sqlalchemy.exc.OperationalError) as exc:  # fmt: skip
                # several drivers create the tables of a fresh database at once, table by
                # table: this one's CREATE TABLE (or version row) came second; the next try
                # finds more of them made, and skips what exists
                if not _lost_creation_race(exc) or attempt == CREATION_RETRIES - 1:
                    raise
                time.sleep(random.uniform(0.1, 0.5))
        raise AssertionError("unreachable")
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
    except RuntimeError as exc:  # Optuna: a schema older or newer than this Optuna's
        raise ConfigError(f"storage: {where}: {str(exc).strip()}") from None
    except sqlalchemy.exc.SQLAlchemyError as exc:
        raise ConfigError(f"storage: {where}: {str(exc).splitlines()[0]}") from None


def open_existing(
    url: str,
    storage_class: type[optuna.storages.RDBStorage] = optuna.storages.RDBStorage,
) -> optuna.storages.RDBStorage:
    """``open_storage`` for reading commands: creates nothing. A database without Optuna's
    tables (an empty file, another program's database, a file that is no database) is one
    ``ConfigError`` line, and so is a schema this Optuna cannot read."""
    url = normalize_url(url)
    where = shown(url)
    engine = sqlalchemy.create_engine(url, **_engine_kwargs(url))
    try:
        tables = set(sqlalchemy.inspect(engine).get_table_names())
    except sqlalchemy.exc.OperationalError as exc:
        raise ConfigError(
            f"STORAGE: cannot reach {where}: {_first_line(exc)}; start the database server or "
            "fix the storage"
        ) from None
    except sqlalchemy.exc.DatabaseError as exc:  # e.g. "file is not a database"
        raise ConfigError(f"STORAGE: {where} is not a study storage ({_first_line(exc)})") from None
    except (ImportError, sqlalchemy.exc.ArgumentError) as exc:
        raise ConfigError(f"STORAGE: {where} names an unavailable database driver ({exc})") from None
    finally:
        engine.dispose()
    missing = [t for t in OPTUNA_TABLES if t not in tables]
    if missing:
        what = f"{len(tables)} other table(s)" if tables else "no tables at all"
        raise ConfigError(
            f"STORAGE: {where} holds no Optuna study ({what}; missing {', '.join(missing)}); "
            "give the storage a `unetmm search` wrote"
        )
    try:
        return open_storage(url, storage_class, skip_table_creation=True)
    except RuntimeError as exc:  # Optuna: the schema is older or newer than this Optuna's
        raise ConfigError(f"STORAGE: {where}: {str(exc).strip()}") from None
def _create(
    storage_class: type[optuna.storages.RDBStorage], url: str, options: dict[str, Any]
) -> optuna.storages.RDBStorage:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return storage_class(url, engine_kwargs=_engine_kwargs(url), **options)


def _lost_creation_race(exc: sqlalchemy.exc.SQLAlchemyError) -> bool:
    """A unique violation or "already exists" from creating Optuna's tables (PostgreSQL:
    UniqueViolation on pg_type or the version row, DuplicateTable; SQLite: table exists)."""
    text = str(exc.orig or exc).lower()
    return isinstance(exc, sqlalchemy.exc.IntegrityError) or "already exists" in text


def load_study(storage: str, study_name: str | None = None, unetmm: bool = True) -> optuna.Study:
    """The study named ``study_name`` in the existing ``storage`` (a ``.db`` path or a URL; its
    only study when no name is given, not counting the confirmations of ``unetmm confirm``).
    With ``unetmm``, ``ConfigError`` unless unetmm wrote it and its attributes are intact."""
    url = storage_url(storage)
    store = open_existing(url)
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
    study = optuna.load_study(study_name=study_name, storage=store)
    if unetmm:
        from studies.schema import check_study_attrs, is_unetmm_study

        attrs = study.user_attrs
        if not is_unetmm_study(attrs):
            n = len(study.get_trials(deepcopy=False))
            raise ConfigError(f"--study: {study_name!r} in {shown(url)} was not written by unetmm "
                              f"(no spec or objectives stored; {n} trial(s)): plain Optuna "
                              "tools show it (optuna-dashboard, optuna trials)")  # fmt: skip
        check_study_attrs(study_name, attrs)
    return study


# -- a storage lost mid-search ----------------------------------------------------------------
class StorageLost(UnetmmError):
    """The study storage stopped answering during a search; the message says what to do."""

    def __init__(self, url: str, reason: str, resume: str | None = None) -> None:
        self.url, self.reason, self.resume = url, reason, resume
        super().__init__(str(self))

    def __str__(self) -> str:
        how = (f"resume with: {self.resume}" if self.resume else
               "run the same command again to resume")  # fmt: skip
        if any(word in self.reason for word in DAMAGED):
            return (f"storage: {shown(self.url)} is damaged ({self.reason}): something else "
                    "wrote into the file; restore it from a copy (or search into a new one), "
                    f"then {how}")  # fmt: skip
        return (
            f"storage: {shown(self.url)} stopped answering ({self.reason}); the trials finished "
            f"before are safe in it; once it answers again, {how}"
        )

    def with_resume(self, command: str) -> StorageLost:
        """The same error, naming ``command`` as the way to resume."""
        return StorageLost(self.url, self.reason, command)


# What a lost connection, a storage that refuses writes, or a damaged file ("file is not a
# database", "database disk image is malformed") looks like from here (a constraint violation
# or a bug is none of these and keeps its traceback).
_LOST = (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError)
_NOT_LOST = (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.ProgrammingError,
             sqlalchemy.exc.DataError, sqlalchemy.exc.NotSupportedError)  # fmt: skip
DAMAGED = ("file is not a database", "malformed")


def lost_reason(exc: BaseException) -> str | None:
    """Why the storage stopped answering, if ``exc`` (or an exception it was raised from or
    while handling, e.g. inside Ray Tune) is a lost connection or a refused write; else None."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, StorageLost):
            return e.reason
        if isinstance(e, _LOST) or (isinstance(e, sqlalchemy.exc.DBAPIError)
                                    and e.connection_invalidated):  # fmt: skip
            return _first_line(e)
        if isinstance(e, sqlalchemy.exc.DatabaseError) and not isinstance(e, _NOT_LOST):
            return _first_line(e)  # a damaged file
        if isinstance(e, UnetmmError):  # already said in its own words
            continue
        todo.append(e.__cause__)
        if not e.__suppress_context__:  # (``raise ... from None`` hides what it replaced)
            todo.append(e.__context__)
    return None


def raise_if_lost(exc: BaseException, url: str) -> None:
    """Raise ``StorageLost`` (one line) if ``exc`` comes from a storage that stopped answering."""
    reason = lost_reason(exc)
    if reason is not None:
        raise StorageLost(url, reason) from None


@contextlib.contextmanager
def ignoring_lost() -> Iterator[None]:
    """Skip the rest of the block if the storage stopped answering (other errors pass)."""
    try:
        yield
    except Exception as exc:
        if lost_reason(exc) is None:
            raise


class LostStorageLogFilter(logging.Filter):
    """Drops log records about a lost storage. Ray Tune logs the traceback of a searcher that
    fails while it stops a trial, then calls the searcher again, which fails again: that second
    failure ends the search with ``StorageLost``'s one line, the log would only bury it. Optuna's
    RDB storage warns that it falls back to a slower query when a connection breaks under its
    first one (``OPTUNA_FALLBACK``); the fallback fails too, and the one line follows."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if exc is not None:
            return lost_reason(exc) is None
        text = record.getMessage()
        return not (text.startswith(OPTUNA_FALLBACK) and "connection" in text.lower())


OPTUNA_FALLBACK = "Caught an error from sqlalchemy"  # optuna.storages._rdb.storage, _get_trials


def _first_line(exc: BaseException) -> str:
    """The driver's own message, first line, without SQLAlchemy's decoration."""
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip()
    line = text.splitlines()[0] if text else type(exc).__name__
    line = line.removeprefix("connection failed: ")
    return masked(line if len(line) <= 160 else line[:157] + "...")
