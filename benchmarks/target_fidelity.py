"""Target fidelity: does the width-16 proxy rank skip designs as the target network does?

The reference ranking: each design on the target backbone of the ``nafnet-w32`` preset
(NAFNet-w32, full depth) trained with the project's own trainer (``train_and_eval``) for 1000
steps (crop 64, batch 4, the default proxy lr, one evaluation at the end), denoise sigma 25,
built-in images, seed 0. Against it: the default proxy (300 steps) and the proxy at 4x (1200)
taken from ``benchmarks/results/proxy_fidelity.json``, the proxy at 2x (600) trained here, an
optional proxy variant (``--proxy-variant``), and the trivial predictors rank-by-M_sc, -params,
-MACs (more = better; target costs at 256x256, 8 bit, meta engine). Printed: the table, Kendall
tau-b and Spearman rho of every predictor against the target, tau within the top group (designs
within 1 dB of the best target PSNR), and whether the default proxy meets the goal of issue 11
(tau >= 0.6 and >= 0.2 above the best trivial predictor).

    PYTHONPATH=. python benchmarks/target_fidelity.py --threads 1 \\
        --json benchmarks/results/target_fidelity.json                    # ~2 h of one core
    PYTHONPATH=. python benchmarks/target_fidelity.py --part proxy --threads 1 \\
        --json benchmarks/results/target_fidelity_proxy.json              # ~20 min
    PYTHONPATH=. python benchmarks/target_fidelity.py --reuse \\
        benchmarks/results/target_fidelity.json benchmarks/results/target_fidelity_proxy.json
    ... --part variant --proxy-variant deep --json v.json   # a candidate proxy at the 1x budget

Every finished run is appended to ``--json`` at once, with its provenance (commit, machine, load
at its start and end, versions, command); a rerun with the same file skips the runs
already in it (same design, architecture, budget, task, seed), so a killed run resumes and two
processes (``--only`` halves, or ``--part target`` and ``--part proxy``) can share the work.
``--reuse`` alone trains nothing: it merges the files and prints the table.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from scipy import stats

from benchmarks import provenance
from benchmarks.distill import Distiller
from benchmarks.provenance import write_json_atomic
from benchmarks.proxy_fidelity import designs, kendall_tau, ranks
from nas import ArchConfig, measure_cost
from nas.backbones import NAFNetConfig
from nas.errors import ConfigError, UnetmmError
from nas.presets import backbone_preset
from nas.registry import Registry
from trainers.config import ProxyBudget, TaskConfig
from trainers.progress import progress_bar
from trainers.proxy import (
    ProxyResult,
    TrainingDiverged,
    default_proxy_backbone,
    proxy_arch,
    train_and_eval,
)

PROXY_JSON = Path(__file__).parent / "results" / "proxy_fidelity.json"

# Most informative first (reference points, the paper's point, the deep-skip outlier, ...);
# unet--(t=3) last: at full resolution it is the slowest. subset{1}/{2} only with --only.
ORDER = (
    "full", "none", "unet--(paper)", "subset{4}", "subset{3}", "unet--(r=1/4)", "unet--(A=64)",
    "subset{1,2}", "unet--(iem=0)", "unet--{1,2}", "unet--(t=3)",
)  # fmt: skip
# The designs of the flagship's budget (M_sc <= 0.25 MiB), for the noise floor under it: the
# search's best (c=16,d=2) and runner-up (c=8,d=1), the one `unetmm confirm` ranked lowest
# (c=8,d=1,A=128), the paper's point and its iem=0 / A=64 variants, subset{4}, and a t=3 design.
BUDGET = (
    "subset{4}", "unet--{1}(c=16,d=2)", "unet--(paper)", "unet--{1}(c=8,d=1)", "unet--(iem=0)",
    "unet--(A=64)", "unet--{4}(t=3,A=64)", "unet--{1}(c=8,d=1,A=128)",
)  # fmt: skip

# (arch, task, budget, threads, seed) -> result; ``fields()``, where it has one, adds to the record
Trainer = Callable[[ArchConfig, TaskConfig, ProxyBudget, int | None, int], ProxyResult]


@dataclasses.dataclass(frozen=True)
class Variant:
    """A candidate proxy: its backbone (from the target's) and its budget (from today's)."""

    backbone: Callable[[Any], Any]
    budget: Callable[[ProxyBudget], ProxyBudget] = lambda b: b
    trainer: Callable[[Any], Trainer] | None = None  # from the target; None: train_and_eval


def _deep(target: NAFNetConfig) -> NAFNetConfig:
    """Width 16 with the target's deep stages at half depth (enc 1,1,2,4, middle 6): the default's
    one block per stage may starve designs whose only skips are deep (subset{4})."""
    base = default_proxy_backbone(target)
    enc = tuple(max(1, n // 2) for n in target.enc_blk_nums)
    return base.replace(enc_blk_nums=enc, middle_blk_num=max(1, target.middle_blk_num // 2))


def _with(**fields: Any) -> Callable[[ProxyBudget], ProxyBudget]:
    return lambda b: b.model_copy(update=fields)


# candidate proxies to compare with the default (``--part variant --proxy-variant NAME``)
PROXY_VARIANTS: Registry[Variant] = Registry("proxy variant")
PROXY_VARIANTS.register("default")(Variant(default_proxy_backbone))
PROXY_VARIANTS.register("deep")(Variant(_deep))
# the target's width (32) at the proxy's depth (one block a stage): ~2.5x a default trial
PROXY_VARIANTS.register("w32")(Variant(lambda t: default_proxy_backbone(t).replace(width=t.width)))
# the target's own lr (1e-3; the default proxy trains at 2e-3), and a constant lr (no cosine
# decay: the last steps count as much as the first)
PROXY_VARIANTS.register("lr1e-3")(Variant(default_proxy_backbone, _with(lr=1e-3)))
PROXY_VARIANTS.register("constant")(Variant(default_proxy_backbone, _with(schedule="constant")))
# distillation from the full-skip proxy trained at 4x (``benchmarks/distill.py``)
PROXY_VARIANTS.register("distill")(Variant(default_proxy_backbone, trainer=Distiller))


@dataclasses.dataclass(frozen=True)
class Job:
    """One training run: ``run`` is its column (target, proxy 2x, proxy[variant])."""

    run: str
    design: str
    arch: ArchConfig
    budget: ProxyBudget
    trainer: Trainer | None = dataclasses.field(default=None, compare=False)

    def key(self, task: TaskConfig, seed: int) -> dict[str, Any]:
        """What a stored record must equal for this job to count as done."""
        return {"run": self.run, "design": self.design, "arch": self.arch.to_dict(),
                "budget": self.budget.model_dump(mode="json"),
                "task": task.model_dump(mode="json"), "seed": seed}  # fmt: skip


def target_budget(steps: int = 1000, crop: int = 64, batch: int = 4,
                  lr: float | None = None) -> ProxyBudget:  # fmt: skip
    """The reference budget: the proxy's optimizer and schedule, one evaluation at the end."""
    lr = ProxyBudget().lr if lr is None else lr
    return ProxyBudget(steps=steps, crop=crop, batch=batch, lr=lr, eval_every=steps)


