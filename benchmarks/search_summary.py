"""What a study's budget bought: distinct designs judged, infeasible share, copies, the front.

    PYTHONPATH=. python benchmarks/search_summary.py study.db [--study NAME] [--json FILE]

Prints, over all trials in number order (each trial is one proposal of the sampler):

- proposals, and how many were infeasible / copies of a design judged before / trained;
- distinct designs trained (complete or stopped, copies left out) and distinct feasible designs
  trained to the end;
- the share of infeasible proposals after the first 10 (the sampler has learnt by then);
- Optuna's ``study.best_trials`` and unetmm's front (one row per design, with its count);
- for each front design: PSNR, M_sc, MACs (and the tiled peak where the study costs it), and
  whether it beats the paper's UNet-- point's proxy PSNR at no more M_sc.

``--json`` writes the numbers with their provenance (``benchmarks/provenance.py``).
"""

from __future__ import annotations

import argparse
import collections
import sys

import optuna

from benchmarks import provenance
from studies.results import pareto
from studies.storage import load_study

METRIC_COLUMNS = ("psnr", "m_sc", "macs", "peak_tiled")


def summary(study: optuna.Study) -> dict:
    points = pareto.load_points(study)
    statuses = [p.status or "failed" for p in points]
    copies = [p for p in points if p.attrs.get("copy_of") is not None]
    trained = [p for p in points if p.status in ("complete", "stopped")
               and p.attrs.get("copy_of") is None]  # fmt: skip
    objectives = pareto.study_objectives(study)
    rows = pareto.distinct_front(points, objectives)
    paper = next((p for p in points if p.reference == "unetmm" and p.value("psnr") is not None),
                 None)  # fmt: skip
    after = statuses[10:]
    return {
        "proposals": len(points),
        "statuses": dict(collections.Counter(statuses)),
        "copies": len(copies),
        "distinct_trained": len({pareto.design_key(p) for p in trained}),
        "distinct_feasible_complete": len(pareto.distinct_designs(points, objectives)),
        "stopped": sum(p.status == "stopped" and p.attrs.get("copy_of") is None for p in points),
        "infeasible_after_10": after.count("infeasible") / len(after) if after else 0.0,
        "best_trials": [t.number for t in study.best_trials],
        "front": [
            (r.point.number, r.count, r.point.design, *(r.point.value(o) for o in METRIC_COLUMNS))
            for r in rows
        ],
        "paper": (paper.number, paper.value("psnr"), paper.value("m_sc")) if paper else None,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("db")
    p.add_argument("--study")
    p.add_argument("--json", default=None, help="write the numbers here, with provenance")
    args = p.parse_args(argv)
    prov = provenance.started(["benchmarks/search_summary.py",
                               *(sys.argv[1:] if argv is None else argv)])  # fmt: skip
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    s = summary(load_study(args.db, args.study))
    print(f"proposals {s['proposals']}: {s['statuses']}, copies {s['copies']}")
    print(f"distinct designs trained {s['distinct_trained']} (stopped early {s['stopped']}); "
          f"distinct feasible designs trained to the end {s['distinct_feasible_complete']}")  # fmt: skip
    print(f"infeasible share after the first 10 proposals: {s['infeasible_after_10']:.0%}")
    print(f"Optuna best_trials: {s['best_trials']}")
    paper = s["paper"]
    tiled = any(row[-1] is not None for row in s["front"])
    print(f"front ({len(s['front'])} designs; trial, trials of the design, design, PSNR dB, "
          "M_sc KiB, GMACs" + (", tiled peak MiB):" if tiled else "):"))  # fmt: skip
    for number, count, design, psnr, m_sc, macs, peak in s["front"]:
        better = paper and psnr > paper[1] and m_sc <= paper[2]
        print(f"  #{number:<3} x{count:<2} {design:<48} {psnr:6.2f} {m_sc / 1024:8.1f} "
              f"{macs / 1e9:6.2f}" + (f" {peak / 2**20:6.2f}" if tiled else "")
              + ("  beats the paper's point" if better else ""))  # fmt: skip
    if paper:
        print(f"paper's UNet-- point: trial {paper[0]}, PSNR {paper[1]:.2f} dB, "
              f"M_sc {paper[2] / 1024:.0f} KiB")  # fmt: skip
    if args.json:
        provenance.write_result(args.json, {"storage": args.db, "study": args.study, **s}, prov)
    return 0


if __name__ == "__main__":
    sys.exit(main())
