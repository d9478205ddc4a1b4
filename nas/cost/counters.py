"""MAC counting conventions, as module hooks and dispatch rules (no tracing, works on ``meta``).

- ``fvcore``: one multiply-add counts once; convs/matmuls without bias, norms and pooling as
  fvcore's default handles count them (``fvcore.nn.FlopCountAnalysis``). ``FvcoreRules`` redoes
  those rules at the ATen dispatch level so a shape-only (``meta``) pass can count them; the
  tests check that its total, its MACs by op and its list of ops fvcore skips equal fvcore's
  exactly on every registered backbone x skip design.
- ``paper``: the module-hook convention of ptflops, which the UNet-- paper's tables use
  (NAFNet-w32: 16.23 G): conv MACs + bias adds, linear + bias, pooling and activations by
  element, BatchNorm/LayerNorm by element (x2 with an ``affine`` flag). Custom modules and
  functional ops count nothing.
"""

from __future__ import annotations

from collections import Counter
from math import prod
from typing import Any

import torch
from torch import nn

_POOLS = (
    nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d,
    nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d,
    nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d,
)  # fmt: skip
_NORMS = (
    nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.InstanceNorm1d, nn.InstanceNorm2d,
    nn.InstanceNorm3d, nn.GroupNorm, nn.LayerNorm,
)  # fmt: skip
_ACTIVATIONS = (nn.ReLU, nn.PReLU, nn.ELU, nn.LeakyReLU, nn.ReLU6, nn.GELU)
_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_TCONVS = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)


def paper_macs(module: nn.Module, inputs: tuple[Any, ...], output: Any) -> int:
    """MACs of one leaf-module call in the paper's (ptflops module-hook) convention."""
    x = inputs[0] if inputs else None
    if isinstance(module, _CONVS + _TCONVS):
        assert isinstance(module, nn.modules.conv._ConvNd)
        per_position = prod(module.kernel_size) * module.in_channels * (
            module.out_channels // module.groups
        )
        positions = x.shape[0] * prod((x if isinstance(module, _TCONVS) else output).shape[2:])
        bias = output.numel() if module.bias is not None else 0
        return per_position * positions + bias
    if isinstance(module, nn.Linear):
        rows = prod(x.shape[:-1])
        return (module.in_features * module.out_features + (module.out_features if
                module.bias is not None else 0)) * rows  # fmt: skip
    if isinstance(module, _POOLS):
        return x.numel()
    if isinstance(module, _NORMS):
        return x.numel() * (2 if getattr(module, "affine", False) else 1)
    if isinstance(module, _ACTIVATIONS + (nn.Upsample,)):
        return output.numel()
    return 0


# Dispatch-level ATen ops fvcore neither counts nor reports: its ``_IGNORED_OPS`` (views, copies,
# cat, relu, ...) and the pieces that ops it sees whole (linear, chunk) decompose into.
_IGNORED = {
    "view", "_unsafe_view", "reshape", "permute", "transpose", "t", "expand", "unsqueeze",
    "squeeze", "slice", "select", "split", "split_with_sizes", "chunk", "cat", "stack", "clone",
    "contiguous", "detach", "alias", "relu", "relu_", "copy_", "empty", "zeros", "ones", "full",
    "zeros_like", "empty_like", "unbind", "_to_copy", "lift_fresh",
}  # fmt: skip
# Dispatch-level ops that fvcore reports as unsupported under another (traced, JIT) name; other
# uncounted ops (pixel_shuffle, mean, mul, gelu, ...) have the same name at both levels.
_JIT_NAMES = {"max_pool2d_with_indices": "max_pool2d", "constant_pad_nd": "pad"}


class FvcoreRules:
    """fvcore's default counting rules applied to ATen dispatch calls.

    ``count(func, args, out)`` adds the op's MACs to ``by_op`` (by fvcore's op name) or records
    it in ``uncounted`` (by fvcore's ``aten::`` name), so both equal fvcore's ``by_operator()`` and
    ``unsupported_ops()``. Adaptive average pooling is counted from its module
    (``enter``/``leave``), since at dispatch level it becomes a ``mean`` that LayerNorm2d also
    uses: ops inside such a module are not counted again.
    """

    def __init__(self) -> None:
        self.by_op: Counter[str] = Counter()
        self.uncounted: Counter[str] = Counter()
        self.muted = 0  # > 0 while inside a module counted as a whole

    @property
    def total(self) -> int:
        return sum(self.by_op.values())

    def enter(self, module: nn.Module) -> None:
        if isinstance(module, nn.AdaptiveAvgPool2d):
            self.muted += 1

    def leave(self, module: nn.Module, inputs: tuple[Any, ...]) -> None:
        if isinstance(module, nn.AdaptiveAvgPool2d):
            self.muted -= 1
            self.by_op["adaptive_avg_pool2d"] += inputs[0].numel()

    def count(self, func: Any, args: tuple[Any, ...], out: Any) -> None:
        if self.muted:
            return
        name = func.overloadpacket.__name__
        shape = lambda t: tuple(t.shape)  # noqa: E731
        if name == "convolution":
            x, w, transposed = args[0], args[1], args[6]
            spatial = (x if transposed else out).shape[2:]
            self.by_op["conv"] += x.shape[0] * prod(shape(w)) * prod(spatial)
        elif name in ("addmm", "mm"):
            a, b = (args[1], args[2]) if name == "addmm" else (args[0], args[1])
            self.by_op["linear"] += a.shape[0] * a.shape[1] * b.shape[1]
        elif name == "bmm":
            n, c, t = shape(args[0])
            self.by_op["matmul"] += n * c * t * args[1].shape[-1]
        elif name == "native_layer_norm":
            self.by_op["layer_norm"] += args[0].numel() * (5 if args[2] is not None else 4)
        elif name in ("_native_batch_norm_legit_no_training", "native_batch_norm"):
            self.by_op["batch_norm"] += args[0].numel() * (2 if args[1] is not None else 1)
        elif name == "upsample_nearest2d":
            self.by_op["upsample_nearest2d"] += out.numel()
        elif name == "upsample_bilinear2d":
            self.by_op["upsample_bilinear2d"] += 4 * out.numel()
        elif name not in _IGNORED:
            self.uncounted[f"aten::{_JIT_NAMES.get(name, name)}"] += 1


def is_float_tensor(x: Any) -> bool:
    return isinstance(x, torch.Tensor) and x.is_floating_point()
