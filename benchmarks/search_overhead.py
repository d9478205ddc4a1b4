"""Search overhead: where a search's wall time goes besides its trials.

Three measurements, in this order:

1. a fresh worker, in a new Python process (what a Ray worker pays before and in its first
   trial): importing torch and ``studies.trial`` (the trainable's module), the cold target cost
   measurement and a warm one, importing the trainers, the proxy's data and model preparation
   (first and second time), the first proxy step and a steady one;
2. ``ray.init`` + ``ray.shutdown`` of a local 2-CPU Ray on its own;
3. a real ``run_search`` of the quick preset (``--preset``) on a fresh SQLite file and a fresh cost
   cache, then each trial's timeline from the study: ask on the driver -> start in the worker
   (launch) -> costs -> training -> end in the worker -> tell on the driver, and the breakdown of
   wall time: before the first trial, between trials (slots idle), after the last one, and the
   slot-time share spent inside trials. Overhead = wall - sum(trial seconds) / concurrency, the
   issue's "search wall time minus trial time" per slot (goal: < 5 %).

    PYTHONPATH=. python benchmarks/search_overhead.py                # ~5 min on 2 cores
    PYTHONPATH=. python benchmarks/search_overhead.py --concurrency 1 --json out.json

Times on a shared machine are noisy; the split between the parts is what this measures.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

PROBE_FLAG = "--fresh-worker-probe"


def fresh_worker_probe(preset: str) -> dict[str, float]:
    """Seconds of each thing a new worker process does first (run in a fresh process)."""
    out: dict[str, float] = {}
    t0 = time.perf_counter()

    def lap(key: str) -> None:
        nonlocal t0
        out[key] = time.perf_counter() - t0
        t0 = time.perf_counter()

    import torch

    lap("import torch")
    torch.set_num_threads(1)
    from studies.search.worker import cost_attrs  # what Ray imports to run the trainable

    lap("import studies.search.worker")
    from nas.presets import reference_designs
    from studies.search.protocol import TrialSettings
    from studies.spec import load_spec

    spec = load_spec(preset)
    settings = TrialSettings.from_spec(spec)
    refs = reference_designs(spec.target.backbone_config())
    lap("load the spec")
    cost_attrs(refs["full"], settings)
    lap("cost measurement, cold (first in the process)")
    cost_attrs(refs["unetmm"], settings)
    lap("cost measurement, warm (another design)")
    cost_attrs(refs["full"], settings)
    lap("cost measurement, cached (same design)")
    from trainers.loop import compute_settings
    from trainers.proxy import ProxyRun, proxy_arch

    lap("import trainers.proxy")
    p = spec.proxy
    with compute_settings(spec.cpus_per_trial):
        for label, name in (("first", "full"), ("second", "unetmm")):
            arch = proxy_arch(refs[name], p.backbone_config(refs[name].backbone))
            run = ProxyRun(arch, p.task, p.budget, p.data, spec.seed)
            lap(f"proxy data + model preparation, {label}")
        run.advance()
        lap("first proxy step")
        for _ in range(5):
            run.advance()
        out["steady proxy step"] = (time.perf_counter() - t0) / 5
    return out


def run_probe(preset: str, cache_dir: str) -> dict[str, float]:
    env = {**os.environ, "UNETMM_CACHE_DIR": cache_dir}
    cmd = [sys.executable, __file__, PROBE_FLAG, preset]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def time_ray_start(cpus: int) -> dict[str, float]:
    import logging

    import ray

    from studies.search.ray_session import RAY_ENV

    for key, value in RAY_ENV.items():
        os.environ.setdefault(key, value)
    t0 = time.perf_counter()
    ray.init(address="local", num_cpus=cpus, include_dashboard=False,
             logging_level=logging.ERROR, log_to_driver=False)  # fmt: skip
    t1 = time.perf_counter()
    ray.shutdown()
    return {"ray.init": t1 - t0, "ray.shutdown": time.perf_counter() - t1}


def _ts(dt: datetime.datetime | None) -> float | None:
    return None if dt is None else dt.timestamp()


def timelines(study: Any) -> list[dict[str, Any]]:
    """Per trial: driver ask/tell and worker start/end (epoch seconds), and its parts."""
    rows = []
    for t in study.get_trials(deepcopy=False):
        a = t.user_attrs
        rows.append({
            "number": t.number, "status": a.get("status"), "reference": a.get("reference"),
            "ask": _ts(t.datetime_start), "tell": _ts(t.datetime_complete),
            "start": a.get("t_start"), "end": a.get("t_end"), "seconds": a.get("seconds"),
            "cost": a.get("seconds_cost"), "train": a.get("seconds_train"),
            "steps": a.get("steps"), "copy_of": a.get("copy_of"),
        })  # fmt: skip
    return rows


def breakdown(rows: list[dict[str, Any]], t_begin: float, t_end: float,
              concurrency: int) -> dict[str, float]:  # fmt: skip
    """Wall-time split of one search (see the module docstring)."""
    ran = [r for r in rows if r["start"] is not None and r["end"] is not None]
    wall = t_end - t_begin
    trial_sum = sum(r["end"] - r["start"] for r in ran)
    launches = [r["start"] - r["ask"] for r in ran if r["ask"] is not None]
    tells = [r["tell"] - r["end"] for r in ran if r["tell"] is not None]
    first_ask = min(r["ask"] for r in rows if r["ask"] is not None)
    first_start = min(r["start"] for r in ran)
    last_end = max(r["end"] for r in ran)
    last_tell = max(r["tell"] for r in rows if r["tell"] is not None)
    within = [(r["seconds"] or 0) - (r["cost"] or 0) - (r["train"] or 0) for r in ran]
    overhead = wall - trial_sum / concurrency
    return {
        "wall": wall,
        "trials run in workers": len(ran),
        "sum of trial seconds (worker start to end)": trial_sum,
        "of which cost measurement": sum(r["cost"] or 0 for r in ran),
        "of which proxy training (data, model, steps, validation)": sum(r["train"] or 0
                                                                        for r in ran),
        "of which the rest of run_trial": sum(within),
        "run_search start -> first ask (storage, study, Ray start, Tune setup)":
            first_ask - t_begin,
        "first ask -> first trial starts in a worker": first_start - first_ask,
        "launch: ask -> worker start, median": statistics.median(launches),
        "launch: ask -> worker start, max": max(launches),
        "report: worker end -> tell, median": statistics.median(tells) if tells else 0.0,
        "last trial ends -> last tell": last_tell - last_end,
        "last tell -> run_search returns (Ray shutdown, summary)": t_end - last_tell,
        "overhead: wall - trial seconds / concurrency": overhead,
        "overhead share of wall": overhead / wall,
    }  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == [PROBE_FLAG]:
        print(json.dumps(fresh_worker_probe(argv[1])))
        return 0
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="quick", help="study preset or YAML (default quick)")
    p.add_argument("--concurrency", type=int, default=None, help="override the spec's")
    p.add_argument("--n-trials", type=int, default=None, help="override the spec's")
    p.add_argument("--json", default=None, help="write the raw results here")
    args = p.parse_args(argv)

    import optuna
    from rich.console import Console

    from studies.search.driver import run_search
    from studies.spec import load_spec

    spec = load_spec(args.preset).with_overrides(concurrency=args.concurrency,
                                                 n_trials=args.n_trials)  # fmt: skip
    out: dict[str, Any] = {"preset": args.preset, "load_start": os.getloadavg()}
    with tempfile.TemporaryDirectory() as tmp:
        print("fresh worker probe ...", file=sys.stderr, flush=True)
        out["fresh_worker"] = run_probe(args.preset, os.path.join(tmp, "probe-cache"))
        print("ray start ...", file=sys.stderr, flush=True)
        out["ray"] = time_ray_start(spec.concurrency * spec.cpus_per_trial)
        os.environ["UNETMM_CACHE_DIR"] = os.path.join(tmp, "cache")
        url = f"sqlite:///{tmp}/search.db"
        print(f"search ({spec.n_trials} trials, concurrency {spec.concurrency}) ...",
              file=sys.stderr, flush=True)  # fmt: skip
        t_begin = time.time()
        run_search(spec, url, console=Console(quiet=True))
        t_end = time.time()
        study = optuna.load_study(study_name=spec.name, storage=url)
        out["trials"] = timelines(study)
    out["breakdown"] = breakdown(out["trials"], t_begin, t_end, spec.concurrency)
    out["load_end"] = os.getloadavg()
    report(out, spec)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)
    return 0


def report(out: dict[str, Any], spec: Any) -> None:
    b = spec.proxy.budget
    print(f"preset {out['preset']}: {spec.n_trials} trials, concurrency {spec.concurrency}, "
          f"{spec.cpus_per_trial} CPU each; proxy {b.steps} steps, batch {b.batch}, crop "
          f"{b.crop}; load average {out['load_start'][0]:.1f} -> {out['load_end'][0]:.1f}")  # fmt: skip
    print("\nfresh worker (new process, 1 thread)\n| step | s |\n|---|---|")
    for key, value in out["fresh_worker"].items():
        print(f"| {key} | {value:.2f} |")
    print("\nlocal Ray on its own\n| step | s |\n|---|---|")
    for key, value in out["ray"].items():
        print(f"| {key} | {value:.2f} |")
    t0 = min(r["ask"] for r in out["trials"] if r["ask"] is not None)
    print("\ntrials (seconds from the first ask; launch = ask -> worker start; report = worker "
          "end -> tell)")  # fmt: skip
    print("| trial | status | ask | launch | cost | train | rest | report | steps |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in out["trials"]:
        def f(x: float | None) -> str:
            return "-" if x is None else f"{x:.1f}"

        launch = None if r["start"] is None or r["ask"] is None else r["start"] - r["ask"]
        report_s = None if r["end"] is None or r["tell"] is None else r["tell"] - r["end"]
        rest = (None if r["seconds"] is None else
                r["seconds"] - (r["cost"] or 0) - (r["train"] or 0))  # fmt: skip
        label = r["status"] + (f" (copy of {r['copy_of']})" if r["copy_of"] is not None else "")
        print(f"| {r['number']} | {label} | {f(r['ask'] - t0 if r['ask'] else None)} | "
              f"{f(launch)} | {f(r['cost'])} | {f(r['train'])} | {f(rest)} | {f(report_s)} | "
              f"{r['steps'] or '-'} |")  # fmt: skip
    print("\nsearch wall time\n| part | s |\n|---|---|")
    for key, value in out["breakdown"].items():
        shown = f"{value:.1%}" if "share" in key else (f"{value}" if isinstance(value, int)
                                                       else f"{value:.2f}")  # fmt: skip
        print(f"| {key} | {shown} |")


if __name__ == "__main__":
    sys.exit(main())
