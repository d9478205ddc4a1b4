"""Search overhead: where a search's wall time goes besides its trials.

Three measurements, in this order:

1. a fresh worker, in a new Python process (what a Ray worker pays before and in its first
   trial): importing torch and ``studies.trial`` (the trainable's module), the cold target cost
   measurement and a warm one, importing the trainers, the proxy's data and model preparation
   (first and second time), the first proxy step and a steady one;
2. a real ``run_search`` of the quick preset (``--preset``) on a fresh SQLite file and a fresh cost
   cache, on a local Ray started just before it (timed; ``run_search`` uses a running Ray as it
   is) and stopped after it (timed), as ``run_search`` would itself; the CPU seconds of the
   driver and of Ray's processes during it (Linux ``/proc``);
3. each trial's timeline from the study: ask on the driver -> start in the worker (launch) ->
   costs -> training -> end in the worker -> tell on the driver, and the split of the wall time
   (Ray start + search + Ray shutdown): before the first trial, between trials, after the last
   one. Overhead = wall - sum(trial seconds) / concurrency, the issue's "search wall time minus
   trial time" per slot (goal: < 5 %), and apart from it the idle end: once the last trial is
   asked, the other slots have nothing left to run while it finishes (a few trials' search
   loses up to half a trial there; orchestration is the rest). A local search gives those
   idle CPUs to the trials still running (``studies.search.spare_cpus``): the last trial's CPU
   seconds per wall second show whether it took them.

    PYTHONPATH=. python benchmarks/search_overhead.py                # ~5 min on 2 cores
    PYTHONPATH=. python benchmarks/search_overhead.py --concurrency 1 --json out.json

Times on a shared machine are noisy; the split between the parts is what this measures. ``--json``
gets the raw results with their provenance (``benchmarks/provenance.py``).
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


def start_ray(cpus: int) -> float:
    """Start a local Ray as ``studies.run.ray_session`` does; returns the seconds it took."""
    import logging

    import ray

    from studies.search.ray_session import RAY_ENV

    for key, value in RAY_ENV.items():
        os.environ.setdefault(key, value)
    t0 = time.perf_counter()
    ray.init(address="local", num_cpus=cpus, include_dashboard=False,
             logging_level=logging.ERROR, log_to_driver=False, configure_logging=True)  # fmt: skip
    return time.perf_counter() - t0


def _descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out += children.get(pid, [])
        todo += children.get(pid, [])
    return out


def _title(cmd: str) -> str:
    """A process's kind from its command line: Ray's title (``ray::IDLE``), else the program
    (``raylet``, ``gcs_server``) or the Python script it runs (``log_monitor.py``)."""
    words = cmd.split()
    if not words:
        return "?"
    if words[0].startswith("ray::"):
        return words[0].split(".", 1)[0]
    script = next((w for w in words[1:] if w.endswith(".py")), None)
    return os.path.basename(script or words[0])


def process_cpu() -> dict[str, float]:
    """CPU seconds (user + system) of this process and of its living descendants by kind, and
    of the children they reaped (Linux ``/proc``; Ray's processes descend from the driver that
    started it, its trial workers from the raylet)."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {"driver (Tune loop, searcher, storage, heartbeat)": time.process_time()}
    for pid in _descendants(os.getpid()):
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        own, reaped = (int(fields[11]) + int(fields[12])) / tick, (int(fields[13]) +
                                                                   int(fields[14])) / tick
        label = _title(cmd)
        out[label] = out.get(label, 0.0) + own
        if reaped:
            key = "exited children (reaped by the processes above)"
            out[key] = out.get(key, 0.0) + reaped
    return out


def _ts(dt: datetime.datetime | None) -> float | None:
    return None if dt is None else dt.timestamp()


def timelines(study: Any) -> list[dict[str, Any]]:
    """Per trial: driver ask/tell and worker start/end (epoch seconds), and its parts. A trial
    ASHA stopped has no final report: its end is its tell."""
    from studies import schema

    rows = []
    for t in study.get_trials(deepcopy=False):
        a = schema.current(t.user_attrs)  # older studies: t_start -> t_start_unix
        rows.append({
            "number": t.number, "status": a.get("status"), "reference": a.get("reference"),
            "ask": _ts(t.datetime_start), "tell": _ts(t.datetime_complete),
            "start": a.get(schema.T_START), "end": a.get(schema.T_END, _ts(t.datetime_complete)),
            "seconds": a.get("seconds"), "cpu": a.get("cpu_seconds"),
            "cost": a.get("seconds_cost"), "train": a.get("seconds_train"),
            "steps": a.get("steps"), "copy_of": a.get("copy_of"),
        })  # fmt: skip
    return rows


