"""The noise floor under a budget, and whether a proxy ranks the designs there (issue 25).

Reads ``benchmarks/target_fidelity.py`` result files (``--json``): the designs of the flagship's
budget (``--budget-set``: M_sc <= 0.25 MiB) trained as the target with two seeds, and the proxy
columns of the same designs. Prints:

- each design's target PSNR per seed, the mean and the seed difference;
- the pooled seed standard deviation ``s`` (root mean of the per-design sample variances) and
  the noise floor ``1.96 * sqrt(2) * s``: two single runs of two designs closer than that are
  not told apart at the 95% level; and which mean differences exceed it;
- the designs within the floor of the best mean (the target's own tie group);
- for every proxy column: its cost per design, its own seed floor (where it has two seeds),
  Kendall tau-b of its ranking against the target's seed means over all the budget's designs
  and over the contenders (the designs within ``CONTENDERS_DB`` of the best target mean: where
  a user's choice is made; the rest are far worse), and what its pick costs: the target's best
  mean minus the target mean of the design the column ranks first. A column ``<run>, curve fit
  to 4x`` extrapolates each stored learning curve (``a - b * t^-c``, least squares) to four
  times its steps.

``--trust`` prints the entries of ``studies/presets/trust.yaml`` (what report and export say of a
``nafnet_sidd`` study): one from the default proxy column (``proxy 1x``), one for the same study
with 4x the proxy's steps (``proxy 4x``); ``--out`` writes the table and the numbers with
provenance.

    PYTHONPATH=. python benchmarks/noise_floor.py benchmarks/results/target_fidelity_budget.json \\
        benchmarks/results/target_fidelity_budget_proxy.json --trust
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from benchmarks import provenance
from benchmarks.proxy_fidelity import kendall_tau
from benchmarks.target_fidelity import BUDGET, proxy_budget, target_budget
from studies.results.trust import CONTENDERS_DB
from studies.spec import load_spec

Z95 = 1.96
PRESET = "nafnet_sidd"
DEFAULT_COLUMN = "proxy 1x"
TRUST_FACTORS = (1.0, 4.0)  # proxy budgets with a shipped check: the preset's and 4x its steps
EXTRAPOLATE = 4.0  # curve fits predict the score at this many times the run's steps
SeedScores = dict[str, dict[int, float]]  # design -> seed -> PSNR


def target_runs(records: list[dict], budget: dict[str, Any]) -> SeedScores:
    """The target runs of the budget's designs with ``budget`` (a later record of the same design
    and seed replaces an earlier one)."""
    out: SeedScores = {}
    for r in records:
        if r["run"] == "target" and r["budget"] == budget and r["design"] in BUDGET:
            out.setdefault(r["design"], {})[int(r["seed"])] = float(r["psnr"])
    return out


def curve_fit(curve: list[list[float]], factor: float = EXTRAPOLATE) -> float:
    """``a - b * t^-c`` fitted to a learning curve (least squares in a and b, grid in c), at
    ``factor`` times its last step; NaN for fewer than three points."""
    if len(curve) < 3:
        return math.nan
    t = np.array([p[0] for p in curve], dtype=float)
    y = np.array([p[1] for p in curve], dtype=float)
    best = (math.inf, math.nan)
    for c in np.linspace(0.05, 3.0, 60):
        x = np.stack([np.ones_like(t), -(t**-c)], axis=1)
        coef, *_ = np.linalg.lstsq(x, y, rcond=None)
        sse = float(np.sum((x @ coef - y) ** 2))
        if sse < best[0]:
            best = (sse, float(coef[0] - coef[1] * (factor * t[-1]) ** -c))
    return best[1]


def proxy_columns(records: list[dict]) -> tuple[dict[str, SeedScores], dict[str, float]]:
    """``column -> design -> seed -> PSNR`` of every proxy run of the budget's designs (with a
    curve-fit column for runs that stored curves), and each column's mean seconds a run."""
    out: dict[str, SeedScores] = {}
    seconds: dict[str, list[float]] = {}
    for r in records:
        if r["run"] == "target" or r["design"] not in BUDGET:
            continue
        seed, design = int(r["seed"]), r["design"]
        out.setdefault(r["run"], {}).setdefault(design, {})[seed] = float(r["psnr"])
        seconds.setdefault(r["run"], []).append(float(r["seconds"]))
        if len(r.get("curve") or []) >= 3:
            name = f"{r['run']}, curve fit to {EXTRAPOLATE:g}x"
            out.setdefault(name, {}).setdefault(design, {})[seed] = curve_fit(r["curve"])
            seconds.setdefault(name, []).append(float(r["seconds"]))
    return out, {k: statistics.fmean(v) for k, v in seconds.items()}


def noise_floor(runs: SeedScores) -> tuple[float, float, int]:
    """The pooled seed standard deviation, the floor, and how many designs had 2+ seeds."""
    variances = [statistics.variance(v.values()) for v in runs.values() if len(v) >= 2]
    if not variances:
        return math.nan, math.nan, 0
    sd = math.sqrt(sum(variances) / len(variances))
    return sd, Z95 * math.sqrt(2) * sd, len(variances)