def proxy_budget(factor: float = 1.0, curve_every: int | None = None) -> ProxyBudget:
    """Today's default proxy budget times ``factor`` steps, one evaluation at the end or every
    ``curve_every`` steps (the final score does not depend on ``eval_every``: evaluation draws
    no random numbers)."""
    b = ProxyBudget().scaled(factor)
    return b.model_copy(update={"eval_every": min(curve_every or b.steps, b.steps)})


# part -> (target backbone, factor, variant, curve_every) -> (column, proxy backbone, budget)
PROXY_PARTS: dict[str, Callable[[Any, float, str, int | None], tuple[str, Any, ProxyBudget]]] = {
    "proxy": lambda t, f, v, c: (f"proxy {f:g}x", default_proxy_backbone(t), proxy_budget(f, c)),
    "variant": lambda t, f, v, c: (f"proxy[{v}]", PROXY_VARIANTS.get(v).backbone(t),
                                   PROXY_VARIANTS.get(v).budget(proxy_budget(1.0, c))),
}


def variant_trainer(part: str, target: Any, variant: str) -> Trainer | None:
    """The variant's own trainer (one per plan: a distiller trains its teacher once)."""
    make = PROXY_VARIANTS.get(variant).trainer if part == "variant" else None
    return make(target) if make is not None else None


