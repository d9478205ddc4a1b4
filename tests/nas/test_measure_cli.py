"""``unetmm measure``: the Table-4 comparison, the Fig. 1b plot, and one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys

from studies.cli import main


def test_measure_prints_table4_and_plots(tmp_path, capsys) -> None:
    png = tmp_path / "fig1b.png"
    rc = main(["measure", "--engine", "meta", "--plot", str(png),
               "--json", str(tmp_path / "r.json")])  # fmt: skip
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


def test_config_on_another_backbone_compares_with_its_own_full_skips(
    tmp_path, capsys, monkeypatch
) -> None:
    """A depth-3 U-Net next to a depth-4 NAFNet: its rows use its own full skips and labels."""
    from nas import ArchConfig, FullSkipsConfig, NoSkipsConfig, UNetConfig, save_config

    monkeypatch.chdir(tmp_path)  # short design names keep the table's rows on one line
    unet = UNetConfig(width=8, depth=3)
    save_config(ArchConfig(unet, FullSkipsConfig()), "full3.yaml")
    save_config(ArchConfig(unet, NoSkipsConfig()), "none3.yaml")
    args = ["measure", "--engine", "meta", "--size", "64", "--backbone", "nafnet-w16",
            "--config", "full3.yaml", "--config", "none3.yaml", "--plot", "fig.png",
            "--json", "r.json"]  # fmt: skip
    assert main(args) == 0
    rows = {line.split()[1]: line for line in capsys.readouterr().out.splitlines()
            if line.strip().startswith("│ ") and "yaml" in line}  # fmt: skip
    full_row = rows["full3.yaml"].split("│")
    assert full_row[4].strip() == "0.0%" and full_row[7].strip() == "+0.0%"  # saved, vs full
    assert rows["none3.yaml"].split("│")[4].strip() == "100.0%"
    reports = json.loads((tmp_path / "r.json").read_text())
    assert [lb for lb, _ in reports["full3.yaml"]["m_sc_timeline"]] == [
        "E1", "E2", "E3", "M", "D3", "D2", "D1"]  # fmt: skip
    assert (tmp_path / "fig.png").read_bytes()[:4] == b"\x89PNG"


def test_measure_an_official_nafnet_checkpoint(tmp_path, capsys) -> None:
    """The NAFNet of an official (BasicSR layout) checkpoint is measured, after its weights were
    loaded into it; a checkpoint that does not fit the asked preset is one error line."""
    import torch

    from nas import NAFNetConfig
    from tests.nas.official_nafnet import official_state

    cfg = NAFNetConfig(8, (1, 1, 2), 1, (1, 2, 1))
    state = official_state(cfg)
    path = tmp_path / "NAFNet-tiny.pth"
    torch.save({"params": state}, path)
    assert main(["measure", "--engine", "meta", "--size", "64", "--checkpoint", str(path),
                 "--json", str(tmp_path / "r.json")]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert (f"{path}: loaded {len(state)} tensors (backbone: {len(state)}) of an official "
            "NAFNet checkpoint") in out  # fmt: skip
    reports = json.loads((tmp_path / "r.json").read_text())
    assert set(reports) == {"full", "none", "unetmm"}
    assert reports["full"]["params"] == sum(v.numel() for v in state.values())
    assert [lb for lb, _ in reports["full"]["m_sc_timeline"]][:3] == ["E1", "E2", "E3"]
    assert main(["measure", "--engine", "meta", "--checkpoint", str(path),
                 "--backbone", "nafnet-w16"]) == 2  # fmt: skip
    assert capsys.readouterr().err.splitlines() == [
        ("error: --checkpoint: the checkpoint's NAFNet has width 8, the model's backbone.width "
         "is 16")]  # fmt: skip
    torch.save({"arch": {}, "model": {"backbone.intro.weight": torch.zeros(1)}}, path)
    assert main(["measure", "--engine", "meta", "--checkpoint", str(path)]) == 2
    assert "--checkpoint: holds a unetmm model" in capsys.readouterr().err
