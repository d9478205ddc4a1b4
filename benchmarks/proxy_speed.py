"""Proxy speed: every way of executing the default proxy, side by side in one run.

The default ``ProxyBudget`` (seed 0, denoise sigma 25, built-in images) on the full-skip proxy and
the paper's UNet-- proxy. For each design all variants are built at once and advanced in turns
of ``--chunk`` steps (round robin), so load from other processes on a shared machine hits them
alike; steps/s is the median over a variant's turns (its first step, which holds compilation and
warm-up, is timed on its own and left out). Every variant runs the whole budget, so its final
PSNR compares with the baseline's: today's eager float32 NCHW loop on one thread (``EAGER``).

Variants: ``trainers.config.ProxyRuntime`` knobs (channels_last, fused LayerNorm, fused AdamW,
torch.compile with the CPU inductor, bf16 autocast), 2 threads, and batch 4 / 16 (a different
budget: its PSNR is not the same experiment). bf16 is only probed for ``--probe-steps``: without
native bf16 the CPU runs it many times slower. Compilation uses a fresh inductor cache (what a
new architecture costs) unless ``--warm-cache``.

    PYTHONPATH=. python benchmarks/proxy_speed.py                  # ~40-60 min on a busy 2-core box
    PYTHONPATH=. python benchmarks/proxy_speed.py --steps 60 --designs full   # a quick look
    ... --variants eager,default   ... --json benchmarks/results/proxy_speed.json

Then a per-step breakdown (data, forward, backward, optimizer; validation per pass) of the
baseline and the default, interleaved the same way: where the remaining time goes. ``--json``
writes the raw results with their provenance (``benchmarks/provenance.py``).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
import tempfile
import time
from typing import Any

import torch

from benchmarks import provenance
from nas.presets import backbone_preset, reference_designs
from trainers.config import EAGER, DataConfig, ProxyBudget, ProxyRuntime, TaskConfig
from trainers.loop import compute_settings, evaluate
from trainers.metrics import psnr_loss
from trainers.proxy import ProxyRun, proxy_arch

MIN_GAIN = 1.5  # the goal: proxy steps/s over the eager baseline on CPU
PSNR_TOLERANCE = 0.1  # dB: a variant "keeps the score" within this of the baseline


@dataclasses.dataclass(frozen=True)
class Variant:
    runtime: ProxyRuntime
    threads: int = 1
    budget: dict[str, Any] = dataclasses.field(default_factory=dict)  # ProxyBudget overrides
    probe: bool = False  # run --probe-steps only (no final PSNR)

    @property
    def same_budget(self) -> bool:
        return not self.budget


_CL = {"channels_last": True, "fused_norm": False, "fused_optimizer": False}
VARIANTS: dict[str, Variant] = {
    "eager": Variant(EAGER),
    "fused_adamw": Variant(EAGER.model_copy(update={"fused_optimizer": True})),
    "channels_last": Variant(EAGER.model_copy(update=_CL)),
    "cl+fused_norm": Variant(EAGER.model_copy(update={**_CL, "fused_norm": True})),
    "default": Variant(ProxyRuntime()),
    "default+batch=4": Variant(ProxyRuntime(), budget={"batch": 4}),
    "compile": Variant(EAGER.model_copy(update={"compile": True})),
    "compile+cl+adamw": Variant(
        EAGER.model_copy(update={**_CL, "compile": True, "fused_optimizer": True})
    ),
    "threads=2": Variant(EAGER, threads=2),
    "default+threads=2": Variant(ProxyRuntime(), threads=2),
    "batch=4": Variant(EAGER, budget={"batch": 4}),
    "batch=16": Variant(EAGER, budget={"batch": 16}),
    "bf16": Variant(EAGER.model_copy(update={"autocast": "bf16"}), probe=True),
}
BASELINE = "eager"


@dataclasses.dataclass
class Timing:
    """One variant's run on one design: its first step, its turns, its validation."""

    first_s: float = 0.0
    turns: list[tuple[int, float]] = dataclasses.field(default_factory=list)  # (steps, s)
    setup_s: float = 0.0

    def steps_per_s(self) -> float:
        rates = [n / s for n, s in self.turns if n]
        return statistics.median(rates) if rates else float("nan")

    def own_s(self, eval_s: float) -> float:
        return self.setup_s + self.first_s + sum(s for _, s in self.turns) + eval_s


