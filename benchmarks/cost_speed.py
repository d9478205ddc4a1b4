"""Seconds to cost one NAFNet-w32 candidate at 256x256: fvcore alone vs unetmm's measure_cost.

Run: ``python benchmarks/cost_speed.py [--repeats 3]``. Prints one table; every row is measured
in this run, side by side, and compared with the fvcore baseline (median of the repeats).

- fvcore alone: build the model on CPU, ``FlopCountAnalysis(model, x).total()``;
- measure_cost cold: no cache; engine "fvcore" (fvcore MACs + meta memory trace) or "meta"
  (everything from one shape-only pass);
- warm: the same call again (in-memory cache), and from the disk cache in a fresh memory.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable

import torch


def timed(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    os.environ["UNETMM_CACHE_DIR"] = tempfile.mkdtemp(prefix="unetmm-bench-")
    torch.set_num_threads(2)

    from nas import ArchConfig, UNetMMConfig, build_model, measure_cost, nafnet_sidd
    from nas.cost import clear_memory_cache, fvcore_macs

    arch = ArchConfig(nafnet_sidd(), UNetMMConfig())
    shape = (1, 3, 256, 256)

    def fvcore_alone() -> None:
        fvcore_macs(build_model(arch), shape)

    def cold(engine: str) -> Callable[[], object]:
        return lambda: measure_cost(arch, (256, 256), engine=engine, use_cache=False)  # type: ignore[arg-type]

    def disk(engine: str) -> Callable[[], object]:
        def run() -> None:
            clear_memory_cache()
            measure_cost(arch, (256, 256), engine=engine)  # type: ignore[arg-type]

        return run

    fvcore_alone()  # warm up the JIT tracer and allocator once, for every row alike
    rows: list[tuple[str, float]] = [("fvcore alone (baseline)", timed(fvcore_alone, args.repeats))]
    for engine in ("fvcore", "meta"):
        rows.append((f"measure_cost engine={engine}, cold", timed(cold(engine), args.repeats)))
        measure_cost(arch, (256, 256), engine=engine)  # fill the caches
        rows.append((f"measure_cost engine={engine}, warm (disk cache)", timed(disk(engine), args.repeats)))
        rows.append((f"measure_cost engine={engine}, warm (memory)",
                     timed(lambda e=engine: measure_cost(arch, (256, 256), engine=e), args.repeats)))  # fmt: skip

    base = rows[0][1]
    print(f"cost of one NAFNet-w32 UNet-- candidate at 1x3x256x256, median of {args.repeats}, "
          f"{torch.get_num_threads()} threads")  # fmt: skip
    print(f"{'path':48s} {'seconds':>10s} {'x faster than fvcore':>22s}")
    for name, sec in rows:
        print(f"{name:48s} {sec:10.4f} {base / sec:22.1f}")


if __name__ == "__main__":
    main()
