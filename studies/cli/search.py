"""``unetmm search STUDY.yaml|PRESET``: run or resume a skip-design search (studies.search)."""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("study", metavar="STUDY", help="a study YAML file or a preset name (quick, "
                   "nafnet_sidd)")  # fmt: skip
    p.add_argument("--storage", metavar="URL",
                   help="SQLAlchemy URL of the study storage (default: the spec's, else "
                   "sqlite:///unetmm.db in the working directory)")  # fmt: skip
    p.add_argument("--study-name", metavar="NAME", help="study name (default: the spec's name)")
    p.add_argument("--n-trials", type=int, metavar="N", help="finished trials this run adds")
    p.add_argument("--seed", type=int, metavar="S", help="sampler and proxy seed")
    p.add_argument("--concurrency", type=int, metavar="N", help="trials at once")
    p.add_argument("--cpus-per-trial", type=int, metavar="N", help="CPUs (threads) per trial")
    p.add_argument("--sampler", metavar="NAME", help="tpe, nsga2, nsga3, random or gp")
    p.add_argument("--ray-address", metavar="ADDR",
                   help="join an existing Ray cluster (host:port or auto) instead of starting "
                   "a local one; a cluster with token authentication (Ray's default) also needs "
                   "RAY_AUTH_MODE=token and RAY_AUTH_TOKEN in the environment")  # fmt: skip
    p.add_argument("--no-early-stopping", action="store_true", help="train every trial fully")
    p.add_argument("--no-score-cache", action="store_true",
                   help="train every design, even one whose proxy score is in the persistent "
                   "score cache (~/.cache/unetmm/scores or $UNETMM_CACHE_DIR/scores)")  # fmt: skip


def run(args: argparse.Namespace) -> int:
    from studies.spec import load_spec

    spec = load_spec(args.study)  # a mistake in the spec is reported before Ray is imported
    changes = {
        "n_trials": args.n_trials,
        "seed": args.seed,
        "concurrency": args.concurrency,
        "cpus_per_trial": args.cpus_per_trial,
        "sampler": args.sampler,
        "early_stopping": False if args.no_early_stopping else None,
        "score_cache": False if args.no_score_cache else None,
    }
    spec = spec.with_overrides(**changes)

    from rich.console import Console

    from studies.search.driver import run_search
    from studies.storage import shown
    console = Console(highlight=False, soft_wrap=True)
    result = run_search(spec, args.storage, args.ray_address, args.study_name, console)
    s = result.statuses
    console.print(
        f"{'stopped' if result.interrupted else 'done'} after {result.seconds:.0f} s: "
        f"{len(result.run_trials)} trial(s) this run "
        f"({', '.join(f'{v} {k}' for k, v in sorted(s.items())) or 'none'}); the study has "
        f"{result.trials_after} finished"
        + (f" and {result.waiting} queued for the next run" if result.waiting else "")
        + f"; Pareto front (feasible, fully trained): trials {result.front}"
    )
    url = shown(result.storage_url)
    console.print(f"inspect: optuna best-trials --study-name {result.study_name} --storage '{url}'")
    if result.interrupted:
        console.print("interrupted: the same command resumes the study")
        return 130
    return 0