def run_design(arch: Any, names: list[str], budget: ProxyBudget, task: TaskConfig,
               data: DataConfig, chunk: int, probe_steps: int) -> dict[str, dict]:  # fmt: skip
    """All ``names`` on ``arch``, interleaved; returns each variant's timing and scores."""
    runs, timing = {}, {}
    for name in names:
        v = VARIANTS[name]
        with compute_settings(v.threads):
            b = budget.model_copy(update=v.budget)
            runs[name] = ProxyRun(arch, task, b, data, seed=0, runtime=v.runtime)
        timing[name] = Timing(setup_s=runs[name].seconds_setup)
    for name in names:  # first step alone: compilation, oneDNN primitive creation, warm-up
        with compute_settings(VARIANTS[name].threads):
            t0 = time.perf_counter()
            runs[name].advance()
            timing[name].first_s = time.perf_counter() - t0
        print(f"    {name}: first step {timing[name].first_s:.2f} s", file=sys.stderr, flush=True)
    def limit(name: str) -> int:
        return probe_steps if VARIANTS[name].probe else runs[name].budget.steps
    while any(runs[n].step < limit(n) for n in names):
        for name in names:
            run, left = runs[name], limit(name) - runs[name].step
            if left <= 0:
                continue
            with compute_settings(VARIANTS[name].threads):
                eval0, t0 = run.seconds_eval, time.perf_counter()
                for _ in range(min(chunk, left)):
                    run.advance()
                spent = time.perf_counter() - t0 - (run.seconds_eval - eval0)
            timing[name].turns.append((min(chunk, left), spent))
    out = {}
    for name in names:
        run, t = runs[name], timing[name]
        finished = run.done
        out[name] = {
            "steps": run.step,
            "steps_per_s": t.steps_per_s(),
            "first_step_s": t.first_s,
            "setup_s": t.setup_s,
            "eval_s": run.seconds_eval,
            "evals": len(run.curve),
            "own_s": t.own_s(run.seconds_eval),
            "psnr": run.scores.get("psnr") if finished else None,
            "curve": run.curve,
            "turns": t.turns,
        }
    return out


def breakdown(arch: Any, names: list[str], budget: ProxyBudget, task: TaskConfig,
              data: DataConfig, steps: int) -> dict[str, dict[str, float]]:  # fmt: skip
    """Median ms per step of data, forward, backward and optimizer, and ms per validation pass,
    for each variant (interleaved step by step, after two warm-up steps)."""
    runs = {n: ProxyRun(arch, task, budget, data, runtime=VARIANTS[n].runtime) for n in names}
    parts: dict[str, dict[str, list[float]]] = {n: {} for n in names}
    for i in range(steps + 2):
        for name, run in runs.items():
            ex = run.executor
            with compute_settings(VARIANTS[name].threads):
                t = [time.perf_counter()]
                inp, target = ex.inputs(*run.stream.batch_at(i))
                t.append(time.perf_counter())
                with ex.precision():
                    out = ex.train_forward(inp)
                loss = psnr_loss(out.float(), target)
                t.append(time.perf_counter())
                run.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                t.append(time.perf_counter())
                run.optimizer.step()
                t.append(time.perf_counter())
                if i == steps + 1:
                    evaluate(ex.model, run.val, i, memory_format=ex.memory_format)
                    t.append(time.perf_counter())
            if i < 2:
                continue
            keys = ("data", "forward", "backward", "optimizer", "validation pass")
            for key, a, b in zip(keys, t, t[1:]):
                parts[name].setdefault(key, []).append((b - a) * 1e3)
    return {n: {k: statistics.median(v) for k, v in p.items()} for n, p in parts.items()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated names")
    p.add_argument("--designs", default="full,unetmm", help="reference designs (full, unetmm)")
    p.add_argument("--steps", type=int, default=None, help="override the budget's steps")
    p.add_argument("--chunk", type=int, default=25, help="steps per turn (default 25)")
    p.add_argument("--probe-steps", type=int, default=20, help="steps of probe-only variants")
    p.add_argument("--breakdown-steps", type=int, default=10, help="0: no breakdown")
    p.add_argument("--warm-cache", action="store_true", help="keep the user's inductor cache")
    p.add_argument("--json", default=None, help="write the raw results here")
    argv = sys.argv[1:] if argv is None else argv
    args = p.parse_args(argv)
    prov = provenance.started(["benchmarks/proxy_speed.py", *argv])
    names = list(dict.fromkeys(n.strip() for n in args.variants.split(",") if n.strip()))
    unknown = [n for n in names if n not in VARIANTS]
    if unknown or BASELINE not in names:
        p.error(f"--variants: unknown {unknown}; choose from {list(VARIANTS)} (with {BASELINE!r})")
    if not args.warm_cache:
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="proxy-speed-inductor-")
    budget = ProxyBudget(**({"steps": args.steps} if args.steps else {}))
    task, data = TaskConfig(name="denoise", sigma=25), DataConfig()
    refs = reference_designs(backbone_preset("nafnet-w32"))
    designs = [d.strip() for d in args.designs.split(",")]
    print(f"budget: {budget}\ntorch {torch.__version__}, CPU capability "
          f"{torch.backends.cpu.get_cpu_capability()}, {os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.1f} at the start")  # fmt: skip
    results: dict[str, Any] = {
        "budget": budget.model_dump(mode="json"), "torch": torch.__version__,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "load_start": os.getloadavg(), "chunk": args.chunk, "designs": {},
        "variants": {n: {"runtime": VARIANTS[n].runtime.model_dump(), "threads": VARIANTS[n].threads,
                         "budget": VARIANTS[n].budget} for n in names},
    }  # fmt: skip
    for design in designs:
        print(f"  design {design} ...", file=sys.stderr, flush=True)
        arch = proxy_arch(refs[design])
        results["designs"][design] = run_design(arch, names, budget, task, data, args.chunk,
                                                args.probe_steps)  # fmt: skip
    results["load_end"] = os.getloadavg()
    print_table(results, names, designs)
    if args.breakdown_steps:
        pair = [n for n in (BASELINE, "default") if n in names]
        results["breakdown"] = {d: breakdown(proxy_arch(refs[d]), pair, budget, task, data,
                                             args.breakdown_steps) for d in designs}  # fmt: skip
        print_breakdown(results["breakdown"], pair)
    if args.json:
        provenance.write_result(args.json, results, prov)
    return 0


