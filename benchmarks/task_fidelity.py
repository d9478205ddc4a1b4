"""Proxy fidelity per task: does a short proxy run rank skip designs like a 4x longer one does,
for deblurring, x2/x4 super-resolution and matting (the study presets' tasks)?

For each task, 7 designs of the preset's target (full, none, two single-stage subsets, the paper's
UNet-- and two variations) are moved onto the preset's proxy backbone with ``proxy_arch`` and
trained on the built-in images with a short budget and with 4x its steps (1 thread, same seed);
the table gives both validation PSNRs (matting: of the alpha, plus SAD) and Kendall's tau-b
between the two rankings. A spot check with small budgets, not a tuning of them.

    PYTHONPATH=. python benchmarks/task_fidelity.py [--task deblur sr2 sr4 matting]
        [--steps 100] [--factor 4] [--json benchmarks/results/task_fidelity.json]

Seconds on a shared machine are noisy; the ranking is what this measures.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time

from proxy_fidelity import kendall_tau, ranks

from nas import ArchConfig, FullSkipsConfig, NoSkipsConfig, SubsetSkipsConfig, UNetMMConfig
from studies.spec import load_spec
from trainers.config import DataConfig, ProxyBudget, TaskConfig
from trainers.proxy import TrainingDiverged, proxy_arch, train_and_eval

# task label -> (study preset whose target, proxy and task it uses; budget knobs)
TASKS = {
    "deblur": ("deblur_gopro", {"batch": 4, "crop": 48, "val_crop": 96}),
    "sr2": ("sr_x2", {"batch": 4, "crop": 48, "val_crop": 96}),
    "sr4": ("sr_x4", {"batch": 4, "crop": 48, "val_crop": 96}),
    "matting": ("matting_mscan", {"batch": 4, "crop": 64, "val_crop": 96}),
}


def designs(target: object) -> dict[str, ArchConfig]:
    paper = UNetMMConfig.paper(4)
    skips = {
        "full": FullSkipsConfig(),
        "none": NoSkipsConfig(),
        "subset{1}": SubsetSkipsConfig(stages=(1,)),
        "subset{4}": SubsetSkipsConfig(stages=(4,)),
        "unet--(paper)": paper,
        "unet--(A=64)": paper.replace(aggregated_channels=64),
        "unet--(iem=0)": paper.replace(iem_depth=0),
    }
    return {name: ArchConfig(target, skip) for name, skip in skips.items()}


def run_task(label: str, steps: int, factor: float, seed: int) -> dict:
    preset, knobs = TASKS[label]
    spec = load_spec(preset)
    target = spec.target.backbone_config()
    backbone = spec.proxy.backbone_config(target)
    task: TaskConfig = spec.proxy.task
    data: DataConfig = spec.proxy.data
    base = spec.proxy.budget.model_dump()
    base.update(knobs, steps=steps, eval_every=steps)
    short = ProxyBudget(**base)
    budgets = {"short": short, "long": short.scaled(factor)}
    print(f"\n## {label} ({preset}): proxy {backbone}\nbudget {short}", file=sys.stderr)
    rows = []
    for name, arch in designs(target).items():
        row: dict = {"design": name}
        for which, budget in budgets.items():
            try:
                r = train_and_eval(proxy_arch(arch, backbone), task, budget, data, threads=1,
                                   seed=seed)  # fmt: skip
                row[which], row[f"{which}_s"] = r.psnr, r.seconds
                row[f"{which}_metrics"], row["input"] = r.metrics, r.input_psnr
            except TrainingDiverged as exc:
                print(f"{label} {name} ({which}): {exc}", file=sys.stderr)
                row[which], row[f"{which}_s"] = math.nan, math.nan
        print(f"  {name}: {row['short']:.2f} / {row['long']:.2f} dB", file=sys.stderr)
        rows.append(row)
    done = [r for r in rows if math.isfinite(r["short"]) and math.isfinite(r["long"])]
    tau = kendall_tau([r["short"] for r in done], [r["long"] for r in done])
    return {"task": label, "preset": preset, "task_config": task.model_dump(mode="json"),
            "proxy_backbone": backbone.to_dict(), "budget": short.model_dump(mode="json"),
            "long_steps": budgets["long"].steps, "seed": seed, "rows": rows, "tau": tau}  # fmt: skip


def print_task(result: dict) -> None:
    rows = [r for r in result["rows"] if math.isfinite(r["short"]) and math.isfinite(r["long"])]
    rs, rl = ranks([r["short"] for r in rows]), ranks([r["long"] for r in rows])
    n, m = result["budget"]["steps"], result["long_steps"]
    matting = result["task"] == "matting"
    print(f"\n{result['task']} ({result['preset']}), do-nothing PSNR {rows[0]['input']:.2f} dB")
    extra = " | SAD (long) |" if matting else " |"
    print(f"| design | {n} steps | rank | {m} steps | rank{extra} s ({n}) | s ({m}) |")
    print("|---|---|---|---|---|" + ("---|" if matting else "") + "---|---|")
    for r, a, b in zip(rows, rs, rl):
        sad = f" {r['long_metrics']['sad']:.3f} |" if matting else ""
        print(f"| {r['design']} | {r['short']:.2f} | {a} | {r['long']:.2f} | {b} |{sad} "
              f"{r['short_s']:.0f} | {r['long_s']:.0f} |")  # fmt: skip
    print(f"Kendall tau-b ({len(rows)} designs, {n} vs {m} steps): {result['tau']:.3f}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--task", nargs="+", choices=list(TASKS), default=list(TASKS))
    p.add_argument("--steps", type=int, default=100, help="short budget steps")
    p.add_argument("--factor", type=float, default=4.0, help="long budget = factor x steps")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", help="write the raw results here (after every task)")
    args = p.parse_args(sys.argv[1:] if argv is None else argv)
    results, t0 = [], time.perf_counter()
    for label in args.task:
        results.append(run_task(label, args.steps, args.factor, args.seed))
        print_task(results[-1])
        if args.json:
            with open(args.json, "w") as fh:
                json.dump(results, fh, indent=1)
    print(f"\ntotal {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
