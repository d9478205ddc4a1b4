"""Table 7's cost columns (MSCAN-tiny matting): which input size and bit width give the paper's
numbers, and whether M_sc and MACs can come from the same size.

The paper: full skips 2.56 MB M_sc, 1.57 GMACs, 3.95 M params; no skips 0.00 / 1.55 / 3.95;
UNet-- 0.14 / 1.71 / 4.23. Its Table 4 writes MiB as "MB" (3.75 = 3,932,160 bytes), at 8 bit.

    PYTHONPATH=. python benchmarks/table7_costs.py [--out benchmarks/results/table7_costs.json]

Prints (1) every square input (multiple of 32, up to 2048) and 8/16/32-bit width at which full
skips over E1..E4 round to 2.56 (MiB and 10**6-byte MB); (2) full / none / UNet-- (the paper's
knobs) at the 8-bit size found and at 256x256; (3) the MSCAN-tiny encoder's own MACs and the
square size at which the encoder alone reaches the paper's 1.55 and 1.57 G. ``--out`` gets the
raw numbers with their provenance (``benchmarks/provenance.py``).
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import torch
from torch import nn

from benchmarks import provenance
from nas import ArchConfig, FullSkipsConfig, UNetMMConfig, build_model, measure_cost
from nas.backbones import mscan_tiny
from nas.cost.counters import paper_macs
from nas.cost.macs import fvcore_macs
from nas.presets import reference_designs

MIB = 2**20
PAPER = {"full": (2.56, 1.57, 3.95), "none": (0.00, 1.55, 3.95), "unetmm": (0.14, 1.71, 4.23)}


class _Encoder(nn.Module):
    """MSCAN-tiny's encoder alone (stem, stages, patch embeddings), as SegNeXt defines it."""

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self.stem = backbone.stem_convs
        self.stages, self.embeds = backbone.encoders, backbone.downs[:-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for i, stage in enumerate(self.stages):
            x = stage(x)
            if i < len(self.embeds):
                x = self.embeds[i](x)
        return x


def _encoder_macs(side: int) -> tuple[int, int]:
    """(fvcore MACs, paper-convention MACs) of the encoder alone at ``side x side``."""
    enc = _Encoder(build_model(ArchConfig(mscan_tiny(), FullSkipsConfig())).backbone).eval()
    fv = fvcore_macs(enc, (1, 3, side, side)).total
    total = 0

    def count(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        nonlocal total
        total += paper_macs(module, inputs, output)

    hooks = [m.register_forward_hook(count) for m in enc.modules() if not list(m.children())]
    with torch.no_grad():
        enc(torch.zeros(1, 3, side, side))
    for h in hooks:
        h.remove()
    return fv, total


def _row(arch: ArchConfig, side: int, bits: int) -> dict:
    r = measure_cost(arch, (side, side), bits=bits, engine="meta", use_cache=False)
    return {"m_sc_bytes": r.m_sc_bytes, "m_sc_mib": r.m_sc_bytes / MIB, "macs": r.macs,
            "macs_paper": r.macs_paper, "params": r.params}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=None, help="write the raw numbers as JSON")
    argv = sys.argv[1:] if argv is None else argv
    args = p.parse_args(argv)
    prov = provenance.started(["benchmarks/table7_costs.py", *argv])
    torch.set_num_threads(1)
    per_pixel = sum(c / s**2 for c, s in zip(mscan_tiny().stage_channels,
                                             mscan_tiny().stage_strides))  # fmt: skip
    print(f"full skips over E1..E4 of MSCAN-tiny: {per_pixel} elements per input pixel\n")
    hits = []
    for side in range(32, 2049, 32):
        for bits in (8, 16, 32):
            nbytes = per_pixel * side * side * bits / 8
            for unit, div in (("MiB", MIB), ("MB", 1e6)):
                if round(nbytes / div, 2) == 2.56:
                    hits.append({"side": side, "bits": bits, "unit": unit, "value": nbytes / div})
    print("| input | bits | unit | full-skip M_sc |\n|---|---|---|---|")
    for h in hits:
        print(f"| {h['side']}x{h['side']} | {h['bits']} | {h['unit']} | {h['value']:.4f} |")
    side8 = next(h["side"] for h in hits if h["bits"] == 8 and h["unit"] == "MiB")

    designs = reference_designs(mscan_tiny())
    designs["unetmm A=128"] = ArchConfig(mscan_tiny(), UNetMMConfig(aggregated_channels=128))
    rows: dict[str, dict] = {}
    for side in (side8, 256):
        print(f"\n{side}x{side}, 8 bit (paper: M_sc MB / GMACs / M params)")
        print("| design | M_sc | saved | GMACs fvcore | GMACs paper conv. | params | paper |")
        print("|---|---|---|---|---|---|---|")
        for name, arch in designs.items():
            r = rows[f"{name}@{side}"] = _row(arch, side, 8)
            full = rows[f"full@{side}"]["m_sc_bytes"]
            saved = f"{100 * (1 - r['m_sc_bytes'] / full):.1f}%" if name != "full" else "-"
            paper = "/".join(f"{v:g}" for v in PAPER.get(name.split()[0], ()))
            print(f"| {name} | {r['m_sc_mib']:.4f} MiB | {saved} | {r['macs'] / 1e9:.3f} | "
                  f"{r['macs_paper'] / 1e9:.3f} | {r['params'] / 1e6:.3f} M | {paper} |")

    fv, pc = _encoder_macs(512)
    enc = {"encoder_macs_512": fv, "encoder_macs_paper_512": pc}
    print(f"\nMSCAN-tiny encoder alone at 512x512: {fv / 1e9:.3f} G (fvcore), "
          f"{pc / 1e9:.3f} G (paper convention)")
    for target in (1.55e9, 1.57e9):
        side = math.sqrt(target / (pc / 512**2))
        enc[f"side_for_{target / 1e9:g}G"] = side
        print(f"  the encoder alone reaches {target / 1e9:g} G (paper convention) at {side:.0f}^2;"
              f" at {side8}^2 it needs {pc * side8**2 / 512**2 / 1e9:.2f} G")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        provenance.write_result(args.out, {"per_pixel": per_pixel, "hits": hits, "rows": rows,
                                           "encoder": enc, "paper": PAPER}, prov)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
