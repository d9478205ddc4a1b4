"""A surrogate benchmark of the flagship space (issue 29): does the search beat random?

``sample`` trains a stratified random sample of the designs of a preset's space (default
``nafnet_sidd``: its proxy task, budget and data, the full curve, no early stopping, seed 0),
and repeats some with seed 1 to measure seed noise. The space is walked exhaustively
(``search_spaces.enumerate``; nafnet_sidd: 173,248 parameter sets, 108,052 distinct designs,
18,200 with M_sc <= 0.25 MiB); each design falls in a stratum (``subset``, which holds full and
none, or ``unetmm t=k`` per aggregation stage) and an M_sc band (``BANDS_MIB``). All 16 subsets
are taken; UNet-- cells are filled round robin, the bands within the preset's memory limit
twice per round (that is where the search chooses), a random design per cell each time. A
design over the preset's other hard limits (nafnet_sidd: 18 GMACs) is passed over: a search
never trains it, and some are too big to train at all (one took 18.7 GB and the kernel's OOM
killer ended the first sample).

Every finished run is appended at once to ``TABLE`` (JSON lines, one record per run: the
design's parameters (``design``), label and key, its exact target costs (``costs``), seed, the
curve, the final scores, seconds, commit and load), so a killed sample resumes run by run; a
header line records the provenance of each sampling session. ``--workers`` runs that many
trainings at once, one torch thread each; a worker that is killed is replaced.

``fit`` cross-validates each scikit-learn surrogate of ``benchmarks.surrogate`` (5 folds,
seed-0 designs, 3 shuffles averaged) and calls it credible when its held-out Kendall tau is at
least 0.8 and its RMSE at most 2x the seed noise of the repeats; it writes ``SURROGATE``.
``compare`` fits the chosen surrogate on every design, finds its optimum among all the space's
feasible designs (their costs measured once, cached on disk: ~45 min the first time) and runs
every sampler of
``SAMPLERS`` (``--seeds`` x ``--trials`` judged designs, the preset's constraints, the search's
own ``StudySearcher`` scoring each design by the surrogate: ``sampler_feasibility.run``); runs
are kept in ``COMPARE`` as they finish (a rerun resumes), and the summary (anytime best and HV,
trials to the optimum's 0.2 dB band, Mann-Whitney against random: ``benchmarks.space_compare``)
and a PNG of the curves follow. It refuses a surrogate that is not credible (``--force``).
``baseline`` answers what the table can without a surrogate: the chance that a design random
search judges lies within 0.2 dB (and 0.5, 1 dB) of the best measured design within the memory
limit (the random sampler's own weights over the space, ``weighted_parameter_sets``, applied to
the sample's cells), the median trials that implies, and where real searches got to against the
same bands (``--storage``: studies of ``unetmm search PRESET --sampler S --seed N``); it writes
``BASELINE``.

    PYTHONPATH=. python benchmarks/space_bench.py sample --n 300 --repeats 30 --workers 2
    PYTHONPATH=. python benchmarks/space_bench.py fit
    PYTHONPATH=. python benchmarks/space_bench.py baseline --storage sqlite:///real.db
    PYTHONPATH=. python benchmarks/space_bench.py compare --seeds 30 --trials 100 --workers 2
"""

from __future__ import annotations

import argparse
import collections
import concurrent.futures
import dataclasses
import functools
import json
import math
import multiprocessing
import os
import random
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console

from benchmarks import provenance, space_compare, surrogate
from nas.config import ArchConfig
from search_spaces.enumerate import weighted_parameter_sets
from search_spaces.registry import get_space
from studies import schema
from studies.metrics import get_metric
from studies.spec import StudySpec, load_spec
from trainers.progress import progress_bar

