"""``unetmm train CONFIG.yaml``: full training of an exported (or hand-written) config.

Resumes from the newest checkpoint in the output folder unless ``--no-resume``; ``--steps``
overrides ``recipe.iterations`` (a checkpointed run with another step count is refused: the cosine
schedule spans the steps), ``--batch``/``--crop`` the recipe's (a quick CPU trial of a config
written for a GPU), ``--out`` the config's ``out_dir``; ``--onnx`` also exports the final model to
ONNX and checks it against PyTorch with onnxruntime. ``--device`` (``auto``: CUDA when there is a
GPU; ``cuda`` without one is refused before any work), ``--workers`` (DataLoader processes) and
``--init`` (a checkpoint to start from: an official NAFNet or KBNet ``.pth``, also as the
backbone of a UNet-- design, or a unetmm ``model.pt``) override the config's ``recipe.device``,
``recipe.workers`` and ``init``. The run folder also gets ``train.log``, ``metrics.csv`` and
TensorBoard events (``trainers.run_log``).
"""

from __future__ import annotations

import argparse

from nas.errors import ConfigError
from studies.cli.common import output_folder


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", metavar="CONFIG.yaml", help="config with arch, task, data, recipe")
    p.add_argument("--out", metavar="DIR", help="output folder (default: the config's out_dir)")
    p.add_argument("--steps", type=int, metavar="N",
                   help="total steps (recipe.iterations); the cosine schedule spans them, so a "
                        "checkpointed run with another step count is not resumed: it is refused "
                        "(use --no-resume to start over, or --out for a new folder)")  # fmt: skip
    p.add_argument("--batch", type=int, metavar="N", help="batch size (overrides recipe.batch)")
    p.add_argument("--crop", type=int, metavar="PX", help="training crop (overrides recipe.crop)")
    p.add_argument("--no-resume", action="store_true",
                   help="start over, removing the checkpoints in the output folder")  # fmt: skip
    p.add_argument("--onnx", action="store_true",
                   help="export model.onnx and check it with onnxruntime (the onnx extra)")
    p.add_argument("--threads", type=int, metavar="N", help="torch threads (overrides the recipe)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"),
                   help="where to train (overrides recipe.device; auto: cuda when available)")
    p.add_argument("--workers", type=int, metavar="N",
                   help="DataLoader worker processes (overrides recipe.workers; 0: none)")
    p.add_argument("--init", metavar="CKPT",
                   help="start a fresh run from this checkpoint: an official NAFNet or KBNet .pth "
                        "(BasicSR 'params'; a UNet-- design gets the backbone, its skips stay "
                        "new) or a unetmm model.pt")  # fmt: skip
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from trainers.config import Recipe, TrainConfig, load_train_config, validate
    from trainers.runtime import resolve_device
    from trainers.train import train

    config = load_train_config(args.config)
    data = config.model_dump(mode="json")
    if args.out:
        data["out_dir"] = args.out
    for flag, field in (("steps", "iterations"), ("batch", "batch"), ("crop", "crop"),
                        ("threads", "threads"), ("workers", "workers")):  # fmt: skip
        value = getattr(args, flag)
        if value is None:
            continue
        # the bound is the recipe field's own; the error names the flag the user typed
        least = next(m.ge for m in Recipe.model_fields[field].metadata if hasattr(m, "ge"))
        if value < least:
            raise ConfigError(f"--{flag}: must be >= {least}, got {value}")
        data["recipe"][field] = value
    if args.device:
        data["recipe"]["device"] = args.device
    if args.init:
        data["init"] = args.init
    config = validate(TrainConfig, data)
    resolve_device(config.recipe.device, "--device" if args.device else "recipe.device")
    with output_folder(config.out_dir, "--out" if args.out else "out_dir"):
        result = train(config, resume=not args.no_resume, onnx=args.onnx, progress=not args.quiet)
    if result.resumed_from:
        print(f"resumed from step {result.resumed_from}")
    elif result.init is not None:
        print(f"init {config.init}: {result.init.summary()}")
    print(
        f"step {result.steps}: val PSNR {result.psnr:.2f} dB (input {result.input_psnr:.2f}), "
        f"SSIM {result.ssim:.4f}; {result.seconds:.0f} s"
    )
    if result.onnx is not None:
        print(f"ONNX: {result.onnx} (max |onnx - torch| = {result.onnx_max_abs_diff:.2e})")
    print(f"wrote {result.out_dir / 'result.json'}, {result.checkpoint}; log, metrics.csv and "
          f"TensorBoard events in {result.out_dir}")
    return 0