def print_table(results: dict, names: list[str], designs: list[str]) -> None:
    print(f"\nload average {results['load_end'][0]:.1f} at the end; turns of {results['chunk']} "
          "steps, round robin; steps/s = median over turns (first step apart)")  # fmt: skip
    for design in designs:
        rows, base = results["designs"][design], results["designs"][design][BASELINE]
        print(f"\n{design} proxy (baseline: {BASELINE}, {base['psnr']:.3f} dB)")
        print("| variant | same budget | steps/s | x eager | first step s | validation s "
              "| run s | final PSNR | delta dB |")  # fmt: skip
        print("|---|---|---|---|---|---|---|---|---|")
        for name in names:
            r, v = rows[name], VARIANTS[name]
            gain = r["steps_per_s"] / base["steps_per_s"]
            if r["psnr"] is None:
                score = f"not run ({r['steps']} steps only)", "-"
            else:
                score = f"{r['psnr']:.3f}", f"{r['psnr'] - base['psnr']:+.3f}"
            same = "yes" if v.same_budget else f"no ({v.budget})"
            print(f"| {name} | {same} | {r['steps_per_s']:.2f} | {gain:.2f} | "
                  f"{r['first_step_s']:.1f} | {r['eval_s']:.2f} | {r['own_s']:.0f} | "
                  f"{score[0]} | {score[1]} |")  # fmt: skip
    for key, label in (("steps_per_s", "steady steps/s"), ("own_s", "whole run (compile in)")):
        best = fastest(results, names, designs, key)
        print(f"\nfastest by {label} within {PSNR_TOLERANCE} dB on every design, same budget, "
              f"1 thread: {best}")  # fmt: skip
    for design in designs:
        rows = results["designs"][design]
        top = max(rows[n]["steps_per_s"] for n in names if VARIANTS[n].same_budget
                  and VARIANTS[n].threads == 1)  # fmt: skip
        gain = top / rows[BASELINE]["steps_per_s"]
        print(f"{design}: best same-budget 1-thread steps/s gain {gain:.2f}x "
              f"(goal {MIN_GAIN}x: {'met' if gain >= MIN_GAIN else 'not met'})")  # fmt: skip


def fastest(results: dict, names: list[str], designs: list[str], key: str) -> str:
    """The same-budget, one-thread variant within the PSNR tolerance everywhere that is fastest
    (highest steps/s, or least whole-run seconds) summed over the designs."""
    rows = results["designs"]
    ok = [n for n in names if VARIANTS[n].same_budget and VARIANTS[n].threads == 1
          and all(rows[d][n]["psnr"] is not None
                  and abs(rows[d][n]["psnr"] - rows[d][BASELINE]["psnr"]) <= PSNR_TOLERANCE
                  for d in designs)]  # fmt: skip
    if key == "steps_per_s":  # total time of the designs' steps at each variant's rate
        return min(ok, key=lambda n: sum(1 / rows[d][n][key] for d in designs))
    return min(ok, key=lambda n: sum(rows[d][n][key] for d in designs))


def print_breakdown(parts: dict[str, dict[str, dict[str, float]]], names: list[str]) -> None:
    print("\nper-step breakdown (median ms, 1 thread, interleaved step by step)")
    keys = ("data", "forward", "backward", "optimizer", "validation pass")
    print("| design | variant | " + " | ".join(keys) + " | step total |")
    print("|---|---|" + "---|" * (len(keys) + 1))
    for design, rows in parts.items():
        for name in names:
            r = rows[name]
            total = sum(r[k] for k in keys[:4])
            print(f"| {design} | {name} | " + " | ".join(f"{r[k]:.1f}" for k in keys)
                  + f" | {total:.1f} |")  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
