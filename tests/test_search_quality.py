"""The search-quality benchmark's bound: an ideal design's box caps every front's hypervolume."""

from __future__ import annotations

import pytest

from benchmarks.search_quality import GOAL, MIB, ceiling, hv_curve, pooled


def trial(psnr: float, m_sc_mib: float, gmacs: float) -> dict:
    return {"eligible": True, "psnr": psnr, "m_sc_bytes": m_sc_mib * MIB, "macs": gmacs * 1e9,
            "arch": f"{psnr}/{m_sc_mib}/{gmacs}", "reference": None}  # fmt: skip


def run(sampler: str, trials: list[dict]) -> dict:
    return {"sampler": sampler, "seed": 0, "trials": trials, "hv_curve": hv_curve(trials)}


def test_the_ceiling_is_the_ideal_points_box_and_bounds_every_front() -> None:
    # reference point (20 dB, 4 MiB, 18 G): full skips, no skips, and two designs between
    full, none = trial(27.0, 3.75, 16.0), trial(21.0, 0.0, 16.0)
    rnd = run("random", [full, none, trial(25.0, 0.25, 17.0)])
    tpe = run("tpe", [full, none, trial(26.0, 0.5, 16.5)])
    runs = {"random/seed0": rnd, "tpe/seed0": tpe}
    # random's HV by hand: slabs of PSNR above 20 dB, each the area its best points dominate
    # 20-21: 4 x 2 = 8; 21-25: union of (0.25..4 x 17..18 region) and full's box:
    # points (0.25, 17) and (3.75, 16): area (4-0.25)*(18-17) + (4-3.75)*(17-16) = 4.0; 4 dB -> 16
    # 25-27: full only: 0.25 x 2 = 0.5; 2 dB -> 1.0.  Total 25.0
    assert rnd["hv_curve"][-1] == pytest.approx(25.0)
    c = ceiling(runs)["0"]
    assert (c["psnr_best"], c["m_sc_mib_min"], c["gmacs_min"]) == (27.0, 0.0, 16.0)
    assert c["hv_bound"] == pytest.approx(7.0 * 4.0 * 2.0)  # 56
    assert c["ratio_to_random"] == pytest.approx(56 / 25)
    # the PSNR whose box alone is GOAL x random's HV: 20 + 1.2 * 25 / (4 * 2)
    assert c["psnr_needed"] == pytest.approx(20 + GOAL * 25 / 8)
    assert pooled(runs)["hv_mean"] <= c["hv_bound"]
    assert max(r["hv_curve"][-1] for r in runs.values()) <= pooled(runs)["hv_mean"]
