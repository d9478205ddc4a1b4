"""Seconds to cost one NAFNet-w32 candidate at 256x256: fvcore alone vs unetmm's measure_cost.

Run: ``python benchmarks/cost_speed.py [--repeats 3] [--json FILE]``. Prints one table; every row
is measured in this run, side by side, and compared with the warm fvcore baseline; ``--json``
writes the rows with their provenance (``benchmarks/provenance.py``).

- cold: the first call in a fresh Python process (imports done, not timed), which pays for
  fvcore's JIT tracer, torch's dispatch caches and the allocator warming up; each cold row runs
  in its own subprocess so no row warms another;
- warm: the median of ``--repeats`` more calls in this process;
- fvcore alone: build the model on CPU, ``FlopCountAnalysis(model, x).total()``;
- measure_cost, no cache: engine "fvcore" (fvcore MACs + meta memory trace) or "meta"
  (everything from one shape-only pass); "meta" again with every block traced on each call
  (``trace_forward(replay=False)``: no ``nas.cost.replay``), and with another UNet-- design
  (aggregated channels 320, 384, ...) each call, as a search costs them; then the same call
  served from the disk cache (in a fresh memory) and from the in-memory cache.
"""

from __future__ import annotations

import argparse
import functools
import itertools
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

JOBS = ("fvcore", "measure-fvcore", "measure-meta", "measure-meta-no-replay",
        "measure-meta-new-design")  # fmt: skip
LABELS = ("fvcore alone", "measure_cost engine=fvcore, no cache",
          "measure_cost engine=meta, no cache", "the same, blocks not replayed",
          "the same, another skip design each call")  # fmt: skip


def timed(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def job(name: str) -> Callable[[], object]:
    """One costing of the candidate, without caches: ``fvcore`` alone or ``measure-ENGINE``.
    Imports happen here, not in the timed call."""
    import fvcore.nn  # noqa: F401

    import nas.cost.report
    from nas import ArchConfig, UNetMMConfig, build_model, measure_cost, nafnet_w32
    from nas.cost import fvcore_macs
    from nas.cost.trace import trace_forward

    arch = ArchConfig(nafnet_w32(), UNetMMConfig())
    if name == "fvcore":
        return lambda: fvcore_macs(build_model(arch), (1, 3, 256, 256))
    replay = name != "measure-meta-no-replay"  # off: every op of every block traced each call
    nas.cost.report.trace_forward = functools.partial(trace_forward, replay=replay)
    if name == "measure-meta-new-design":  # what a search costs: a design it has not seen
        widths = itertools.count(320, 64)  # pixel-shuffled across 3 stages: multiples of 64
        return lambda: measure_cost(arch.replace(skip=UNetMMConfig(
            aggregated_channels=next(widths))), (256, 256), engine="meta", use_cache=False)
    engine: Any = name.removeprefix("measure-").removesuffix("-no-replay")
    return lambda: measure_cost(arch, (256, 256), engine=engine, use_cache=False)


def cold(name: str) -> float:
    """Seconds of ``job(name)``'s first call in a fresh process."""
    root = Path(__file__).resolve().parent.parent
    out = subprocess.run(
        [sys.executable, __file__, "--first-call", name],
        capture_output=True, text=True, check=True, cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
    )  # fmt: skip
    return float(out.stdout.split()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--first-call", choices=JOBS, help=argparse.SUPPRESS)  # used by cold()
    parser.add_argument("--json", default=None, help="write the rows here, with provenance")
    args = parser.parse_args()
    torch.set_num_threads(2)
    if args.first_call:
        fn = job(args.first_call)
        start = time.perf_counter()
        fn()
        print(time.perf_counter() - start)
        return
    from benchmarks import provenance

    prov = provenance.started(["benchmarks/cost_speed.py", *sys.argv[1:]])
    os.environ["UNETMM_CACHE_DIR"] = tempfile.mkdtemp(prefix="unetmm-bench-")

    from nas import ArchConfig, UNetMMConfig, measure_cost, nafnet_w32
    from nas.cost import clear_memory_cache

    arch = ArchConfig(nafnet_w32(), UNetMMConfig())

    def disk(engine: Any) -> Callable[[], object]:
        def run() -> None:
            clear_memory_cache()
            measure_cost(arch, (256, 256), engine=engine)

        return run

    def memory(engine: Any) -> Callable[[], object]:
        return lambda: measure_cost(arch, (256, 256), engine=engine)

    rows: list[tuple[str, float]] = []
    for name, label in zip(JOBS, LABELS):
        if name != "measure-meta-new-design":
            rows.append((f"{label}, cold", cold(name)))
        fn = job(name)
        fn()  # this process's first call; the warm rows time the calls after it
        rows.append((f"{label}, warm", timed(fn, args.repeats)))
    job("measure-meta")  # replay on again for the cache rows
    for engine in ("fvcore", "meta"):
        measure_cost(arch, (256, 256), engine=engine)  # fill the caches
        for where, fn in (("disk", disk(engine)), ("memory", memory(engine))):
            rows.append((f"measure_cost engine={engine}, {where} cache", timed(fn, args.repeats)))

    base = rows[1][1]  # fvcore alone, warm
    print(f"cost of one NAFNet-w32 UNet-- candidate at 1x3x256x256; cold: first call in a "
          f"fresh process; warm: median of {args.repeats}; {torch.get_num_threads()} threads")
    print(f"{'path':48s} {'seconds':>10s} {'x faster than warm fvcore':>26s}")
    for name, sec in rows:
        print(f"{name:48s} {sec:10.4f} {base / sec:26.1f}")
    if args.json:
        provenance.write_result(args.json, {"repeats": args.repeats,
                                            "threads": torch.get_num_threads(),
                                            "seconds": dict(rows)}, prov)  # fmt: skip


if __name__ == "__main__":
    main()
