"""Executor memory: which executor makes skip memory matter, and by how much.

For six designs on NAFNet-w32 (full, none, subset{1}, subset{4}, the paper's UNet--, and the
flagship search's best ``unetmm t=4 A=256 c=[16,-,-,-] d=2``) at 256x256 and 1024x1024, 8-bit
activations: M_sc; the layer-by-layer peak (PyTorch's, ONNX Runtime's executor); the tiled
executor's peak at two tile sizes, predicted (shape-only trace) and measured (``tiled_forward``
on real tensors, every tile, the same live-byte count; its output checked against the plain
forward of the same weights, drawn at random so no block is an identity) with the split
``auto`` picks and the MACs tiling recomputes; and ONNX Runtime's real
memory growth for one float32 run over the predicted layer peak (``trainers.ort_memory``).

    PYTHONPATH=. python benchmarks/executor_memory.py            # ~30 min on one core
    PYTHONPATH=. python benchmarks/executor_memory.py --quick    # 256x256 only, ~3 min

The exact tiled run recomputes what halos overlap and, for each whole-map step (NAFNet's
channel attention, IEM's GRN), a pass over every tile: at 1024x1024 with 64-pixel tiles that
is ~12 TMACs a design (~25 min on one core), so that tile is predicted only there
(``--measure-all`` measures it too). Prediction = measurement is checked by the test suite on
every backbone x skip family; here on the sizes measured.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from benchmarks.provenance import RESULTS, started, write_result
from nas import (
    ArchConfig,
    FullSkipsConfig,
    NoSkipsConfig,
    SubsetSkipsConfig,
    UNetMMConfig,
    build_model,
    measure_cost,
    nafnet_w32,
)
from nas.cost.tiled import measure_tiled
from nas.model import randomize

MIB = 2**20
DESIGNS = {
    "full": FullSkipsConfig(),
    "none": NoSkipsConfig(),
    "subset{1}": SubsetSkipsConfig(stages=(1,)),
    "subset{4}": SubsetSkipsConfig(stages=(4,)),
    "UNet-- (paper)": UNetMMConfig.paper(4),
    "flagship best": UNetMMConfig(ratios=(0.5, 1.0, 1.0, 1.0), stages=(1,), iem_depth=2),
}
TILES = {256: (32, 64), 1024: (64, 256)}
MEASURED = {256: (32, 64), 1024: (256,)}  # real tiled runs (see the module docstring)


def row(name: str, arch: ArchConfig, size: int, measured_tiles: tuple[int, ...],
        onnx_dir: Path) -> dict[str, Any]:  # fmt: skip
    """One design at one size: every column of the table."""
    from trainers.onnx_export import export_onnx
    from trainers.ort_memory import ort_peak_growth, predicted_growth

    out: dict[str, Any] = {"design": name, "size": size, "tiles": {}}
    for tile in TILES[size]:
        r = measure_cost(arch, (size, size), bits=8, engine="meta", tile=tile)
        cell = {"split": r.split, "predicted": r.peak_tiled_bytes, "at": r.peak_tiled_stage,
                "recompute_macs": r.recompute_macs, "measured": None}  # fmt: skip
        if tile in measured_tiles:
            model = randomize(build_model(arch)).eval()  # no block an identity
            x = torch.rand(1, 3, size, size)
            start = time.perf_counter()
            got, y = measure_tiled(model, x, tile, r.split, 8)
            cell["seconds"] = time.perf_counter() - start
            with torch.no_grad():
                cell["max_abs_diff"] = float((y - model(x)).abs().max())
            cell["measured"] = got.peak_bytes
        out["tiles"][str(tile)] = cell
    out.update(m_sc=r.m_sc_bytes, layer=r.peak_activation_bytes, layer_at=r.peak_activation_stage,
               macs=r.macs)  # fmt: skip
    path = onnx_dir / f"{name.replace(' ', '_')}.onnx"
    if not path.exists():
        export_onnx(build_model(arch), path)
    shape = (1, 3, size, size)
    fp32 = measure_cost(arch, (size, size), bits=32, engine="meta").peak_activation_bytes
    ort = ort_peak_growth(path, shape)
    out["ort"] = {"growth": ort["growth"], "predicted": predicted_growth(fp32, shape),
                  "ratio": ort["growth"] / predicted_growth(fp32, shape)}  # fmt: skip
    return out


def print_table(rows: list[dict[str, Any]], console: Console) -> dict[str, float]:
    """The table per size, and the headline ratios (UNet-- over full, tiled and layer)."""
    headline = {}
    for size in sorted({r["size"] for r in rows}):
        t = Table(title=f"NAFNet-w32 at {size}x{size}, 8-bit activations (MiB)")
        cols = ["design", "M_sc", "layer"]
        for tile in TILES[size]:
            cols += [f"tiled {tile} pred.", f"tiled {tile} meas.", "split", "recomp. GMACs"]
        cols += ["ORT meas./pred."]
        for c in cols:
            t.add_column(c, justify="left" if c == "design" else "right")
        mine = [r for r in rows if r["size"] == size]
        for r in mine:
            cells = [r["design"], f"{r['m_sc'] / MIB:.3f}", f"{r['layer'] / MIB:.2f}"]
            for tile in TILES[size]:
                c = r["tiles"][str(tile)]
                meas = "-" if c["measured"] is None else f"{c['measured'] / MIB:.2f}"
                cells += [f"{c['predicted'] / MIB:.2f}", meas, str(c["split"]),
                          f"{c['recompute_macs'] / 1e9:.0f}"]  # fmt: skip
            cells.append(f"{r['ort']['ratio']:.2f}")
            t.add_row(*cells)
        console.print(t)
        by = {r["design"]: r for r in mine}
        full, paper = by["full"], by["UNet-- (paper)"]
        for tile in TILES[size]:
            ratio = paper["tiles"][str(tile)]["predicted"] / full["tiles"][str(tile)]["predicted"]
            headline[f"{size} tile {tile}"] = ratio
            console.print(f"{size}x{size}, tile {tile}: UNet-- (paper) / full skips, tiled peak "
                          f"= {ratio:.3f} ({1 / ratio:.2f}x less)")  # fmt: skip
        console.print(f"{size}x{size}, layer by layer: UNet-- / full = "
                      f"{paper['layer'] / full['layer']:.3f}")  # fmt: skip
    return headline


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="256x256 only")
    p.add_argument("--measure-all", action="store_true", help="measure every tile, 1024 too")
    p.add_argument("--json", default=str(RESULTS / "executor_memory.json"))
    args = p.parse_args(sys.argv[1:] if argv is None else argv)
    prov = started(["benchmarks/executor_memory.py", *(sys.argv[1:] if argv is None else argv)])
    torch.set_num_threads(1)
    sizes = (256,) if args.quick else (256, 1024)
    console = Console(width=160)
    rows = []
    with tempfile.TemporaryDirectory() as tmp, Progress(console=console) as progress:
        task = progress.add_task("designs", total=len(sizes) * len(DESIGNS))
        for size in sizes:
            measured = TILES[size] if args.measure_all else MEASURED[size]
            for name, skip in DESIGNS.items():
                progress.update(task, description=f"{size}: {name}")
                rows.append(row(name, ArchConfig(nafnet_w32(), skip), size, measured, Path(tmp)))
                progress.advance(task)
    headline = print_table(rows, console)
    path = write_result(args.json, {"rows": rows, "headline_tiled_ratio": headline}, prov)
    console.print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
