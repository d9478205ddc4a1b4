"""benchmarks/noise_floor.py: the target's seed floor under the budget, the proxy columns'
agreement with it, and the shipped trust check (``studies/presets/trust.yaml``), which must be
what the committed result files give."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # benchmarks/ is a folder of scripts, not an installed package
    sys.path.insert(0, str(ROOT))

from benchmarks import noise_floor as nf
from studies.results import trust

RESULTS = ROOT / "benchmarks" / "results"


def test_floor_is_the_pooled_seed_sd_times_1_96_sqrt2() -> None:
    runs = {"a": {0: 30.0, 1: 30.2}, "b": {0: 29.0, 1: 29.4}, "c": {0: 25.0}}
    sd, floor, paired = nf.noise_floor(runs)
    # sample variances 0.02 and 0.08: pooled sd sqrt(0.05)
    assert paired == 2 and sd == pytest.approx(math.sqrt(0.05))
    assert floor == pytest.approx(1.96 * math.sqrt(2) * math.sqrt(0.05))
    assert nf.noise_floor({"c": {0: 25.0}})[2] == 0


def test_curve_fit_extrapolates_a_power_law() -> None:
    curve = [[t, 30.0 - 8.0 * t**-0.5] for t in (50, 100, 150, 200, 250, 300)]
    assert nf.curve_fit(curve, 4.0) == pytest.approx(30.0 - 8.0 * 1200**-0.5, abs=0.02)
    assert math.isnan(nf.curve_fit(curve[:2]))


def test_analysis_names_the_ties_and_scores_the_columns() -> None:
    budget = nf.target_budget(2000).model_dump(mode="json")
    rec = [{"run": "target", "design": d, "seed": s, "psnr": p, "budget": budget}
           for d, s, p in [("subset{4}", 0, 30.8), ("subset{4}", 1, 30.9),
                           ("unet--(paper)", 0, 31.0), ("unet--(paper)", 1, 31.3),
                           ("unet--(A=64)", 0, 24.0)]]  # fmt: skip
    rec += [{"run": "proxy 1x", "design": d, "seed": 0, "psnr": p, "seconds": 50.0, "curve": []}
            for d, p in [("subset{4}", 23.4), ("unet--(paper)", 26.3), ("unet--(A=64)", 22.6)]]
    a = nf.analyse(rec, 2000)
    assert a["ties"] == ["unet--(paper)", "subset{4}"] and a["pairs_apart"] == 2
    col = a["columns"][0]
    assert (col["column"], col["designs"], col["tau_all"], col["tau_top"]) == (
        "proxy 1x", 3, 1.0, 1.0)
    assert a["contenders"] == ["subset{4}", "unet--(paper)"]  # A=64 is 7 dB below
    assert (col["pick"], col["pick_loss_db"]) == ("unet--(paper)", 0.0)
    assert col["floor_db"] is None  # one proxy seed: no floor of its own
    assert "| unet--(paper) | 31.00 | 31.30 | 31.15 | 0.30 |" in nf.render(a)


def test_a_column_of_two_seeds_is_one_run_per_seed_and_their_mean_at_twice_the_cost() -> None:
    """The study trains one seed: the column's own row is its seed-0 runs, not their mean."""
    cols = {"proxy 1x": {"a": {0: 26.0, 1: 24.0}, "b": {0: 25.0, 1: 27.0}}}
    rows = {name: (scores, cost) for name, scores, cost in nf.seed_views(cols, {"proxy 1x": 60.0})}
    assert set(rows) == {"proxy 1x", "proxy 1x (seed 1)", "proxy 1x (mean of 2 seeds)"}
    assert nf.means(rows["proxy 1x"][0]) == {"a": 26.0, "b": 25.0}
    assert nf.means(rows["proxy 1x (seed 1)"][0]) == {"a": 24.0, "b": 27.0}
    assert nf.means(rows["proxy 1x (mean of 2 seeds)"][0]) == {"a": 25.0, "b": 26.0}
    assert [rows[n][1] for n in sorted(rows)] == [60.0, 120.0, 60.0]


def test_shipped_checks_are_what_their_result_files_give() -> None:
    """The numbers report and export print for a nafnet_sidd study (and one with 4x its proxy
    steps) are recomputed here from the committed target_fidelity results: an edited file or a
    stale entry fails."""
    from studies.spec import load_spec

    shipped = [c for c in trust.load_checks() if c.preset.startswith(nf.PRESET)]
    assert len(shipped) == 2
    steps = load_spec(nf.PRESET).proxy.budget.steps
    for check in shipped:
        files = [str(RESULTS / name) for name in check.source.split(", ")]
        factor = check.comparable["proxy.budget"]["steps"] / steps
        entry = nf.trust_entry(nf.analyse(nf.load(files), 2000), check.source, factor)
        assert trust.Trust(**entry) == check
        assert check.seeds >= 2 and check.designs >= 8
    assert {c.comparable["proxy.budget"]["steps"] for c in shipped} == {steps, 4 * steps}
