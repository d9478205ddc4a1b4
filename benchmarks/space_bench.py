"""A surrogate benchmark of the flagship space (issue 29): does the search beat random?

``sample`` trains a stratified random sample of the designs of a preset's space (default
``nafnet_sidd``: its proxy task, budget and data, the full curve, no early stopping, seed 0),
and repeats some with seed 1 to measure seed noise. The space is walked exhaustively
(``search_spaces.enumerate``; nafnet_sidd: 173,248 parameter sets, 108,052 distinct designs,
18,200 with M_sc <= 0.25 MiB); each design falls in a stratum (``subset``, which holds full and
none, or ``unetmm t=k`` per aggregation stage) and an M_sc band (``BANDS_MIB``). All 16 subsets
are taken; UNet-- cells are filled round robin, the bands within the preset's memory limit
twice per round (that is where the search chooses), a random design per cell each time.

Every finished run is appended at once to ``TABLE`` (JSON lines, one record per run: the
design's parameters (``design``), label and key, its exact target costs (``costs``), seed, the curve, the final scores,
seconds, commit and load), so a killed sample resumes run by run; a header line records the
provenance of each sampling session. ``--workers`` runs that many trainings at once, one
torch thread each.

    PYTHONPATH=. python benchmarks/space_bench.py sample --n 300 --repeats 30 --workers 2
"""

from __future__ import annotations

import argparse
import collections
import concurrent.futures
import functools
import json
import math
import multiprocessing
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

from rich.console import Console

from benchmarks import provenance
from nas.config import ArchConfig
from search_spaces.enumerate import parameter_sets
from search_spaces.registry import get_space
from studies.metrics import get_metric
from studies.spec import StudySpec, load_spec
from trainers.progress import progress_bar

MIB = 2**20
PRESET = "nafnet_sidd"
TABLE = provenance.RESULTS / "space_bench.jsonl"
BANDS_MIB = (1 / 32, 1 / 16, 1 / 8, 1 / 4, 1 / 2, 1, 2, math.inf)  # upper edges of M_sc bands
SAMPLE_SEED, REPEAT_SEED = 0, 1
REPEAT_EVERY = 10  # one seed-1 repeat after every this many seed-0 runs


# -- the space ---------------------------------------------------------------------------------
def stratum(params: dict[str, Any]) -> str:
    """``subset`` (full and none included) or ``unetmm t=k``."""
    if params.get("design") == "unetmm":
        return f"unetmm t={params['unetmm.target']}"
    return "subset"


def band(m_sc_bytes: float) -> int:
    """Index of the M_sc band (``BANDS_MIB``) holding ``m_sc_bytes``."""
    return next(i for i, hi in enumerate(BANDS_MIB) if m_sc_bytes <= hi * MIB)


@functools.cache
def designs(preset: str = PRESET) -> dict[str, dict[str, Any]]:
    """Every distinct design of ``preset``'s space: arch key -> {params, label, stratum,
    m_sc_bytes (analytic, the target at the preset's size and bits)}; first parameter set
    wins."""
    spec = load_spec(preset)
    backbone, t = spec.target.backbone_config(), spec.target
    m_sc = get_metric("m_sc").from_shapes
    out: dict[str, dict[str, Any]] = {}
    for params, candidate in parameter_sets(get_space(spec.space.name), spec.bounds):
        if candidate is None:
            continue
        arch = candidate.arch(backbone)
        key = arch.key()
        if key not in out:
            out[key] = {"params": params, "label": candidate.label, "stratum": stratum(params),
                        "m_sc_bytes": int(m_sc(arch, tuple(t.input_size), t.batch, t.bits))}
    return out


def arch_of(params: dict[str, Any], spec: StudySpec) -> ArchConfig:
    """The target architecture of a parameter set of ``spec``'s space."""
    from optuna.trial import FixedTrial

    candidate = get_space(spec.space.name).suggest(FixedTrial(params), spec.bounds)
    return candidate.arch(spec.target.backbone_config())


def memory_limit(spec: StudySpec) -> float:
    """The preset's M_sc limit in bytes (inf without one)."""
    return min((c.limit_in_key_unit for c in spec.parsed_constraints if c.row.name == "m_sc"),
               default=math.inf)  # fmt: skip


def stratified_sample(pool: dict[str, dict[str, Any]], n: int, limit: float,
                      seed: int = SAMPLE_SEED) -> list[str]:  # fmt: skip
    """``n`` distinct design keys: every subset design, then UNet-- cells (stratum x band) round
    robin, cells within ``limit`` twice a round, a random design each time (see module doc)."""
    rng = random.Random(seed)
    cells: dict[tuple[str, int], list[str]] = collections.defaultdict(list)
    for key in sorted(pool):
        d = pool[key]
        cells[(d["stratum"], band(d["m_sc_bytes"]))].append(key)
    for keys in cells.values():
        rng.shuffle(keys)
    chosen = [k for (s, _), keys in sorted(cells.items()) if s == "subset" for k in keys]
    order = sorted(c for c in cells if c[0] != "subset")
    while len(chosen) < n and any(cells[c] for c in order):
        for c in order:
            for _ in range(2 if BANDS_MIB[c[1]] * MIB <= limit else 1):
                if cells[c] and len(chosen) < n:
                    chosen.append(cells[c].pop())
    rng.shuffle(chosen)
    return chosen[:n]


