"""``unetmm measure``: the paper's Table 4 for any backbone, input size and bit width.

``--plot`` and ``--json`` are checked before anything is measured (folder exists and takes
files, a format matplotlib writes). ``--checkpoint`` measures the NAFNet an official checkpoint
holds (read off its tensor names and shapes; with ``--backbone``, that preset instead), after
loading its weights into it to check they fit (``nas.checkpoints``)."""

from __future__ import annotations

import argparse
import json

from nas.checkpoints import LoadReport
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
        help=f"backbone preset: {', '.join(BACKBONE_PRESETS.names())} (default nafnet-sidd, "
        "or the NAFNet of --checkpoint)",
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
    p.add_argument("--checkpoint", metavar="FILE.pth",
                   help="an official NAFNet checkpoint (BasicSR .pth, e.g. NAFNet-SIDD-width32.pth):"
                        " measure the NAFNet it holds; its weights are loaded to check they fit")
    p.add_argument("--plot", metavar="FILE.png", help="draw the Fig. 1b M_sc timeline")
    p.add_argument("--json", metavar="FILE", help="write every CostReport as JSON")


def checkpoint_backbone(path: str, preset: str | None) -> tuple[object, LoadReport]:
    """The backbone of official NAFNet checkpoint ``path`` (``preset``'s when given) and the
    report of loading it, strictly, into that NAFNet with full skips."""
    from nas.checkpoints import is_official, load_official_nafnet, official_config, read_state_dict
    from nas.model import build_model

    state = read_state_dict(path, "--checkpoint")
    if not is_official(state):
        raise ConfigError("--checkpoint: holds a unetmm model, not an official NAFNet checkpoint; "
                          "measure its run's config.yaml with --config")  # fmt: skip
    backbone = backbone_preset(preset) if preset else official_config(state, "--checkpoint")
    model = build_model(ArchConfig(backbone, FullSkipsConfig()))  # type: ignore[arg-type]
    return backbone, load_official_nafnet(model, state, strict=True, field="--checkpoint")


def run(args: argparse.Namespace) -> int:
    import sys

    from rich.console import Console
    from rich.table import Table

    size = parse_size(args.size)
    plot = output_file(args.plot, "--plot", PLOT_SUFFIXES) if args.plot else None
    json_path = output_file(args.json, "--json") if args.json else None
    if args.checkpoint:
        backbone, loaded = checkpoint_backbone(args.checkpoint, args.backbone)
        title = args.backbone or f"NAFNet of {args.checkpoint}"
    else:
        backbone, loaded = backbone_preset(args.backbone or "nafnet-sidd"), None
        title = args.backbone or "nafnet-sidd"
    designs = reference_designs(backbone)
    for path in args.config:
        designs[path] = load_config(path)
    reports, fulls = {}, {}  # fulls: full skips on each backbone, the reference of its rows
    console = Console(width=None if sys.stdout.isatty() else 132)
    if loaded is not None:
        console.print(f"{args.checkpoint}: {loaded.summary()}", soft_wrap=True)
    with console.status("measuring ...") as status:
        for name, arch in designs.items():
            status.update(f"measuring {name} ...")
            reports[name] = measure_cost(arch, size, args.batch, args.bits, args.engine)
            if arch.backbone not in fulls:
                full_arch = ArchConfig(arch.backbone, FullSkipsConfig())
                fulls[arch.backbone] = measure_cost(full_arch, size, args.batch, args.bits,
                                                    args.engine)  # fmt: skip

    table = Table(
        title=f"{title} at {args.batch}x{size[0]}x{size[1]}, {args.bits}-bit activations",
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
