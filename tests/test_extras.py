"""The optional extras (``nas.extras``): the core install runs search, report, export and train
without PostgreSQL's driver or ONNX; using one without its extra is one ``error:`` line naming the
install command, before any work."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from nas import ArchConfig, NAFNetConfig, NoSkipsConfig, extras
from nas.errors import ConfigError
from studies.cli import main
from trainers.config import Recipe, TrainConfig


def test_the_core_commands_import_no_extra() -> None:
    code = ("import sys, studies.cli.search, studies.search.driver, studies.results.report, "
            "studies.results.export, trainers.train; from studies.storage import normalize_url; "
            "normalize_url('sqlite:///x.db'); "
            "print([m for m in ('psycopg', 'onnx', 'onnxruntime', 'nni') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_require_names_the_missing_module_and_the_install_command(monkeypatch) -> None:
    assert extras.installed("postgres") and extras.installed("onnx")  # CI installs every extra
    monkeypatch.setitem(extras.EXTRAS, "onnx", ("onnx", "onnx_is_not_here"))
    assert extras.missing("onnx") == ["onnx_is_not_here"]
    with pytest.raises(ConfigError) as err:
        extras.require_extra("onnx", "--onnx")
    assert str(err.value) == ("--onnx: needs the 'onnx' extra, which is not installed (no module "
                              "onnx_is_not_here); install it: pip install -e '.[onnx]' (in a "
                              "checkout) or pip install 'unetmm[onnx]'")  # fmt: skip


def test_a_postgresql_storage_without_the_extra_is_one_line(monkeypatch, capsys,
                                                            tmp_path: Path) -> None:  # fmt: skip
    monkeypatch.setitem(extras.EXTRAS, "postgres", ("psycopg_is_not_here",))
    url = "postgresql://ada@127.0.0.1:1/studies"
    assert main(["search", "quick", "--storage", url]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err
    assert "needs the 'postgres' extra" in err and "unetmm[postgres]" in err
    assert main(["report", url, "--out", str(tmp_path / "r")]) == 2
    assert "unetmm[postgres]" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_train_onnx_without_the_extra_is_refused_before_any_work(monkeypatch, capsys,
                                                                 tmp_path: Path) -> None:  # fmt: skip
    monkeypatch.setitem(extras.EXTRAS, "onnx", ("onnx_is_not_here",))
    config = TrainConfig(arch=ArchConfig(NAFNetConfig(8, (1, 1), 1, (1, 1)), NoSkipsConfig()),
                         out_dir=str(tmp_path / "run"),
                         recipe=Recipe(iterations=2, batch=2, crop=16, val_crop=32, threads=1))
    path = tmp_path / "c.yaml"
    path.write_text(config.to_yaml())
    assert main(["train", str(path), "--onnx", "--quiet"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("error: --onnx: needs the 'onnx' extra")
    assert not (tmp_path / "run").exists()
