"""studies.pareto: fronts of complete, feasible trials only; hypervolume; knee."""

from __future__ import annotations

import itertools
import math

import optuna
import pytest

from studies import schema
from studies.constraints import Constraint
from studies.metrics import get_metric
from studies.results import pareto
from studies.results.pareto import TrialPoint


def _independent_front(study: optuna.Study, objectives: tuple[str, ...]) -> set[int]:
    """The front computed straight from the FrozenTrials, without studies.pareto."""
    keep = []
    for t in study.get_trials():
        feasible = all(v <= 0 for k, v in t.system_attrs.items() if k.startswith("constraints:"))
        if t.state.name == "COMPLETE" and t.user_attrs.get("status") == "complete" and feasible:
            keep.append(t)
    sign = {o: -1 if get_metric(o).maximized else 1 for o in objectives}
    loss = {
        t.number: tuple(sign[o] * t.user_attrs[get_metric(o).key] for o in objectives)
        for t in keep
    }
    front = set()
    for n, a in loss.items():
        if not any(all(x <= y for x, y in zip(b, a)) and b != a for b in loss.values()):
            front.add(n)
    return front


def test_front_excludes_stopped_and_infeasible_trials(built_study) -> None:
    study = optuna.load_study(study_name=built_study.name, storage=built_study.url)
    points = pareto.load_points(study)
    assert len(points) == built_study.n_trials
    objectives = pareto.study_objectives(study)
    assert objectives == ("psnr", "m_sc", "macs")  # the study's "objectives" user attribute
    front = pareto.pareto_front(points, objectives)
    numbers = [p.number for p in front]

    # Same set as an independent computation; duplicates of one design appear once.
    independent = _independent_front(study, objectives)
    assert set(numbers) <= independent
    archs = {repr((p.attrs["arch"], p.value("psnr"))) for p in points if p.number in independent}
    assert len(numbers) == len(archs) >= 3

    # The fixture has teeth: stopped trials score above the whole front; no skips (M_sc 0, the
    # lowest) is COMPLETE with status complete but breaks the PSNR floor; full skips broke the
    # M_sc limit and was not trained.
    stopped = [p for p in points if p.status == schema.STATUS_STOPPED]
    assert stopped and all(p.state == "PRUNED" for p in stopped)
    assert max(p.value("psnr") for p in stopped) > max(p.value("psnr") for p in front)
    none = next(p for p in points if p.reference == "none")
    assert none.state == "COMPLETE" and none.status == schema.STATUS_COMPLETE
    assert none.value("m_sc") == 0 and none.constraints["psnr >= 22 dB"] > 0
    full = next(p for p in points if p.reference == "full")
    assert full.state == "PRUNED" and full.status == schema.STATUS_INFEASIBLE
    assert full.constraints["m_sc <= 40 KiB"] == 80.0  # 120 KiB - 40 KiB, in the name's unit
    assert not {p.number for p in stopped} & set(numbers)
    assert none.number not in numbers and full.number not in numbers
    assert all(p.value("m_sc") <= built_study.m_sc_limit and p.value("psnr") >= 22 for p in front)
    # Sorted by the first minimised objective (M_sc), then by trial number.
    assert [p.value("m_sc") for p in front] == sorted(p.value("m_sc") for p in front)


def test_constraint_limits_are_read_from_the_names(built_study) -> None:
    study = optuna.load_study(study_name=built_study.name, storage=built_study.url)
    limits = pareto.constraint_limits(pareto.load_points(study))
    assert limits == {"m_sc <= 40 KiB": Constraint.parse("m_sc <= 40 KiB"),
                      "psnr >= 22 dB": Constraint.parse("psnr >= 22 dB")}
    assert [(c.key, c.op, c.limit_in_key_unit) for c in limits.values()] == [
        ("m_sc_bytes", "<=", 40960.0), ("psnr_db", ">=", 22.0)]
    parsed = Constraint.read_back("macs <= 17.5 G", [])
    assert (parsed.key, parsed.limit_in_key_unit) == ("macs_fvcore", 17.5e9)
    assert Constraint.read_back("m_sc <= 0.25 MiB", []).limit_in_key_unit == 262144
    unknown = Constraint.read_back("latency <= 3 ms", [])  # another tool's name, no trial
    assert unknown.key is None and math.isnan(unknown.limit)
    assert unknown.describe() == "latency <= 3 ms"


def test_unnamed_constraints_fall_back_to_measured_minus_limit() -> None:
    p = TrialPoint(0, "COMPLETE", {"m_sc_bytes": 1000}, {}, {"m_sc": -24.0})
    [(name, c)] = pareto.constraint_limits([p]).items()
    assert (name, c.key, c.op, c.limit_in_key_unit) == ("m_sc", "m_sc_bytes", "<=", 1024.0)
    assert c.describe() == "m_sc <= 1 KiB"
    q = TrialPoint(1, "COMPLETE", {"latency_ms": 3.5}, {}, {"latency_ms": 0.5})
    assert pareto.constraint_limits([q])["latency_ms"].describe() == "latency_ms <= 3"