MIB = 2**20
PRESET = "nafnet_sidd"
TABLE = provenance.RESULTS / "space_bench.jsonl"
BANDS_MIB = (1 / 32, 1 / 16, 1 / 8, 1 / 4, 1 / 2, 1, 2, math.inf)  # upper edges of M_sc bands
SAMPLE_SEED, REPEAT_SEED = 0, 1
REPEAT_EVERY = 10  # one seed-1 repeat after every this many seed-0 runs
MAX_RESTARTS = 3  # worker pools broken in a row before the sample gives up
SURROGATE = provenance.RESULTS / "space_bench_surrogate.json"
COMPARE = provenance.RESULTS / "space_bench_compare.json"
BASELINE = provenance.RESULTS / "space_bench_baseline.json"
TABLE_BANDS_DB = (0.2, 0.5, 1.0)  # the band first
SAMPLERS = ("random", "tpe", "gp", "nsga2@skip_designs_flat", "nni-evolution")
KS = (40, 100)  # trial budgets the summary reports
CREDIBLE_TAU, CREDIBLE_NOISE = 0.8, 2.0  # held-out tau at least, RMSE at most x seed noise


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
    m_sc_bytes (analytic, the target at the preset's size and bits), p_random (the chance that
    one uniform random pick of every asked parameter gives it: the sum over its parameter sets,
    ``weighted_parameter_sets``)}; the first parameter set's params."""
    spec = load_spec(preset)
    backbone, t = spec.target.backbone_config(), spec.target
    m_sc = get_metric("m_sc").from_shapes
    out: dict[str, dict[str, Any]] = {}
    for params, candidate, weight in weighted_parameter_sets(get_space(spec.space.name),
                                                             spec.bounds):  # fmt: skip
        if candidate is None:
            continue
        arch = candidate.arch(backbone)
        key = arch.key()
        if key not in out:
            out[key] = {"params": params, "label": candidate.label, "stratum": stratum(params),
                        "m_sc_bytes": int(m_sc(arch, tuple(t.input_size), t.batch, t.bits)),
                        "p_random": 0.0}  # fmt: skip
        out[key]["p_random"] += weight
    return out


def arch_of(params: dict[str, Any], spec: StudySpec) -> ArchConfig:
    """The target architecture of a parameter set of ``spec``'s space."""
    from optuna.trial import FixedTrial

    candidate = get_space(spec.space.name).suggest(FixedTrial(params), spec.bounds)
    return candidate.arch(spec.target.backbone_config())


def limit(spec: StudySpec, metric: str = "m_sc") -> float:
    """The preset's upper limit on ``metric`` in its attribute's unit (inf without one)."""
    return min((c.limit_in_key_unit for c in spec.parsed_constraints if c.row.name == metric),
               default=math.inf)  # fmt: skip


def within_costs(spec: StudySpec, pool: dict[str, dict[str, Any]]) -> Callable[[str], bool]:
    """Whether a design of ``pool`` meets ``spec``'s hard constraints other than M_sc (the
    sample covers every M_sc band): a search never trains a design over its MACs limit, and some
    are far too big to train at all (UNet-- with a large A at a shallow stage). Costs measured
    on meta, cached on disk."""
    from studies.search.protocol import TrialSettings
    from studies.search.worker import hard_costs

    settings = TrialSettings.from_spec(spec)
    others = tuple(c for c in settings.hard_constraints if c.row.name != "m_sc")
    settings = dataclasses.replace(settings, hard_constraints=others)

    def trainable(key: str) -> bool:
        return not others or not hard_costs(arch_of(pool[key]["params"], spec), settings)[1]

    return trainable


def stratified_sample(pool: dict[str, dict[str, Any]], n: int, limit: float,
                      seed: int = SAMPLE_SEED,
                      trainable: Callable[[str], bool] = lambda key: True
                      ) -> list[str]:  # fmt: skip
    """``n`` distinct design keys: every subset design, then UNet-- cells (stratum x band) round
    robin, cells within ``limit`` twice a round, a random design each time (see module doc);
    a draw that is not ``trainable`` (a search would not train it) is passed over."""
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
                while cells[c] and len(chosen) < n:
                    key = cells[c].pop()
                    if trainable(key):
                        chosen.append(key)
                        break
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
    chosen = stratified_sample(pool, args.n, limit(spec), trainable=within_costs(spec, pool))
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
    restarts = 0
    with bar:
        while todo:
            try:
                with concurrent.futures.ProcessPoolExecutor(args.workers, mp_context=ctx) as ex:
                    futures = [ex.submit(train_one, args.preset, k, pool[k]["params"],
                                         pool[k]["label"], seed) for k, seed in todo]  # fmt: skip
                    for fut in concurrent.futures.as_completed(futures):
                        rec = fut.result()
                        append(args.table, rec)
                        todo.remove((rec["key"], rec["seed"]))
                        restarts = 0
                        said = f"{rec['label']} s{rec['seed']}: {rec['psnr']:.2f} dB"
                        bar.update(task, advance=1, description=said)
            except concurrent.futures.process.BrokenProcessPool:
                restarts += 1  # a worker was killed (e.g. by the kernel's OOM killer)
                if restarts > MAX_RESTARTS:
                    raise
                console.print(f"a worker died; {len(todo)} runs left, starting the workers "
                              "again")  # fmt: skip
    return 0


