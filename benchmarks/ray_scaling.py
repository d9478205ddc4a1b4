"""Ray scaling: do two 1-CPU trials really run at the same time on 2 cores?

Runs the same tiny search (two trials of the same proxy budget: the full-skip and no-skip
reference points, no early stopping) twice on one local Ray with 2 CPUs: once with
``concurrency: 1`` (serial, the baseline) and once with ``concurrency: 2``. From each trial's
own start/end times (``t_start``/``t_end``, stamped in the worker) it prints the span of the
trials, the sum of their durations, how much of the shorter trial overlapped the other, and
the speed-up serial span / parallel span (2.0 is perfect; Ray + Optuna setups that serialise
trials, ray#46965, give ~1.0). Timings on a shared machine are noisy; read them as such.

    PYTHONPATH=. python benchmarks/ray_scaling.py            # ~2 min on 2 cores
    PYTHONPATH=. python benchmarks/ray_scaling.py --steps 300 --json out.json

``--json`` writes the numbers with their provenance (``benchmarks/provenance.py``).
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import os
import sys
import tempfile
import time

import optuna
import ray
from rich.console import Console
from rich.table import Table

from benchmarks import provenance
from studies.schema import T_END, T_START
from studies.search.driver import run_search
from studies.search.ray_session import RAY_ENV
from studies.spec import parse_spec


def tiny_spec(concurrency: int, steps: int) -> dict:
    return {
        "name": f"scaling-c{concurrency}",
        "proxy": {"data": {"val_limit": 1},
                  "budget": {"steps": steps, "eval_every": steps, "batch": 4, "crop": 48,
                             "val_crop": 48}},  # fmt: skip
        "space": {"references": ["full", "none"]},
        "early_stopping": False,
        "score_cache": False,  # the serial run must not serve the parallel one's scores
        "n_trials": 2,
        "concurrency": concurrency,
        "cpus_per_trial": 1,
    }


def spans(study: optuna.Study) -> dict[str, float]:
    """Span, summed durations and overlap of the study's trials, from worker timestamps."""
    times = sorted((t.user_attrs[T_START], t.user_attrs[T_END]) for t in study.trials)
    (s0, e0), (s1, e1) = times
    shorter = min(e0 - s0, e1 - s1)
    cpu = sum(t.user_attrs["cpu_seconds"] for t in study.trials)
    return {
        "span": max(e0, e1) - s0,
        "sum": (e0 - s0) + (e1 - s1),
        "overlap": max(0.0, min(e0, e1) - s1) / shorter,
        "cpu": cpu / ((e0 - s0) + (e1 - s1)),
    }


def bare_train(reference: str, steps: int, queue: multiprocessing.Queue) -> None:
    """One trial's training in a fresh process (1 thread, no Ray, no storage): puts its
    (start, end) wall times on ``queue``."""
    from nas.presets import reference_designs
    from studies.search.protocol import TrialSettings
    from studies.search.worker import train

    spec = parse_spec(tiny_spec(1, steps) | {"score_cache": False}, "")
    settings = TrialSettings.from_spec(spec)
    arch = reference_designs(spec.target.backbone_config())[reference]
    t0 = time.time()
    train(arch, settings, lambda result: None)
    queue.put((t0, time.time()))


def bare(steps: int) -> dict[int, dict[str, float]]:
    """Serial and parallel spans of the two references' trainings in plain processes."""
    ctx = multiprocessing.get_context("spawn")
    rows = {}
    for parallel in (False, True):
        queue, procs, times = ctx.Queue(), [], []
        for ref in ("full", "none"):
            proc = ctx.Process(target=bare_train, args=(ref, steps, queue))
            proc.start()
            procs.append(proc)
            if not parallel:
                times.append(queue.get())
                proc.join()
        for proc in procs:
            if parallel:
                times.append(queue.get())
            proc.join()
        durations = [e - s for s, e in times]
        rows[2 if parallel else 1] = {"span": max(e for _, e in times) - min(s for s, _ in times)
                                      if parallel else sum(durations), "sum": sum(durations)}  # fmt: skip
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=200, help="proxy steps per trial (default 200)")
    p.add_argument("--no-bare", dest="bare", action="store_false",
                   help="skip the same trainings without Ray")  # fmt: skip
    p.add_argument("--json", default=None, help="write the numbers here, with provenance")
    args = p.parse_args()
    prov = provenance.started(["benchmarks/ray_scaling.py", *sys.argv[1:]])
    console = Console(highlight=False, soft_wrap=True)
    for key, value in RAY_ENV.items():
        os.environ.setdefault(key, value)
    ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level=logging.ERROR,
             log_to_driver=False)  # fmt: skip
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("UNETMM_CACHE_DIR", os.path.join(tmp, "cache"))
        for concurrency in (1, 2):  # serial first: it also warms the cost cache
            url = f"sqlite:///{tmp}/c{concurrency}.db"
            spec = parse_spec(tiny_spec(concurrency, args.steps), "")
            t0 = time.perf_counter()
            run_search(spec, url, console=Console(quiet=True))
            wall = time.perf_counter() - t0
            study = optuna.load_study(study_name=spec.name, storage=url)
            rows[concurrency] = {**spans(study), "wall": wall}
    ray.shutdown()
    table = Table(title=f"two 1-CPU trials ({args.steps} proxy steps each) on a 2-CPU local Ray",
                  caption="span: first trial start to last trial end (worker clocks); "
                  "overlap: share of the shorter trial that ran while the other ran; CPU/wall: "
                  "process CPU time over wall time (1.0: the trial had its core to itself)")  # fmt: skip
    for col in ("concurrency", "span s", "sum of trials s", "overlap", "CPU/wall per trial",
                "run_search wall s"):  # fmt: skip
        table.add_column(col, justify="right")
    for c, r in rows.items():
        table.add_row(str(c), f"{r['span']:.1f}", f"{r['sum']:.1f}", f"{r['overlap']:.0%}",
                      f"{r['cpu']:.2f}", f"{r['wall']:.1f}")  # fmt: skip
    console.print(table)
    speedup = rows[1]["span"] / rows[2]["span"]
    console.print(f"speed-up (serial span / parallel span): {speedup:.2f}x"
                  f"  (per-trial slow-down when sharing: "
                  f"{rows[2]['sum'] / rows[1]['sum']:.2f}x)")  # fmt: skip
    if args.bare:
        plain = bare(args.steps)
        console.print(f"without Ray (plain processes, training only): serial {plain[1]['span']:.1f}"
                      f" s, both at once {plain[2]['span']:.1f} s: speed-up "
                      f"{plain[1]['span'] / plain[2]['span']:.2f}x (per-training slow-down when "
                      f"sharing: {plain[2]['sum'] / plain[1]['sum']:.2f}x); Ray reaches "
                      f"{speedup / (plain[1]['span'] / plain[2]['span']):.0%} of that")  # fmt: skip
    if args.json:
        data = {"steps": args.steps, "ray": rows, "speedup": speedup}
        provenance.write_result(args.json, {**data, "bare": plain if args.bare else None}, prov)


if __name__ == "__main__":
    main()
