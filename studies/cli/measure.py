"""``unetmm measure``: the paper's Table 4 for any backbone, input size and bit width, with the
peak memory under each executor (``--executor``: layer by layer, tiled with ``--tile`` and
``--split``).

``--plot`` and ``--json`` are checked before anything is measured (folder exists and takes
files, a format matplotlib writes). ``--checkpoint`` measures the NAFNet an official checkpoint
holds (read off its tensor names and shapes; with ``--backbone``, that preset instead), after
loading its weights into it to check they fit (``nas.checkpoints``). ``--image`` runs the tiled
executor on a real image (the ``--config`` designs, else the checkpoint's model, else the
reference designs) and prints its measured peak beside the prediction and the output's largest
difference from the plain forward."""

from __future__ import annotations

import argparse
import functools
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
        help=f"backbone preset: {', '.join(BACKBONE_PRESETS.names())} (default nafnet-w32, "
        "or the network of --checkpoint)",
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
                   help="an official NAFNet or KBNet checkpoint (BasicSR .pth, e.g. "
                        "NAFNet-SIDD-width32.pth): measure the network it holds; its weights "
                        "are loaded to check they fit")  # fmt: skip
    p.add_argument("--executor", choices=("layer", "tiled", "both"), default="both",
                   help="peak memory layer by layer (PyTorch, ONNX Runtime), tiled (a streaming "
                        "device: nas.tiling), or both (default)")  # fmt: skip
    p.add_argument("--tile", type=int, default=64,
                   help="tiled executor: tile side in input pixels (default 64)")  # fmt: skip
    p.add_argument("--split", default="auto",
                   help="tiled executor: the deepest stage run in tiles, or auto (least peak)")
    p.add_argument("--image", metavar="FILE",
                   help="run the tiled executor on this image and print its measured peak")
    p.add_argument("--plot", metavar="FILE.png", help="draw the Fig. 1b M_sc timeline")
    p.add_argument("--json", metavar="FILE", help="write every CostReport as JSON")


def checkpoint_backbone(path: str, preset: str | None) -> tuple[object, LoadReport]:
    """The backbone of official checkpoint ``path`` (``preset``'s when given) and the report
    of loading it, strictly, into that network with full skips."""
    from nas.checkpoints import is_official, load_official, official_config, read_state_dict
    from nas.model import build_model

    state = read_state_dict(path, "--checkpoint")
    if not is_official(state):
        raise ConfigError("--checkpoint: holds a unetmm model, not an official checkpoint; "
                          "measure its run's config.yaml with --config")  # fmt: skip
    backbone = backbone_preset(preset) if preset else official_config(state, "--checkpoint")
    model = build_model(ArchConfig(backbone, FullSkipsConfig()))  # type: ignore[arg-type]
    return backbone, load_official(model, state, strict=True, field="--checkpoint")


def parse_split(text: str) -> int | str:
    """``auto`` or a stage number."""
    if text == "auto":
        return text
    try:
        return int(text)
    except ValueError:
        raise ConfigError(f"--split: {text!r} is not a stage; write a number like 3, or auto"
                          ) from None  # fmt: skip


