"""Report and export on a study the real search wrote (``studies.search.driver.run_search`` on Ray), not
on one built to mimic its schema: real costs, real proxy training (a few steps on tiny crops),
real ASHA and constraints. Slow: starting Ray and its workers takes most of its ~30-40 s on 2
busy cores."""

from __future__ import annotations

import json
import re

import optuna
import pytest
import yaml

import nas
from studies.cli import main
from studies.results import pareto
from studies.search.driver import run_search
from studies.spec import parse_spec
from trainers.config import DataConfig, load_train_config

REAL = {
    "name": "real",
    "target": {"backbone": "nafnet-w16", "input_size": 64, "bits": 8},
    "proxy": {
        "data": {"val_limit": 1, "cache_mb": 16},
        "budget": {"steps": 4, "eval_every": 2, "batch": 1, "crop": 16, "val_crop": 16},
    },
    "constraints": ["m_sc <= 40 KiB"],  # full skips (120 KiB) break it
    "early_stopping": {"grace_steps": 2},
    "n_trials": 5,  # the three reference points and two sampled designs
    "concurrency": 1,
    "cpus_per_trial": 1,
    "seed": 0,
}


@pytest.mark.slow
def test_report_and_export_of_a_real_search(tmp_path, capsys) -> None:
    db = tmp_path / "real.db"
    run_search(parse_spec(REAL, ""), f"sqlite:///{db}")
    study = optuna.load_study(study_name="real", storage=f"sqlite:///{db}")
    points = {p.number: p for p in pareto.load_points(study)}
    full = next(p for p in points.values() if p.reference == "full")
    assert full.status == "infeasible" and full.constraints == {"m_sc <= 40 KiB": 80.0}
    capsys.readouterr()

    out = tmp_path / "report"
    assert main(["report", str(db), "--out", str(out), "--timelines", "1"]) == 0
    page = (out / "report.html").read_text()
    table = re.search(r'<table id="pareto-table">(.*?)</table>', page, re.DOTALL).group(1)
    listed = [int(n) for n in re.findall(r"<tr><td>(\d+)", table)]
    # The front is Optuna's own constraint-aware best trials (stopped trials are PRUNED there),
    # less repeats of a design with the same scores (the search copies a repeat's results).
    best_trials = {t.number for t in study.best_trials}
    assert listed and set(listed) <= best_trials
    designs = [{json.dumps(points[n].attrs["arch"]) for n in ns} for ns in (listed, best_trials)]
    assert designs[0] == designs[1]
    assert all(points[n].status == "complete" and points[n].feasible for n in listed)
    assert "Constraints: m_sc &lt;= 40 KiB." in page
    for name in ("pareto_m_sc", "pareto_3d", "timelines"):
        assert (out / f"{name}.png").stat().st_size > 10_000

    export_dir = tmp_path / "export"
    assert main(["export", str(db), "--max-m-sc", "40KiB", "--out", str(export_dir)]) == 0
    (config_path,) = [p for p in export_dir.glob("*.yaml") if not p.name.endswith(".tiling.yaml")]
    number = int(config_path.stem.rsplit("trial", 1)[1])
    plan = yaml.safe_load(config_path.with_suffix(".tiling.yaml").read_text())
    assert plan["executor"] == "tiled" and plan["predicted_peak_bytes"] > 0
    best = max(listed, key=lambda n: (points[n].value("psnr"), -n))
    assert number == best
    config = load_train_config(config_path)
    assert config.arch.to_dict() == points[number].attrs["arch"]
    assert config.data == DataConfig()  # not the proxy's val_limit 1 and 16 MB cache
    model = nas.build_model(nas.load_config(config_path))
    assert sum(p.numel() for p in model.parameters()) == points[number].attrs["params"]
    assert f"Trial **{number}** of study `real`" in config_path.with_suffix(".md").read_text()

    assert main(["export", str(db), "--max-macs", "1", "--out", str(tmp_path / "none")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "has MACs <= 1; the closest is trial " in err