def _point(
    number: int,
    psnr: float,
    m_sc: float,
    macs: float = 1.0,
    status: str = "complete",
    constraint: float = -1.0,
) -> TrialPoint:
    attrs = {
        "psnr": psnr,
        "m_sc_bytes": m_sc,
        "macs": macs,
        "status": status,
        "arch": {"n": number},
    }
    return TrialPoint(number, "COMPLETE", attrs, {}, {"m_sc": constraint})


def test_hypervolume_matches_a_brute_force_count() -> None:
    # 2-D: two points of a staircase, reference (3, 3): 2*1 + 1*1.
    assert pareto.hypervolume([(1.0, 2.0), (2.0, 1.0)], (3.0, 3.0)) == pytest.approx(3.0)
    # 3-D on an integer grid: count the unit cells dominated by some point.
    pts = [(0.0, 2.0, 3.0), (1.0, 1.0, 1.0), (3.0, 0.0, 2.0), (2.0, 3.0, 0.0)]
    ref = (4.0, 4.0, 4.0)
    cells = sum(
        any(all(p[i] <= c[i] for i in range(3)) for p in pts)
        for c in itertools.product(range(4), repeat=3)
    )
    assert pareto.hypervolume(pts, ref) == pytest.approx(cells)


def test_hypervolume_history_is_monotone_and_ignores_ineligible() -> None:
    points = [
        _point(0, 30.0, 100.0, constraint=5.0),  # infeasible: never counts
        _point(1, 20.0, 0.0),
        _point(2, 40.0, 1.0, status="stopped"),  # partial score: never counts
        _point(3, 28.0, 50.0),
        _point(4, 25.0, 60.0),  # dominated by 3: changes nothing
    ]
    hv = pareto.hypervolume_history(points, ("psnr", "m_sc"))
    assert hv.numbers == (0, 1, 2, 3, 4)
    # Eligible: (20, 0), (28, 50), (25, 60); scaled losses: (1, 0), (0, 50/60), (3/8, 1).
    # After 1: (1.1-1)*(1.1-0) = 0.11; after 3: + (1.1-0)*(1.1-50/60) - overlap... exact below.
    expected_1 = 0.1 * 1.1 / 1.21
    expected_3 = pareto.hypervolume([(1.0, 0.0), (0.0, 50 / 60)], (1.1, 1.1)) / 1.21
    assert hv.values == pytest.approx((0.0, expected_1, expected_1, expected_3, expected_3))


def test_knee_is_the_point_farthest_above_the_chord() -> None:
    front = [
        _point(1, 20.0, 0.0),
        _point(2, 28.0, 10.0),
        _point(3, 29.0, 20.0),
        _point(4, 30.0, 40.0),
        _point(5, 35.0, 5.0, status="stopped"),
        _point(6, 27.0, 30.0),
    ]
    ranking = pareto.knee_ranking(front)
    assert [p.number for p, _ in ranking] == [2, 3, 4, 1]  # 5 stopped, 6 dominated; ties: PSNR
    # Scaled: x' = 1 - m/40, y' = (psnr-20)/10; chord from (1, 0) to (0, 1); point 2 = (0.75, 0.8).
    assert ranking[0][1] == pytest.approx((0.75 + 0.8 - 1) / 2**0.5)
    assert ranking[-1][1] == 0.0
    # Two points have no knee: scores 0, best PSNR first.
    two = pareto.knee_ranking([_point(1, 20.0, 0.0), _point(2, 30.0, 40.0)])
    assert [(p.number, s) for p, s in two] == [(2, 0.0), (1, 0.0)]


@pytest.mark.parametrize(
    ("name", "attr", "op", "limit"),
    [  # rounded (``:g``) and exact spellings of the same limits, as the search may write them
        ("params <= 2.91597e+07", "params", "<=", 29_159_700),
        ("params <= 29159715", "params", "<=", 29_159_715),
        ("params <= 29_159_715", "params", "<=", 29_159_715),
        ("params <= 29.5 M", "params", "<=", 29_500_000),
        ("m_sc <= 0.25 MiB", "m_sc_bytes", "<=", 262_144),
        ("m_sc <= 262144", "m_sc_bytes", "<=", 262_144),
        ("m_sc <= 262144 B", "m_sc_bytes", "<=", 262_144),
        ("m_sc <= 3.75MiB", "m_sc_bytes", "<=", 3_932_160),
        ("peak_memory <= 4 MiB", "peak_activation_bytes", "<=", 4 * 2**20),
        ("macs <= 18 G", "macs_fvcore", "<=", 18e9),
        ("macs <= 18000000000", "macs_fvcore", "<=", 18e9),
        ("macs <= 1.8e+10", "macs_fvcore", "<=", 18e9),
        ("macs_paper <= 17.52 G", "macs_paper", "<=", 17.52e9),
        ("psnr >= 28", "psnr_db", ">=", 28.0),
        ("psnr >= 28.25 dB", "psnr_db", ">=", 28.25),
        ("ssim >= 0.8", "ssim", ">=", 0.8),
    ],
)
def test_constraint_names_parse_in_both_styles(name, attr, op, limit) -> None:
    parsed = Constraint.read_back(name, [])
    assert (parsed.key, parsed.op, parsed.limit_in_key_unit) == (attr, op, pytest.approx(limit))
    assert parsed.describe() == name


