"""``unetmm measure``: the paper's Table 4 for any backbone, input size and bit width.

``--plot`` and ``--json`` are checked before anything is measured (folder exists and takes
files, a format matplotlib writes)."""

from __future__ import annotations

import argparse
import json

from nas.config import ArchConfig, load_config
from nas.cost import MIB, measure_cost
from nas.errors import ConfigError
from nas.presets import BACKBONE_PRESETS, backbone_preset, reference_designs
from nas.skips import FullSkipsConfig
from studies.cli.common import output_file

# what matplotlib's Agg/PDF/SVG/PS backends write, by suffix
PLOT_SUFFIXES = (".png", ".pdf", ".svg", ".eps", ".ps", ".jpg", ".jpeg", ".tif", ".tiff", ".webp")


def parse_size(text: str) -> tuple[int, int]:
    """``256`` -> (256, 256); ``480x320`` -> (480, 320) as height x width."""
    try:
        parts = [int(p) for p in text.lower().split("x")]
    except ValueError:
        parts = []
    if len(parts) == 1:
        parts *= 2
    if len(parts) != 2 or min(parts) < 1:
        raise ConfigError(f"--size: {text!r} is not a size; write 256 or HEIGHTxWIDTH like 480x320")
    return parts[0], parts[1]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--backbone",
        default="nafnet-sidd",
        help=f"backbone preset: {', '.join(BACKBONE_PRESETS.names())} (default nafnet-sidd)",
    )
    p.add_argument("--size", default="256", help="input HEIGHTxWIDTH or one number (default 256)")
    p.add_argument("--bits", type=int, default=8, help="bits per activation (4/8/16/32; default 8)")
    p.add_argument("--batch", type=int, default=1, help="batch size (default 1)")
    p.add_argument(
        "--config",
        action="append",
        default=[],
        metavar="FILE",
        help="also measure the architecture in this YAML/JSON (repeatable)",
    )
    p.add_argument("--engine", choices=("fvcore", "meta"), default="fvcore",
                   help="MAC counter: fvcore on a CPU forward, or the same rules on meta tensors")
    p.add_argument("--plot", metavar="FILE.png", help="draw the Fig. 1b M_sc timeline")
    p.add_argument("--json", metavar="FILE", help="write every CostReport as JSON")


def run(args: argparse.Namespace) -> int:
    import sys

    from rich.console import Console
    from rich.table import Table

    size = parse_size(args.size)
    plot = output_file(args.plot, "--plot", PLOT_SUFFIXES) if args.plot else None
    json_path = output_file(args.json, "--json") if args.json else None
    designs = reference_designs(backbone_preset(args.backbone))
    for path in args.config:
        designs[path] = load_config(path)
    reports, fulls = {}, {}  # fulls: full skips on each backbone, the reference of its rows
    console = Console(width=None if sys.stdout.isatty() else 132)
    with console.status("measuring ...") as status:
        for name, arch in designs.items():
            status.update(f"measuring {name} ...")
            reports[name] = measure_cost(arch, size, args.batch, args.bits, args.engine)
            if arch.backbone not in fulls:
                full_arch = ArchConfig(arch.backbone, FullSkipsConfig())
                fulls[arch.backbone] = measure_cost(full_arch, size, args.batch, args.bits,
                                                    args.engine)  # fmt: skip

    table = Table(
        title=f"{args.backbone} at {args.batch}x{size[0]}x{size[1]}, {args.bits}-bit activations",
        caption="M_sc: peak skip memory (analytic = traced). MACs: fvcore / paper (ptflops) "
        "convention. Peak act.: all live activations of one forward pass. saved, vs full: "
        "against full skips on the row's own backbone.",
    )
    for col in ("design", "M_sc bytes", "M_sc MiB", "saved", "GMACs fvcore", "GMACs paper",
                "vs full", "params M", "peak act. MiB"):  # fmt: skip
        table.add_column(col, justify="left" if col == "design" else "right")
    for name, r in reports.items():
        full = fulls[designs[name].backbone]
        saved = 1 - r.m_sc_bytes / full.m_sc_bytes if full.m_sc_bytes else 0.0
        more = r.macs_paper / full.macs_paper - 1
        table.add_row(
            name, f"{r.m_sc_bytes:,}", f"{r.m_sc_bytes / MIB:.3f}", f"{saved:.1%}",
            f"{r.macs / 1e9:.2f}", f"{r.macs_paper / 1e9:.2f}", f"{more:+.1%}",
            f"{r.params / 1e6:.2f}", f"{r.peak_activation_bytes / MIB:.2f}",
        )  # fmt: skip
    console.print(table)
    if plot is not None:
        from nas.cost.plot import plot_skip_timelines

        console.print(f"wrote {plot_skip_timelines(reports, plot)}")
    if json_path is not None:
        with open(json_path, "w") as fh:
            json.dump({k: r.to_dict() for k, r in reports.items()}, fh, indent=1)
        console.print(f"wrote {json_path}")
    return 0