def means(runs: SeedScores) -> dict[str, float]:
    return {d: statistics.fmean(v.values()) for d, v in runs.items() if v}


def tau(target: dict[str, float], column: dict[str, float], names: list[str]) -> float:
    """Kendall tau-b of ``column`` against ``target`` over the ``names`` both scored."""
    have = [d for d in names if d in column and math.isfinite(column[d])]
    if len(have) < 2:
        return math.nan
    return kendall_tau([target[d] for d in have], [column[d] for d in have])


def cost_columns() -> tuple[dict[str, SeedScores], dict[str, float]]:
    """Rankings that cost no training, for comparison: the target's parameters and MACs
    (more ranks higher), at 256x256, 8 bit."""
    from benchmarks.proxy_fidelity import designs
    from nas import measure_cost
    from nas.presets import backbone_preset

    table = designs(backbone_preset("nafnet-w32"), quick=False)
    costs = {d: measure_cost(table[d], (256, 256), bits=8, engine="meta") for d in BUDGET}
    cols = {f"no training: {name}": {d: {0: float(getattr(c, name))} for d, c in costs.items()}
            for name in ("params", "macs")}  # fmt: skip
    return cols, dict.fromkeys(cols, 0.0)


def seed_views(cols: dict[str, SeedScores], seconds: dict[str, float]
               ) -> list[tuple[str, SeedScores, float]]:  # fmt: skip
    """The rows of each column: ``name`` is its first seed's runs (seed 0 in the committed
    files; one run a design, as a study trains it); a column with more seeds adds ``name (seed
    k)`` and ``name (mean of n seeds)``, which costs n runs a design. Each row: (name, design ->
    seed -> PSNR, seconds a design)."""
    rows = []
    for name, scores in cols.items():
        seeds = sorted({s for v in scores.values() for s in v})
        for s in seeds:
            label = name if s == seeds[0] else f"{name} (seed {s})"
            one = {d: {s: v[s]} for d, v in scores.items() if s in v}
            rows.append((label, one, seconds[name]))
        if len(seeds) > 1:
            rows.append((f"{name} (mean of {len(seeds)} seeds)", scores,
                         len(seeds) * seconds[name]))  # fmt: skip
    return rows


def analyse(records: list[dict], steps: int,
            extra: tuple[dict[str, SeedScores], dict[str, float]] | None = None
            ) -> dict[str, Any]:  # fmt: skip
    """Every number the table and the trust entry need (``extra``: more columns, e.g.
    ``cost_columns()``)."""
    runs = target_runs(records, target_budget(steps).model_dump(mode="json"))
    sd, floor, paired = noise_floor(runs)
    mean = means(runs)
    best = max(mean.values()) if mean else math.nan
    ties = sorted((d for d in mean if best - mean[d] <= floor), key=lambda d: -mean[d])
    top = [d for d in mean if best - mean[d] <= CONTENDERS_DB]
    order = sorted(mean, key=lambda d: -mean[d])
    pairs = [(a, b) for i, a in enumerate(order) for b in order[i + 1:]]
    apart = sum(mean[a] - mean[b] > floor for a, b in pairs)
    cols, seconds = proxy_columns(records)
    if extra is not None:
        cols, seconds = {**cols, **extra[0]}, {**seconds, **extra[1]}
    table = []
    for name, scores, cost in sorted(seed_views(cols, seconds)):
        m = means(scores)
        p_sd, p_floor, p_paired = noise_floor(cols[name.split(" (")[0]])
        table.append({"column": name, "designs": sum(d in m for d in mean),
                      "seconds": round(cost, 1), "seeds_paired": p_paired,
                      "floor_db": None if math.isnan(p_floor) else round(p_floor, 3),
                      "tau_all": round(tau(mean, m, order), 3),
                      "tau_top": round(tau(mean, m, top), 3),
                      "pick": (pick := max((d for d in m if d in mean), key=m.__getitem__)),
                      "pick_loss_db": round(best - mean[pick], 3),
                      "scores": {d: round(m[d], 3) for d in order if d in m}})  # fmt: skip
    return {"steps": steps, "runs": {d: dict(sorted(runs[d].items())) for d in order},
            "means": {d: round(mean[d], 3) for d in order}, "sd_db": sd, "floor_db": floor,
            "paired": paired, "ties": ties, "contenders": top, "pairs": len(pairs),
            "pairs_apart": apart,
            "columns": table}  # fmt: skip


