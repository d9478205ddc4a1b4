"""``unetmm measure``: the Table-4 comparison, the Fig. 1b plot, and one-line errors."""

from __future__ import annotations

import subprocess
import sys

from studies.cli import main


def test_measure_prints_table4_and_plots(tmp_path, capsys) -> None:
    png = tmp_path / "fig1b.png"
    rc = main(["measure", "--engine", "meta", "--plot", str(png), "--json", str(tmp_path / "r.json")])
    out = capsys.readouterr().out
    assert rc == 0
    assert "3,932,160" in out and "262,144" in out and "93.3%" in out
    assert "16.23" in out and "17.23" in out and "29.16" in out
    assert png.stat().st_size > 20_000 and png.read_bytes()[:4] == b"\x89PNG"


def test_measure_bad_input_is_one_line_and_nonzero() -> None:
    for args, needle in [
        (["--backbone", "resnet"], "unknown backbone preset 'resnet'"),
        (["--size", "abc"], "--size: 'abc' is not a size"),
        (["--bits", "12"], "bits: 12 is not supported"),
    ]:
        proc = subprocess.run(
            [sys.executable, "-m", "studies.cli", "measure", "--engine", "meta", *args],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert proc.returncode == 2
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0]
