"""Early-stopping fairness: how often a stopped proxy run would have entered the front.

Takes a study (``DB``: a SQLite file or URL; ``--search PRESET`` runs one into it first, with
the preset's early stopping) and

1. runs every design the study stopped early to the end, with the study's own proxy settings
   and seed (training is seeded: the completed curve starts exactly as the stopped one did,
   which the table checks: "prefix diff");
2. takes the full front: every trained design (one per design: copies left out) at its final
   PSNR, over the study's objectives, non-dominated (``pareto.distinct_front``);
3. for the study's own rule and for each rule in ``RULES`` (the old default ``asha`` grace 100
   rf 3 of nafnet_sidd is the baseline, measured on the same curves in the same run), replays
   the early-stopping scheduler (``studies.search.early_stopping``, the code a search runs)
   over the full curves, designs in trial order, one at a time (a concurrent search differs in
   which runs reached a rung first), and counts:
   - stopped: designs it stops (references exempt, as in a search);
   - false stops: stopped designs that are on the full front; *rate* = false / stopped;
   - front lost: false stops / front size; steps saved: training steps not run / all steps.

    PYTHONPATH=. python benchmarks/asha_fairness.py study.db [--study NAME] [--jobs 2]
    PYTHONPATH=. python benchmarks/asha_fairness.py new.db --search quick --n-trials 16

Raw numbers go to ``benchmarks/results/asha_fairness.json`` (``--json``), with their provenance.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing
import sys
import time
from pathlib import Path
from typing import Any

import optuna
from ray.tune.schedulers import TrialScheduler

from benchmarks import provenance
from nas.config import ArchConfig
from studies.artifacts import study_data
from studies.metrics import get_metric
from studies.results import pareto
from studies.schema import ATTR_ARCH, ATTR_COPY_OF, ATTR_STATUS
from studies.search.early_stopping import STOPPING_RULES as SCHEDULERS
from studies.search.protocol import (
    PHASE,
    PHASE_COSTS,
    REFERENCE_KEY,
    STEP,
    VAL_PSNR,
    TrialSettings,
)
from studies.spec import StudySpec
from studies.storage import load_study

# (label, early_stopping fields) replayed besides the study's own rule
RULES: tuple[tuple[str, dict[str, Any]], ...] = (
    ("asha g100 rf3 (old default)", {"rule": "asha", "grace_steps": 100, "reduction_factor": 3}),
    ("asha g100 rf2", {"rule": "asha", "grace_steps": 100, "reduction_factor": 2}),
    ("asha g150 rf2", {"rule": "asha", "grace_steps": 150, "reduction_factor": 2}),
    ("asha g200 rf2", {"rule": "asha", "grace_steps": 200, "reduction_factor": 2}),
    ("pareto g100 rf2 m0", {"rule": "pareto", "grace_steps": 100, "reduction_factor": 2,
                            "margin_db": 0.0}),
    ("pareto g100 rf2 m0.25", {"rule": "pareto", "grace_steps": 100, "reduction_factor": 2,
                               "margin_db": 0.25}),
    ("pareto g100 rf2 m0.5", {"rule": "pareto", "grace_steps": 100, "reduction_factor": 2,
                              "margin_db": 0.5}),
    ("pareto g100 rf2 m1", {"rule": "pareto", "grace_steps": 100, "reduction_factor": 2,
                            "margin_db": 1.0}),
    ("pareto g50 rf2 m0.5", {"rule": "pareto", "grace_steps": 50, "reduction_factor": 2,
                             "margin_db": 0.5}),
)  # fmt: skip


@dataclasses.dataclass
class Design:
    number: int
    reference: str | None
    costs: dict[str, float]  # cost attributes of the trial
    curve: list[tuple[int, float]]  # full curve (completed if the study stopped it)
    stopped_at: int | None  # the step the study stopped it at (None: ran to the end)
    final: float
    attrs: dict[str, Any]


def _complete(job: tuple[dict, dict, int]) -> list[tuple[int, float]]:
    """Train a stopped design to the end: (spec data, trial attrs, number) -> its full curve."""
    spec_data, attrs, _ = job
    from studies.search.worker import train

    spec = StudySpec.model_validate(spec_data)
    settings = TrialSettings.from_spec(spec)
    arch = ArchConfig.from_dict(attrs[ATTR_ARCH])
    out = train(arch, settings, report=lambda result: None)
    return [(int(s), float(v)) for s, v in out["curve"]]


def designs(
    study: optuna.Study, jobs: int, reuse: dict[int, list] | None = None
) -> tuple[list[Design], StudySpec, float]:
    """Every trained design of the study with its full curve (stopped ones completed now, or
    taken from ``reuse``: trial number -> full curve of an earlier run of this benchmark)."""
    spec = StudySpec.model_validate(study.user_attrs["spec"])
    found, todo = [], []
    trials = study.get_trials(deepcopy=False)
    stored = study_data(study, trials)  # user attributes and artifacts (arch, curve)
    for t in trials:
        a = stored[t.number]
        if a.get(ATTR_COPY_OF) is not None or a.get(ATTR_STATUS) not in ("complete", "stopped"):
            continue
        if not a.get("curve"):
            continue
        d = Design(t.number, a.get("reference"), {k: a[k] for k in a if k in _cost_keys()},
                   [tuple(p) for p in a["curve"]], None,
                   a.get(get_metric("psnr").key, float("nan")), dict(a))  # fmt: skip
        if a[ATTR_STATUS] == "stopped":
            d.stopped_at = d.curve[-1][0]
            todo.append(d)
        found.append(d)
    t0 = time.perf_counter()
    reuse = reuse or {}
    done = {d.number: [tuple(p) for p in reuse[d.number]] for d in todo if d.number in reuse}
    todo_new = [d for d in todo if d.number not in done]
    jobs_in = [(study.user_attrs["spec"], d.attrs, d.number) for d in todo_new]
    if jobs > 1 and len(jobs_in) > 1:
        with multiprocessing.get_context("spawn").Pool(jobs) as pool:
            curves = pool.map(_complete, jobs_in)
    else:
        curves = [_complete(j) for j in jobs_in]
    done |= {d.number: curve for d, curve in zip(todo_new, curves)}
    diffs = []
    for d in todo:
        curve = done[d.number]
        prefix = {s: v for s, v in d.curve}
        diffs += [abs(prefix[s] - v) for s, v in curve if s in prefix]
        d.curve, d.final = curve, curve[-1][1]
    print(f"completed {len(todo)} stopped design(s) ({len(todo) - len(todo_new)} from --reuse) "
          f"in {time.perf_counter() - t0:.0f} s; "
          f"largest prefix diff {max(diffs, default=0.0):.2e} dB")  # fmt: skip
    return found, spec, max(diffs, default=0.0)


def _cost_keys() -> set[str]:
    from studies.metrics import cost_metrics

    return {m.key for m in cost_metrics()}


def full_front(found: list[Design], objectives: tuple[str, ...]) -> set[int]:
    """Numbers of the designs on the front once every design ran to the end."""
    points = []
    for d in found:
        attrs = {**d.attrs, get_metric("psnr").key: d.final, ATTR_STATUS: "complete"}
        points.append(pareto.TrialPoint(d.number, "COMPLETE", attrs, {}, {}))
    return {r.point.number for r in pareto.distinct_front(points, objectives)}


@dataclasses.dataclass
class _Trial:  # what a scheduler reads of a Ray trial
    trial_id: str
    config: dict[str, Any]


def replay(spec: StudySpec, found: list[Design], fields: dict[str, Any]) -> dict[int, int]:
    """``number -> step`` of the designs the rule ``fields`` stops, replaying its scheduler."""
    es = spec.early_stopping.model_copy(update={"enabled": True, **fields})
    scheduler = SCHEDULERS.get(es.rule)(spec.model_copy(update={"early_stopping": es}))
    cost_keys = [get_metric(o).key for o in spec.objectives if get_metric(o).cost]
    stopped = {}
    for d in sorted(found, key=lambda d: d.number):
        trial = _Trial(str(d.number), {REFERENCE_KEY: d.reference} if d.reference else {})
        scheduler.on_trial_add(None, trial)
        scheduler.on_trial_result(None, trial, {PHASE: PHASE_COSTS,
                                                **{k: d.costs[k] for k in cost_keys}})  # fmt: skip
        last = {}
        for step, psnr in d.curve:
            last = {STEP: step, VAL_PSNR: psnr}
            if scheduler.on_trial_result(None, trial, last) == TrialScheduler.STOP:
                stopped[d.number] = step
                break
        else:
            scheduler.on_trial_complete(None, trial, last)
    return stopped


def score(found: list[Design], front: set[int], stopped: dict[int, int]) -> dict[str, Any]:
    total = sum(d.curve[-1][0] for d in found)
    saved = sum(d.curve[-1][0] - stopped[d.number] for d in found if d.number in stopped)
    false = sorted(n for n in stopped if n in front)
    return {
        "stopped": len(stopped),
        "false_stops": len(false),
        "rate": len(false) / len(stopped) if stopped else 0.0,
        "front_lost": len(false) / len(front) if front else 0.0,
        "steps_saved": saved / total if total else 0.0,
        "false_numbers": false,
        "stopped_numbers": sorted(stopped),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("db", help="study storage: a .db file or a SQLAlchemy URL")
    p.add_argument("--study", help="study name (default: the only one)")
    p.add_argument("--search", metavar="PRESET", help="first run this preset into DB")
    p.add_argument("--n-trials", type=int, default=16, help="with --search: designs to judge")
    p.add_argument("--jobs", type=int, default=2, help="stopped designs completed at once")
    p.add_argument("--json", default="benchmarks/results/asha_fairness.json")
    p.add_argument("--reuse", metavar="JSON", help="full curves of stopped designs from an "
                   "earlier run of this benchmark on the same study (no training again)")  # fmt: skip
    args = p.parse_args(argv)
    prov = provenance.started(["benchmarks/asha_fairness.py",
                               *(sys.argv[1:] if argv is None else argv)])  # fmt: skip
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if args.search:
        from studies.search.driver import run_search
        from studies.spec import load_spec

        url = args.db if "://" in args.db else f"sqlite:///{Path(args.db).resolve()}"
        run_search(load_spec(args.search).with_overrides(n_trials=args.n_trials), url)
    study = load_study(args.db, args.study)
    reuse = None
    if args.reuse:
        old = json.loads(Path(args.reuse).read_text())
        reuse = {int(n): c["curve"] for n, c in old["curves"].items() if c["stopped_at"]}
    found, spec, prefix_diff = designs(study, args.jobs, reuse)
    objectives = pareto.study_objectives(study)
    front = full_front(found, objectives)
    own = spec.early_stopping
    if "rule" not in study.user_attrs["spec"].get("early_stopping", {}):
        own = own.model_copy(update={"rule": "asha"})  # a study from before the rules: ASHA
    own_stops = {d.number: d.stopped_at for d in found if d.stopped_at is not None}
    rows = [("the study's own run (" + (f"{own.rule} g{own.grace_steps} rf{own.reduction_factor:g}"
             + (f" m{own.margin_db:g}" if own.rule == "pareto" else "") if own.enabled
             else "off") + ")", score(found, front, own_stops))]  # fmt: skip
    rows += [(label, score(found, front, replay(spec, found, fields))) for label, fields in RULES]
    rows.append(("off", score(found, front, {})))
    print(f"\nstudy {study.study_name}: {len(found)} trained designs, full front {len(front)} "
          f"over {list(objectives)}: {sorted(front)}")  # fmt: skip
    print(f"{'rule':<40} {'stopped':>7} {'false':>5} {'rate':>6} {'front lost':>10} "
          f"{'steps saved':>11}")  # fmt: skip
    for label, r in rows:
        print(f"{label:<40} {r['stopped']:>7} {r['false_stops']:>5} {r['rate']:>6.0%} "
              f"{r['front_lost']:>10.0%} {r['steps_saved']:>11.0%}")  # fmt: skip
    out = {
        "study": study.study_name,
        "storage": args.db,
        "designs": len(found),
        "front": sorted(front),
        "objectives": list(objectives),
        "prefix_diff_db": prefix_diff,
        "rows": {label: r for label, r in rows},
        "curves": {
            d.number: {"curve": d.curve, "stopped_at": d.stopped_at, "reference": d.reference,
                       "costs": d.costs, "design": d.attrs.get("design")}
            for d in found
        },
    }
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    provenance.write_result(args.json, out, prov)
    print(f"raw numbers: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
