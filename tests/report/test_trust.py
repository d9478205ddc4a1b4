"""The report and ``unetmm export`` say how far a study's ranking can be trusted under its budget
(``studies.results.trust``): the target-scale check that speaks for its proxy, and, when the
proxy's top designs lie within that check's noise floor, that it cannot tell them apart, the
simplest of them, and ``unetmm confirm``."""

from __future__ import annotations

import dataclasses

import optuna
import pytest

from studies.cli import main
from studies.metrics import get_metric
from studies.results import pareto, trust
from studies.results.report import write_report

COMPARABLE = {"target.backbone": {"name": "nafnet"}, "proxy.budget": {"steps": 300}, "seed": 0}


def _check(floor_db: float, tau: float = -0.33, proxy_floor_db: float | None = None
           ) -> trust.Trust:  # fmt: skip
    return trust.Trust(preset="test", comparable={**COMPARABLE, "seed": 5},  # seed ignored
                       budget="M_sc <= 40 KiB", designs=8, seeds=2,
                       target="NAFNet-w32, 2000 steps", floor_db=floor_db, spread_db=0.9,
                       tau=tau, source="benchmarks/results/x.json",
                       proxy_floor_db=proxy_floor_db)  # fmt: skip


@pytest.fixture
def study(built_study, monkeypatch):
    s = optuna.load_study(study_name=built_study.name, storage=built_study.url)
    s.set_user_attr("comparable", COMPARABLE)
    yield s
    s.set_user_attr("comparable", None)


def _top(study, floor: float):
    points = pareto.load_points(study)
    pool = [r.point for r in pareto.distinct_designs(points, ("psnr",))]
    return trust.tie_group(pool, get_metric("psnr"), floor)


def test_top_designs_within_the_floor_are_named_with_the_simplest(study, monkeypatch, tmp_path,
                                                                  capsys, built_study) -> None:
    group = _top(study, 50.0)  # a floor wider than any gap: every design ties with the best
    assert len(group) > 2
    monkeypatch.setattr(trust, "load_checks", lambda: [_check(50.0)])
    simple = trust.simplest(group)
    page = write_report(study, tmp_path / "r").html.read_text()
    assert "cannot tell them apart" in page and "noise floor is 50.00 dB" in page
    assert f"the simplest of them is #{simple.number}" in page
    assert "Kendall tau -0.33: it does not rank them" in page and "unetmm confirm" in page
    assert main(["export", str(built_study.path), "--out", str(tmp_path / "x")]) == 0
    out = capsys.readouterr().out
    assert f"the simplest of them is trial {simple.number}" in out and "unetmm confirm" in out
    card = next((tmp_path / "x").glob("*.md")).read_text()
    assert "## How far the ranking can be trusted" in card and "cannot tell them apart" in card


def test_a_winner_beyond_the_floor_is_not_called_a_tie(study, monkeypatch, tmp_path, capsys,
                                                       built_study) -> None:
    group = _top(study, 1e-9)
    assert len(group) == 1
    monkeypatch.setattr(trust, "load_checks", lambda: [_check(1e-9, tau=0.8)])
    page = write_report(study, tmp_path / "r").html.read_text()
    assert "cannot tell them apart" not in page
    assert "leads the next design by more than 0.00 dB" in page and "it ranks them" in page
    assert main(["export", str(built_study.path), "--out", str(tmp_path / "x")]) == 0
    assert "cannot tell" not in capsys.readouterr().out


def test_the_proxys_own_floor_decides_its_ties(study, monkeypatch, tmp_path) -> None:
    """Proxy scores are compared with the proxy's seed floor where it was measured: a wide
    target floor with a tiny proxy floor names no tie; the page states both floors."""
    assert len(_top(study, 50.0)) > 2 and len(_top(study, 1e-9)) == 1
    monkeypatch.setattr(trust, "load_checks", lambda: [_check(50.0, proxy_floor_db=1e-9)])
    page = write_report(study, tmp_path / "r").html.read_text()
    assert "noise floor is 50.00 dB at the target and 0.00 dB in the proxy" in page
    assert "cannot tell them apart" not in page
    monkeypatch.setattr(trust, "load_checks", lambda: [_check(1e-9, proxy_floor_db=50.0)])
    page = write_report(study, tmp_path / "r2").html.read_text()
    assert "cannot tell them apart" in page and "within 50.00 dB of each other" in page


