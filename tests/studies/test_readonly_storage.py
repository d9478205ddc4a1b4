"""Reading commands (report, export, dashboard) never write: a storage that holds no Optuna study
(an empty SQLite file, another program's database, a file that is no database; an empty or
foreign PostgreSQL database) is refused in one line and left exactly as it was. And a storage
that stops answering mid-search is told from other database errors."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import optuna
import pytest
import sqlalchemy

from nas.errors import ConfigError
from studies.cli import main
from studies.storage import open_existing
from tests.studies.conftest import fresh_database

COMMANDS = {
    "report": ["--out", "{tmp}/report"],
    "export": ["--max-m-sc", "1MiB", "--out", "{tmp}/export"],
    "dashboard": ["--port", "0"],
}
NO_STUDY = "holds no Optuna study"


def _sqlite_empty(path: Path) -> None:
    path.write_bytes(b"")


def _sqlite_other(path: Path) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
        conn.execute("INSERT INTO users (name) VALUES ('ada')")


def _sqlite_junk(path: Path) -> None:
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)


SQLITE_CASES = {
    "empty file": (_sqlite_empty, NO_STUDY + " (no tables at all"),
    "another program's database": (_sqlite_other, NO_STUDY + " (1 other table(s)"),
    "not a database": (_sqlite_junk, "is not a study storage (file is not a database)"),
}


def _tables(url: str) -> list[str]:
    engine = sqlalchemy.create_engine(url)
    try:
        return sorted(sqlalchemy.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def _run_all(storage: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> list[str]:
    """Each reading command on ``storage``: its exit code must be 2; returns the error lines."""
    lines = []
    for command, extra in COMMANDS.items():
        argv = [command, storage, *(a.format(tmp=tmp_path) for a in extra)]
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: STORAGE: "), err
        lines.append(err[0])
    assert not (tmp_path / "report").exists() and not (tmp_path / "export").exists()
    return lines


@pytest.mark.parametrize("case", list(SQLITE_CASES))
def test_sqlite_file_without_a_study_is_refused_and_untouched(case, tmp_path, capsys):
    make, message = SQLITE_CASES[case]
    path = tmp_path / "thing.db"
    make(path)
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    for line in _run_all(str(path), tmp_path, capsys):
        assert message in line, line
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["thing.db"]  # no journal, no WAL


@pytest.mark.parametrize("case", ["empty database", "another program's database"])
def test_postgresql_database_without_a_study_is_refused_and_untouched(
    case, postgres_server, tmp_path, capsys
):
    with fresh_database(postgres_server) as url:
        if case != "empty database":
            engine = sqlalchemy.create_engine(url)
            with engine.begin() as conn:
                conn.execute(sqlalchemy.text("CREATE TABLE users (id serial PRIMARY KEY)"))
            engine.dispose()
        before = _tables(url)
        for line in _run_all(url, tmp_path, capsys):
            assert NO_STUDY in line, line
        assert _tables(url) == before


def test_open_existing_reads_a_real_study_without_writing(tmp_path):
    import optuna

    url = f"sqlite:///{tmp_path / 's.db'}"
    optuna.create_study(study_name="s", storage=url)
    before = hashlib.sha256((tmp_path / "s.db").read_bytes()).hexdigest()
    store = open_existing(url)
    assert [s.study_name for s in store.get_all_studies()] == ["s"]
    store.engine.dispose()
    assert hashlib.sha256((tmp_path / "s.db").read_bytes()).hexdigest() == before


# -- telling a lost storage from other errors ------------------------------------------------
def _real_error(kind: str) -> Exception:
    """A real SQLAlchemy error: a database file that cannot be opened, or a duplicate key."""
    if kind == "lost":
        engine = sqlalchemy.create_engine("sqlite:////no/such/folder/x.db")
    else:
        engine = sqlalchemy.create_engine("sqlite://")
    try:
        with engine.begin() as conn:
            conn.execute(sqlalchemy.text("CREATE TABLE t (id INTEGER PRIMARY KEY)"))
            conn.execute(sqlalchemy.text("INSERT INTO t VALUES (1)"))
            conn.execute(sqlalchemy.text("INSERT INTO t VALUES (1)"))
    except sqlalchemy.exc.SQLAlchemyError as exc:
        return exc
    raise AssertionError("no error")


def _wrapped(inner: Exception, how: str) -> Exception:
    """``inner`` as a caller sees it: raised from (Optuna), raised while handling (Ray Tune),
    replaced on purpose (``from None``)."""
    try:
        try:
            raise inner
        except Exception as exc:
            if how == "from":
                raise optuna.exceptions.StorageInternalError("invalid data in the commit") from exc
            if how == "while handling":
                raise RuntimeError("TuneError: Traceback ...")
            raise ConfigError("storage: cannot reach it") from None
    except (optuna.exceptions.StorageInternalError, RuntimeError, ConfigError) as outer:
        return outer


LOST_CASES = [
    ("lost", "from", "unable to open database file"),
    ("lost", "while handling", "unable to open database file"),
    ("lost", "from None", None),  # said already, in its own words
    ("duplicate", "from", None),  # a constraint violation is no lost storage
    ("duplicate", "while handling", None),
]


@pytest.mark.parametrize(("kind", "how", "reason"), LOST_CASES)
def test_lost_storage_is_told_from_other_errors(kind, how, reason):
    from studies.storage import StorageLost, ignoring_lost, lost_reason, raise_if_lost

    exc = _wrapped(_real_error(kind), how)
    assert lost_reason(exc) == reason
    if reason is None:
        raise_if_lost(exc, "sqlite:///x.db")  # nothing to say: the caller re-raises
        with pytest.raises(type(exc)), ignoring_lost():
            raise exc
        return
    with pytest.raises(StorageLost) as info:
        raise_if_lost(exc, "postgresql+psycopg://ada:pw@db/s")
    text = str(info.value.with_resume("unetmm search s.yaml"))
    assert text == ("storage: postgresql+psycopg://ada:***@db/s stopped answering (unable to open "
                    "database file); the trials finished before are safe in it; once it answers "
                    "again, resume with: unetmm search s.yaml")  # fmt: skip
    with ignoring_lost():
        raise exc  # swallowed


def test_tune_logs_of_a_lost_storage_are_held_back():
    import logging

    from studies.storage import LostStorageLogFilter

    def record(exc: Exception | None) -> logging.LogRecord:
        info = (type(exc), exc, exc.__traceback__) if exc else None
        return logging.LogRecord("ray.tune", logging.ERROR, __file__, 1, "Error stopping trial.",
                                 None, info)  # fmt: skip

    keep = LostStorageLogFilter().filter
    assert not keep(record(_wrapped(_real_error("lost"), "from")))
    assert keep(record(_wrapped(_real_error("duplicate"), "from")))
    assert keep(record(None))


def test_optunas_fallback_warning_on_a_broken_connection_is_held_back():
    """Optuna's RDB storage warns before it retries a query with a slower one; when the
    connection broke, the retry fails and the search says it in one line: the warning only
    buries it. The same warning for another reason (SQLite's variable limit) stays."""
    import logging

    from studies.storage import OPTUNA_FALLBACK, LostStorageLogFilter

    def warning(text: str) -> logging.LogRecord:
        return logging.LogRecord("optuna.storages._rdb.storage", logging.WARNING, __file__, 1,
                                 f"{OPTUNA_FALLBACK}: {text}. Falling back to a slower "
                                 "alternative.", None, None)  # fmt: skip

    keep = LostStorageLogFilter().filter
    assert not keep(warning("(psycopg.OperationalError) consuming input failed: server closed "
                            "the connection unexpectedly"))  # fmt: skip
    assert keep(warning("(sqlite3.OperationalError) too many SQL variables"))