def plan(part: str, target: Any, table: dict[str, ArchConfig], names: list[str], *,
         budget: ProxyBudget, factor: float = 2.0, variant: str = "default",
         curve_every: int | None = None) -> list[Job]:  # fmt: skip
    """The jobs of one part: ``target`` (each design on ``target`` for ``budget``), ``proxy`` (the
    default proxy at ``factor`` x its steps) or ``variant`` (proxy ``variant`` at 1x)."""
    if part == "target":
        return [Job("target", n, table[n], budget) for n in names]
    if part not in PROXY_PARTS:
        raise ConfigError(f"--part: {part!r} is not known; use target, {', '.join(PROXY_PARTS)}")
    run, backbone, b = PROXY_PARTS[part](target, factor, variant, curve_every)
    trainer = variant_trainer(part, target, variant)
    return [Job(run, n, proxy_arch(table[n], backbone), b, trainer) for n in names]


def load_records(paths: list[str | Path]) -> list[dict]:
    """The records of every file that exists (later files add to earlier ones)."""
    out: list[dict] = []
    for path in paths:
        if Path(path).exists():
            out += json.loads(Path(path).read_text())["records"]
    return out


def is_done(job: Job, records: list[dict], task: TaskConfig, seed: int) -> bool:
    key = job.key(task, seed)
    return any(all(r.get(k) == v for k, v in key.items()) for r in records)


def run_jobs(jobs: list[Job], records: list[dict], task: TaskConfig, *, seed: int = 0,
             threads: int | None = 1, json_path: str | Path | None = None) -> list[dict]:  # fmt: skip
    """Train every job without a matching record; append each result to ``records`` and write
    ``json_path`` after every run (a diverged run is stored as NaN). Returns the new records."""
    todo = [j for j in jobs if not is_done(j, records, task, seed)]
    console = Console(stderr=True)
    if len(todo) < len(jobs):
        console.print(f"{len(jobs) - len(todo)} runs already done, skipped")
    new: list[dict] = []
    bar = progress_bar("runs", console)
    progress = bar.add_task("", total=len(todo))
    with bar:
        for job in todo:
            bar.update(progress, description=f"{job.run} {job.design}")
            rec = _run_job(job, task, seed, threads, console)
            records.append(rec)
            new.append(rec)
            if json_path:
                write_json(json_path, records)
            bar.advance(progress)
    return new


