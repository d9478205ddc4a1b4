"""``unetmm report [STORAGE] [--study NAME] --out DIR``: the HTML/PNG Pareto report of a study.

Prints every file it wrote (the page, the PNGs, the CSV of the Pareto trials)."""

from __future__ import annotations

import argparse

from studies.cli.common import add_storage_argument, output_folder, storage_of


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_storage_argument(p)
    p.add_argument(
        "--out", metavar="DIR", required=True, help="folder for report.html and the PNGs"
    )
    p.add_argument(
        "--objectives",
        metavar="A,B,C",
        help="objectives of the front (default: the study's metric names, else "
        "psnr,m_sc,macs); any of psnr, ssim, m_sc, macs, params, peak_memory",
    )
    p.add_argument(
        "--timelines",
        type=int,
        default=6,
        metavar="N",
        help="Pareto designs drawn in the M_sc timeline besides the reference points "
        "(default 6; 0: the reference points only)",
    )


def parse_objectives(text: str, study) -> list[str]:  # type: ignore[no-untyped-def]
    """``--objectives psnr,m_sc``: known metrics, each once, each measured by some trial of
    ``study``; ``ConfigError`` naming ``--objectives`` otherwise."""
    from nas.errors import ConfigError
    from studies.metrics import get_metric
    from studies.results.pareto import load_points

    names = [o.strip() for o in text.split(",")]
    if not any(names):
        raise ConfigError("--objectives: names no objective; write e.g. --objectives psnr,m_sc")
    if "" in names:
        raise ConfigError(f"--objectives: {text!r} has an empty name; separate names by one comma")
    rows = [get_metric(n, "--objectives") for n in names]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ConfigError(f"--objectives: {', '.join(twice)} listed twice; name each once")
    points = load_points(study)
    never = [m.name for m in rows if not any(p.value(m.name) is not None for p in points)]
    if never:
        seen = [n for n in ("psnr", "ssim", "sad", "mse", "m_sc", "macs", "params",
                            "peak_memory", "peak_tiled") if any(p.value(n) is not None
                                                                for p in points)]  # fmt: skip
        raise ConfigError(f"--objectives: {', '.join(never)} was never measured in study "
                          f"{study.study_name!r}; its trials measured {seen}")  # fmt: skip
    return names


def run(args: argparse.Namespace) -> int:
    from studies.results.report import check_timelines, write_report
    from studies.storage import load_study, shown, storage_url

    check_timelines(args.timelines)  # before the storage is opened
    storage = storage_of(args)
    study = load_study(storage, args.study)
    objectives = None if args.objectives is None else parse_objectives(args.objectives, study)
    with output_folder(args.out, "--out") as out:
        report = write_report(
            study,
            out,
            storage_label=shown(storage_url(storage)),
            objectives=objectives,
            max_timelines=args.timelines,
        )
    c = report.counts
    print(
        f"study {study.study_name}: {c['trials']} trials, {c['eligible']} complete and feasible, "
        f"{c['stopped']} stopped early, {c['infeasible']} infeasible, {c['failed']} failed; "
        f"{len(report.front)} on the front"
        + (f", knee: trial {report.knee}" if report.knee is not None else "")
    )
    for path in (report.html, *report.pngs.values(), report.csv):
        print(f"wrote {path}")
    return 0