def test_a_study_no_check_speaks_for_says_so(study, monkeypatch, tmp_path) -> None:
    monkeypatch.setattr(trust, "load_checks", lambda: [])
    page = write_report(study, tmp_path / "r").html.read_text()
    assert "No shipped check speaks for this study" in page


def test_shipped_checks_load() -> None:
    for check in trust.load_checks():
        assert check.floor_db is None or check.floor_db > 0  # None: a reference of one seed
        assert -1 <= check.tau <= 1 and check.designs >= 8


def test_the_summary_says_how_the_proxy_ranks_the_contenders() -> None:
    check = dataclasses.replace(_check(0.62, tau=0.64, proxy_floor_db=1.40), contenders=5,
                                tau_contenders=-0.4, pick_loss_db=1.088)  # fmt: skip
    text = check.summary()
    assert "noise floor is 0.62 dB at the target and 1.40 dB in the proxy's own scores" in text
    assert "Kendall tau 0.64: it ranks them." in text
    assert ("Over the 5 designs within 2 dB of the target's best, where the choice is made, tau "
            "is -0.40, and the design the proxy ranks first is 1.09 dB below the target's "
            "best.") in text  # fmt: skip
    assert "Over the" not in _check(0.62).summary()  # a check without them says nothing of it


def test_a_budget_check_says_what_it_compared() -> None:
    """Where no target-scale check exists (matting, deblurring, SR presets), a check of the
    proxy against itself trained longer speaks, and says it is that."""
    check = dataclasses.replace(_check(0.5, tau=0.71, proxy_floor_db=0.8), reference="longer",
                                target="the same proxy, 2400 steps (4x)")  # fmt: skip
    text = check.summary()
    assert text.startswith("Budget check of this proxy (study preset test; no target-scale check")
    assert ("trained by the proxy at the study's budget, 1 seed, and at the same proxy, 2400 "
            "steps (4x), 2 seeds; each seed of the study's runs is compared with the longer "
            "runs of the other seeds") in text  # fmt: skip
    assert "0.50 dB in the longer runs and 0.80 dB in the study's own runs" in text
    assert "agrees with the longer runs' at Kendall tau 0.71: it ranks them." in text
    assert check.tie_floor_db == 0.8
    # a reference trained at one seed has no floor of its own: said, and ties use the study's
    one = dataclasses.replace(check, floor_db=None, seeds=1, tau_seeds=[0.71, 0.86],
                              contenders=5, tau_contenders=1.0, pick_loss_db=0.0)  # fmt: skip
    text = one.summary()
    assert "at the study's budget, 2 seeds, and at the same proxy, 2400 steps (4x), 1 seed" in text
    assert ("the longer runs' seed-to-seed noise floor is not measured (one seed); the study's "
            "own runs' floor is 0.80 dB.") in text  # fmt: skip
    assert "within 2 dB of the longer runs' best" in text and one.tie_floor_db == 0.8
    assert dataclasses.replace(one, proxy_floor_db=None).tie_floor_db == 0.0


def test_a_check_ranks_only_if_every_proxy_seed_does() -> None:
    """tau is the study's seed; with a second seed below 0.6 the check does not rank, and the
    summary gives both."""
    check = dataclasses.replace(_check(0.62, tau=0.64), tau_seeds=[0.64, 0.57])
    assert not check.ranks
    assert "Kendall tau 0.64 (0.64, 0.57 with 2 proxy seeds): it does not rank them (tau below " \
           "0.6 with a seed)." in check.summary()  # fmt: skip
    assert dataclasses.replace(check, tau_seeds=[0.64, 0.61]).ranks