def _run_job(job: Job, task: TaskConfig, seed: int, threads: int | None,
             console: Console) -> dict:  # fmt: skip
    """Train ``job``; its record, with provenance (a diverged run: NaN scores)."""
    prov = provenance.started()
    try:
        if job.trainer is not None:
            r = job.trainer(job.arch, task, job.budget, threads, seed)
        else:
            r = train_and_eval(job.arch, task, job.budget, threads=threads, seed=seed)
        psnr, seconds, inp, curve = r.psnr, r.seconds, r.input_psnr, r.curve
    except TrainingDiverged as exc:
        console.print(f"{job.run} {job.design}: {exc}", markup=False)
        psnr = seconds = inp = math.nan
        curve = []
    console.print(f"  {job.run} {job.design}: {psnr:.2f} dB in {seconds:.0f} s", markup=False)
    return {**job.key(task, seed), "psnr": psnr, "seconds": seconds, "input_psnr": inp,
            "curve": [list(p) for p in curve], **getattr(job.trainer, "fields", dict)(),
            "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "provenance": {**prov, "load_end": [round(v, 2) for v in os.getloadavg()]}}  # fmt: skip


def write_json(path: str | Path, records: list[dict], **extra: Any) -> None:
    """``records`` (each with its own provenance) to ``path``, keeping the file's other top-level
    keys (e.g. the provenance backfilled for records that predate it)."""
    kept = json.loads(Path(path).read_text()) if Path(path).exists() else {}
    kept.pop("records", None)
    write_json_atomic(path, {**kept, "records": records, **extra})


def proxy_reference(path: str | Path) -> tuple[dict[str, dict[str, float]], list[str]]:
    """The 1x and 4x columns of a proxy_fidelity JSON, and notes on how its budget differs from
    today's default ``ProxyBudget()`` (steps and eval_every aside)."""
    ref = json.loads(Path(path).read_text())
    ignore = {"steps", "eval_every"}
    now = ProxyBudget().model_dump(mode="json")
    notes = [f"{path}: budget {k} = {v}, today's default {now[k]}"
             for k, v in ref["budget"].items() if k not in ignore and now.get(k) != v]  # fmt: skip
    if ref.get("width") != default_proxy_backbone().width:
        notes.append(f"{path}: proxy width {ref.get('width')}, today's default "
                     f"{default_proxy_backbone().width}")  # fmt: skip
    factor = ref["long_steps"] / ref["budget"]["steps"]
    cols = {"proxy 1x": {r["design"]: r["default"] for r in ref["rows"]},
            f"proxy {factor:g}x": {r["design"]: r["long"] for r in ref["rows"]}}  # fmt: skip
    return cols, notes


def spearman(a: list[float], b: list[float]) -> float:
    """Spearman's rho (scipy's: ties share their mean rank; NaN if either is constant)."""
    return float(stats.spearmanr(a, b).statistic)


TRIVIAL = {"M_sc": "m_sc_mib", "params": "params", "MACs": "macs"}


@dataclasses.dataclass(frozen=True)
class Agreement:
    """How one predictor ranks the designs against the target: over all designs with both
    scores (``n``) and within the top group (``n_top``)."""

    predictor: str
    n: int
    tau: float
    rho: float
    n_top: int
    tau_top: float


def agreements(target: dict[str, float], predictors: dict[str, dict[str, float]],
               margin: float = 1.0) -> list[Agreement]:  # fmt: skip
    """Kendall tau-b and Spearman rho of each predictor (higher = better) against ``target``;
    the top group: designs within ``margin`` dB of the best target score."""
    best = max(target.values())
    out = []
    for name, scores in predictors.items():
        common = [d for d in target if math.isfinite(scores.get(d, math.nan))]
        top = [d for d in common if target[d] >= best - margin]
        t, p = [target[d] for d in common], [scores[d] for d in common]
        out.append(Agreement(
            name, len(common),
            kendall_tau(t, p) if len(common) > 1 else math.nan,
            spearman(t, p) if len(common) > 1 else math.nan,
            len(top),
            kendall_tau([target[d] for d in top], [scores[d] for d in top])
            if len(top) > 1 else math.nan,
        ))  # fmt: skip
    return out


def goal(agree: list[Agreement], proxy: str = "proxy 1x") -> tuple[bool, str]:
    """Issue 11's goal: the default proxy's tau >= 0.6 and >= 0.2 above every trivial one."""
    by = {a.predictor: a for a in agree}
    # a predictor that ties every design (no tau) carries no information: tau 0
    trivial = {t: by[t].tau if math.isfinite(by[t].tau) else 0.0 for t in TRIVIAL if t in by}
    best = max(trivial, key=trivial.__getitem__)
    tau = by[proxy].tau
    ok = tau >= 0.6 and tau - trivial[best] >= 0.2
    room = 1.0 - trivial[best]  # tau is at most 1: no predictor can beat the best trivial by more
    return ok, (f"{proxy}: tau {tau:.3f} (goal >= 0.6); best trivial {best} "
                f"{trivial[best]:.3f}; margin {tau - trivial[best]:+.3f} (goal >= 0.2): "
                f"{'MET' if ok else 'NOT met'}"
                + ("" if ok or room >= 0.2 else f"; no predictor can meet it on these designs: "
                   f"tau <= 1 leaves a margin of at most {room:.3f} over {best}"))  # fmt: skip


def columns(records: list[dict], extra: dict[str, dict[str, float]], seed: int = 0
            ) -> tuple[dict[str, float], dict[str, dict[str, float]]]:  # fmt: skip
    """The target scores and every proxy column (records of this script plus ``extra``, both of
    ``seed``); a later record of the same run and design replaces an earlier one. A proxy run
    of another seed is its own column ("proxy 1x seed 1"), and a run with other seeds also gets
    the mean over its seeds ("proxy 1x, 2 seeds") on the designs every seed has."""
    cols: dict[str, dict[str, float]] = {}
    for r in records:
        if r["seed"] == seed:
            cols.setdefault(r["run"], {})[r["design"]] = r["psnr"]
        elif r["run"] != "target":  # another seed's target is not the reference
            cols.setdefault(f"{r['run']} seed {r['seed']}", {})[r["design"]] = r["psnr"]
    target = {d: v for d, v in cols.pop("target", {}).items() if math.isfinite(v)}
    proxies = {**extra, **cols}
    for base in list(proxies):
        runs = [proxies[base]] + [v for k, v in proxies.items() if k.startswith(f"{base} seed ")]
        if len(runs) > 1:
            both = [d for d in runs[0] if all(math.isfinite(c.get(d, math.nan)) for c in runs)]
            proxies[f"{base}, {len(runs)} seeds"] = {
                d: sum(c[d] for c in runs) / len(runs) for d in both}  # fmt: skip
    return target, dict(sorted(proxies.items(), key=lambda kv: _proxy_order(kv[0])))


def _proxy_order(name: str) -> tuple[int, float, str]:
    if name.startswith("proxy ") and name.endswith("x"):
        return (0, float(name[6:-1]), name)
    return (1, 0.0, name)


def print_table(target: dict[str, float], proxies: dict[str, dict[str, float]],
                table: dict[str, ArchConfig], seconds: dict[str, float]) -> list[Agreement]:  # fmt: skip
    """Print the markdown table and the agreement of each predictor; return the agreements."""
    names = [d for d in table if d in target]
    if len(names) < 2:
        print(f"\n{len(names)} target designs done; the table needs 2")
        return []
    costs = {d: measure_cost(table[d], (256, 256), bits=8, engine="meta") for d in names}
    trivial = {k: {d: float(getattr(costs[d], f)) for d in names} for k, f in TRIVIAL.items()}
    rt = dict(zip(names, ranks([target[d] for d in names])))
    pr = {}
    for p, col in proxies.items():
        have = [d for d in names if math.isfinite(col.get(d, math.nan))]
        pr[p] = dict(zip(have, ranks([col[d] for d in have])))
    head = " | ".join(f"{p} | r" for p in proxies)
    print("\nValidation PSNR (dB), denoise sigma 25; costs of the target at 256x256, 8 bit;"
          " r: rank among the designs that column has")  # fmt: skip
    print(f"| design | M_sc MiB | params M | MACs G | target | r | {head} | target s |")
    print("|---|" + "---|" * (6 + 2 * len(proxies)))
    for d in names:
        c = costs[d]
        cells = " | ".join(
            f"{proxies[p][d]:.2f} | {pr[p][d]}" if d in pr[p] else "- | -" for p in proxies
        )
        print(f"| {d} | {c.m_sc_mib:.3f} | {c.params / 1e6:.2f} | {c.macs / 1e9:.2f} "
              f"| {target[d]:.2f} | {rt[d]} | {cells} | {seconds.get(d, math.nan):.0f} |")  # fmt: skip
    agree = agreements({d: target[d] for d in names}, {**proxies, **trivial})
    best = max(target[d] for d in names)
    print(f"\nAgreement with the target ranking (top group: within 1 dB of {best:.2f})")
    print("| predictor | designs | Kendall tau-b | Spearman rho | top designs | tau in top |")
    print("|---|---|---|---|---|---|")
    for a in agree:
        print(f"| {a.predictor} | {a.n} | {a.tau:.3f} | {a.rho:.3f} | {a.n_top} "
              f"| {a.tau_top:.3f} |")  # fmt: skip
    if "proxy 1x" in proxies:
        print("\n" + goal(agree)[1])
    return agree


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--part", choices=("target", "proxy", "variant"),
                   help="what to train (default: target; nothing with --reuse)")  # fmt: skip
    p.add_argument("--steps", type=int, default=1000, help="target budget steps (1000)")
    p.add_argument("--crop", type=int, default=64, help="target budget crop (64)")
    p.add_argument("--batch", type=int, default=4, help="target budget batch (4)")
    p.add_argument("--lr", type=float, default=None, help="target lr (the proxy default)")
    p.add_argument("--factor", type=float, default=2.0, help="--part proxy: steps x this (2)")
    p.add_argument("--curve-every", type=int, default=None,
                   help="proxy parts: evaluate every N steps and keep the curve (same score)")
    p.add_argument("--proxy-variant", default="deep",
                   help=f"--part variant: one of {PROXY_VARIANTS.names()} (deep)")  # fmt: skip
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--only", nargs="+", help="run only these designs, in this order")
    p.add_argument("--budget-set", action="store_true",
                   help="the designs of the flagship's budget (M_sc <= 0.25 MiB) instead")  # fmt: skip
    p.add_argument("--json", help="results file: read to resume, written after every run")
    p.add_argument("--reuse", nargs="+", default=[], metavar="JSON",
                   help="add these files' runs; alone: merge them and print the table")  # fmt: skip
    p.add_argument("--proxy-json", default=str(PROXY_JSON),
                   help="proxy_fidelity JSON for the 1x and 4x columns")  # fmt: skip
    return p.parse_args(argv)


