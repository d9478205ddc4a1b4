"""``unetmm search STUDY.yaml|PRESET [STORAGE]``: run or resume a skip-design search
(``studies.search``).

Before Ray starts, the spec's inputs are checked (``StudySpec.check_inputs``: data folders and
their images; a study name given by flag obeys the spec's rule). A storage that stops answering
mid-search ends the command with one line naming the command that resumes it.
"""

from __future__ import annotations

import argparse
import shlex

from studies.cli.common import add_storage_flags, storage_of

# flag -> attribute of the parsed arguments, in the order the resume command lists them
RESUME_FLAGS = {"--storage": "storage", "--study-name": "study", "--n-trials": "n_trials",
                "--seed": "seed", "--concurrency": "concurrency",
                "--cpus-per-trial": "cpus_per_trial", "--gpus-per-trial": "gpus_per_trial",
                "--sampler": "sampler", "--worker-niceness": "worker_niceness",
                "--ray-address": "ray_address"}  # fmt: skip


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("spec", metavar="STUDY", help="a study YAML file or a preset name (quick, "
                   "nafnet_sidd)")  # fmt: skip
    p.add_argument("storage", nargs="?", metavar="STORAGE",
                   help="SQLAlchemy URL or .db file of the study storage (default: the spec's, "
                   "else sqlite:///unetmm.db in the working directory)")  # fmt: skip
    add_storage_flags(p, "study name (default: the spec's name)")
    p.add_argument("--n-trials", type=int, metavar="N", help="designs this run judges (trains); "
                   "infeasible proposals and copies of designs judged before are extra")
    p.add_argument("--seed", type=int, metavar="S", help="sampler and proxy seed")
    p.add_argument("--concurrency", type=int, metavar="N", help="trials at once")
    p.add_argument("--cpus-per-trial", type=int, metavar="N", help="CPUs (threads) per trial")
    p.add_argument("--gpus-per-trial", type=float, metavar="G",
                   help="GPUs per trial, fractional (0.25: four trials share a GPU); the proxy "
                   "trains on its GPU share (default: the spec's gpus_per_trial, 0)")  # fmt: skip
    p.add_argument("--sampler", metavar="NAME", help="tpe, nsga2, nsga3, random or gp")
    p.add_argument("--worker-niceness", type=int, metavar="N",
                   help="nice value of the trial workers, 0-19 (default: the spec's "
                   "worker_niceness, else this command's own: trials get a fair share of a "
                   "busy machine)")  # fmt: skip
    p.add_argument("--ray-address", metavar="ADDR",
                   help="join an existing Ray cluster (host:port or auto) instead of starting "
                   "a local one; a cluster with token authentication (Ray's default) also needs "
                   "RAY_AUTH_MODE=token and RAY_AUTH_TOKEN in the environment")  # fmt: skip
    p.add_argument("--prescreen", metavar="METHOD",
                   help="oneshot: first rank --prescreen-designs new designs with one "
                   "weight-sharing supernet and queue the best for this run (the nni extra)")
    p.add_argument("--prescreen-designs", type=int, default=16, metavar="N",
                   help="designs the pre-screen ranks (default 16)")
    p.add_argument("--no-early-stopping", action="store_true", help="train every trial fully")
    p.add_argument("--no-score-cache", action="store_true",
                   help="train every design, even one whose proxy score is in the persistent "
                   "score cache (~/.cache/unetmm/scores or $UNETMM_CACHE_DIR/scores)")  # fmt: skip


