"""One command line: every command names the storage as STORAGE or --storage and the study as
--study or --study-name; ``--version``; a top-level help written for users; a bare ``unetmm``
shows it."""

from __future__ import annotations

import shutil

import optuna
import pytest

from studies.cli import USAGE, main, version
from studies.search.driver import prepare_study
from studies.spec import parse_spec
from studies.storage import open_storage

optuna.logging.set_verbosity(optuna.logging.WARNING)


@pytest.fixture(scope="module")
def two_studies(tmp_path_factory):
    """A storage with studies 'alpha' and 'beta' (objectives psnr, params), a trial each (the
    tests only read it)."""
    path = tmp_path_factory.mktemp("two") / "two.db"
    storage = open_storage(f"sqlite:///{path}")
    for name in ("alpha", "beta"):
        spec = parse_spec({"name": name, "objectives": ["psnr", "params"]}, "")
        study = prepare_study(spec, name, storage)
        trial = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
        study.tell(trial, [20.0, 1.0])
    return path


def test_version_and_help(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"unetmm {version()}" and version() != ""
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "a typical session:" in out and "unetmm search quick" in out
    assert "one subcommand per module" not in out  # not the developer docstring
    for command in ("measure", "search", "report", "dashboard", "export", "train"):
        assert f"    {command}" in out
    assert main([]) == 2  # a bare `unetmm` shows the overview
    assert USAGE.splitlines()[0] in capsys.readouterr().out


SPELLINGS = {
    "positional STORAGE, --study": ["{db}", "--study", "beta"],
    "--storage, --study-name": ["--storage", "{db}", "--study-name", "beta"],
    "both, the same": ["{db}", "--storage", "{db}", "--study", "beta"],
    "a URL": ["--storage", "sqlite:///{db}", "--study", "beta"],
}


@pytest.mark.parametrize("spelling", list(SPELLINGS))
@pytest.mark.parametrize("command", ["report", "export", "dashboard"])
def test_reading_commands_take_every_spelling(command, spelling, two_studies, capsys):
    """Each spelling reaches the storage and the study: the error after that is the same."""
    args = [a.format(db=two_studies) for a in SPELLINGS[spelling]]
    extra = {"report": ["--objectives", "psnr,bogus", "--out", str(two_studies.parent / "r")],
             "export": ["--max-m-sc", "1MiB", "--out", str(two_studies.parent / "e")],
             "dashboard": ["--study", "nope", "--port", "0"]}[command]  # fmt: skip
    code = main([command, *args, *extra])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert not (two_studies.parent / "r").exists() and not (two_studies.parent / "e").exists()
    expected = {"report": "--objectives: unknown metric 'bogus'",
                "export": "study 'beta' has no complete, feasible trial",
                "dashboard": "--study: no study 'nope'"}[command]  # fmt: skip
    assert expected in err[0], err[0]


def test_reading_commands_default_to_unetmm_db_here(two_studies, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["report", "--out", "r"]) == 2
    assert "no such file 'unetmm.db'" in capsys.readouterr().err
    shutil.copy(two_studies, tmp_path / "unetmm.db")
    assert main(["report", "--out", "r"]) == 2  # found it: two studies, which one?
    assert "holds 2 studies (alpha, beta); pick one with --study NAME" in capsys.readouterr().err


def test_search_takes_every_spelling_too(two_studies, tmp_path, capsys):
    """search's positional STORAGE (a path or a URL) or --storage, and --study or --study-name:
    each reaches study 'beta', whose objectives differ from the preset's."""
    for args in (
        [str(two_studies), "--study", "beta"],
        [f"sqlite:///{two_studies}", "--study-name", "beta"],
        ["--storage", str(two_studies), "--study", "beta"],
    ):
        assert main(["search", "quick", *args]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "objectives: study 'beta' in this storage optimises" in err[0], err
