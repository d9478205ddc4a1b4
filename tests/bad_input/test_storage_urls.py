"""Storage URLs: every command that opens a storage checks it the same way
(``studies.storage.normalize_url``, ``storage_url``, ``writer_url``)."""

from __future__ import annotations

import pytest

READERS = (["report", "--out", "r"], ["export", "--out", "x"], ["confirm"], ["dashboard"])
BAD = [
    ("sqlite://unetmm.db", "puts a host into a SQLite URL (two slashes)"),
    ("sqlite://host/study.db", "puts a host into a SQLite URL"),
    ("sqlite://", "empty in-memory database"),
    ("sqlite:///:memory:", "empty in-memory database"),
    ("mysql://user@host/db", "names the mysql backend"),
    ("oracle://u@h/db", "names the oracle backend"),
    ("sqlite:///missing/nowhere.db", "names no existing SQLite file"),
    ("postgresql+psycopg://nobody@127.0.0.1:9/none", "cannot reach"),
    ("://nothing", "is not a SQLAlchemy URL"),
    ("unetmm", "no such file 'unetmm'"),
]


@pytest.mark.parametrize("command", READERS, ids=lambda c: c[0])
@pytest.mark.parametrize(("url", "needle"), BAD)
def test_readers_refuse_bad_storage_urls(refused, command, url, needle) -> None:
    refused([command[0], url, *command[1:]], needle)


@pytest.mark.parametrize(("url", "needle"), [
    ("sqlite://unetmm.db", "puts a host into a SQLite URL"),
    ("sqlite://", "keeps the study in memory"),
    ("sqlite:///:memory:", "keeps the study in memory"),
    ("mysql://user@host/db", "names the mysql backend"),
    ("studyfile", "neither a URL nor an existing file"),
    ("results/typo", "neither a URL nor an existing file"),
    ("sqlite:////nonexistent-folder/x.db", "folder '/nonexistent-folder' of"),
    ("postgresql+psycopg://nobody@127.0.0.1:9/none", "cannot reach"),
])  # fmt: skip
def test_search_refuses_bad_storage_urls(refused, spec_file, url, needle) -> None:
    refused(["search", spec_file(), url], needle)


@pytest.mark.parametrize(("url", "needle"), [
    ("sqlite://unetmm.db", "storage: 'sqlite://unetmm.db' puts a host"),
    ("mysql://u@h/db", "storage: 'mysql://u@h/db' names the mysql backend"),
    ("nothing", "storage: 'nothing' is not a SQLAlchemy URL"),
])  # fmt: skip
def test_a_specs_storage_field_is_checked(refused, spec_file, url, needle) -> None:
    refused(["search", spec_file(storage=url)], needle)
