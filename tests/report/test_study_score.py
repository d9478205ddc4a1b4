"""A study optimising a score other than PSNR (matting's SAD, lower is better): its report and
export rank by that score, not by PSNR."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from nas.errors import ConfigError
from studies import schema
from studies.metrics import get_metric, study_score
from studies.results import export, pareto
from studies.results.report import write_report

MIB = 2**20
# (design, M_sc MiB, SAD thousands, alpha PSNR dB): PSNR and SAD disagree on the order
DESIGNS = [("a", 0.0, 9.0, 30.0), ("b", 0.25, 4.0, 20.0), ("c", 0.5, 3.0, 25.0),
           ("d", 1.0, 2.9, 19.0)]  # fmt: skip


def test_the_study_score_is_its_first_trained_objective() -> None:
    assert study_score(["sad", "m_sc"]).name == "sad"
    assert study_score(["m_sc", "mse", "psnr"]).name == "mse"
    assert study_score(["psnr", "m_sc", "macs"]).name == "psnr"
    assert study_score(["m_sc", "macs"]).name == "psnr"  # a cost-only study: PSNR
    assert study_score().name == "psnr"
    with pytest.raises(ConfigError, match="objectives: unknown metric 'nonsense'"):
        study_score(["nonsense"])


def _points() -> list[pareto.TrialPoint]:
    return [pareto.TrialPoint(i, "COMPLETE", {
        schema.ATTR_STATUS: schema.STATUS_COMPLETE, schema.ATTR_DESIGN: name,
        schema.ATTR_ARCH: {"design": name}, "m_sc_bytes": m_sc * MIB, "macs_fvcore": 1e9,
        "sad_thousands": sad, "psnr_db": psnr}, {}, {}) for i, (name, m_sc, sad, psnr)
        in enumerate(DESIGNS)]  # fmt: skip


def test_export_ranks_by_the_study_score_in_its_direction() -> None:
    by_sad = export.pick_trials(_points(), {}, "best", top=4, score="sad")
    assert [p.point.attrs[schema.ATTR_DESIGN] for p in by_sad] == ["d", "c", "b", "a"]
    by_psnr = export.pick_trials(_points(), {}, "best", top=4)
    assert [p.point.attrs[schema.ATTR_DESIGN] for p in by_psnr] == ["a", "c", "b", "d"]
    # within 0.3 MiB: b (SAD 4.0) beats a (SAD 9.0) by SAD, loses by PSNR
    fit = export.pick_trials(_points(), {"m_sc": 0.3 * MIB}, "best", score="sad")[0].point
    assert fit.attrs[schema.ATTR_DESIGN] == "b"
    assert export.describe_costs(fit, get_metric("sad")).endswith("SAD 4.0000")


def test_the_report_draws_and_knees_by_sad(tmp_path: Path) -> None:
    study = optuna.create_study(directions=["minimize", "minimize"])
    names = [get_metric("sad").optuna_name, get_metric("m_sc").optuna_name]
    study.set_metric_names(names)  # as a unetmm search names them
    for name, m_sc, sad, psnr in DESIGNS:
        study.add_trial(optuna.trial.create_trial(values=[sad, m_sc * MIB], user_attrs={
            schema.ATTR_STATUS: schema.STATUS_COMPLETE, schema.ATTR_DESIGN: name,
            "m_sc_bytes": m_sc * MIB, "macs_fvcore": 1e9, "sad_thousands": sad,
            "psnr_db": psnr}))  # fmt: skip
    assert pareto.study_objectives(study) == ("sad", "m_sc")
    report = write_report(study, tmp_path)
    page = report.html.read_text()
    assert "<h2>SAD vs M_sc</h2>" in page and "PSNR vs M_sc" not in page
    assert "PSNR 20.00 dB, SAD 4.0000" in page  # design b's hover text names its SAD too
    # SAD vs M_sc, both lower = better: every design is on that front; the knee is b (a big SAD
    # drop for 0.25 MiB), while by PSNR a would dominate b outright and b could not be the knee
    assert sorted(report.front) == [0, 1, 2, 3]
    assert report.knee == 1
    ranked = pareto.knee_ranking(pareto.load_points(study), "m_sc", "sad")
    assert ranked[0][0].number == 1 and ranked[0][1] > 0