def run(args: argparse.Namespace) -> int:
    from studies.spec import check_study_name, load_spec

    spec = load_spec(args.spec)  # a mistake in the spec is reported before Ray is imported
    storage = search_storage(storage_of(args, default=None))
    if args.study is not None:
        check_study_name(args.study, "--study-name")
    changes = {
        "n_trials": args.n_trials,
        "seed": args.seed,
        "concurrency": args.concurrency,
        "cpus_per_trial": args.cpus_per_trial,
        "gpus_per_trial": args.gpus_per_trial,
        "sampler": args.sampler,
        "worker_niceness": args.worker_niceness,
        "early_stopping": False if args.no_early_stopping else None,
        "score_cache": False if args.no_score_cache else None,
    }
    spec = with_flags(spec, changes)
    spec.check_inputs()
    if args.prescreen is not None:
        from studies.search.prescreen import check

        check(args.prescreen, args.prescreen_designs)

    from rich.console import Console

    from studies.search.driver import run_search
    from studies.signals import stop_requested
    from studies.storage import StorageLost, default_storage_url, lost_reason, shown
    console = Console(highlight=False, soft_wrap=True)
    try:
        if args.prescreen is not None:
            from studies.search.prescreen import run_prescreen

            run_prescreen(spec, storage, args.study, args.prescreen_designs, console)
        result = run_search(spec, storage, args.ray_address, args.study, console)
    except StorageLost as exc:
        raise exc.with_resume(resume_command(args)) from None
    except Exception as exc:  # lost before or after the trials ran (opening, summing up)
        reason = lost_reason(exc)
        if reason is None:
            raise
        url = storage or spec.storage or default_storage_url()
        raise StorageLost(url, reason, resume_command(args)) from None
    interrupted = bool(result.interrupted) or stop_requested()  # (no trial running then too)
    judged, other = result.statuses, result.not_trained
    console.print(
        f"{'stopped' if interrupted else 'done'} after {result.seconds:.0f} s: "
        f"{len(result.judged)} design(s) judged this run ("
        + (", ".join(f"{v} {k}" for k, v in sorted(judged.items())) or "none")
        + f"), {sum(other.values())} proposal(s) not trained ("
        + (", ".join(f"{v} {k}" for k, v in sorted(other.items())) or "none")
        + (f"; {result.redrawn} sampler draw(s) over the M_sc limit or judged before, redrawn"
           if result.redrawn else "")
        + ")"
        + (f"; {len(result.lost)} trial(s) {result.lost} lost with their worker or node, "
           "their designs re-run" if result.lost else "")
        + f"; the study has {result.trials_after} finished trial(s)"
        + (f" and {result.waiting} queued for the next run" if result.waiting else "")
        + f"; Pareto front (feasible, fully trained, one trial per design): {result.front}"
    )
    url = shown(result.storage_url)
    console.print(f"inspect: optuna best-trials --study-name {result.study_name} --storage '{url}'")
    if interrupted:
        console.print("interrupted: the same command resumes the study")
        return 130
    return 0


def with_flags(spec, changes):  # type: ignore[no-untyped-def]
    """``spec.with_overrides(**changes)``; a refused value is named by the flag that gave it
    (``--seed: ...``, not ``seed: ...``)."""
    from nas.errors import ConfigError

    flags = {attr: flag for flag, attr in RESUME_FLAGS.items()}
    flags.update(early_stopping="--no-early-stopping", score_cache="--no-score-cache")
    try:
        return spec.with_overrides(**changes)
    except ConfigError as exc:
        text = str(exc)
        head, _, rest = text.partition(":")
        field = head.split(".")[0]
        if rest and changes.get(field) is not None and field in flags:
            raise ConfigError(flags[field] + ":" + rest) from None
        raise


def search_storage(storage: str | None) -> str | None:
    """A storage given as a path (``runs/study.db``) as a SQLite URL; URLs are checked."""
    from studies.storage import writer_url

    return None if storage is None else writer_url(storage)


def resume_command(args: argparse.Namespace) -> str:
    """The command line that resumes this search (the storage's password masked)."""
    from studies.storage import shown

    words = ["unetmm", "search", args.spec]
    for flag, attr in RESUME_FLAGS.items():
        value = getattr(args, attr, None)
        if flag == "--storage":
            value = storage_of(args, default=None)
            value = shown(value) if value and "://" in value else value
        if value is not None:
            words += [flag, str(value)]
    words += [flag for flag in ("--no-early-stopping", "--no-score-cache")
              if getattr(args, flag[2:].replace("-", "_"), False)]  # fmt: skip
    return shlex.join(words)