# -- the surrogate ---------------------------------------------------------------------------
def seed0_rows(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The seed-0 runs with a finite PSNR, one per design (its last), in key order."""
    rows = {r["key"]: r for r in records
            if r["seed"] == SAMPLE_SEED and math.isfinite(r["psnr"])}  # fmt: skip
    return [rows[k] for k in sorted(rows)]


def training_rows(records: list[dict[str, Any]], preset: str = PRESET
                  ) -> tuple[list[dict[str, Any]], np.ndarray, np.ndarray]:  # fmt: skip
    """``seed0_rows``, their features and PSNRs."""
    spec = load_spec(preset)
    kept = seed0_rows(records)
    x = np.array([surrogate.features(arch_of(r["design"], spec), r["costs"]) for r in kept])
    return kept, x, np.array([r["psnr"] for r in kept])


def repeat_pairs(records: list[dict[str, Any]]) -> list[tuple[float, float]]:
    """(seed 0, seed 1) final PSNR of every design run with both seeds."""
    by: dict[str, dict[int, float]] = collections.defaultdict(dict)
    for r in records:
        if math.isfinite(r["psnr"]):
            by[r["key"]][r["seed"]] = r["psnr"]
    return [(s[SAMPLE_SEED], s[REPEAT_SEED]) for s in by.values()
            if SAMPLE_SEED in s and REPEAT_SEED in s]  # fmt: skip


def fit(args: argparse.Namespace) -> int:
    """Cross-validate every regressor on the table; print and write the verdict."""
    prov = provenance.started()
    records = read_table(args.table)
    rows, x, y = training_rows(records, args.preset)
    pairs = repeat_pairs(records)
    noise = surrogate.seed_noise(pairs)
    print(f"{len(rows)} designs at seed {SAMPLE_SEED}; {len(pairs)} run again at seed "
          f"{REPEAT_SEED}: seed noise (pooled sd) {noise:.3f} dB")  # fmt: skip
    print(f"{'regressor':<18} {'held-out tau':>12} {'RMSE dB':>8} {'RMSE / noise':>12} "
          f"{'credible':>8}  (means of {args.repeats} shuffles of {args.folds} folds)")  # fmt: skip
    results = {}
    for name, make in surrogate.REGRESSORS.items():
        cv = surrogate.cross_validate(x, y, make, folds=args.folds, repeats=args.repeats)
        cv["credible"] = cv["tau"] >= CREDIBLE_TAU and cv["rmse"] <= CREDIBLE_NOISE * noise
        results[name] = cv
        print(f"{name:<18} {cv['tau']:>12.3f} {cv['rmse']:>8.3f} {cv['rmse'] / noise:>12.2f} "
              f"{'yes' if cv['credible'] else 'no':>8}")  # fmt: skip
    chosen = max(results, key=lambda n: (results[n]["tau"], -results[n]["rmse"]))
    verdict = "credible" if results[chosen]["credible"] else \
        "NOT credible: compare samplers on the measured table only"
    print(f"chosen: {chosen} ({verdict})")
    provenance.write_result(args.out, {
        "preset": args.preset, "designs": len(rows), "repeats": len(pairs),
        "seed_noise_db": noise, "folds": args.folds, "shuffles": args.repeats,
        "keys": [r["key"] for r in rows],
        "regressors": results, "chosen": chosen}, prov)  # fmt: skip
    return 0


# -- what the measured table says without a surrogate ----------------------------------------
def best_measured(records: list[dict[str, Any]], preset: str = PRESET) -> dict[str, Any]:
    """The best seed-0 design of the table within ``preset``'s memory limit."""
    rows = [row[3] for row in _measured_cells(records, preset)[0]]
    top = max(rows, key=lambda r: r["psnr"])
    return {"key": top["key"], "label": top["label"], "psnr": top["psnr"], "within": len(rows)}


def random_in_band(records: list[dict[str, Any]], preset: str = PRESET,
                   band_db: float = space_compare.BAND_DB, boot: int = 2000, seed: int = 0
                   ) -> dict[str, Any]:  # fmt: skip
    """The chance that one design an ideal random search judges (Optuna's ``RandomSampler``, a
    proposal over the memory limit rejected and drawn again from scratch) lies within
    ``band_db`` of the table's best within the limit, estimated from the table alone. The
    shipped prefilter (``studies.search.feasibility``) does a little more than reject: after a
    few draws over the limit it keeps a draw's start and redraws the rest, which moves some
    trials toward the limit, where the best designs lie; this estimate leaves that out.

    A judged design is drawn with probability proportional to ``p_random`` among the designs
    within the limit; those fall into cells (stratum, M_sc band, weight class) and the sample
    drew designs uniformly within each (stratum, band), so a cell's share in the band is the
    ``p_random``-weighted share of its sampled designs (a ratio estimator; subsets are all
    measured, so theirs is exact), and the whole is the cells' shares weighted by their mass
    (``random_weights``). ``interval``: 10th and 90th percentiles over ``boot`` resamplings of
    each cell's sampled designs (the subsets kept). Designs over the other hard limits (MACs)
    count in a cell's mass though random search never judges them (about 1% of the designs
    within 0.25 MiB)."""
    best = best_measured(records, preset)
    threshold = best["psnr"] - band_db
    rows, mass = _measured_cells(records, preset)
    weights, unseen = random_weights(rows, mass)
    p = sum(w for w, row in zip(weights, rows) if row[2] >= threshold)
    rng = random.Random(seed)
    cells: dict[tuple[str, int], list[Row]] = collections.defaultdict(list)
    for row in rows:
        cells[row[0][:2]].append(row)
    again = []
    for _ in range(boot):  # each cell's sampled designs resampled; the subsets are all measured
        picked = [r for c, members in cells.items()
                  for r in (members if c[0] == "subset" else rng.choices(members, k=len(members)))]
        w, _ = random_weights(picked, mass)
        again.append(sum(x for x, row in zip(w, picked) if row[2] >= threshold))
    again.sort()
    in_band = [row[3]["label"] for row in rows if row[2] >= threshold]
    return {"best": best, "threshold_db": threshold, "p": p,
            "interval": [again[len(again) // 10], again[-len(again) // 10]],
            "unseen_mass": unseen, "measured_in_band": in_band,
            "median_trials": geometric_median(p),
            "reach": {k: 1 - (1 - p) ** k for k in KS}}  # fmt: skip


Cell = tuple[str, int, int]  # (stratum, M_sc band, log2 of the random sampler's weight, rounded)
Row = tuple[Cell, float, float, dict[str, Any]]  # (cell, p_random, PSNR, the table's record)


def _measured_cells(records: list[dict[str, Any]], preset: str
                    ) -> tuple[list[Row], dict[Cell, float]]:  # fmt: skip
    """The seed-0 designs within the memory limit as (cell, p_random, PSNR, record), in key
    order, and the random sampler's mass of every cell within the limit."""
    pool, lim = designs(preset), limit(load_spec(preset))
    cell_of = lambda d: (d["stratum"], band(d["m_sc_bytes"]), round(math.log2(d["p_random"])))  # noqa: E731
    mass: dict[Cell, float] = collections.defaultdict(float)
    for d in pool.values():
        if d["m_sc_bytes"] <= lim:
            mass[cell_of(d)] += d["p_random"]
    rows = [(cell_of(pool[r["key"]]), pool[r["key"]]["p_random"], r["psnr"], r)
            for r in seed0_rows(records) if pool[r["key"]]["m_sc_bytes"] <= lim]  # fmt: skip
    return rows, mass


def random_weights(rows: list[Row], mass: dict[Cell, float]
                   ) -> tuple[list[float], float]:  # fmt: skip
    """The share of random search's judged designs each measured row stands for (summing to 1),
    and the share of the mass in cells no row lies in (left out). A cell's mass goes to its
    rows in proportion to their ``p_random``; a cell without rows lends its mass to the rows of
    its (stratum, band)."""
    by: dict[tuple, list[int]] = collections.defaultdict(list)
    for i, (cell, *_) in enumerate(rows):
        by[cell].append(i)
        by[cell[:2]].append(i)
    weights, unseen, total = [0.0] * len(rows), 0.0, sum(mass.values())
    for cell, m in mass.items():
        members = by.get(cell) or by.get(cell[:2])
        if not members:
            unseen += m
            continue
        norm = sum(rows[i][1] for i in members)
        for i in members:
            weights[i] += m * rows[i][1] / norm
    seen = total - unseen
    return [w / seen for w in weights], unseen / total


def random_best_curve(records: list[dict[str, Any]], trials: int, preset: str = PRESET
                      ) -> list[float]:  # fmt: skip
    """Random search's expected best PSNR after k = 1..``trials`` judged designs, from the
    table: the preset's memory limit is a hard constraint, so every judged design lies within
    it, drawn with ``random_weights`` (with replacement, an ideal random search as in
    ``random_in_band``): E[max of k draws] of the weighted distribution of the measured PSNRs,
    computed exactly for that distribution."""
    rows, mass = _measured_cells(records, preset)
    weights, _ = random_weights(rows, mass)
    order = sorted(range(len(rows)), key=lambda i: rows[i][2])
    out = []
    for k in range(1, trials + 1):
        cdf = prev = expected = 0.0
        for i in order:
            cdf += weights[i]
            now = min(cdf, 1.0) ** k
            expected += rows[i][2] * (now - prev)
            prev = now
        out.append(expected)
    return out


def fills_budget(preset: str = PRESET, seeds: int = 5, trials: int = 40) -> dict[str, Any]:
    """How often random search judges a design whose M_sc is exactly the memory limit (every
    design near the table's best is one): the ideal random search of ``random_in_band`` (from
    ``p_random``) against the shipped one, the prefilter's local steps included (``seeds``
    searches of ``trials`` judged designs scored 0, nothing trained; the two references
    left out)."""
    import optuna

    from benchmarks.sampler_feasibility import run

    pool, lim = designs(preset), limit(load_spec(preset))
    within = [d for d in pool.values() if d["m_sc_bytes"] <= lim]
    ideal = sum(d["p_random"] for d in within if d["m_sc_bytes"] == lim) / sum(
        d["p_random"] for d in within)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    judged = []
    for seed in range(seeds):
        with tempfile.TemporaryDirectory() as folder:
            r = run(preset, "random", seed, trials, Path(folder), score=lambda arch, costs: 0.0)
        judged += [m_sc for (_, m_sc, _), ref in zip(r["judged"], r["judged_references"])
                   if ref is None]  # fmt: skip
    return {"ideal": ideal, "shipped": sum(m == lim for m in judged) / len(judged),
            "judged": len(judged), "seeds": seeds}


def geometric_median(p: float) -> float:
    """The median number of independent draws, each a hit with chance ``p``, to the first hit
    (inf for p = 0)."""
    if p <= 0:
        return math.inf
    return 1 if p >= 0.5 else math.ceil(math.log(0.5) / math.log(1 - p))


JUDGED = (schema.STATUS_COMPLETE, schema.STATUS_STOPPED, schema.STATUS_FAILED)


def first_trials(trials: list[dict[str, Any]], n: int) -> list[dict[str, Any]]:
    """A study's trials up to its ``n``-th judged one (trained to the end, stopped or failed;
    references included, infeasible proposals and copies not: what ``n_trials`` counts)."""
    judged = 0
    for i, t in enumerate(trials):
        judged += t.get("status") in JUDGED and not t.get("copy_of")
        if judged == n:
            return trials[: i + 1]
    return trials


def searches_against_table(runs: list[dict[str, Any]], thresholds: dict[str, float],
                           preset: str = PRESET, trials: int | None = None
                           ) -> list[dict[str, Any]]:  # fmt: skip
    """Per real search (``search_quality.py``'s run records, ``search_quality.records``): the
    designs its sampler chose that were judged (trained to the end or stopped early; the
    reference designs a study judges first are left out, as the table's random curve has none:
    ``references_db`` is their best within the limit), its best so far within the memory limit
    after each (a stopped design adds none), per band the first k at which that best reached
    the band's threshold (None: never), and the HV of its front; ``trials``: only each study's
    first that many judged trials (``first_trials``)."""
    spec = load_spec(preset)
    m_sc, macs = limit(spec, "m_sc"), limit(spec, "macs")
    out = []
    for r in runs:
        kept = first_trials(r["trials"], trials) if trials else r["trials"]
        mine = [t for t in kept if not t.get("reference") and not t.get("copy_of")
                and (t["eligible"] or t.get("status") == schema.STATUS_STOPPED)]  # fmt: skip
        best, top = [], math.nan
        for t in mine:
            if t["eligible"] and t["m_sc_bytes"] <= m_sc and not t["psnr"] <= top:
                top = t["psnr"]
            best.append(top)
        front = [[t["psnr"], t["m_sc_bytes"], t["macs"]] for t in mine if t["eligible"]]
        hv = space_compare.anytime(front, m_sc, macs)[1]
        refs = [t["psnr"] for t in kept
                if t["eligible"] and t.get("reference") and t["m_sc_bytes"] <= m_sc]  # fmt: skip
        out.append({"sampler": r["sampler"], "seed": r["seed"], "judged": len(mine),
                    "stopped": sum(not t["eligible"] for t in mine),
                    "trials_to_band": {band: next((k for k, b in enumerate(best, 1) if b >= t),
                                                  None) for band, t in thresholds.items()},
                    "best_db": best[-1] if best else math.nan,
                    "hv": hv[-1] if hv else 0.0, "best_curve": best,
                    "references_db": max(refs, default=None)})  # fmt: skip
    return out


def studies_in(storage: str, preset: str = PRESET) -> list[dict[str, Any]]:
    """Every study of ``storage`` trained as ``preset`` is (its stored comparable fields but the
    seed; others are skipped, said on stderr) as a run record: its sampler and seed (from the
    stored spec) and its trials in order (``search_quality.records``)."""
    import optuna

    from benchmarks.search_quality import records
    from nas.errors import ConfigError
    from studies.storage import open_existing, storage_url

    want = {k: v for k, v in load_spec(preset).comparable().items() if k != "seed"}
    out = []
    try:  # one error line, not a traceback, for a storage that is not there or not a study's
        storage = open_existing(storage_url(storage))
    except ConfigError as exc:
        print(f"error: --storage: {str(exc).removeprefix('STORAGE: ')}", file=sys.stderr)
        raise SystemExit(2) from None
    for summary in optuna.get_all_study_summaries(storage):
        study = optuna.load_study(study_name=summary.study_name, storage=storage)
        spec = study.user_attrs[schema.STUDY_ATTR_SPEC]
        have = {k: v for k, v in study.user_attrs.get(schema.STUDY_ATTR_COMPARABLE, {}).items()
                if k != "seed"}  # fmt: skip
        if have != want:
            print(f"skipped study {summary.study_name}: not trained as {preset} is",
                  file=sys.stderr)  # fmt: skip
            continue
        out.append({"sampler": spec["sampler"]["name"], "seed": spec["seed"],
                    "study": summary.study_name, "trials": records(study)})  # fmt: skip
    return sorted(out, key=lambda r: (r["sampler"], r["seed"]))


def baseline(args: argparse.Namespace) -> int:
    """Print and write what the table says of random search (the issue's band and two wider
    ones), and where the real searches given got to."""
    prov = provenance.started()
    stored = studies_in(args.storage, args.preset) if args.storage else []  # checked first
    records = read_table(args.table)
    bands = {f"{b:g}": random_in_band(records, args.preset, b) for b in TABLE_BANDS_DB}
    best = next(iter(bands.values()))["best"]
    print(f"best measured design within the limit ({best['within']} measured there): "
          f"{best['label']} {best['psnr']:.2f} dB")  # fmt: skip
    for name, est in bands.items():
        lo, hi = est["interval"]
        print(f"band {name} dB (>= {est['threshold_db']:.2f} dB; measured in it: "
              f"{len(est['measured_in_band'])}): random judges {est['p']:.1%} in it (10-90%: "
              f"{lo:.1%}-{hi:.1%}), median trials {est['median_trials']}, "
              + ", ".join(f"by {k}: {v:.0%}" for k, v in est["reach"].items()))  # fmt: skip
    runs = [r for f in args.searches for r in json.loads(f.read_text())["runs"].values()]
    runs += stored
    searches = searches_against_table(
        runs, {n: e["threshold_db"] for n, e in bands.items()}, args.preset, args.trials)
    for r in searches:
        reached = ", ".join(f"{n} dB: {k or 'never'}" for n, k in r["trials_to_band"].items())
        print(f"{r['sampler']:<10} seed {r['seed']}: {r['judged']} judged, best "
              f"{r['best_db']:.2f} dB, HV {r['hv']:.2f}; trials to band {reached}")  # fmt: skip
    fills = fills_budget(args.preset, args.prefilter_seeds) if args.prefilter_seeds else None
    if fills:
        print(f"designs that fill the memory limit exactly: {fills['ideal']:.1%} of an ideal "
              f"random search's, {fills['shipped']:.1%} of the shipped one's "
              f"({fills['judged']} judged, {fills['seeds']} seeds)")  # fmt: skip
    trials = max([KS[0], *(r["judged"] for r in searches)])
    curve = random_best_curve(records, trials, args.preset)
    print("random search's expected best from the table: "
          + ", ".join(f"{curve[k - 1]:.2f} dB at {k}" for k in (10, 20, 40) if k <= trials))
    provenance.write_result(args.out, {"preset": args.preset, "bands": bands,
                                       "random_best_curve": curve, "searches": searches,
                                       "storage": args.storage, "trials": args.trials,
                                       "fills_budget": fills,
                                       "search_files": [str(f) for f in args.searches]},
                            prov)  # fmt: skip
    png = args.out.with_suffix(".png")
    space_compare.plot_against_table(curve, searches, best["psnr"],
                                     {n: e["threshold_db"] for n, e in bands.items()}, png,
                                     f"{args.preset}: random search from the table, and real "
                                     "searches")  # fmt: skip
    print(f"curves: {png}")
    return 0


# -- the comparison ----------------------------------------------------------------------------
def fitted(records: list[dict[str, Any]], preset: str, regressor: str) -> Any:
    """``regressor`` fitted on every seed-0 design of the table."""
    _, x, y = training_rows(records, preset)
    return surrogate.fit(surrogate.REGRESSORS[regressor], x, y)


def scorer(model: Any) -> Callable[[ArchConfig, dict[str, Any]], float]:
    """A design's surrogate PSNR from its target arch and costs (``sampler_feasibility.Score``)."""
    return lambda arch, costs: float(model.predict([surrogate.features(arch, costs)])[0])


def feasible_designs(preset: str = PRESET) -> list[tuple[str, str, dict[str, Any]]]:
    """(key, label, costs) of every design of ``preset``'s space within its M_sc and MACs
    limits; costs measured on meta without tiling (cached on disk by ``measure_cost``)."""
    from nas.cost import measure_cost

    spec = load_spec(preset)
    t, m_sc, macs = spec.target, limit(spec, "m_sc"), limit(spec, "macs")
    pool = {k: d for k, d in designs(preset).items() if d["m_sc_bytes"] <= m_sc}
    out = []
    bar = progress_bar("costs of the designs within M_sc", Console(stderr=True))
    with bar:
        for key in bar.track(sorted(pool)):
            r = measure_cost(arch_of(pool[key]["params"], spec), tuple(t.input_size), t.batch,
                             t.bits, "meta")  # fmt: skip
            costs = {"m_sc_bytes": r.m_sc_bytes, "macs_fvcore": r.macs_fvcore,
                     "params": r.params}  # fmt: skip
            if costs["macs_fvcore"] <= macs:
                out.append((key, pool[key]["label"], costs))
    return out


def optimum(model: Any, preset: str = PRESET) -> dict[str, Any]:
    """The surrogate's best design among every feasible design (exhaustive)."""
    spec = load_spec(preset)
    feasible = feasible_designs(preset)
    x = np.array([surrogate.features(arch_of(designs(preset)[k]["params"], spec), c)
                  for k, _, c in feasible])  # fmt: skip
    predicted = model.predict(x)
    i = int(np.argmax(predicted))
    return {"key": feasible[i][0], "label": feasible[i][1], "psnr": float(predicted[i]),
            "feasible": len(feasible)}  # fmt: skip


def one_search(preset: str, sampler: str, seed: int, trials: int, model: Any) -> dict[str, Any]:
    """One (sampler, seed) search of ``trials`` judged designs scored by ``model``, in a study of
    its own scratch folder (a picklable job: ``run_samplers`` may run several at once)."""
    import optuna

    from benchmarks.sampler_feasibility import run

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    with tempfile.TemporaryDirectory() as folder:
        r = run(preset, sampler, seed, trials, Path(folder), score=scorer(model))
    return {"sampler": sampler, "seed": seed, "trials": trials, "judged": r["judged"],
            "proposals": r["proposals"], "seconds": round(r["seconds"], 1)}  # fmt: skip


def run_samplers(preset: str, samplers: list[str], seeds: int, trials: int, model: Any,
                 runs: list[dict[str, Any]], on_run: Callable[[], None] = lambda: None,
                 workers: int = 1) -> None:  # fmt: skip
    """Append to ``runs`` every (sampler, seed) search of ``trials`` judged designs that it lacks,
    scored by ``model``, ``workers`` at once (calls ``on_run`` after each)."""
    done = {(r["sampler"], r["seed"]) for r in runs if r["trials"] == trials}
    todo = [(s, seed) for s in samplers for seed in range(seeds) if (s, seed) not in done]
    bar = progress_bar("searches", Console(stderr=True))
    task = bar.add_task("", total=len(todo))
    ctx = multiprocessing.get_context("spawn")
    with bar, concurrent.futures.ProcessPoolExecutor(workers, mp_context=ctx) as ex:
        futures = [ex.submit(one_search, preset, s, seed, trials, model) for s, seed in todo]
        for fut in concurrent.futures.as_completed(futures):
            r = fut.result()
            runs.append(r)
            on_run()
            bar.update(task, advance=1, description=f"{r['sampler']} seed {r['seed']}")


def compare(args: argparse.Namespace) -> int:
    """Samplers on the surrogate: runs (resumed from ``--out``), summary, PNG."""
    prov = provenance.started()
    spec = load_spec(args.preset)
    records = read_table(args.table)
    if not args.surrogate.exists():
        print(f"error: --surrogate: {args.surrogate} does not exist; run `space_bench.py fit` "
              "first", file=sys.stderr)  # fmt: skip
        return 2
    verdict = json.loads(args.surrogate.read_text())
    regressor = args.regressor or verdict["chosen"]
    if not verdict["regressors"][regressor]["credible"] and not args.force:
        cv = verdict["regressors"][regressor]
        print(f"error: the {regressor} surrogate is not credible (held-out tau {cv['tau']:.3f}, "
              f"RMSE {cv['rmse']:.2f} dB against a seed noise of {verdict['seed_noise_db']:.2f} "
              f"dB): its sampler comparison would rank samplers on its errors; grow the table "
              "(`sample --n`) and fit again, or pass --force", file=sys.stderr)  # fmt: skip
        return 2
    model = fitted(records, args.preset, regressor)
    data = json.loads(args.out.read_text()) if args.out.exists() else {}
    fingerprint = {"regressor": regressor, "designs": len(training_rows(records, args.preset)[0]),
                   "preset": args.preset}  # fmt: skip
    if data.get("surrogate") != fingerprint:
        data = {"surrogate": fingerprint, "runs": []}
    if "optimum" not in data:
        data["optimum"] = optimum(model, args.preset)
    runs = data["runs"]
    save = lambda: provenance.write_result(args.out, data, prov)  # noqa: E731
    save()
    run_samplers(args.preset, args.samplers, args.seeds, args.trials, model, runs, save,
                 args.workers)
    best = data["optimum"]
    m_sc, macs = limit(spec, "m_sc"), limit(spec, "macs")
    mine = [r for r in runs if r["trials"] == args.trials and r["sampler"] in args.samplers]
    ks = sorted({min(k, args.trials) for k in KS})
    data["summary"] = space_compare.summarize(mine, best["psnr"], m_sc, macs, ks)
    save()
    print(f"surrogate ({regressor}) optimum among {best['feasible']} feasible designs: "
          f"{best['label']} {best['psnr']:.2f} dB")  # fmt: skip
    print_summary(data["summary"], ks)
    png = args.out.with_suffix(".png")
    space_compare.plot(mine, best["psnr"], m_sc, macs, png,
                       f"{args.preset} on the surrogate ({regressor}), {args.trials} trials")
    print(f"curves: {png}")
    return 0


def print_summary(summary: dict[str, dict[str, Any]], ks: list[int]) -> None:
    head = " ".join(f"{'best@' + str(k):>13} {'HV@' + str(k):>11}" for k in ks)
    print(f"{'sampler':<24} {'seeds':>5} {head} {'trials to band':>14} {'vs random':>9} "
          f"{'p (fewer)':>9}")  # fmt: skip
    for sampler, row in summary.items():
        cells = " ".join(f"{row[f'best@{k}'][0]:>7.2f}+-{row[f'best@{k}'][1]:<4.2f} "
                         f"{row[f'hv@{k}'][0]:>6.1f}+-{row[f'hv@{k}'][1]:<3.1f}"
                         for k in ks)  # fmt: skip
        median = f"{row['median_needed']:g} ({row['reached']}/{row['seeds']})"
        ratio = f"{row['needed_vs_random']:.2f}x" if "needed_vs_random" in row else "-"
        p = f"{row['p_fewer_trials']:.3f}" if "p_fewer_trials" in row else "-"
        print(f"{sampler:<24} {row['seeds']:>5} {cells} {median:>14} {ratio:>9} {p:>9}")


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("sample", help="train the stratified sample (resumes)")
    s.add_argument("--preset", default=PRESET)
    s.add_argument("--n", type=int, default=300)
    s.add_argument("--repeats", type=int, default=30)
    s.add_argument("--workers", type=int, default=1)
    s.add_argument("--table", type=Path, default=TABLE)
    f = sub.add_parser("fit", help="cross-validate the surrogates on the table")
    f.add_argument("--preset", default=PRESET)
    f.add_argument("--folds", type=int, default=5)
    f.add_argument("--repeats", type=int, default=3, help="shuffles of the folds, averaged")
    f.add_argument("--table", type=Path, default=TABLE)
    f.add_argument("--out", type=Path, default=SURROGATE)
    b = sub.add_parser("baseline", help="random search's chance of the band, from the table")
    b.add_argument("--preset", default=PRESET)
    b.add_argument("--table", type=Path, default=TABLE)
    b.add_argument("--searches", type=Path, nargs="*", default=[],
                   help="search_quality.py result files of real searches to put against it")
    b.add_argument("--storage", help="a storage URL whose studies are real searches to put "
                   "against it (unetmm search PRESET --sampler S --seed N)")
    b.add_argument("--trials", type=int, help="only each real search's first N judged trials")
    b.add_argument("--prefilter-seeds", type=int, default=5,
                   help="searches of the shipped random sampler to measure (0: none)")
    b.add_argument("--out", type=Path, default=BASELINE)
    c = sub.add_parser("compare", help="compare samplers on the surrogate (resumes)")
    c.add_argument("--preset", default=PRESET)
    c.add_argument("--samplers", nargs="+", default=list(SAMPLERS))
    c.add_argument("--seeds", type=int, default=30)
    c.add_argument("--trials", type=int, default=100)
    c.add_argument("--workers", type=int, default=1, help="searches at once, a process each")
    c.add_argument("--regressor", choices=sorted(surrogate.REGRESSORS),
                   help="default: the one fit chose")
    c.add_argument("--table", type=Path, default=TABLE)
    c.add_argument("--surrogate", type=Path, default=SURROGATE)
    c.add_argument("--out", type=Path, default=COMPARE)
    c.add_argument("--force", action="store_true",
                   help="compare on a surrogate that is not credible (development only)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    return {"sample": sample, "fit": fit, "baseline": baseline,
            "compare": compare}[args.command](args)  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
