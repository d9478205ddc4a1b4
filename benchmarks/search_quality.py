"""Search quality: do unetmm's samplers find better fronts than random sampling, at equal budget?

For every sampler of ``studies.search.samplers.SAMPLERS`` (tpe, nsga2, nsga3, random, gp, NNI's
nni-evolution, nni-tpe and nni-random where the ``nni`` extra is installed, and any registered
later; ``--samplers`` picks some) and every seed, one study of the ``quick``
preset (``skip_designs`` space, NAFNet-w32 target costs at 256x256 8-bit, width-16 proxy at the
preset's budget, constraints M_sc <= 4 MiB and MACs <= 18 G) runs ``--trials`` trials, the three
reference points included, one trial at a time, early stopping off (every trained design is
judged on its final score). The study seed is both the sampler's and the proxy training's seed.
Proxy scores come from the persistent score cache when a design was trained before at that seed
(across samplers), so repeats are cheap; the costs of a cached run are reported apart.

Per sampler, mean and spread over seeds:

- hypervolume (HV) of the complete, feasible trials over (PSNR up, M_sc down, MACs down), in
  dB x MiB x GMACs, against the fixed reference point ``REFERENCE`` (PSNR 20 dB, about the noisy
  input's; M_sc 4 MiB and MACs 18 G: the preset's constraints); its ratio to random's mean (goal:
  >= 1.2 for at least one of tpe, nsga2, gp); HV against trial count as a PNG; the ``ceiling``:
  the HV of one ideal design (best PSNR measured, least M_sc and MACs), which bounds the HV of
  every front of designs scoring no more than the best measured;
- a second HV, only of designs under the paper's memory: the same point but M_sc 0.25 MiB
  (``REF_LOSS_LOW``), and its ratio to random's (the region where the paper's question lies;
  not the goal's measure);
- the best PSNR among trials with M_sc <= 0.25 MiB (the paper's memory);
- whether any trial dominates the paper's UNet-- point of the same study (M_sc and MACs no
  higher, PSNR no lower, one strictly better);
- wall time per run, and trials trained / served by the score cache / copied / infeasible.

Each finished run is written to the JSON at once; a re-run skips the runs already there
(``--fresh`` starts over) and writes the summary, table and PNG again; studies live in
``--workdir``. The JSON names the commits that ran and, per run, its sampler's factory (the
defaults measured): a stored run whose sampler is built otherwise now is run again. It carries
the provenance of the invocation that wrote it, and each run its own (``benchmarks/provenance.py``).
"same as random": per seed, how many leading trials proposed exactly random's designs.

    PYTHONPATH=. python benchmarks/search_quality.py                       # all samplers, 3 seeds
    PYTHONPATH=. python benchmarks/search_quality.py --samplers tpe random --trials 16
    PYTHONPATH=. python benchmarks/search_quality.py --samplers nsga2@skip_designs_flat

A sampler written ``NAME@SPACE`` runs on the search space ``SPACE`` instead of the preset's (the
flat twins of ``search_spaces.flat`` give NSGA-II and GP every parameter in every trial).
"""

from __future__ import annotations

import argparse
import inspect
import json
import logging
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import optuna

from benchmarks import provenance
from search_spaces import nni_imports
from studies.results.pareto import TrialPoint, hypervolume
from studies.search import nni_strategies
from studies.search.samplers import NNI_SAMPLERS, SAMPLERS
from studies.spec import load_spec

MIB = 2**20
REFERENCE = {"psnr": 20.0, "m_sc_mib": 4.0, "gmacs": 18.0}  # the HV reference point
LOW_MEMORY = 0.25 * MIB  # "best PSNR with M_sc <= 0.25 MiB"
PAPER = "unetmm"  # the reference point name of the paper's UNet-- design
BASELINE = "random"
GOAL = 1.2
RESULTS = Path(__file__).resolve().parent / "results"


