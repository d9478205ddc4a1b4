"""Damaged or foreign storages: a plain Optuna study, a unetmm study whose attributes were
changed by hand, a schema from another Optuna, a file that is no database: one line in every
command, nothing lost."""

from __future__ import annotations

import shutil
import sqlite3

import optuna
import pytest

COMMANDS = (["report", "--out", "r"], ["export", "--out", "x"], ["confirm"])


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    path = tmp_path_factory.mktemp("plain") / "plain.db"
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.create_study(study_name="plain", storage=f"sqlite:///{path}",
                                directions=["maximize", "minimize"])  # fmt: skip
    study.optimize(lambda t: (t.suggest_float("x", 0, 1), t.suggest_float("y", 0, 1)), n_trials=5)
    return path


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
def test_a_plain_optuna_study_is_named_as_such(refused, plain, command) -> None:
    refused([command[0], plain, *command[1:]], "'plain' in sqlite:///")


@pytest.mark.parametrize(("key", "value", "what"), [
    ("objectives", 5, "not a list of metric names"),
    ("objectives", ["psnr", "speed"], "not a list of metric names"),
    ("objectives", [], "not a list of metric names"),
    ("spec", "garbage", "not the study spec"),
    ("fingerprint", 7, "not 16 hex digits"),
    ("comparable", [1, 2], "not a mapping of settings"),
])  # fmt: skip
@pytest.mark.parametrize("command", [*COMMANDS, ["search", "quick"]], ids=lambda c: c[0])
def test_attributes_changed_by_hand(refused, built_study, tmp_path, command, key, value,
                                    what) -> None:  # fmt: skip
    path = tmp_path.parent / f"{tmp_path.name}-copy.db"
    shutil.copy(built_study.path, path)
    url = f"sqlite:///{path}"
    study = optuna.load_study(study_name=built_study.name, storage=url)
    study.set_user_attr(key, value)
    before = [(t.number, t.state, t.values) for t in study.get_trials()]
    args = [command[0], *command[1:], path, "--study", built_study.name]
    if command[0] == "search":
        args += ["--n-trials", "1"]
    refused(args, f"user attribute {key!r} holding")
    after = optuna.load_study(study_name=built_study.name, storage=url).get_trials()
    assert [(t.number, t.state, t.values) for t in after] == before


@pytest.fixture(scope="module")
def newer(built_study, tmp_path_factory):
    path = tmp_path_factory.mktemp("newer") / "newer.db"
    shutil.copy(built_study.path, path)
    with sqlite3.connect(path) as con:
        con.execute("update alembic_version set version_num='v99.0.0.a'")
    return path


@pytest.mark.parametrize("command", [*COMMANDS, ["search", "quick"]], ids=lambda c: c[0])
def test_a_schema_from_another_optuna(refused, newer, command) -> None:
    args = [*command, newer] if command[0] == "search" else [command[0], newer, *command[1:]]
    refused(args, "no longer compatible with the table schema")


@pytest.mark.parametrize("content", [b"", b"not a database at all" * 100, b"SQLite format 3\0"],
                         ids=["empty", "text", "truncated"])  # fmt: skip
@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
def test_a_file_that_is_no_study_storage(refused, tmp_path, content, command) -> None:
    path = tmp_path.parent / f"{tmp_path.name}-x.db"
    path.write_bytes(content)
    refused([command[0], path, *command[1:]], "STORAGE:")


def test_a_storage_damaged_mid_search_ends_in_one_line(tmp_path) -> None:
    """Something overwrites the study file while a search runs: one line saying so, not
    Optuna's StorageInternalError out of the driver."""
    import os
    import subprocess
    import sys
    import time

    from tests.studies.conftest import child_env

    spec = tmp_path / "s.yaml"
    spec.write_text("name: dmg\ntarget: {input_size: 64}\nobjectives: [m_sc, macs]\n"
                    "n_trials: 200\nconcurrency: 1\nsampler: random\n")  # fmt: skip
    db = tmp_path / "s.db"
    proc = subprocess.Popen([sys.executable, "-m", "studies.cli", "search", str(spec), str(db)],
                            cwd=tmp_path, env=child_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        time.sleep(1)
        try:
            if optuna.load_study(study_name="dmg", storage=f"sqlite:///{db}").get_trials(
                    states=(optuna.trial.TrialState.COMPLETE,)):  # fmt: skip
                break
        except Exception:  # noqa: BLE001 (not created yet)
            continue
    with open(db, "r+b") as fh:  # the header and a page in the middle
        fh.write(b"garbage" * 20)
        fh.seek(os.path.getsize(db) // 2)
        fh.write(os.urandom(4096))
    _, err = proc.communicate(timeout=180)
    lines = [line for line in err.splitlines() if line.strip()]
    assert proc.returncode == 2 and "Traceback" not in err, err[-3000:]
    assert len(lines) == 1 and "is damaged (file is not a database)" in lines[0], lines
