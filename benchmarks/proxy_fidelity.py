"""Proxy fidelity: does the default proxy budget rank skip designs like a 4x longer run does?

For >= 8 skip designs of the paper's NAFNet (full, none, single-stage subsets, UNet-- points),
each moved onto the proxy backbone with ``proxy_arch``, train on the built-in images (denoise,
sigma 25) with the default ``ProxyBudget`` and with 4x its steps, then print both PSNRs, their
ranks, and Kendall's tau-b between the two rankings (target: tau >= 0.6).

    PYTHONPATH=. python benchmarks/proxy_fidelity.py            # ~100 min of 1-core time
    PYTHONPATH=. python benchmarks/proxy_fidelity.py --quick    # 8 designs, 1/3 of the steps
    ... --json out.json; ... --reuse out.json --only "unet--(paper)"  # rerun one design
    ... --lr 4e-3 --long-from benchmarks/results/proxy_fidelity.json   # tune the short budget only

On 2 cores, run two halves at once (``--threads 1 --only ...`` each, to separate JSON files),
then ``--reuse a.json b.json --json all.json`` merges them and prints the table; ``unet--(t=3)``
alone takes a quarter of the time (full resolution).

``--long-from`` takes the long-run PSNRs (the reference ranking) from an earlier run's JSON and
trains only the short budget: a candidate proxy setting costs 1/5 of a full run to check.

The JSON carries the provenance of the run that wrote it, and each design trained its own (a
design taken with ``--reuse`` keeps the one it has).

Timings on a shared machine are noisy; the ranking is what this measures.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import sys
import time

from rich.console import Console
from rich.progress import track
from scipy import stats

from benchmarks import provenance
from nas import ArchConfig, FullSkipsConfig, NoSkipsConfig, SubsetSkipsConfig, UNetMMConfig
from nas.backbones import NAFNetConfig
from nas.presets import backbone_preset
from trainers.config import ProxyBudget, TaskConfig
from trainers.proxy import (
    TrainingDiverged,
    default_proxy_backbone,
    proxy_arch,
    train_and_eval,
)


def designs(target: NAFNetConfig, quick: bool) -> dict[str, ArchConfig]:
    """Named target designs: reference points, Table-1 subsets, UNet-- variations."""
    paper = UNetMMConfig.paper(4)
    skips = {
        "full": FullSkipsConfig(),
        "none": NoSkipsConfig(),
        "subset{1}": SubsetSkipsConfig(stages=(1,)),
        "subset{2}": SubsetSkipsConfig(stages=(2,)),
        "subset{3}": SubsetSkipsConfig(stages=(3,)),
        "subset{4}": SubsetSkipsConfig(stages=(4,)),
        "unet--(paper)": paper,
        "unet--(A=64)": paper.replace(aggregated_channels=64),
        "unet--(r=1/4)": paper.replace(ratios=(0.25,) * 4),
        "unet--{1,2}": paper.replace(stages=(1, 2)),
        "unet--(t=3)": paper.replace(target_stage=3),
        "unet--(iem=0)": paper.replace(iem_depth=0),
        "subset{1,2}": SubsetSkipsConfig(stages=(1, 2)),
        # within the flagship's budget (M_sc <= 0.25 MiB): the search's own winners and losers
        "unet--{1}(c=16,d=2)": UNetMMConfig(ratios=(0.5, 1.0, 1.0, 1.0), stages=(1,), iem_depth=2),
        "unet--{1}(c=8,d=1)": UNetMMConfig(ratios=(0.25, 1.0, 1.0, 1.0), stages=(1,)),
        "unet--{1}(c=8,d=1,A=128)": UNetMMConfig(
            ratios=(0.25, 1.0, 1.0, 1.0), stages=(1,), aggregated_channels=128
        ),
        "unet--{4}(t=3,A=64)": paper.replace(stages=(4,), target_stage=3, aggregated_channels=64),
    }
    if quick:
        skips = dict(itertools.islice(skips.items(), 8))
    return {name: ArchConfig(target, skip) for name, skip in skips.items()}


def kendall_tau(a: list[float], b: list[float]) -> float:
    """Kendall's tau-b of two paired samples (scipy's; ties allowed; NaN if either is constant)."""
    return float(stats.kendalltau(a, b).statistic)


def ranks(values: list[float]) -> list[int]:
    order = sorted(range(len(values)), key=lambda i: -values[i])
    out = [0] * len(values)
    for r, i in enumerate(order, 1):
        out[i] = r
    return out


def parse_args(argv: list[str]) -> argparse.Namespace:
    d = ProxyBudget()
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="8 designs, steps / 3")
    p.add_argument("--steps", type=int, default=None, help=f"default budget steps ({d.steps})")
    p.add_argument("--factor", type=float, default=4.0, help="long budget = factor x steps")
    p.add_argument("--crop", type=int, default=d.crop)
    p.add_argument("--batch", type=int, default=d.batch)
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--eval-every", type=int, default=None)
    p.add_argument("--width", type=int, default=None, help="proxy backbone width (default 16)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--only", nargs="*", help="run only these design names")
    p.add_argument("--json", help="write the results to this file (after every design)")
    p.add_argument("--long-from", metavar="JSON", help="take the long-run PSNRs (the reference "
                   "ranking) from this file and train only the short budget")  # fmt: skip
    p.add_argument("--reuse", metavar="JSON", nargs="+", help="take designs already measured "
                   "(same budget) from these files; with --only, rerun just those")  # fmt: skip
    return p.parse_args(argv)


def run_design(proxy: ArchConfig, budgets: dict[str, ProxyBudget], args: argparse.Namespace,
               name: str, reference: dict | None = None) -> dict:  # fmt: skip
    """Train ``proxy`` under each budget; a diverged run is recorded as NaN (left out of tau).
    With a ``reference`` row, its long-run result is taken instead of training it."""
    task = TaskConfig(name="denoise", sigma=25)
    row: dict = {"design": name}
    if reference is not None:
        row["long"], row["long_s"] = reference["long"], reference["long_s"]
        budgets = {"default": budgets["default"]}
    for label, b in budgets.items():
        try:
            r = train_and_eval(proxy, task, b, threads=args.threads, seed=args.seed)
            row[label], row[f"{label}_s"], row["input"] = r.psnr, r.seconds, r.input_psnr
        except TrainingDiverged as exc:
            print(f"{name} ({label}): {exc}", file=sys.stderr)
            row[label], row[f"{label}_s"] = math.nan, math.nan
    return row


def print_table(rows: list[dict], budgets: dict[str, ProxyBudget]) -> float:
    """Print the markdown table and Kendall's tau-b; return tau."""
    done = [r for r in rows if math.isfinite(r["default"]) and math.isfinite(r["long"])]
    if len(done) < len(rows):
        print(f"left out of tau (diverged): {[r['design'] for r in rows if r not in done]}")
    short_scores = [r["default"] for r in done]
    long_scores = [r["long"] for r in done]
    rs, rl = ranks(short_scores), ranks(long_scores)
    n, m = budgets["default"].steps, budgets["long"].steps
    print(f"\nValidation PSNR (dB), denoise sigma 25, noisy input {done[0]['input']:.2f} dB")
    print(f"| design | {n} steps | rank | {m} steps | rank | s ({n}) |")
    print("|---|---|---|---|---|---|")
    for r, a, b in zip(done, rs, rl):
        print(f"| {r['design']} | {r['default']:.2f} | {a} | {r['long']:.2f} | {b} "
              f"| {r['default_s']:.0f} |")  # fmt: skip
    tau = kendall_tau(short_scores, long_scores)
    print(f"\nKendall tau-b ({len(done)} designs, {n} vs {m} steps): {tau:.3f}"
          "   (target >= 0.6)")  # fmt: skip
    return tau