def run(args: argparse.Namespace) -> int:
    import sys

    from rich.console import Console
    from rich.table import Table

    size = parse_size(args.size)
    split = parse_split(args.split)
    tiled = args.executor in ("tiled", "both")
    tile = args.tile if tiled else None
    if args.image and not tiled:
        raise ConfigError("--image: runs the tiled executor; use --executor tiled or both")
    image = _read_image(args.image) if args.image else None
    plot = output_file(args.plot, "--plot", PLOT_SUFFIXES) if args.plot else None
    json_path = output_file(args.json, "--json") if args.json else None
    if args.checkpoint:
        backbone, loaded = checkpoint_backbone(args.checkpoint, args.backbone)
        title = args.backbone or f"NAFNet of {args.checkpoint}"
    else:
        backbone, loaded = backbone_preset(args.backbone or "nafnet-w32"), None
        title = args.backbone or "nafnet-w32"
    designs = reference_designs(backbone)
    for path in args.config:
        designs[path] = load_config(path)
    if tiled:  # the tile checked once, before anything is measured
        from nas.tiling import check_tiling

        sizes = [size] + ([tuple(int(d) for d in image.shape[-2:])] if image is not None else [])
        try:
            for arch in designs.values():
                for at in sizes:
                    check_tiling(arch, at, tile, split)
        except ConfigError as exc:  # named as typed: --tile, --split
            raise ConfigError(f"--{exc}") from None
    reports, fulls = {}, {}  # fulls: full skips on each backbone, the reference of its rows
    console = Console(width=None if sys.stdout.isatty() else 200)
    if loaded is not None:
        console.print(f"{args.checkpoint}: {loaded.summary()}", soft_wrap=True)
    with console.status("measuring ...") as status:
        for name, arch in designs.items():
            status.update(f"measuring {name} ...")
            cost = functools.partial(measure_cost, input_size=size, batch=args.batch,
                                     bits=args.bits, engine=args.engine, tile=tile, split=split)
            reports[name] = cost(arch)
            if arch.backbone not in fulls:
                fulls[arch.backbone] = cost(ArchConfig(arch.backbone, FullSkipsConfig()))

    caption = ("M_sc: peak skip memory (analytic = traced). MACs: fvcore / paper (ptflops) "
               "convention. saved, vs full: against full skips on the row's own backbone.")  # fmt: skip
    if args.executor != "tiled":
        caption += (" Peak layer: all live activations of a layer-by-layer forward (PyTorch, "
                    "ONNX Runtime), input and output included.")  # fmt: skip
    if tiled:
        caption += (f" Peak tiled: on-chip activations when stages up to the split run in "
                    f"{tile}x{tile}-pixel tiles (input and output stream from external memory); "
                    "recomputed: the MACs tiling adds (halos, passes gathering whole-map "
                    "statistics).")  # fmt: skip
    table = Table(title=f"{title} at {args.batch}x{size[0]}x{size[1]}, {args.bits}-bit "
                        "activations", caption=caption)  # fmt: skip
    cols = ["design", "M_sc bytes", "M_sc MiB", "saved", "GMACs fvcore", "GMACs paper",
            "vs full", "params M"]  # fmt: skip
    cols += ["peak layer MiB"] if args.executor != "tiled" else []
    cols += ["peak tiled MiB", "split", "recomputed GMACs"] if tiled else []
    for col in cols:
        table.add_column(col, justify="left" if col == "design" else "right")
    for name, r in reports.items():
        full = fulls[designs[name].backbone]
        saved = 1 - r.m_sc_bytes / full.m_sc_bytes if full.m_sc_bytes else 0.0
        more = r.macs_paper / full.macs_paper - 1
        cells = [
            name, f"{r.m_sc_bytes:,}", f"{r.m_sc_bytes / MIB:.3f}", f"{saved:.1%}",
            f"{r.macs / 1e9:.2f}", f"{r.macs_paper / 1e9:.2f}", f"{more:+.1%}",
            f"{r.params / 1e6:.2f}",
        ]  # fmt: skip
        if args.executor != "tiled":
            cells.append(f"{r.peak_activation_bytes / MIB:.2f}")
        if tiled:
            cells += [f"{(r.peak_tiled_bytes or 0) / MIB:.2f}", str(r.split),
                      f"{(r.recompute_macs or 0) / 1e9:.1f}"]  # fmt: skip
        table.add_row(*cells)
    console.print(table)
    if image is not None:
        chosen = {p: designs[p] for p in args.config} or (
            {title: ArchConfig(backbone, FullSkipsConfig())} if loaded is not None else
            {k: v for k, v in designs.items() if k in reference_designs(backbone)})  # fmt: skip
        _run_on_image(console, chosen, image, args, split, loaded_from=args.checkpoint)
    if plot is not None:
        from nas.cost.plot import plot_skip_timelines

        console.print(f"wrote {plot_skip_timelines(reports, plot)}")
    if json_path is not None:
        with open(json_path, "w") as fh:
            json.dump({k: r.to_dict() for k, r in reports.items()}, fh, indent=1)
        console.print(f"wrote {json_path}")
    return 0


def _read_image(path: str):  # type: ignore[no-untyped-def]
    """The image as a (1, 3, H, W) float tensor in [0, 1]; ``ConfigError`` naming ``--image``."""
    import torch

    from trainers.data import read_image, to_float

    try:
        img = to_float(read_image(path))  # (H, W, 3)
    except Exception as exc:  # noqa: BLE001 (any decoder error is the file's problem)
        raise ConfigError(f"--image: cannot read {path!r} as an image ({type(exc).__name__}); "
                          "give a PNG, JPEG or TIFF file") from None  # fmt: skip
    return torch.from_numpy(img).permute(2, 0, 1).unsqueeze(0).contiguous()


def _run_on_image(console, designs, image, args, split, loaded_from):  # type: ignore[no-untyped-def]
    """Each design tiled on ``image``: the measured peak beside the prediction."""
    import time

    import torch
    from rich.table import Table

    from nas.cost.tiled import measure_tiled, resolve_tiled
    from nas.model import build_model, randomize

    h, w = int(image.shape[-2]), int(image.shape[-1])
    table = Table(title=f"tiled executor on {args.image} ({h}x{w}), tile {args.tile}, "
                        f"{args.bits}-bit activations",
                  caption="measured: live bytes of the real tensors of the tiled run; "
                          "max |diff|: against the plain forward of the same model"
                          + ("." if loaded_from else " (random weights: no block an identity).")
                  )  # fmt: skip
    for col in ("design", "split", "predicted MiB", "measured MiB", "equal", "max |diff|",
                "seconds"):  # fmt: skip
        table.add_column(col, justify="left" if col == "design" else "right")
    for name, arch in designs.items():
        if arch.backbone.in_channels != 3:
            raise ConfigError(f"--image: {name} takes {arch.backbone.in_channels} input "
                              "channels; --image gives 3 (RGB)")  # fmt: skip
        model = build_model(arch).eval()
        if not loaded_from:  # random weights, no block an identity: a meaningful comparison
            randomize(model)
        else:
            from nas.checkpoints import load_official, read_state_dict

            load_official(model, read_state_dict(loaded_from, "--checkpoint"),
                                 strict=True, field="--checkpoint")  # fmt: skip
        predicted = resolve_tiled(arch, (h, w), args.tile, split, 1, args.bits)
        start = time.perf_counter()
        measured, out = measure_tiled(model, image, args.tile, predicted.split, args.bits)
        seconds = time.perf_counter() - start
        with torch.no_grad():
            diff = float((out - model(image)).abs().max())
        table.add_row(name, str(measured.split), f"{predicted.peak_bytes / MIB:.3f}",
                      f"{measured.peak_bytes / MIB:.3f}",
                      "yes" if measured.peak_bytes == predicted.peak_bytes else "NO",
                      f"{diff:.2e}", f"{seconds:.1f}")  # fmt: skip
    console.print(table)
