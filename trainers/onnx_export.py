"""Export a trained ``SkipUNet`` to ONNX and check it with onnxruntime against PyTorch.

torch 2.13's default exporter (``dynamo=True``) needs the ``onnxscript`` package, which unetmm
does not depend on; the TorchScript exporter (``dynamo=False``, opset 17) exports every backbone x
skip design here, with dynamic batch, height and width. The model pads its input to a multiple
of ``2**stages``; tracing keeps that pad only if the sample needs it, so the sample's size is
deliberately *not* a multiple (the exported graph then pads any size, by zero if none is needed).
``check_onnx`` compares onnxruntime and PyTorch on two inputs of different sizes.
"""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path

import numpy as np
import torch

from nas.errors import UnetmmError
from nas.extras import require_extra
from nas.model import SkipUNet

OPSET = 17


class OnnxCheckFailed(UnetmmError):
    """onnxruntime's output differs from PyTorch's by more than the tolerance."""


@dataclasses.dataclass(frozen=True)
class OnnxReport:
    path: Path
    max_abs_diff: float
    shapes: tuple[tuple[int, ...], ...]  # the inputs compared


def _sample_side(model: SkipUNet, at_least: int = 64) -> int:
    m = model.backbone.size_multiple
    side = m * max(2, -(-at_least // m))
    return side - 2 if model.backbone.pads_input else side  # not a multiple: keeps the pad


class OnnxUnsupported(UnetmmError):
    """The model computes something from its input's size that a traced graph cannot follow."""


def export_onnx(model: SkipUNet, path: str | Path, opset: int = OPSET) -> Path:
    """Write ``model`` (eval mode) to ``path`` with dynamic batch/height/width axes. Raises
    ``OnnxUnsupported`` for NAFNetLocal (``tlc_train_size``): whether and how wide it pools
    locally depends on the input size, which a traced graph fixes at the sample's."""
    from nas.blocks import LocalAvgPool2d

    require_extra("onnx", "ONNX export")
    if any(isinstance(m, LocalAvgPool2d) for m in model.modules()):
        raise OnnxUnsupported(
            "onnx: NAFNetLocal's pooling window depends on the input size, which an ONNX graph "
            "with dynamic axes cannot follow; export the same weights without "
            "backbone.tlc_train_size (plain NAFNet: equal outputs up to 1.5x the training size)"
        )
    path = Path(path)
    side = _sample_side(model)
    sample = torch.rand(1, model.backbone.in_channels, side, side)
    axes = {0: "batch", 2: "height", 3: "width"}
    was_training = model.training
    model.eval()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer warnings about python-side shape checks
            torch.onnx.export(
                model, (sample,), str(path), dynamo=False, opset_version=opset,
                input_names=["input"], output_names=["output"],
                dynamic_axes={"input": axes, "output": axes},
            )  # fmt: skip
    finally:
        model.train(was_training)
    return path


def check_onnx(path: str | Path, model: SkipUNet, tolerance: float = 1e-4,
               seed: int = 0) -> OnnxReport:  # fmt: skip
    """Run the ONNX file and ``model`` on two random inputs (sizes that are and are not
    multiples of ``2**stages``); raise ``OnnxCheckFailed`` if they differ by > ``tolerance``."""
    require_extra("onnx", "ONNX check")
    import onnx
    import onnxruntime as ort

    onnx.checker.check_model(str(path))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    gen = torch.Generator().manual_seed(seed)
    m, c = model.backbone.size_multiple, model.backbone.in_channels
    sizes = [(1, c, 2 * m, 3 * m)]
    if model.backbone.pads_input:
        sizes.append((2, c, 2 * m + 5, 3 * m - 3))
    was_training = model.training
    model.eval()
    worst = 0.0
    try:
        for shape in sizes:
            x = torch.rand(shape, generator=gen)
            with torch.inference_mode():
                ref = model(x).numpy()
            out = session.run(None, {name: x.numpy()})[0]
            if out.shape != ref.shape:
                raise OnnxCheckFailed(f"ONNX output shape {out.shape} != PyTorch {ref.shape}")
            worst = max(worst, float(np.abs(out - ref).max()))
    finally:
        model.train(was_training)
    if not worst <= tolerance:
        raise OnnxCheckFailed(
            f"ONNX output differs from PyTorch by {worst:.3g} (tolerance {tolerance:g})"
        )
    return OnnxReport(Path(path), worst, tuple(sizes))