def main(argv: list[str] | None = None) -> int:
    command = ["benchmarks/proxy_fidelity.py", *(sys.argv[1:] if argv is None else argv)]
    args = parse_args(command[1:])
    prov = provenance.started(command)
    steps = args.steps or (ProxyBudget().steps // 3 if args.quick else ProxyBudget().steps)
    budget = ProxyBudget(steps=steps, crop=args.crop, batch=args.batch, lr=args.lr,
                         eval_every=args.eval_every or steps)  # fmt: skip
    budgets = {"default": budget, "long": budget.scaled(args.factor)}
    target = backbone_preset("nafnet-w32")
    backbone = default_proxy_backbone(target)
    if args.width:
        backbone = backbone.replace(width=args.width)
    table = designs(target, args.quick)
    setup = {"budget": budget.model_dump(mode="json"), "long_steps": budgets["long"].steps,
             "width": backbone.width, "seed": args.seed}  # fmt: skip
    references: dict[str, dict] = {}
    if args.long_from:
        with open(args.long_from) as fh:
            ref = json.load(fh)
        references = {r["design"]: r for r in ref["rows"]}
        setup["long_from"] = {"file": args.long_from, "budget": ref["budget"],
                              "long_steps": ref["long_steps"]}  # fmt: skip
        budgets["long"] = ProxyBudget.model_validate(ref["budget"]).scaled(
            ref["long_steps"] / ref["budget"]["steps"])
        setup["long_steps"] = budgets["long"].steps
        missing = sorted(set(table) - set(references))
        if missing:
            sys.exit(f"--long-from {args.long_from}: no long run of {missing}")
    reused: dict[str, dict] = {}
    for path in args.reuse or []:
        with open(path) as fh:
            old = json.load(fh)
        if {k: old.get(k) for k in setup} == setup:
            reused.update((r["design"], r) for r in old["rows"])
        else:
            print(f"--reuse {path}: other budget or backbone, ignored", file=sys.stderr)
    print(f"proxy backbone: {backbone}\nbudget: {budget}\nlong: {budgets['long'].steps} steps"
          + (f" (from {args.long_from})" if args.long_from else ""))
    rows = []
    t_start = time.perf_counter()
    for name, arch in track(table.items(), description="designs", console=Console(stderr=True)):
        keep = name in reused and (not args.only or name not in args.only)
        if not keep and args.only and name not in args.only:
            continue
        if keep:
            row = reused[name]
        else:
            started = provenance.started(command)
            row = run_design(proxy_arch(arch, backbone), budgets, args, name,
                             references.get(name))  # fmt: skip
            row["provenance"] = provenance.finished(started)
        rows.append(row)
        print(f"  {name}: {row['default']:.2f} / {row['long']:.2f} dB", file=sys.stderr)
        if args.json:  # after every design, so an interrupted run keeps what it measured
            provenance.write_result(args.json, {**setup, "rows": rows}, prov)
    tau = print_table(rows, budgets)
    print(f"total {time.perf_counter() - t_start:.0f} s ({len(reused)} designs reused)")
    if args.json:
        provenance.write_result(args.json, {**setup, "rows": rows, "tau": tau}, prov)
    return 0


if __name__ == "__main__":
    sys.exit(main())