def main(argv: list[str] | None = None, target: Any | None = None) -> int:
    """The CLI; ``target`` replaces the preset's backbone (tests use a tiny one)."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        return _run(args, target if target is not None else backbone_preset("nafnet-w32"))
    except (UnetmmError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace, target: Any) -> int:
    table = designs(target, quick=False)
    names = list(args.only or (BUDGET if args.budget_set else ORDER))
    unknown = [n for n in names if n not in table]
    if unknown:
        raise ConfigError(f"--only: unknown design {unknown[0]!r}; choose from {list(table)}")
    part = args.part or (None if args.reuse else "target")
    task = TaskConfig(name="denoise", sigma=25)
    records = load_records([*args.reuse, *([args.json] if args.json else [])])
    if part:
        budget = target_budget(args.steps, args.crop, args.batch, args.lr)
        jobs = plan(part, target, table, names, budget=budget, factor=args.factor,
                    variant=args.proxy_variant, curve_every=args.curve_every)  # fmt: skip
        print(f"{part}: {len(jobs)} designs, {jobs[0].arch.backbone}, {jobs[0].budget}",
              file=sys.stderr)  # fmt: skip
        run_jobs(jobs, records, task, seed=args.seed, threads=args.threads, json_path=args.json)
    elif args.json:
        write_json(args.json, records)
    extra, notes = proxy_reference(args.proxy_json) if args.proxy_json else ({}, [])
    for note in notes:
        print(f"note: {note}")
    if args.proxy_json and not notes:
        print(f"{args.proxy_json}: budget equals today's ProxyBudget() but for steps, eval_every")
    keep = [r for r in records if r["task"] == task.model_dump(mode="json") and (
        r["run"] != "target" or r["budget"] == target_budget(
            args.steps, args.crop, args.batch, args.lr).model_dump(mode="json"))]  # fmt: skip
    tgt, proxies = columns(keep, extra, args.seed)
    seconds = {r["design"]: r["seconds"] for r in keep
               if r["run"] == "target" and r["seed"] == args.seed}  # fmt: skip
    print_table(tgt, proxies, table, seconds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