@pytest.mark.parametrize("name", ["latency <= 3 ms", "m_sc <= 4 M", "psnr >= 28 MiB", "m_sc < 4"])
def test_constraint_names_that_say_no_limit(name) -> None:
    c = Constraint.read_back(name, [])
    assert c.key is None and math.isnan(c.limit) and c.describe() == name


def test_a_repeated_front_design_is_listed_once_and_drawn_as_a_repeat() -> None:
    """Trial 3 repeats design 1 with the same scores (a copied result): the table's front lists
    it once, and the plots count it once too: a small ring on trial 1 (its hover says so), not
    a second front point nor a grey dominated one."""
    from studies.results.plots import views as plots

    def point(number: int, design: str, psnr: float, m_sc: float) -> TrialPoint:
        attrs = {"psnr": psnr, "m_sc_bytes": m_sc, "macs": 1.0, "status": "complete",
                 "arch": {"design": design}}  # fmt: skip
        return TrialPoint(number, "COMPLETE", attrs, {}, {})

    points = [point(0, "a", 20.0, 0.0), point(1, "b", 25.0, 10.0), point(2, "c", 24.0, 20.0),
              point(3, "b", 25.0, 10.0), point(4, "d", 26.0, 30.0)]  # fmt: skip
    objectives = ("psnr", "m_sc")
    assert [p.number for p in pareto.pareto_front(points, objectives)] == [0, 1, 4]
    with_repeats = pareto.pareto_front(points, objectives, repeats=True)
    assert [p.number for p in with_repeats] == [0, 1, 3, 4]
    view = plots.scatter_view(points, "m_sc", "psnr", {}, "t")
    drawn = {s.kind: s.numbers for s in view.series}
    assert drawn["front"] == (0, 1, 4) and drawn["feasible"] == (2,) and drawn["repeat"] == (3,)
    assert "repeated by #3" in next(s for s in view.series if s.kind == "front").text[1]
    # A repeat with other scores (noise) is another measurement: dominated, drawn grey.
    noisy = [*points[:3], point(3, "b", 24.5, 10.0), points[4]]
    drawn = {s.kind: s.numbers for s in plots.scatter_view(noisy, "m_sc", "psnr", {}, "t").series}
    assert drawn["front"] == (0, 1, 4) and drawn["feasible"] == (2, 3)


def test_copies_collapse_to_one_row_with_a_count() -> None:
    """The search tells a proposal of a design judged before as a copy (``copy_of``, PRUNED, the
    source's results as attributes; studies from before stored copies COMPLETE): the front lists
    the design once, at its first trial, counting its copies; infeasible trials (COMPLETE for
    Optuna's samplers, with worst scores) never enter it."""

    def point(number, design, psnr, m_sc, state="COMPLETE", **extra):
        attrs = {"psnr": psnr, "m_sc_bytes": m_sc, "macs": 1.0, "status": "complete",
                 "arch": {"design": design}, **extra}  # fmt: skip
        return TrialPoint(number, state, attrs, {}, {})

    none = point(1, "none", 21.0, 0.0)
    old_copies = [point(n, "none", 21.0, 0.0, copy_of=1) for n in (2, 5)]  # COMPLETE (before)
    new_copies = [point(n, "none", 21.0, 0.0, "PRUNED", copy_of=1) for n in (6, 7)]
    paper = point(3, "unetmm", 26.3, 262_144.0)
    infeasible = TrialPoint(4, "COMPLETE", {"m_sc_bytes": 0.0, "macs": 0.5, "status": "infeasible",
                                            "arch": {"design": "x"}}, {}, {"m": 1.0})  # fmt: skip
    points = [point(0, "full", 27.4, 3.75 * 2**20), none, *old_copies, paper, infeasible,
              *new_copies]  # fmt: skip
    rows = pareto.distinct_front(points, ("psnr", "m_sc", "macs"))
    assert [(r.point.number, r.count) for r in rows] == [(1, 5), (3, 1), (0, 1)]
    assert [q.number for q in rows[0].trials] == [1, 2, 5]
    assert [q.number for q in rows[0].copies] == [6, 7]
    assert [p.number for p in pareto.pareto_front(points, ("psnr", "m_sc"))] == [1, 3, 0]
    assert [p.number for p in pareto.pareto_front(points, ("psnr", "m_sc"), repeats=True)] == [
        1, 2, 5, 3, 0]  # fmt: skip
    designs = pareto.distinct_designs(points, ("psnr", "m_sc"))
    assert [r.point.number for r in designs] == [0, 1, 3]  # one per design, infeasible out