def breakdown(rows: list[dict[str, Any]], t_begin: float, t_end: float, concurrency: int,
              ray: dict[str, float]) -> dict[str, float]:  # fmt: skip
    """Wall-time split of one search (see the module docstring)."""
    ran = [r for r in rows if r["start"] is not None and r["end"] is not None]
    wall = ray["ray.init"] + (t_end - t_begin) + ray["ray.shutdown"]
    trial_sum = sum(r["end"] - r["start"] for r in ran)
    launches = [r["start"] - r["ask"] for r in ran if r["ask"] is not None]
    tells = [r["tell"] - r["end"] for r in ran if r["tell"] is not None]
    first_ask = min(r["ask"] for r in rows if r["ask"] is not None)
    first_start = min(r["start"] for r in ran)
    last_end = max(r["end"] for r in ran)
    last_tell = max(r["tell"] for r in rows if r["tell"] is not None)
    within = [r["seconds"] - (r["cost"] or 0) - (r["train"] or 0) for r in ran
              if r["seconds"] is not None]  # fmt: skip
    overhead = wall - trial_sum / concurrency
    # the budget spent: after the last ask, slots whose trial ended early idle till the last end
    ends = sorted(r["end"] for r in ran)[-concurrency:]
    idle_tail = sum(ends[-1] - e for e in ends) / concurrency
    by_start = sorted(ran, key=lambda r: r["start"])  # the first `concurrency` start workers

    def warmup(r: dict[str, Any]) -> float:  # launch + the rest of run_trial + cost
        rest = 0.0 if r["seconds"] is None else r["seconds"] - (r["cost"] or 0) - (r["train"] or 0)
        return (r["start"] - r["ask"]) + rest + (r["cost"] or 0)

    firsts, laters = by_start[:concurrency], [r for r in by_start[concurrency:] if r["cost"]]
    return {
        "wall (Ray start + run_search + Ray shutdown)": wall,
        "Ray start": ray["ray.init"],
        "trials run in workers": len(ran),
        "sum of trial seconds (worker start to end)": trial_sum,
        "of which cost measurement": sum(r["cost"] or 0 for r in ran),
        "of which proxy training (data, model, steps, validation)": sum(r["train"] or 0
                                                                        for r in ran),
        "of which the rest of run_trial (spec validation, ...)": sum(within),
        "of which in stopped trials (no breakdown)": sum(r["end"] - r["start"] for r in ran
                                                       if r["seconds"] is None),
        "CPU seconds of the trials (finished ones)": sum(r["cpu"] or 0 for r in ran),
        "run_search start -> first ask (storage, study, queue, Tune setup)": first_ask - t_begin,
        "first ask -> first trial starts in a worker": first_start - first_ask,
        "launch: ask -> worker start, median": statistics.median(launches),
        "launch: ask -> worker start, max": max(launches),
        "report: worker end -> tell, median": statistics.median(tells) if tells else 0.0,
        "first trial in a new worker: launch + rest + cost, mean":
            statistics.mean(warmup(r) for r in firsts),
        "later costed trial: launch + rest + cost, median":
            statistics.median(warmup(r) for r in laters) if laters else 0.0,
        "last trial ends -> last tell": last_tell - last_end,
        "last tell -> run_search returns (Tune teardown, summary)": t_end - last_tell,
        "Ray shutdown": ray["ray.shutdown"],
        "overhead: wall - trial seconds / concurrency": overhead,
        "overhead share of wall": overhead / wall,
        "of which idle slots at the end (the budget spent, the last trial still running)":
            idle_tail,
        "CPU s / wall s of the trial that ended last (> 1: it took the spare CPU)":
            _cpu_per_wall(max(ran, key=lambda r: r["end"])),
        "overhead without the idle end (orchestration)": overhead - idle_tail,
        "orchestration share of wall": (overhead - idle_tail) / wall,
    }  # fmt: skip


def _cpu_per_wall(row: dict[str, Any]) -> float:
    return (row["cpu"] or 0.0) / max(1e-9, row["end"] - row["start"])


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
    from benchmarks import provenance

    prov = provenance.started(["benchmarks/search_overhead.py", *argv])

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
        os.environ["UNETMM_CACHE_DIR"] = os.path.join(tmp, "cache")
        url = f"sqlite:///{tmp}/search.db"
        print(f"search ({spec.n_trials} trials, concurrency {spec.concurrency}) ...",
              file=sys.stderr, flush=True)  # fmt: skip
        import ray

        ray_start = start_ray(spec.concurrency * spec.cpus_per_trial)
        cpu0 = process_cpu()
        t_begin = time.time()
        run_search(spec, url, console=Console(quiet=True))  # uses the Ray started above
        t_end = time.time()
        cpu1 = process_cpu()
        t0 = time.perf_counter()
        ray.shutdown()
        out["ray"] = {"ray.init": ray_start, "ray.shutdown": time.perf_counter() - t0}
        out["cpu"] = {k: v - cpu0.get(k, 0.0) for k, v in cpu1.items()}
        out["search_wall"] = t_end - t_begin
        study = optuna.load_study(study_name=spec.name, storage=url)
        out["trials"] = timelines(study)
    out["breakdown"] = breakdown(out["trials"], t_begin, t_end, spec.concurrency, out["ray"])
    out["load_end"] = os.getloadavg()
    report(out, spec)
    if args.json:
        provenance.write_result(args.json, out, prov)
    return 0


def report(out: dict[str, Any], spec: Any) -> None:
    b = spec.proxy.budget
    print(f"preset {out['preset']}: {spec.n_trials} trials, concurrency {spec.concurrency}, "
          f"{spec.cpus_per_trial} CPU each; proxy {b.steps} steps, batch {b.batch}, crop "
          f"{b.crop}; load average {out['load_start'][0]:.1f} -> {out['load_end'][0]:.1f}")  # fmt: skip
    print("\nfresh worker (new process, 1 thread)\n| step | s |\n|---|---|")
    for key, value in out["fresh_worker"].items():
        print(f"| {key} | {value:.2f} |")
    print("\nlocal Ray (started and stopped around run_search, which uses it as it is)")
    print("| step | s |\n|---|---|")
    for key, value in out["ray"].items():
        print(f"| {key} | {value:.2f} |")
    wall = out["search_wall"]
    print(f"\nCPU seconds during run_search ({wall:.0f} s wall, "
          f"{spec.concurrency * spec.cpus_per_trial} CPUs for trials)")
    print("| processes | CPU s | share of one core |\n|---|---|---|")
    for key, value in sorted(out["cpu"].items(), key=lambda kv: -kv[1]):
        print(f"| {key} | {value:.1f} | {value / wall:.1%} |")
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