def loss(t: dict[str, Any]) -> tuple[float, float, float]:
    """A trial's objectives, minimised, in the HV's units."""
    return (-t["psnr"], t["m_sc_bytes"] / MIB, t["macs"] / 1e9)


REF_LOSS = (-REFERENCE["psnr"], REFERENCE["m_sc_mib"], REFERENCE["gmacs"])
# a second, stated HV: only designs under the paper's memory count (M_sc reference 0.25 MiB)
REF_LOSS_LOW = (REF_LOSS[0], LOW_MEMORY / MIB, REF_LOSS[2])


def records(study: optuna.Study) -> list[dict[str, Any]]:
    """One plain record per trial, in trial order."""
    out = []
    for t in study.get_trials(deepcopy=False):
        p = TrialPoint.from_trial(t)
        a = p.attrs  # current keys (older studies too)
        out.append({
            "number": t.number, "state": t.state.name, "status": a.get("status"),
            "reference": a.get("reference"), "design": a.get("design"),
            "arch": a.get("arch_key"), "eligible": p.eligible(("psnr", "m_sc", "macs")),
            "psnr": p.value("psnr"), "m_sc_bytes": p.value("m_sc"), "macs": p.value("macs"),
            "copy_of": a.get("copy_of"), "score_cached": bool(a.get("score_cached")),
            "seconds": a.get("seconds"), "seconds_train": a.get("seconds_train"),
        })  # fmt: skip
    return out


def hv_curve(trials: list[dict[str, Any]]) -> list[float]:
    """HV of the eligible trials among the first k, for k = 1 .. len(trials)."""
    curve, pool = [], []
    for t in trials:
        if t["eligible"]:
            pool.append(loss(t))
        curve.append(hypervolume(pool, REF_LOSS))
    return curve


def paper_dominated(trials: list[dict[str, Any]]) -> bool | None:
    """Whether another design dominates the paper's point (None: the paper point untrained)."""
    paper = next((t for t in trials if t["reference"] == PAPER and t["eligible"]), None)
    if paper is None:
        return None
    p = loss(paper)
    return any(
        all(x <= y for x, y in zip(loss(t), p)) and any(x < y for x, y in zip(loss(t), p))
        for t in trials if t["eligible"] and t["arch"] != paper["arch"]
    )  # fmt: skip


def hv_low_memory(trials: list[dict[str, Any]]) -> float:
    """HV of the eligible trials against ``REF_LOSS_LOW``: the front below the paper's M_sc."""
    return hypervolume([loss(t) for t in trials if t["eligible"]], REF_LOSS_LOW)


def best_low_memory(trials: list[dict[str, Any]]) -> float | None:
    scores = [t["psnr"] for t in trials if t["eligible"] and t["m_sc_bytes"] <= LOW_MEMORY]
    return max(scores, default=None)


def split_variant(variant: str) -> tuple[str, str | None]:
    """``"nsga2@skip_designs_flat"`` -> ``("nsga2", "skip_designs_flat")``; no ``@``: no space."""
    sampler, _, space = variant.partition("@")
    return sampler, space or None


def space_override(spec: Any, space: str | None) -> dict[str, Any]:
    """``with_overrides`` arguments that put ``spec`` on the space ``space`` (none if None)."""
    if not space:
        return {}
    return {"space": spec.space.model_copy(update={"name": space}).model_dump()}