def render(a: dict[str, Any]) -> str:
    lines = [f"Target PSNR (dB) under the budget, {a['steps']}-step NAFNet-w32 runs, by seed",
             "| design | seed 0 | seed 1 | mean | seed diff |", "|---|---|---|---|---|"]
    for d, v in a["runs"].items():
        cells = " | ".join(f"{v[s]:.2f}" if s in v else "-" for s in (0, 1))
        diff = f"{max(v.values()) - min(v.values()):.2f}" if len(v) > 1 else "-"
        lines.append(f"| {d} | {cells} | {a['means'][d]:.2f} | {diff} |")
    spread = max(a["means"].values()) - min(a["means"].values())
    lines += ["", f"pooled seed sd {a['sd_db']:.3f} dB over {a['paired']} designs with 2 seeds; "
              f"noise floor 1.96 x sqrt(2) x sd = {a['floor_db']:.2f} dB; spread of the means "
              f"{spread:.2f} dB; {a['pairs_apart']} of {a['pairs']} design pairs differ by more "
              "than the floor",
              f"within the floor of the best: {', '.join(a['ties'])}",
              f"contenders (within {CONTENDERS_DB:g} dB of the best): "
              f"{', '.join(a['contenders'])}", "",
              "| proxy column | designs | s a design | own seed floor | tau (all) | "
              "tau (contenders) | its pick | pick's loss at the target |",
              "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for c in a["columns"]:
        floor = "-" if c["floor_db"] is None else f"{c['floor_db']:.2f} dB"
        lines.append(f"| {c['column']} | {c['designs']} | {c['seconds']:.0f} | {floor} | "
                     f"{c['tau_all']:.3f} | {c['tau_top']:.3f} | {c['pick']} | "
                     f"{c['pick_loss_db']:.2f} dB |")  # fmt: skip
    return "\n".join(lines)


def trust_entry(a: dict[str, Any], source: str, factor: float = 1.0) -> dict[str, Any]:
    """The ``trust.yaml`` entry of the ``nafnet_sidd`` preset with ``factor`` times its proxy
    steps (and evaluation interval), from the ``proxy <factor>x`` column."""
    spec = load_spec(PRESET)
    same = {"exclude": {"eval_every"}}  # the score does not depend on it (proxy_budget)
    if spec.proxy.budget.model_dump(**same) != proxy_budget(1.0).model_dump(**same):
        raise SystemExit(f"error: the {PRESET} preset's budget is not today's default proxy "
                         f"budget, which the {DEFAULT_COLUMN!r} column measured; rerun it")
    name = f"proxy {factor:g}x"
    col = next(c for c in a["columns"] if c["column"] == name)
    def seed_of(column: str) -> int:  # "proxy 4x" is its first seed, "(seed k)" the others
        return int(column.rsplit("(seed ", 1)[1].rstrip(")")) if "(seed " in column else -1

    per_seed = [c["tau_all"] for c in sorted(a["columns"], key=lambda c: seed_of(c["column"]))
                if c["column"] == name or c["column"].startswith(f"{name} (seed ")]  # fmt: skip
    if factor != 1.0:
        spec = spec.model_copy(update={"proxy": spec.proxy.model_copy(
            update={"budget": spec.proxy.budget.scaled(factor)})})  # fmt: skip
    return {
        "preset": PRESET if factor == 1.0 else f"{PRESET}, proxy steps x{factor:g}",
        "comparable": {k: v for k, v in spec.comparable().items() if k != "seed"},
        "budget": ", ".join(spec.constraints),
        "designs": len(a["means"]),
        "seeds": min(len(v) for v in a["runs"].values()),
        "target": f"NAFNet-w32 trained {a['steps']} steps, crop 64, batch 4",
        "floor_db": round(a["floor_db"], 3),
        "proxy_floor_db": col["floor_db"],
        "spread_db": round(max(a["means"].values()) - min(a["means"].values()), 3),
        "tau": col["tau_all"],
        "source": source,
        "contenders": len(a["contenders"]),
        "tau_contenders": col["tau_top"],
        "pick_loss_db": col["pick_loss_db"],
        "tau_seeds": per_seed if len(per_seed) > 1 else None,
    }


def load(paths: list[str]) -> list[dict]:
    return [r for path in paths for r in json.loads(Path(path).read_text())["records"]]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("json", nargs="+", help="target_fidelity.py result files")
    p.add_argument("--steps", type=int, default=2000, help="the target runs' steps (2000)")
    p.add_argument("--trust", action="store_true", help="print the trust.yaml entry")
    p.add_argument("--out", help="write the numbers and the table here (JSON, with provenance)")
    args = p.parse_args(argv)
    prov = provenance.started(["benchmarks/noise_floor.py", *(argv or sys.argv[1:])])
    a = analyse(load(args.json), args.steps, cost_columns())
    if a["paired"] < 1 or len(a["means"]) < 2:
        print(f"{a['paired']} designs have 2 target seeds and {len(a['means'])} any; the floor "
              "needs one with 2 seeds and the ranking 2 designs")  # fmt: skip
        return 1
    text = render(a)
    print(text)
    if args.trust:
        source = ", ".join(Path(j).name for j in args.json)
        entries = [trust_entry(a, source, f) for f in TRUST_FACTORS
                   if any(c["column"] == f"proxy {f:g}x" and c["designs"] == len(a["means"])
                          for c in a["columns"])]  # fmt: skip
        print("\n" + yaml.safe_dump(entries, sort_keys=False))
    if args.out:
        provenance.write_result(args.out, {**a, "table": text}, prov)
    return 0


if __name__ == "__main__":
    sys.exit(main())
