"""Proxy fidelity per task: does a study preset's proxy run rank skip designs like a 4x longer
one does, for deblurring, x2/x4 super-resolution and matting (the presets' own tasks)?

For each task, 7 designs of the preset's target (full, none, two single-stage subsets, the paper's
UNet-- and two variations) are moved onto the preset's proxy backbone with ``proxy_arch`` and
trained on the built-in images with the preset's proxy budget (``--steps`` to change its steps)
and with 4x its steps (1 thread, same seed, one evaluation at the end); the table gives both
validation scores (PSNR; matting: of the alpha, plus SAD), how far the short run moved off the
do-nothing prediction, and Kendall's tau-b between the two rankings (matting: of PSNR and of SAD).
A spot check of the presets' budgets, not a tuning of them.

    PYTHONPATH=. python benchmarks/task_fidelity.py [--task deblur sr2 sr4 matting]
        [--steps N] [--factor 4] [--json benchmarks/results/task_fidelity.json]

Every finished design is written to ``--json`` at once and a rerun with the same file skips the
runs already in it (same task, budget, seed), so a killed run resumes and tasks can run as
parallel processes with a file each; each design's row carries the provenance of the run that
trained it (``benchmarks/provenance.py``). Seconds on a shared machine are noisy; the ranking is
what this measures.

One task's runs can be spread over processes (cores) too: ``--designs`` trains some designs,
``--budget short|long`` one of the two budgets, each process into its own file; ``--merge`` then
joins the files into one, the rows of a run by design. Training the short budget at some seeds
and the long one at another checks the short runs against long runs of other seeds, which a
shared seed would flatter (``trust_entry``), at the cost of one long run a design:

    ... --task deblur --seed 1 --budget long --json long1.json
    ... --task deblur --seed 0 --budget short --json short0.json   # and --seed 2
    ... --json task_fidelity_deblur.json --merge long1.json short0.json short2.json
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from benchmarks import provenance
from benchmarks.provenance import write_json_atomic
from benchmarks.proxy_fidelity import kendall_tau, ranks
from nas import ArchConfig, FullSkipsConfig, NoSkipsConfig, SubsetSkipsConfig, UNetMMConfig
from studies.spec import load_spec
from trainers.config import (
    DataConfig,
    ProxyBudget,
    TaskConfig,
    format_error,
    training_identity,
)
from trainers.proxy import TrainingDiverged, proxy_arch, train_and_eval

# task label -> the study preset whose target, proxy backbone, task, data and budget it uses
TASKS = {"deblur": "deblur_gopro", "sr2": "sr_x2", "sr4": "sr_x4", "matting": "matting_mscan"}
BUDGETS = ("short", "long")  # the preset's budget, and factor x its steps


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
        "subset{2}": SubsetSkipsConfig(stages=(2,)),
    }
    return {name: ArchConfig(target, skip) for name, skip in skips.items()}


def budgets(label: str, steps: int | None, factor: float,
            changes: dict[str, Any] | None = None) -> dict[str, ProxyBudget]:  # fmt: skip
    """The short (the preset's budget, ``steps`` if given, ``changes`` applied) and long
    (``factor`` x its steps) budgets."""
    b = load_spec(TASKS[label]).proxy.budget
    b = ProxyBudget.model_validate({**b.model_dump(), **(changes or {})})  # a typo is an error
    n = steps or b.steps
    short = b.model_copy(update={"steps": n, "eval_every": n})
    long = short.scaled(factor)
    return {"short": short, "long": long}


def settings(pairs: list[str]) -> dict[str, dict[str, Any]]:
    """``["budget.lr=0.005", "data.val_limit=null"]`` -> ``{"budget": {"lr": 0.005}, "data":
    {"val_limit": None}}`` (values read as YAML): a candidate proxy to measure."""
    out: dict[str, dict[str, Any]] = {"budget": {}, "data": {}}
    for pair in pairs:
        key, eq, value = pair.partition("=")
        part, dot, field = key.partition(".")
        if part not in out or not dot or not field or not eq:
            raise SystemExit(f"error: --set: {pair!r} is not budget.FIELD=VALUE or "
                             "data.FIELD=VALUE")  # fmt: skip
        out[part][field] = yaml.safe_load(value)
    for part, model in (("budget", ProxyBudget), ("data", DataConfig)):
        try:  # unknown fields and bad values are named here, before any training
            model.model_validate({**model().model_dump(), **out[part]})
        except ValidationError as exc:
            raise SystemExit(f"error: --set: {format_error(exc, part + '.')}") from None
    return out


def run_task(label: str, steps: int | None, factor: float, seed: int,
             done: dict | None = None, save=lambda result: None,
             command: list[str] | None = None,
             changes: dict[str, dict[str, Any]] | None = None,
             only: list[str] | None = None, which: tuple[str, ...] = BUDGETS) -> dict:  # fmt: skip
    """Train every design (``only``: these) at both budgets (``which``: these); what rows of
    ``done`` with the same settings already hold is kept, so runs of one budget or of some
    designs fill one entry. ``save(result)`` is called after every design. A trained row
    carries its provenance (``command``: the arguments of the run, default ``sys.argv``;
    a row filled in by several runs keeps a list). ``changes``: the budget and data fields of
    a candidate proxy (``settings``), else the preset's."""
    preset = TASKS[label]
    spec = load_spec(preset)
    changes = changes or {}
    target = spec.target.backbone_config()
    backbone = spec.proxy.backbone_config(target)
    task: TaskConfig = spec.proxy.task
    data = DataConfig.model_validate({**spec.proxy.data.model_dump(), **changes.get("data", {})})
    bud = budgets(label, steps, factor, changes.get("budget"))
    result = {"task": label, "preset": preset, "task_config": task.model_dump(mode="json"),
              "proxy_backbone": backbone.to_dict(), "budget": bud["short"].model_dump(mode="json"),
              "data": data.model_dump(mode="json", exclude={"cache_mb"}),
              "long_steps": bud["long"].steps, "seed": seed, "rows": [], "tau": math.nan}  # fmt: skip
    result["mattes"] = mattes_version(task, data)
    same = done is not None and same_run(done, label, steps, factor, seed, changes)
    kept = {r["design"]: r for r in done["rows"]} if done is not None and same else {}
    print(f"\n## {label} ({preset}): proxy {backbone}\nbudget {bud['short']}", file=sys.stderr)
    for name, arch in designs(target).items():
        row: dict = dict(kept.get(name, {"design": name}))
        todo = [w for w in which if w not in row] if only is None or name in only else []
        if not todo:
            if name in kept:
                result["rows"].append(row)
            continue
        prov = provenance.started(command)
        for w in todo:
            try:
                r = train_and_eval(proxy_arch(arch, backbone), task, bud[w], data,
                                   threads=1, seed=seed)  # fmt: skip
                row[w], row[f"{w}_s"] = r.psnr, r.seconds
                row[f"{w}_metrics"], row["input"] = r.metrics, r.input_psnr
            except TrainingDiverged as exc:
                print(f"{label} {name} ({w}): {exc}", file=sys.stderr)
                row[w], row[f"{w}_s"] = math.nan, math.nan
        row["provenance"] = _joined(row.get("provenance"), provenance.finished(prov))
        print(f"  {name}: " + " / ".join(f"{row.get(w, math.nan):.2f}" for w in BUDGETS)
              + " dB", file=sys.stderr)  # fmt: skip
        result["rows"].append(row)
        result["tau"] = tau_of(result["rows"])
        save(result)
    result["tau"] = tau_of(result["rows"])
    return result


def _joined(*provenances: Any) -> Any:
    """A row's provenance from those of the runs that filled it (each one record, a list of
    them, or None): one record, or the list of the distinct ones in order (None: none), so
    that joining a row with itself changes nothing."""
    out: list[dict] = []
    for p in provenances:
        for record in p if isinstance(p, list) else [p] if p is not None else []:
            if record not in out:
                out.append(record)
    return out[0] if len(out) == 1 else out or None


def _finite(rows: list[dict], which: tuple[str, ...] = BUDGETS) -> list[dict]:
    """The rows with a finite score at each of ``which`` (a row may hold one budget only)."""
    return [r for r in rows if all(math.isfinite(r.get(w, math.nan)) for w in which)]


def merge(entries: list[dict]) -> list[dict]:
    """Entries of one run (task, settings, seed) filled by several processes (``--designs``,
    ``--budget``) joined into one: rows by design, in the designs' order, each row's budgets
    united (a budget trained twice: the later entry's). Other entries are kept as they are."""
    def settings_of(entry: dict) -> dict:  # what makes two entries one run
        return {k: v for k, v in entry.items() if k not in ("rows", "tau")}

    order = list(designs(None))
    out: list[dict] = []
    for e in entries:
        into = next((o for o in out if settings_of(o) == settings_of(e)), None)
        if into is None:
            out.append({**e, "rows": [dict(r) for r in e["rows"]]})
            continue
        rows = {r["design"]: r for r in into["rows"]}
        for r in e["rows"]:
            had = rows.get(r["design"], {})
            prov = _joined(had.get("provenance"), r.get("provenance"))
            rows[r["design"]] = {**had, **r, **({"provenance": prov} if prov else {})}
        into["rows"] = sorted(rows.values(), key=lambda r: order.index(r["design"]))
    for o in out:
        o["tau"] = tau_of(o["rows"])
    return out


def tau_of(rows: list[dict], metric: str | None = None) -> float:
    """Kendall tau-b of the short and long rankings, by PSNR or by a metric (lower = better)."""
    done = _finite(rows)
    if len(done) < 2:
        return math.nan
    if metric is None:
        return kendall_tau([r["short"] for r in done], [r["long"] for r in done])
    return kendall_tau([-r["short_metrics"][metric] for r in done],
                       [-r["long_metrics"][metric] for r in done])  # fmt: skip


def print_task(result: dict) -> None:
    rows = _finite(result["rows"])
    if not rows:
        return
    rs, rl = ranks([r["short"] for r in rows]), ranks([r["long"] for r in rows])
    n, m = result["budget"]["steps"], result["long_steps"]
    matting = result["task"] == "matting"
    inp = rows[0]["input"]
    print(f"\n{result['task']} ({result['preset']}), do-nothing PSNR {inp:.2f} dB, batch "
          f"{result['budget']['batch']}, crop {result['budget']['crop']}")  # fmt: skip
    extra = f" SAD ({n}) | SAD ({m}) |" if matting else ""
    print(f"| design | {n} steps | over input | rank | {m} steps | over input | rank |{extra}"
          f" s ({n}) | s ({m}) |")  # fmt: skip
    print("|---|---|---|---|---|---|---|" + ("---|---|" if matting else "") + "---|---|")
    for r, a, b in zip(rows, rs, rl):
        sad = (f" {r['short_metrics']['sad']:.3f} | {r['long_metrics']['sad']:.3f} |"
               if matting else "")  # fmt: skip
        print(f"| {r['design']} | {r['short']:.2f} | {r['short'] - inp:+.2f} | {a} "
              f"| {r['long']:.2f} | {r['long'] - inp:+.2f} | {b} |{sad} "
              f"{r['short_s']:.0f} | {r['long_s']:.0f} |")  # fmt: skip
    line = f"Kendall tau-b ({len(rows)} designs, {n} vs {m} steps): PSNR {tau_of(rows):.3f}"
    if matting:
        line += f", SAD {tau_of(rows, 'sad'):.3f}"
    print(line)


def mattes_version(task: TaskConfig, data: Any) -> int | None:
    """The synthetic compositing's version a matting run trains on (None: not composited)."""
    return training_identity(task, data, ProxyBudget()).get("mattes")


def stored_mattes(stored: dict) -> int | None:
    """An entry's compositing version (matting entries from before versions: 1)."""
    if "mattes" in stored:
        return stored["mattes"]
    return 1 if stored["task"] == "matting" and not stored.get("data", {}).get("paired") else None


def same_run(stored: dict, label: str, steps: int | None, factor: float, seed: int,
             changes: dict[str, dict[str, Any]]) -> bool:  # fmt: skip
    """Whether a stored entry is this run's: same task, budgets, data and seed (an entry from
    before candidates existed has the preset's data)."""
    spec = load_spec(TASKS[label])
    bud = budgets(label, steps, factor, changes.get("budget"))
    dump = {"mode": "json", "exclude": {"cache_mb"}}
    data = DataConfig.model_validate({**spec.proxy.data.model_dump(), **changes.get("data", {})})
    backbone = spec.proxy.backbone_config(spec.target.backbone_config()).to_dict()
    return (stored["task"] == label and stored["seed"] == seed
            and stored.get("preset") == spec.name
            and stored.get("task_config") == spec.proxy.task.model_dump(mode="json")
            and stored.get("proxy_backbone") == backbone
            and stored["budget"] == bud["short"].model_dump(mode="json")
            and stored["long_steps"] == bud["long"].steps
            and stored.get("data", spec.proxy.data.model_dump(**dump)) == data.model_dump(**dump)
            and stored_mattes(stored) == mattes_version(spec.proxy.task, data))  # fmt: skip


def combine_seeds(stored: list[dict], n: int) -> list[dict]:
    """Entries of budgets with ``seeds: n`` (runs averaged into one score), made from stored
    single-run entries of the same settings: entry seed p averages the runs at seeds p*n ..
    p*n+n-1, design by design, short and long, as ``train_and_eval`` trains them (each run
    from its own seed; scores and metrics averaged, seconds summed). Only designs every one of
    the n runs finished are kept."""
    if n <= 1:
        return []
    groups: dict[str, dict[int, dict]] = {}
    for e in stored:
        if "seeds" in e["budget"] or e.get("derived_from"):
            continue
        same = {k: v for k, v in e.items() if k not in ("seed", "rows", "tau")}
        groups.setdefault(json.dumps(same, sort_keys=True, default=str), {})[e["seed"]] = e
    out = []
    for by_seed in groups.values():
        for p in range(max(by_seed) // n + 1):
            runs = [by_seed.get(p * n + i) for i in range(n)]
            if None in runs:
                continue
            rows = []
            for name in [r["design"] for r in runs[0]["rows"]]:
                each = [next((r for r in e["rows"] if r["design"] == name), None) for e in runs]
                if None in each or len(_finite(each)) < n:
                    continue
                row = {"design": name, "input": each[0].get("input", math.nan)}
                for which in ("short", "long"):
                    row[which] = statistics.fmean(r[which] for r in each)
                    row[f"{which}_s"] = sum(r.get(f"{which}_s", math.nan) for r in each)
                    if f"{which}_metrics" in each[0]:
                        row[f"{which}_metrics"] = {
                            k: statistics.fmean(r[f"{which}_metrics"][k] for r in each)
                            for k in each[0][f"{which}_metrics"]}  # fmt: skip
                rows.append(row)
            first = runs[0]
            out.append({**{k: v for k, v in first.items() if k != "provenance"},
                        "budget": {**first["budget"], "seeds": n}, "seed": p, "rows": rows,
                        "tau": tau_of(rows),
                        "derived_from": [p * n + i for i in range(n)]})  # fmt: skip
    return out


def trust_entry(stored: list[dict], label: str, factor: float = 4.0,
                source: str = "") -> dict[str, Any] | None:  # fmt: skip
    """The ``studies/presets/trust.yaml`` entry (a budget check: ``reference: longer``) of the
    task's preset as it is, from its stored entries at ``factor`` x its steps: the longer runs'
    seed floor and spread, the short runs' own floor, and Kendall tau of the short runs at the
    study's seed against the mean of the longer runs at the *other* seeds (a seed fixes both the
    weights and the batches, so a short run and its own seed's long run are alike beyond the
    designs: against a mean that holds its own seed, tau comes out higher). Short and long runs
    may lie at different seeds (``--budget``); a floor measured on one seed is None. The
    contenders are the designs within ``CONTENDERS_DB`` of that held-out reference's best, and
    the pick's loss is how far below its best the study's first-ranked design is. None with
    fewer than two seeds. A preset whose budget averages n runs (``seeds: n``) is checked on
    ``combine_seeds`` of the stored single runs: its seed p is runs p*n .. p*n+n-1."""
    from benchmarks.noise_floor import means, noise_floor
    from studies.results.trust import CONTENDERS_DB

    spec = load_spec(TASKS[label])
    stored = [*stored, *combine_seeds(stored, spec.proxy.budget.seeds)]
    mine = [r for r in stored if same_run(r, label, None, factor, r["seed"], {})]
    short: dict[str, dict[int, float]] = {}
    long: dict[str, dict[int, float]] = {}
    for entry in mine:  # a seed may hold one budget only (``--budget``)
        for which, into in (("short", short), ("long", long)):
            for row in _finite(entry["rows"], (which,)):
                into.setdefault(row["design"], {})[entry["seed"]] = row[which]
    seeds = sorted({s for v in short.values() for s in v})
    if len({s for v in long.values() for s in v} | set(seeds)) < 2 or spec.seed not in seeds:
        return None
    reference = means(long)
    study = {d: v[spec.seed] for d, v in short.items() if spec.seed in v}
    names = [d for d in reference if d in study]
    if len(names) < 2:
        return None

    def held_out(seed: int) -> dict[str, float]:  # the long runs' means at the other seeds
        return means({d: {s: v for s, v in long[d].items() if s != seed} for d in names})

    def tau_at(seed: int, among: list[str] | None = None) -> float:
        others = held_out(seed)
        have = [d for d in among or names if seed in short[d] and d in others]
        if len(have) < 2:
            return math.nan
        return round(kendall_tau([short[d][seed] for d in have], [others[d] for d in have]), 3)

    # where the choice is made: the designs within CONTENDERS_DB of the held-out reference's best,
    # and how far below that best the study's first-ranked design is
    ref = held_out(spec.seed)
    if len(ref) < 2:  # the study's seed has no long runs of other seeds to be checked against
        return None
    top = [d for d in names if d in ref and max(ref.values()) - ref[d] <= CONTENDERS_DB]
    pick = max((d for d in names if d in ref), key=study.__getitem__)

    return {
        "preset": spec.name,
        "comparable": {k: v for k, v in spec.comparable().items() if k != "seed"},
        "budget": ", ".join(spec.constraints),
        "designs": len(names),
        "seeds": min(len(long[d]) for d in names),
        "target": f"{mine[0]['long_steps']} steps ({factor:g}x)",
        "floor_db": _rounded(noise_floor(long)[1]),
        "spread_db": round(max(reference.values()) - min(reference.values()), 3),
        "tau": tau_at(spec.seed),
        "source": source,
        "proxy_floor_db": _rounded(noise_floor(short)[1]),
        "reference": "longer",
        "tau_seeds": [tau_at(seed) for seed in seeds],
        "contenders": len(top),
        "tau_contenders": None if len(top) < 2 else tau_at(spec.seed, top),
        "pick_loss_db": round(max(ref.values()) - ref[pick], 3),
    }


def _rounded(floor: float) -> float | None:
    """A floor for trust.yaml: None where one seed could not measure it."""
    return None if math.isnan(floor) else round(floor, 3)


def load(path: str | None) -> list[dict]:
    return json.loads(Path(path).read_text()) if path and Path(path).exists() else []


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--task", nargs="+", choices=list(TASKS), default=list(TASKS))
    p.add_argument("--steps", type=int, default=None, help="short budget steps (the preset's)")
    p.add_argument("--factor", type=float, default=4.0, help="long budget = factor x steps")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", help="results file: read to resume, written after every design")
    p.add_argument("--set", nargs="+", default=[], metavar="PART.FIELD=VALUE",
                   help="a candidate proxy: budget.lr=0.005 data.val_limit=null ...")  # fmt: skip
    p.add_argument("--designs", nargs="+", choices=list(designs(None)), default=None,
                   help="train only these designs (processes with a file each, --merge after)")
    p.add_argument("--budget", choices=[*BUDGETS, "both"], default="both",
                   help="train only the short or the long budget (default both)")
    p.add_argument("--merge", nargs="+", default=[], metavar="FILE",
                   help="train nothing: join these result files into --json, the rows of one "
                        "run (task, settings, seed) by design")  # fmt: skip
    p.add_argument("--trust", action="store_true",
                   help="train nothing: print the trust.yaml entry of each task's preset as it "
                        "is, from --json (needs 2 seeds)")  # fmt: skip
    command = ["benchmarks/task_fidelity.py", *(sys.argv[1:] if argv is None else argv)]
    args = p.parse_args(command[1:])
    stored = load(args.json)
    if args.trust:
        entries = [trust_entry(stored, label, args.factor, Path(args.json or "").name)
                   for label in args.task]  # fmt: skip
        print(yaml.safe_dump([e for e in entries if e], sort_keys=False))
        return 0
    if args.merge:
        missing = [f for f in args.merge if not Path(f).is_file()]
        if not args.json or missing:
            said = f"no such file {missing[0]!r}" if missing else "give --json, the file to write"
            print(f"error: --merge: {said}", file=sys.stderr)
            return 2
        write_json_atomic(args.json, merge([*stored, *(e for f in args.merge for e in load(f))]))
        return 0
    which = BUDGETS if args.budget == "both" else (args.budget,)
    changes = settings(args.set)
    t0 = time.perf_counter()
    results = list(stored)
    for label in args.task:
        # one entry per task, settings and seed: a rerun resumes it, other entries stay
        before = next((r for r in stored if same_run(r, label, args.steps, args.factor,
                                                      args.seed, changes)), None)  # fmt: skip
        results = [r for r in results if r is not before]

        def save(result: dict) -> None:  # the finished tasks and this one so far
            if args.json:
                write_json_atomic(args.json, [*results, result])

        results.append(run_task(label, args.steps, args.factor, args.seed, before, save, command,
                                changes, args.designs, which))  # fmt: skip
        print_task(results[-1])
        if args.json:
            write_json_atomic(args.json, results)
    print(f"\ntotal {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
