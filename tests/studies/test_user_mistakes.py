"""User mistakes caught before any work is done, each as one ``error:`` line and exit 2, in
seconds (no Ray started): files that are not UTF-8, too large or alias bombs; YAML bools where
numbers belong; study names given by flag; data folders and images; output paths; ports and
addresses. Also: failed commands leave no folder they created, secrets stay masked, a local
search warns when it asks for more CPUs than there are, and killed runs' scratch folders go."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from pathlib import Path

import optuna
import pytest
import yaml

from nas.errors import ConfigError
from studies.cli import main
from studies.search import ray_session
from studies.search.driver import prepare_study
from studies.spec import load_spec, parse_spec
from studies.storage import open_storage
from trainers.config import load_train_config

optuna.logging.set_verbosity(optuna.logging.WARNING)
TINY_ARCH = {"backbone": {"name": "nafnet", "width": 8, "enc_blk_nums": [1, 1, 1, 1],
                          "middle_blk_num": 1, "dec_blk_nums": [1, 1, 1, 1]},
             "skip": {"name": "full"}}  # fmt: skip


def one_error(capsys: pytest.CaptureFixture, code: int) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("error: "), (code, err)
    return err[0]


# -- files ----------------------------------------------------------------------------------
def _alias_bomb() -> str:
    lines = ["name: x", "a0: &a0 [" + ", ".join(["1"] * 20) + "]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 20) + "]" for i in range(1, 6)]
    return "\n".join(lines) + "\n"


FILES = {
    "latin-1 text": (b"name: caf\xe9\n", "is not UTF-8 text (byte 0xe9 at offset 9); save it as UTF-8"),
    "millions of items under an unknown key": (
        b"name: x\njunk:\n" + b"- 1\n" * 2_000_000, "is larger than 256 KiB"),
    "a YAML alias bomb": (_alias_bomb().encode(), "once its YAML aliases (*name) are expanded"),
    "a big unknown key under the size limit": (
        b"name: x\njunk:\n" + b"- 1\n" * 20_000, "junk: unknown field; check its spelling"),
    "bad YAML": (b"name: [unclosed\n", "is not valid YAML"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(FILES))
def test_bad_study_files_are_refused_fast_in_one_line(case, tmp_path, capsys):
    content, message = FILES[case]
    path = tmp_path / "study.yaml"
    path.write_bytes(content)
    t0 = time.perf_counter()
    line = one_error(capsys, main(["search", str(path), "--storage", f"sqlite:///{tmp_path}/s.db"]))
    assert message in line, line
    assert time.perf_counter() - t0 < 10  # (seconds on a loaded 2-core box; ~0.1 s idle)
    assert not (tmp_path / "s.db").exists()


@pytest.mark.parametrize("reader", [load_spec, load_train_config])
def test_every_config_reader_has_the_same_limits(reader, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_bytes(b"name: \xff\xfe\n")
    with pytest.raises(ConfigError, match="is not UTF-8 text"):
        reader(bad)
    with pytest.raises(ConfigError, match="cannot be read"):
        reader(tmp_path)  # a folder
    if Path("/dev/zero").exists():  # endless input: only the limit is read
        with pytest.raises(ConfigError, match="larger than 256 KiB"):
            reader("/dev/zero")


def test_a_utf8_bom_is_fine(tmp_path):
    path = tmp_path / "bom.yaml"
    path.write_bytes("\ufeffname: bom\n".encode())
    assert load_spec(path).name == "bom"


# -- YAML bools where numbers belong -----------------------------------------------------------
BOOLS = [
    ({"n_trials": True}, "n_trials: must be an integer, got true"),
    ({"concurrency": False}, "concurrency: must be an integer, got false"),
    ({"seed": True}, "seed: must be an integer, got true"),
    ({"target": {"bits": True}}, "target.bits: must be an integer, got true"),
    ({"target": {"input_size": [256, True]}}, "target.input_size: must be an integer, got true at [1]"),
    ({"proxy": {"budget": {"steps": True}}}, "proxy.budget.steps: must be an integer, got true"),
    ({"proxy": {"budget": {"lr": True}}}, "proxy.budget.lr: must be a number, got true"),
    ({"proxy": {"data": {"val_limit": True}}}, "proxy.data.val_limit: must be an integer, got true"),
    ({"proxy": {"task": {"sigma": False}}}, "proxy.task.sigma: must be a number, got false"),
    ({"space": {"bounds": {"ratio_log2": [-5, True]}}}, "space.bounds.ratio_log2[1]: must be an integer, got true"),
    ({"early_stopping": {"grace_steps": True}}, "early_stopping.grace_steps: must be an integer, got true"),
    ({"recovery": {"max_retry": True}}, "recovery.max_retry: must be an integer, got true"),
]  # fmt: skip


@pytest.mark.parametrize(("fields", "message"), BOOLS)
def test_a_yaml_bool_is_no_number(fields, message):
    with pytest.raises(ConfigError) as info:
        parse_spec({"name": "x", **fields}, "s.yaml")
    assert str(info.value) == f"s.yaml: {message}"


def test_bools_stay_bools_and_train_configs_refuse_them_too(tmp_path):
    spec = parse_spec({"name": "x", "early_stopping": False,
                       "space": {"bounds": {"search_stages": False}}}, "")  # fmt: skip
    assert spec.early_stopping.enabled is False and spec.space.bounds.search_stages is False
    path = tmp_path / "train.yaml"
    path.write_text(yaml.safe_dump({"arch": TINY_ARCH, "recipe": {"iterations": True}}))
    with pytest.raises(ConfigError, match=r"^recipe.iterations: must be an integer, got true$"):
        load_train_config(path)


# -- the command line ------------------------------------------------------------------------
@pytest.fixture
def cost_study(tmp_path: Path) -> str:
    """A SQLite study with two trials that have costs but no PSNR (nothing to export)."""
    url = f"sqlite:///{tmp_path / 'cost.db'}"
    study = prepare_study(parse_spec({"name": "cost"}, ""), "cost", open_storage(url))
    for value in (1.0, 2.0):
        trial = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
        study.tell(trial, [20.0 + value, value, value])
    return str(tmp_path / "cost.db")


def _data_cases(tmp: Path) -> dict[str, tuple[dict, str]]:
    (tmp / "empty").mkdir()
    (tmp / "bad").mkdir()
    for name in ("a.png", "b.jpg"):
        (tmp / "bad" / name).write_bytes(b"not an image")
    (tmp / "unpaired").mkdir()
    return {
        "missing train folder": ({"train": str(tmp / "nope")}, "proxy.data.train: folder"),
        "missing val folder": ({"val": str(tmp / "nope")}, "proxy.data.val: folder"),
        "folder without images": ({"train": str(tmp / "empty")}, "proxy.data.train: no png/"),
        "unreadable images": ({"val": str(tmp / "bad")}, "proxy.data.val: none of the first 2 image(s)"),
        "no pairs": ({"train": str(tmp / "bad"), "val": str(tmp / "bad"), "paired": True},
                     "proxy.data.train: no input/target pairs"),
    }  # fmt: skip


def test_data_folders_and_images_are_checked_before_the_first_trial(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'd.db'}"
    for case, (data, message) in _data_cases(tmp_path).items():
        path = tmp_path / "study.yaml"
        path.write_text(yaml.safe_dump({"name": "d", "proxy": {"data": data}}))
        t0 = time.perf_counter()
        line = one_error(capsys, main(["search", str(path), "--storage", url]))
        assert message in line, (case, line)
        assert time.perf_counter() - t0 < 10, case
    assert not (tmp_path / "d.db").exists()  # refused before the storage was touched


def test_command_line_mistakes(tmp_path, capsys, cost_study):
    afile = tmp_path / "afile"
    afile.write_text("x")
    url = f"sqlite:///{tmp_path / 's.db'}"
    cases = [
        (["search", "quick", url, "--study-name", "bad name"], "--study-name: 'bad name': use letters"),
        (["search", "quick", url, "--study", "a/b"], "--study-name: 'a/b': use letters"),
        (["search", "quick", url, "--study", "x" * 200], "--study-name: is 200 characters long"),
        (["search", "quick", url, "--ray-address", "127.0.0.1:70000"], "--ray-address: '127.0.0.1:70000' needs a port from 1 to 65535"),
        (["search", "quick", url, "--ray-address", "headnode"], "--ray-address: 'headnode' needs a port"),
        (["search", "quick", "a.db", "--storage", "b.db"], "--storage: STORAGE and --storage name different storages"),
        (["dashboard", cost_study, "--port", "70000"], "--port: '70000' is not a port"),
        (["dashboard", cost_study, "--port", "http"], "--port: 'http' is not a port"),
        (["dashboard", cost_study, "--host", "no-such-host.invalid"], "--host: cannot use 'no-such-host.invalid'"),
        (["report", cost_study, "--out", str(afile)], f"--out: '{afile}' is a file, not a folder"),
        (["report", cost_study, "--out", str(afile / "sub")], "--out: cannot create folder"),
        (["export", cost_study, "--max-m-sc", "1MiB", "--out", str(afile)], "is a file, not a folder"),
        (["measure", "--plot", str(tmp_path / "missing" / "t.png")], f"--plot: folder '{tmp_path / 'missing'}' does not exist"),
        (["measure", "--plot", str(tmp_path / "t.docx")], f"--plot: '{tmp_path / 't.docx'}' has no known format"),
        (["measure", "--json", str(tmp_path)], f"--json: '{tmp_path}' is a folder; give a file name"),
        (["measure", "--json", str(afile / "x.json")], "is a file, not a folder"),
        (["report", cost_study, "--storage", str(afile), "--out", str(tmp_path / "r")], "--storage: STORAGE and --storage name different storages"),
    ]  # fmt: skip
    for argv, message in cases:
        t0 = time.perf_counter()
        line = one_error(capsys, main(argv))
        assert message in line, (argv, line)
        assert time.perf_counter() - t0 < 10, argv
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile", "cost.db"]


def test_argparse_mistakes_are_one_line_too(capsys):
    with pytest.raises(SystemExit) as info:
        main(["search", "quick", "--n-trials", "many"])
    assert info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    expected = ("error: unetmm search: argument --n-trials: invalid int value: 'many' "
                "(see unetmm search --help)")
    assert err == [expected]


def test_failed_commands_leave_no_folder_they_created(tmp_path, capsys, cost_study):
    train = tmp_path / "train.yaml"
    train.write_text(yaml.safe_dump({"arch": TINY_ARCH, "data": {"train": str(tmp_path / "nope")},
                                     "recipe": {"iterations": 2, "batch": 1, "crop": 16}}))  # fmt: skip
    failing = {
        "report": ["report", cost_study, "--objectives", "psnr,bogus", "--out", "{new}"],
        "export": ["export", cost_study, "--max-m-sc", "1MiB", "--out", "{new}"],
        "train": ["train", str(train), "--out", "{new}", "--quiet"],
    }
    for command, argv in failing.items():
        new = tmp_path / "new" / command / "deeper"
        one_error(capsys, main([a.format(new=new) for a in argv]))
        assert not (tmp_path / "new").exists(), command


# -- secrets -----------------------------------------------------------------------------------
def test_a_storage_password_in_the_spec_is_stored_and_shown_masked(tmp_path, capsys):
    secret = "postgresql+psycopg://ada:s3cret@127.0.0.1:1/studies"
    spec = parse_spec({"name": "pw", "storage": secret}, "")
    assert spec.storage == secret  # what the search connects with
    assert spec.with_overrides(n_trials=3).storage == secret
    assert spec.model_dump(mode="json")["storage"] == "postgresql+psycopg://ada:***@127.0.0.1:1/studies"
    study = prepare_study(spec, "pw", open_storage(f"sqlite:///{tmp_path / 'pw.db'}"))
    assert "s3cret" not in json.dumps(study.user_attrs)
    path = tmp_path / "pw.yaml"
    path.write_text(yaml.safe_dump({"name": "pw", "storage": secret}))
    line = one_error(capsys, main(["search", str(path)]))
    assert "cannot reach postgresql+psycopg://ada:***@127.0.0.1:1/studies" in line
    assert "s3cret" not in line


# -- CPUs ----------------------------------------------------------------------------------------
def test_a_local_search_asking_for_more_cpus_than_there_are_warns(monkeypatch, capsys):
    monkeypatch.setattr(ray_session, "available_cpus", lambda: 2)
    ray_session.warn_if_oversubscribed(2)
    assert capsys.readouterr().err == ""
    ray_session.warn_if_oversubscribed(8)
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("warning: this search runs concurrency x "
                                               "cpus_per_trial = 8 CPU(s)")  # fmt: skip
    assert "but 2 CPU(s) are available" in err[0]


@pytest.mark.slow
def test_a_cluster_without_a_node_large_enough_is_refused(local_ray):
    ray_session.check_fits("test-cluster", 2)
    with pytest.raises(ConfigError, match="--cpus-per-trial: a trial asks for 3 CPU"):
        ray_session.check_fits("test-cluster", 3)


# -- scratch folders of killed runs ------------------------------------------------------------
def test_scratch_folders_of_dead_runs_are_removed(tmp_path, monkeypatch):
    monkeypatch.setattr(ray_session, "_temp_root", lambda: tmp_path)
    dead = subprocess.Popen(["true"])
    dead.wait()
    host = socket.gethostname()
    owners = {
        "dead": f"{host}:{dead.pid}:1",
        "alive": f"{host}:{os.getpid()}:0",
        "elsewhere": f"another-host:{dead.pid}:1",
    }
    for name, owner in owners.items():
        (tmp_path / f"unetmm-run-{name}" / "ray").mkdir(parents=True)
        (tmp_path / f"unetmm-run-{name}" / "owner").write_text(owner)
    (tmp_path / "unetmm-run-unmarked").mkdir()
    (tmp_path / "not-ours").mkdir()
    removed = ray_session.remove_stale_run_dirs()
    assert [p.name for p in removed] == ["unetmm-run-dead"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "not-ours", "unetmm-run-alive", "unetmm-run-elsewhere", "unetmm-run-unmarked"]
    fresh = ray_session.new_run_dir()
    assert fresh.parent == tmp_path and (fresh / "owner").read_text().split(":")[1] == str(os.getpid())
