"""``unetmm confirm STORAGE [--study NAME] [--top K] [--steps N | --scale F]
[--backbone proxy|target] [--seeds S]``: re-train a study's front at a higher fidelity into
``<study>.confirm`` (``studies.search.confirm``); the same command resumes a killed or
interrupted run."""

from __future__ import annotations

import argparse

from studies.cli.common import add_storage_argument, storage_of


def add_arguments(p: argparse.ArgumentParser) -> None:
    from studies.search.confirm import CONFIRM_ON, DEFAULT_SCALE, ConfirmOptions

    d = ConfirmOptions()
    add_storage_argument(p)
    p.add_argument("--top", type=int, default=d.top, metavar="K",
                   help=f"front designs to confirm, by the proxy's score (default {d.top}); the "
                   "trained reference points are always added")  # fmt: skip
    budget = p.add_mutually_exclusive_group()
    budget.add_argument("--steps", type=int, metavar="N", help="training steps of each run")
    budget.add_argument("--scale", type=float, metavar="F",
                        help=f"steps as a multiple of the study's proxy steps (default "
                        f"{DEFAULT_SCALE:g})")  # fmt: skip
    p.add_argument("--backbone", default=d.backbone, choices=CONFIRM_ON,
                   help="train on the study's proxy backbone (default) or on the target "
                   "backbone itself (slow on a CPU)")  # fmt: skip
    p.add_argument("--seeds", type=int, default=d.seeds, metavar="S",
                   help=f"runs per design, seeds study-seed .. +S-1 (default {d.seeds})")
    p.add_argument("--concurrency", type=int, metavar="N",
                   help="runs at once (default: the study's)")
    p.add_argument("--cpus-per-trial", type=int, metavar="N",
                   help="CPUs (threads) per run (default: the study's)")
    p.add_argument("--gpus-per-trial", type=float, metavar="G",
                   help="GPUs per run, fractional; > 0 trains on CUDA (default: the study's)")
    p.add_argument("--name", metavar="NAME",
                   help="linked study to write (default: <study>.confirm); a new name for "
                   "another fidelity")  # fmt: skip
    p.add_argument("--ray-address", metavar="ADDR",
                   help="join an existing Ray cluster instead of starting a local one")
    p.add_argument("--no-score-cache", action="store_true",
                   help="train every run, even one whose score is in the score cache")


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from studies.search.confirm import ConfirmOptions, print_confirmation, run_confirm

    options = ConfirmOptions(
        top=args.top, steps=args.steps, scale=args.scale, backbone=args.backbone,
        seeds=args.seeds, concurrency=args.concurrency, cpus_per_trial=args.cpus_per_trial,
        gpus_per_trial=args.gpus_per_trial,
        score_cache=not args.no_score_cache, name=args.name,
    ).check()  # fmt: skip
    console = Console(highlight=False, soft_wrap=True)
    result = run_confirm(storage_of(args), args.study, options, ray_address=args.ray_address,
                         console=console)  # fmt: skip
    from studies.signals import stop_requested

    print_confirmation(result.confirmation, console)
    interrupted = bool(result.interrupted) or stop_requested()
    console.print(f"{'stopped' if interrupted else 'done'} after {result.seconds:.0f} s: "
                  f"{len(result.ran) - len(result.lost)} run(s) this time"
                  + (f" ({len(result.lost)} more lost with their worker and re-run)"
                     if result.lost else "") + ", "
                  f"{result.done_before} of {result.jobs} done before; stored in study "
                  f"{result.study_name!r} (optuna.load_study(study_name="
                  f"{result.study_name!r}, storage=...))")  # fmt: skip
    if interrupted:
        console.print("interrupted: the same command resumes the confirmation")
        return 130
    return 0
