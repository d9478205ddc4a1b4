"""The one metric table: a metric registered once is an objective, a constraint, and a column of
the report table, with no other edit."""

from __future__ import annotations

import re

import optuna
import pytest

import nas
from studies.constraints import Constraint
from studies.metrics import METRICS, Metric, get_metric, objective_names, register_metric
from studies.results.report import write_report
from studies.spec import parse_spec


@pytest.fixture
def latency():
    row = register_metric(Metric("latency", "latency_ms", "minimize", "count", "latency (ms)",
                                 "latency", cost=True))  # fmt: skip
    yield row
    METRICS.unregister("latency")


def test_every_metric_row_is_complete():
    for name in METRICS.names():
        m = get_metric(name)
        assert m.direction in ("maximize", "minimize") and m.unit in ("bytes", "count", "db", "ratio")
        assert m.cost == (m.from_cost is not None), name  # every cost is read off a CostReport
    assert objective_names() == ["psnr", "ssim", "sad", "mse", "m_sc", "macs", "params",
                                 "peak_memory", "peak_tiled", "recompute_macs"]
    assert get_metric("m_sc").format(262144) == "256 KiB"
    assert get_metric("macs").format(17_057_959_936) == "17.1 G"


def test_a_registered_metric_is_an_objective_a_constraint_and_a_report_column(latency, tmp_path):
    spec = parse_spec({"name": "lat", "objectives": ["psnr", "latency"],
                       "constraints": ["latency <= 5k", "m_sc <= 1 MiB"]}, "")  # fmt: skip
    assert spec.directions == ["maximize", "minimize"]
    assert spec.objective_keys == ["psnr_db", "latency_ms"]
    hard = [c for c in spec.parsed_constraints if c.is_cost]
    assert [(c.key, c.limit_in_key_unit) for c in hard] == [("latency_ms", 5000.0),
                                                            ("m_sc_bytes", 2**20.0)]  # fmt: skip
    assert Constraint.parse("latency <= 5_000").limit == 5000  # the one parser, any spelling

    skips = [nas.FullSkipsConfig(), nas.NoSkipsConfig(), nas.SubsetSkipsConfig(stages=(4,))]
    archs = [nas.ArchConfig(nas.nafnet_w32(), s).to_dict() for s in skips]  # three designs
    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 'lat.db'}", study_name="lat",
                                directions=spec.directions)  # fmt: skip
    study.set_user_attr("objectives", ["psnr", "latency"])
    for number, (psnr, ms) in enumerate([(30.0, 4000), (29.0, 3000), (28.0, 3500)]):
        attrs = {"psnr": psnr, "latency_ms": ms, "m_sc_bytes": 1000 * number, "macs": 10**9,
                 "status": "complete", "arch": archs[number], "design": f"design {number}"}  # fmt: skip
        study.add_trial(optuna.trial.create_trial(values=[psnr, ms], user_attrs=attrs))
    report = write_report(study, tmp_path / "out")
    assert report.front == (1, 0)  # trial 2 is dominated: slower and worse than trial 1
    page = report.html.read_text()
    table = re.search(r'<table id="pareto-table">(.*?)</table>', page, re.DOTALL).group(1)
    assert "<th>latency</th>" in table and "<td>3 k</td>" in table and "<td>4 k</td>" in table
    assert "latency" in (tmp_path / "out" / "pareto_trials.csv").read_text().splitlines()[0]