def jobs(sample: list[str], repeats: int) -> list[tuple[str, int]]:
    """(design key, seed) in run order: the sample at seed 0, with ``repeats`` designs spread
    evenly over it again at seed 1, one after every ``REPEAT_EVERY`` seed-0 runs."""
    step = max(1, len(sample) // max(1, repeats))
    again = sample[::step][:repeats]
    out: list[tuple[str, int]] = []
    for i, key in enumerate(sample):
        out.append((key, SAMPLE_SEED))
        if (i + 1) % REPEAT_EVERY == 0 and again:
            out.append((again.pop(0), REPEAT_SEED))
    out += [(k, REPEAT_SEED) for k in again]
    return out


# -- the table ---------------------------------------------------------------------------------
def read_table(path: Path = TABLE) -> list[dict[str, Any]]:
    """The run records of ``path`` (header lines left out; a torn last line ignored)."""
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        if "header" not in rec:
            out.append(rec)
    return out


def append(path: Path, record: dict[str, Any]) -> None:
    """Append one JSON line and flush it to disk (a kill loses at most the line being written)."""
    with path.open("a") as f:
        f.write(json.dumps(record, separators=(",", ":")) + "\n")
        f.flush()
        os.fsync(f.fileno())


# -- one run -----------------------------------------------------------------------------------
def train_one(preset: str, key: str, params: dict[str, Any], label: str, seed: int
              ) -> dict[str, Any]:  # fmt: skip
    """Train design ``key`` as ``preset``'s proxy (no early stopping, no score cache); its
    record."""
    from studies.search.protocol import TrialSettings
    from studies.search.worker import cost_attrs
    from trainers.proxy import TrainingDiverged, proxy_arch, train_and_eval

    spec = load_spec(preset)
    settings = TrialSettings.from_spec(spec)
    arch = arch_of(params, spec)
    assert arch.key() == key, (key, arch.key())
    costs = {k: v for k, v in cost_attrs(arch, settings).items()
             if isinstance(v, (int, float)) and not isinstance(v, bool)}  # fmt: skip
    proxy = proxy_arch(arch, settings.proxy_backbone)
    t0 = time.perf_counter()
    try:
        r = train_and_eval(proxy, settings.task, settings.budget, settings.data, threads=1,
                           seed=seed)  # fmt: skip
        scores = {"psnr": r.psnr, "ssim": r.ssim, "input_psnr": r.input_psnr,
                  "curve": [list(p) for p in r.curve], "seconds": round(r.seconds, 2)}
    except TrainingDiverged as exc:
        scores = {"psnr": math.nan, "error": str(exc),
                  "seconds": round(time.perf_counter() - t0, 2)}
    return {"key": key, "label": label, "seed": seed, "design": params, "costs": costs, **scores,
            "preset": preset, "commit": provenance.started([])["commit"][:12],
            "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "load": [round(v, 2) for v in os.getloadavg()]}  # fmt: skip


def sample(args: argparse.Namespace) -> int:
    console = Console(stderr=True)
    spec = load_spec(args.preset)
    pool = designs(args.preset)
    chosen = stratified_sample(pool, args.n, memory_limit(spec))
    done = {(r["key"], r["seed"]) for r in read_table(args.table)}
    todo = [j for j in jobs(chosen, args.repeats) if j not in done]
    console.print(f"{len(pool)} designs in {args.preset}'s space; sample {len(chosen)} "
                  f"+ {args.repeats} repeats; {len(todo)} runs to go")  # fmt: skip
    if not todo:
        return 0
    args.table.parent.mkdir(parents=True, exist_ok=True)
    append(args.table, {"header": provenance.started(), "n": args.n, "repeats": args.repeats,
                        "workers": args.workers})  # fmt: skip
    bar = progress_bar("runs", console)
    task = bar.add_task("", total=len(todo))
    ctx = multiprocessing.get_context("spawn")
    with bar, concurrent.futures.ProcessPoolExecutor(args.workers, mp_context=ctx) as pool_ex:
        futures = [pool_ex.submit(train_one, args.preset, k, pool[k]["params"],
                                  pool[k]["label"], seed) for k, seed in todo]  # fmt: skip
        for fut in concurrent.futures.as_completed(futures):
            rec = fut.result()
            append(args.table, rec)
            bar.update(task, advance=1,
                       description=f"{rec['label']} s{rec['seed']}: {rec['psnr']:.2f} dB")
    return 0


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("sample", help="train the stratified sample (resumes)")
    s.add_argument("--preset", default=PRESET)
    s.add_argument("--n", type=int, default=300)
    s.add_argument("--repeats", type=int, default=30)
    s.add_argument("--workers", type=int, default=1)
    s.add_argument("--table", type=Path, default=TABLE)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    return {"sample": sample}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