def run_one(variant: str, seed: int, args: argparse.Namespace, url: str) -> dict[str, Any]:
    """One study (created afresh) of ``args.trials`` trials; its records and measures."""
    from rich.console import Console

    from studies.search.driver import run_search

    sampler, space = split_variant(variant)
    name = f"sq-{variant.replace('@', '-')}-seed{seed}"
    try:
        optuna.delete_study(study_name=name, storage=url)  # an unfinished earlier attempt
    except KeyError:
        pass
    spec = load_spec(args.preset)
    budget = spec.proxy.budget.model_copy(update={"steps": args.steps}) if args.steps else None
    proxy = spec.proxy.model_copy(update={"budget": budget}) if budget else spec.proxy
    spec = spec.with_overrides(
        name=name, sampler={"name": sampler}, seed=seed, n_trials=args.trials, concurrency=1,
        cpus_per_trial=1, early_stopping=False, proxy=proxy.model_dump(),
        **space_override(spec, space),
    )  # fmt: skip
    t0 = time.perf_counter()
    error = None
    try:
        result = run_search(spec, url, console=Console(quiet=True))
    except Exception as exc:  # noqa: BLE001  (a sampler that cannot take the space is reported)
        error = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc) else ''}"
    else:
        if result.interrupted:  # Ctrl-C: Ray Tune stops the run and returns; so do we
            raise KeyboardInterrupt
    wall = time.perf_counter() - t0
    trials = records(optuna.load_study(study_name=name, storage=url))
    return {
        "sampler": variant, "sampler_source": sampler_source(variant), "seed": seed,
        "wall_s": wall, "error": error, "trials": trials,
        "hv_curve": hv_curve(trials), "best_psnr_low_memory": best_low_memory(trials),
        "dominates_paper": paper_dominated(trials), "budget_steps": spec.proxy.budget.steps,
        "counts": {
            "trials": len(trials),
            "trained": sum(1 for t in trials if t["status"] in ("complete", "stopped")
                           and t["copy_of"] is None and not t["score_cached"]),
            "score_cached": sum(t["score_cached"] and t["copy_of"] is None for t in trials),
            "copies": sum(t["copy_of"] is not None for t in trials),
            "infeasible": sum(t["status"] == "infeasible" for t in trials),
            "failed": sum(t["status"] == "failed" for t in trials),
            "distinct_designs": len({json.dumps(t["arch"], sort_keys=True) for t in trials}),
        },
    }  # fmt: skip


def _stats(values: list[float]) -> dict[str, float | None]:
    vals = [v for v in values if v is not None]
    return {
        "mean": statistics.fmean(vals) if vals else None,
        "std": statistics.stdev(vals) if len(vals) > 1 else 0.0 if vals else None,
        "min": min(vals, default=None), "max": max(vals, default=None),
    }  # fmt: skip


