"""``unetmm report STORAGE [--study NAME] --out DIR``: the HTML/PNG Pareto report of a study."""

from __future__ import annotations

import argparse

from studies.cli.common import STUDY_HELP, add_storage_argument


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_storage_argument(p)
    p.add_argument("--study", metavar="NAME", help=STUDY_HELP)
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


def run(args: argparse.Namespace) -> int:
    from studies.results.report import check_timelines, write_report
    from studies.storage import load_study, shown, storage_url

    check_timelines(args.timelines)  # before the storage is opened
    study = load_study(args.storage, args.study)
    objectives = [o.strip() for o in args.objectives.split(",")] if args.objectives else None
    report = write_report(
        study,
        args.out,
        storage_label=shown(storage_url(args.storage)),
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
    print(f"wrote {report.html}")
    for path in report.pngs.values():
        print(f"wrote {path}")
    return 0
