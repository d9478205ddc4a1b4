"""Samplers on the real space, costs and constraints, with a stand-in score: do they learn the
feasible region, and how many proposals does a budget of judged designs take?

For each sampler and seed, ``StudySearcher`` (the code a search runs, without Ray) is driven
for ``n_trials`` slots on a preset's space and constraints (default nafnet_sidd: M_sc <= 0.25
MiB, MACs <= 18 G, costs measured on NAFNet-w32 at 256x256): infeasible proposals and copies
are told at once as in a search; each design it would train gets a *stand-in* PSNR instead of
a proxy run (``stand_in``: rises with the skip channels the decoder gets back, with diminishing
returns; not the proxy, so this compares sampler mechanics, not real accuracy: that is
``search_quality.py``'s job). Reported per sampler (mean over seeds):

- proposals: all proposals the run made for its ``n_trials`` judged designs;
- infeasible after 10: share of infeasible proposals after the first 10 (goal <= 10%);
- copies: proposals of designs judged before;
- redrawn: draws the sampler's prefilter (``studies.search.feasibility``, on by default) threw
  away before they became proposals (``NAME:prefilter=false`` turns it off);
- HV: hypervolume of the judged designs' front over (stand-in PSNR, M_sc, MACs), objectives
  scaled by the union of all runs, as a multiple of random's (the baseline, same run).

    PYTHONPATH=. python benchmarks/sampler_feasibility.py [--preset nafnet_sidd] [--seeds 3]
    PYTHONPATH=. python benchmarks/sampler_feasibility.py --samplers tpe nsga2@skip_designs_flat

``NAME@SPACE`` runs sampler NAME on another space (``skip_designs_flat``: every parameter in every
trial, see ``search_spaces.flat``); ``NAME:key=value,...`` passes sampler options. ``--json``
gets the rows with their provenance (``benchmarks/provenance.py``).
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
import yaml

from benchmarks import provenance
from benchmarks.search_quality import space_override, split_variant
from nas.config import ArchConfig
from studies.metrics import cost_metrics, get_metric
from studies.results import pareto
from studies.schema import ATTR_REFERENCE
from studies.search.driver import enqueue_references, prepare_study
from studies.search.heartbeat import Heartbeat
from studies.search.protocol import ARCH_KEY, NUMBER_KEY
from studies.search.samplers import make_sampler
from studies.search.searcher import StudySearcher
from studies.spec import load_spec
from studies.storage import open_storage

SAMPLERS = ("random", "tpe", "nsga2", "gp")
COST_KEYS = tuple(m.key for m in cost_metrics())  # what a costs phase reports
PSNR_KEY, M_SC_KEY, MACS_KEY = (get_metric(m).key for m in ("psnr", "m_sc", "macs"))


def stand_in(arch: ArchConfig) -> float:
    """A stand-in PSNR (dB): 21 for no skips, rising with the skip channels that reach the
    decoder (log-like), a little with IEM depth: the shape of the proxy's numbers (none 21.3,
    subset[4] 23.4, paper UNet-- 26.3, full 27.4 at 300 steps), not a measurement."""
    skip, channels = arch.skip, arch.backbone.stage_channels
    if skip.name == "none":
        kept = 0.0
    elif skip.name == "unetmm":
        kept = sum(skip.reduced(channels)) + skip.aggregated_channels / 4 + 8 * skip.iem_depth
    else:
        kept = sum(channels[s - 1] for s in skip.skip_stages(len(channels)))
    return 21.0 + 6.4 * (1 - math.exp(-kept / 120.0))


def parse_sampler(text: str) -> tuple[str, str | None, dict[str, Any]]:
    """``tpe``, ``nsga2@skip_designs_flat`` or ``tpe:n_ei_candidates=128,gamma_=...`` ->
    (name, space or None, options); option values are YAML."""
    head, _, rest = text.partition(":")
    name, space = split_variant(head)
    options = {k: yaml.safe_load(v) for k, v in (kv.split("=", 1) for kv in rest.split(",") if kv)}
    return name, space, options


Score = Callable[[ArchConfig, dict[str, Any]], float]  # (target arch, its costs) -> PSNR


def run(preset: str, sampler: str, seed: int, n_trials: int, folder: Path,
        score: Score = lambda arch, costs: stand_in(arch)) -> dict[str, Any]:  # fmt: skip
    """One search of ``n_trials`` judged designs by ``sampler`` (see ``parse_sampler``), each
    judged design scored by ``score`` instead of a proxy run. Returns the run's counts, its
    front and ``judged``: ``[psnr, m_sc bytes, macs]`` of every judged design in trial order
    (``judged_references``: each one's reference name, None for the sampler's own)."""
    name, space, options = parse_sampler(sampler)
    spec = load_spec(preset)
    spec = spec.with_overrides(
        n_trials=n_trials, seed=seed, sampler={"name": name, **options},
        **space_override(spec, space),
    )  # fmt: skip
    storage = open_storage(f"sqlite:///{folder / f'{len(list(folder.iterdir()))}.db'}")
    study = prepare_study(spec, spec.name, storage)
    enqueue_references(study, spec)
    heartbeat = Heartbeat(storage, 60).start()
    searcher = StudySearcher(spec, spec.name, storage,
                             make_sampler(name, seed, spec.sampler.options, n_trials),
                             heartbeat)  # fmt: skip
    t0 = time.perf_counter()
    try:
        for i in range(n_trials):
            rid = f"r{i}"
            config = searcher.suggest(rid)
            if not isinstance(config, dict):
                break
            arch = ArchConfig.from_json(config[ARCH_KEY])
            trial = searcher.study.get_trials(deepcopy=False)[config[NUMBER_KEY]]  # costed
            costs = {k: trial.user_attrs[k] for k in COST_KEYS if k in trial.user_attrs}
            searcher.on_trial_result(rid, {"phase": "costs", **costs})
            final = {"phase": "final", "status": "complete", PSNR_KEY: score(arch, costs),
                     "ssim": 0.5, **costs}  # fmt: skip
            searcher.on_trial_complete(rid, final)
    finally:
        heartbeat.stop()
    trials = searcher.study.get_trials(deepcopy=False)
    judged = set(searcher.judged_numbers())
    statuses = [t.user_attrs.get("status") for t in trials]
    after = statuses[10:]
    points = pareto.load_points(searcher.study)
    front = pareto.distinct_front(points, ("psnr", "m_sc", "macs"))
    return {
        "sampler": sampler,
        "seed": seed,
        "judged": [[t.user_attrs[k] for k in (PSNR_KEY, M_SC_KEY, MACS_KEY)]
                   for t in trials if t.number in judged and PSNR_KEY in t.user_attrs],
        "judged_references": [t.user_attrs.get(ATTR_REFERENCE) for t in trials
                              if t.number in judged and PSNR_KEY in t.user_attrs],  # fmt: skip
        "judged_count": len(judged),
        "proposals": len(trials),
        "infeasible": statuses.count("infeasible"),
        "infeasible_after_10": (after.count("infeasible") / len(after)) if after else 0.0,
        "copies": sum("copy_of" in t.user_attrs for t in trials),
        "redrawn": getattr(searcher.sampler, "redrawn", 0),  # thrown away by the prefilter
        "front": [[r.point.value(o) for o in ("psnr", "m_sc", "macs")] for r in front],
        "seconds": time.perf_counter() - t0,
    }


def hypervolumes(rows: list[dict[str, Any]]) -> None:
    """``hv`` of each run's front, objectives scaled to [0, 1] over all runs (1.1 reference)."""
    allpts = [p for r in rows for p in r["front"]]
    losses = [(-p[0], p[1], p[2]) for p in allpts]
    lo = [min(c) for c in zip(*losses)]
    span = [(max(c) - l) or 1.0 for c, l in zip(zip(*losses), lo)]
    for r in rows:
        scaled = [tuple((v - l) / s for v, l, s in zip((-p[0], p[1], p[2]), lo, span))
                  for p in r["front"]]  # fmt: skip
        r["hv"] = pareto.hypervolume(scaled, (1.1, 1.1, 1.1)) / 1.1**3 if scaled else 0.0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--preset", default="nafnet_sidd")
    p.add_argument("--n-trials", type=int, default=40)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--samplers", nargs="+", default=list(SAMPLERS))
    p.add_argument("--json", default="benchmarks/results/sampler_feasibility.json")
    args = p.parse_args(argv)
    prov = provenance.started(["benchmarks/sampler_feasibility.py",
                               *(sys.argv[1:] if argv is None else argv)])  # fmt: skip
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for sampler in args.samplers:
            for seed in range(args.seeds):
                rows.append(run(args.preset, sampler, seed, args.n_trials, Path(folder)))
                r = rows[-1]
                print(f"{sampler} seed {seed}: {r['proposals']} proposals, "
                      f"{r['infeasible_after_10']:.0%} infeasible after 10, {r['copies']} copies, "
                      f"{r['redrawn']} draws redrawn by the prefilter, "
                      f"{r['seconds']:.0f} s", flush=True)  # fmt: skip
    hypervolumes(rows)
    base = statistics.mean(r["hv"] for r in rows if r["sampler"] == "random") or 1.0
    print(f"\n{args.preset}, {args.n_trials} judged designs, {args.seeds} seeds (mean)")
    print(f"{'sampler':<32} {'proposals':>9} {'infeasible after 10':>20} {'copies':>6} "
          f"{'redrawn':>7} {'HV / random':>11}")  # fmt: skip
    for sampler in args.samplers:
        mine = [r for r in rows if r["sampler"] == sampler]
        mean = {k: statistics.mean(r[k] for r in mine)
                for k in ("proposals", "infeasible_after_10", "copies", "redrawn", "hv")}  # fmt: skip
        print(f"{sampler:<32} {mean['proposals']:>9.1f} {mean['infeasible_after_10']:>20.0%} "
              f"{mean['copies']:>6.1f} {mean['redrawn']:>7.1f} {mean['hv'] / base:>11.2f}")  # fmt: skip
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    provenance.write_result(args.json, {"preset": args.preset, "n_trials": args.n_trials,
                                        "rows": rows}, prov)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