def summarize(runs: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    by_sampler: dict[str, list[dict[str, Any]]] = {}
    for run in runs.values():
        by_sampler.setdefault(run["sampler"], []).append(run)
    out = {}
    for sampler, rs in by_sampler.items():
        rs.sort(key=lambda r: r["seed"])
        out[sampler] = {
            "seeds": [r["seed"] for r in rs],
            "hv": _stats([r["hv_curve"][-1] if r["hv_curve"] else 0.0 for r in rs]),
            "hv_per_seed": [r["hv_curve"][-1] if r["hv_curve"] else 0.0 for r in rs],
            "best_psnr_low_memory": _stats([r["best_psnr_low_memory"] for r in rs]),
            "hv_low_memory": _stats([hv_low_memory(r["trials"]) for r in rs]),
            "dominates_paper": [r["dominates_paper"] for r in rs],
            "wall_s": _stats([r["wall_s"] for r in rs]),
            "counts": {k: sum(r["counts"][k] for r in rs) for k in rs[0]["counts"]},
            "errors": [r["error"] for r in rs if r["error"]],
        }  # fmt: skip
    base = (out.get(BASELINE) or {}).get("hv", {}).get("mean")
    base_low = (out.get(BASELINE) or {}).get("hv_low_memory", {}).get("mean")
    for s in out.values():
        s["hv_ratio_to_random"] = s["hv"]["mean"] / base if base else None
        s["hv_low_memory_ratio_to_random"] = (s["hv_low_memory"]["mean"] / base_low
                                              if base_low else None)  # fmt: skip
    for sampler, s in out.items():  # how much of the run random sampling drew as well
        s["same_as_random"] = [_same_prefix(r, runs.get(f"{BASELINE}/seed{r['seed']}"))
                               for r in by_sampler[sampler]]  # fmt: skip
    return out


def pooled(runs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The best front any sampler found: per seed (same proxy seed, so scores compare), the HV of
    every run's trials pooled, and its mean as a multiple of random's mean HV. A sampler's run
    can only beat random by much if the space holds fronts well above random's; this ratio says
    how much room the runs revealed (not a bound: designs nobody drew could be better)."""
    seeds = sorted({r["seed"] for r in runs.values()})
    per_seed = {s: hv_curve([t for r in runs.values() if r["seed"] == s for t in r["trials"]])[-1]
                for s in seeds}  # fmt: skip
    base = [r["hv_curve"][-1] for r in runs.values() if r["sampler"] == BASELINE and r["hv_curve"]]
    mean = statistics.fmean(per_seed.values()) if per_seed else 0.0
    return {"hv_per_seed": per_seed, "hv_mean": mean,
            "ratio_to_random": mean / statistics.fmean(base) if base else None}  # fmt: skip


def ceiling(runs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """How high any front could reach, per seed, if one design scored the best PSNR measured in
    any run of that seed (``psnr_best``) with the least M_sc and MACs measured (no skip memory,
    the backbone's own MACs: no skip design costs less): that ideal point's box against
    ``REFERENCE`` bounds every such front's HV. Also the PSNR that one ideal design would need for
    its box alone to reach ``GOAL`` x random's HV (``psnr_needed``). A bound for fronts whose
    designs score no more than the best measured: an unmeasured design could score more."""
    out: dict[str, Any] = {}
    for seed in sorted({r["seed"] for r in runs.values()}):
        pool = [t for r in runs.values() if r["seed"] == seed for t in r["trials"] if t["eligible"]]
        base = [r["hv_curve"][-1] for r in runs.values()
                if r["seed"] == seed and r["sampler"] == BASELINE and r["hv_curve"]]  # fmt: skip
        if not pool or not base:
            continue
        ideal = (-max(t["psnr"] for t in pool), min(t["m_sc_bytes"] for t in pool) / MIB,
                 min(t["macs"] for t in pool) / 1e9)  # fmt: skip
        box = math.prod(r - i for r, i in zip(REF_LOSS, ideal))
        per_db = box / (REF_LOSS[0] - ideal[0])  # box volume per dB of PSNR above the reference
        out[str(seed)] = {"psnr_best": -ideal[0], "m_sc_mib_min": ideal[1], "gmacs_min": ideal[2],
                          "hv_bound": box, "ratio_to_random": box / base[0],
                          "psnr_needed": REFERENCE["psnr"] + GOAL * base[0] / per_db}  # fmt: skip
    return out


def _same_prefix(run: dict[str, Any], random_run: dict[str, Any] | None) -> int | None:
    """Leading trials of ``run`` that propose the same design as random's run of its seed."""
    if random_run is None:
        return None
    n = 0
    for a, b in zip(run["trials"], random_run["trials"]):
        if a["arch"] != b["arch"]:
            break
        n += 1
    return n


def plot(runs: dict[str, dict[str, Any]], path: Path) -> None:
    """Mean HV against trial count per sampler, with the seeds' range as a band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5), dpi=110)
    samplers = sorted({r["sampler"] for r in runs.values()})
    for sampler in samplers:
        curves = [r["hv_curve"] for r in runs.values() if r["sampler"] == sampler and r["hv_curve"]]
        if not curves:
            continue
        n = min(map(len, curves))
        xs = list(range(1, n + 1))
        cols = [[c[i] for c in curves] for i in range(n)]
        mean = [statistics.fmean(c) for c in cols]
        line = ax.plot(xs, mean, label=f"{sampler} ({len(curves)} seeds)",
                       linestyle="--" if sampler == BASELINE else "-")[0]  # fmt: skip
        ax.fill_between(xs, [min(c) for c in cols], [max(c) for c in cols],
                        color=line.get_color(), alpha=0.12)  # fmt: skip
    ax.set_xlabel("trials (reference points first)")
    ax.set_ylabel("hypervolume (dB x MiB x GMACs)")
    ax.set_title(f"Hypervolume vs trials: PSNR up, M_sc down, MACs down; reference point "
                 f"({REFERENCE['psnr']:g} dB, {REFERENCE['m_sc_mib']:g} MiB, "
                 f"{REFERENCE['gmacs']:g} G); mean and range over seeds",
                 fontsize=9, wrap=True)  # fmt: skip
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def print_table(summary: dict[str, dict[str, Any]], trials: int,
                runs: dict[str, dict[str, Any]] | None = None) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"search quality: {trials} trials a run (3 references included)")
    for col in ("sampler", "seeds", "HV mean", "HV std", "HV / random", "low-mem HV / random",
                "best PSNR M_sc<=0.25MiB",
                "beats paper pt", "wall s/run", "trained", "cached", "copies", "infeasible",
                "same as random"):
        table.add_column(col, justify="left" if col == "sampler" else "right")
    fmt = lambda v, f=".3f": "n/a" if v is None else format(v, f)
    for sampler, s in sorted(summary.items()):
        b, c = s["best_psnr_low_memory"], s["counts"]
        beats = s["dominates_paper"]
        table.add_row(
            sampler, str(len(s["seeds"])), fmt(s["hv"]["mean"]), fmt(s["hv"]["std"]),
            fmt(s["hv_ratio_to_random"], ".2f"), fmt(s["hv_low_memory_ratio_to_random"], ".2f"),
            f"{fmt(b['mean'], '.2f')} [{fmt(b['min'], '.2f')}, {fmt(b['max'], '.2f')}]",
            f"{sum(bool(x) for x in beats)}/{len(beats)}", fmt(s["wall_s"]["mean"], ".0f"),
            str(c["trained"]), str(c["score_cached"]), str(c["copies"]), str(c["infeasible"]),
            "/".join(str(x) for x in s["same_as_random"]),
        )  # fmt: skip
    console = Console(width=200)
    console.print(table)
    contenders = {k: v["hv_ratio_to_random"] for k, v in summary.items()
                  if split_variant(k)[0] in ("tpe", "nsga2", "gp")
                  and v["hv_ratio_to_random"] is not None}  # fmt: skip
    if contenders:
        best = max(contenders, key=contenders.get)  # type: ignore[arg-type]
        verdict = "met" if contenders[best] >= GOAL else "NOT met"
        console.print(f"goal (one of tpe, nsga2, gp >= {GOAL}x random's mean HV): {verdict}; "
                      f"best {best} at {contenders[best]:.2f}x")  # fmt: skip
    if runs:
        pool = pooled(runs)
        ratio = pool["ratio_to_random"]
        console.print(f"pooled front (every run's trials of a seed together), mean HV "
                      f"{pool['hv_mean']:.3f} = {fmt(ratio, '.2f')}x random's: the room these runs "
                      "revealed above random sampling")  # fmt: skip
        for seed, c in ceiling(runs).items():
            console.print(
                f"seed {seed} ceiling: one design at the best PSNR measured ({c['psnr_best']:.2f} "
                f"dB) with {c['m_sc_mib_min']:.2f} MiB M_sc and {c['gmacs_min']:.2f} GMACs would "
                f"give HV {c['hv_bound']:.3f} = {c['ratio_to_random']:.2f}x random's; {GOAL}x "
                f"needs such a design at {c['psnr_needed']:.2f} dB")  # fmt: skip
    for sampler, s in summary.items():
        for err in s["errors"]:
            console.print(f"{sampler}: {err}")


def sampler_source(variant: str) -> str:
    """How a sampler is built (its factory's source; for NNI's, also the strategies' module):
    the defaults a run measured. A stored run whose sampler is built otherwise now is run
    again."""
    name = split_variant(variant)[0]
    factory = SAMPLERS.get(name)
    try:
        source = inspect.getsource(factory).strip()
        if name in NNI_SAMPLERS:
            source += f"\n# {NNI_SAMPLERS[name]}\n" + inspect.getsource(nni_strategies)
        return source
    except (OSError, TypeError):
        return repr(factory)


def default_samplers() -> list[str]:
    """Every registered sampler; NNI's only where the ``nni`` extra is installed."""
    return [n for n in SAMPLERS.names() if n not in NNI_SAMPLERS or nni_imports.available()]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--samplers", nargs="+", default=default_samplers(),
                   help=f"default: every registered sampler ({', '.join(default_samplers())})")
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--trials", type=int, default=24, help="trials a run, references included")
    p.add_argument("--preset", default="quick")
    p.add_argument("--steps", type=int, help="override the preset's proxy steps")
    p.add_argument("--json", type=Path, default=RESULTS / "search_quality.json")
    p.add_argument("--png", type=Path, default=RESULTS / "search_quality.png")
    p.add_argument("--workdir", type=Path,
                   default=Path(tempfile.gettempdir()) / "unetmm-search-quality")
    p.add_argument("--fresh", action="store_true", help="forget the runs in --json")
    args = p.parse_args()
    command = ["benchmarks/search_quality.py", *sys.argv[1:]]
    prov = provenance.started(command)
    from search_spaces import get_space

    for variant in args.samplers:  # an unknown name fails before anything runs
        sampler, space = split_variant(variant)
        SAMPLERS.get(sampler)
        if space:
            get_space(space)

    import ray

    from studies.search.ray_session import RAY_ENV

    args.workdir.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{args.workdir / 'search_quality.db'}"
    data: dict[str, Any] = {}
    if args.json.exists() and not args.fresh:
        data = json.loads(args.json.read_text())
    settings = {"preset": args.preset, "trials": args.trials, "steps": args.steps,
                "reference_point": REFERENCE, "early_stopping": False,
                "concurrency": 1}  # fmt: skip
    if data.get("settings", settings) != settings:
        raise SystemExit(f"{args.json} holds runs with other settings {data['settings']}; "
                         "use --fresh or another --json")  # fmt: skip
    runs = {k: r for k, r in data.get("runs", {}).items()  # runs of other sampler code: again
            if r.get("sampler_source") == sampler_source(r["sampler"])}  # fmt: skip
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], text=True,
                            capture_output=True, check=False).stdout.strip()  # fmt: skip
    todo = [(s, m) for s in args.seeds for m in args.samplers if f"{m}/seed{s}" not in runs]
    commits = {**data.get("commits", {}),
               **({commit: sorted({f"{m}/seed{s}" for s, m in todo})} if todo else {})}  # fmt: skip

    def save() -> None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        provenance.write_result(args.json, {"settings": settings, "commits": commits,
                                            "runs": runs, "summary": summarize(runs),
                                            "pooled": pooled(runs), "ceiling": ceiling(runs)},
                                prov)  # fmt: skip

    if todo:
        for key, value in RAY_ENV.items():
            os.environ.setdefault(key, value)
        os.environ.setdefault("OMP_NUM_THREADS", "1")
        ray.init(address="local", num_cpus=1, include_dashboard=False,
                 logging_level=logging.ERROR, log_to_driver=False)  # fmt: skip
    try:
        for seed, sampler in todo:  # seed-major: a seed's designs are cached for the next one
            key = f"{sampler}/seed{seed}"
            started = provenance.started(command)
            runs[key] = r = run_one(sampler, seed, args, url)
            r["provenance"] = provenance.finished(started)
            hv = r["hv_curve"][-1] if r["hv_curve"] else 0.0
            print(f"{key}: HV {hv:.3f}, {r['counts']}, {r['wall_s']:.0f} s"
                  + (f", {r['error']}" if r["error"] else ""), flush=True)  # fmt: skip
            save()
    finally:
        if todo:
            ray.shutdown()
    save()
    summary = summarize(runs)
    plot(runs, args.png)
    print_table(summary, args.trials, runs)
    print(f"wrote {args.json} and {args.png}")
    assert all(math.isfinite(s["hv"]["mean"]) for s in summary.values())


if __name__ == "__main__":
    main()
