"""Regions of feature maps and the footprint of a module call: which input region an output
region needs.

A ``Box`` is a rectangle ``[y0, y1) x [x0, x1)`` in the global coordinates of one resolution.
A ``Footprint`` is the ordered list of spatial steps one call runs (recorded by running the call
once on ``meta`` tensors with hooks on its modules, ``record``): convolutions, pools, pixel
(un)shuffles, a declared halo, or pointwise steps. ``Footprint.need(box)`` maps an output region
back to the input region that determines it exactly (its receptive field, clipped to the map);
``Footprint.ratio`` is the call's output/input resolution.

Leaf modules are understood by type. A module whose leaves do not run one after another (a block
with parallel branches) may declare ``tile_halo = k``: it is then one step that keeps its
resolution and needs ``k`` more pixels on each side (MSCAN's MSCA). ``tile_halo = 0`` marks a
custom pointwise module. A module that reads the whole map (``AdaptiveAvgPool2d(1)``, ConvNeXt
V2's ``GRN``, NAFNetLocal's pooling when its window covers the map) is a *global* step: the tiled
executor gathers its statistic over all tiles first (see ``nas.tiling.executor``). Any other
spatial leaf (an upsampler, a reflect-padded conv, ...) cannot be tiled exactly: ``record``
raises ``ConfigError`` naming it.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from fractions import Fraction
from typing import Any

import torch
from torch import nn

from nas.blocks import GRN, LayerNorm2d, LocalAvgPool2d, SimpleGate
from nas.errors import ConfigError

Span = tuple[int, int]  # [start, stop) along one axis


@dataclasses.dataclass(frozen=True)
class Box:
    """``[y0, y1) x [x0, x1)``, global coordinates at one resolution."""

    y0: int
    y1: int
    x0: int
    x1: int

    @classmethod
    def of(cls, ys: Span, xs: Span) -> Box:
        return cls(ys[0], ys[1], xs[0], xs[1])

    @property
    def ys(self) -> Span:
        return (self.y0, self.y1)

    @property
    def xs(self) -> Span:
        return (self.x0, self.x1)

    @property
    def shape(self) -> tuple[int, int]:
        return (self.y1 - self.y0, self.x1 - self.x0)

    def hull(self, other: Box) -> Box:
        return Box(min(self.y0, other.y0), max(self.y1, other.y1),
                   min(self.x0, other.x0), max(self.x1, other.x1))  # fmt: skip

    def contains(self, other: Box) -> bool:
        return (self.y0 <= other.y0 and other.y1 <= self.y1
                and self.x0 <= other.x0 and other.x1 <= self.x1)  # fmt: skip

    def scaled(self, factor: Fraction) -> Box:
        """This box at a resolution ``factor`` times this one's (outward where it rounds)."""
        f = Fraction(factor)
        return Box(math.floor(self.y0 * f), math.ceil(self.y1 * f),
                   math.floor(self.x0 * f), math.ceil(self.x1 * f))  # fmt: skip

    def aligned(self, step: int, size: tuple[int, int]) -> Box:
        """Grown outward to multiples of ``step``, clipped to ``size`` (which ``step`` divides
        wherever a map is strided; the last row or column is clipped otherwise)."""
        return Box(self.y0 // step * step, min(size[0], -(-self.y1 // step) * step),
                   self.x0 // step * step, min(size[1], -(-self.x1 // step) * step))  # fmt: skip

    def slices(self, origin: tuple[int, int]) -> tuple[slice, slice]:
        """This box in a local tensor whose element ``[0, 0]`` sits at global ``origin``."""
        oy, ox = origin
        return slice(self.y0 - oy, self.y1 - oy), slice(self.x0 - ox, self.x1 - ox)


def take(t: torch.Tensor, origin: tuple[int, int], box: Box) -> torch.Tensor:
    """The part of local map ``t`` (element [0, 0] at global ``origin``) covering ``box``: a
    view. ``box`` must lie inside ``t``'s region (an executor bug otherwise)."""
    h, w = t.shape[-2:]
    have = Box(origin[0], origin[0] + int(h), origin[1], origin[1] + int(w))
    if not have.contains(box):
        raise AssertionError(f"tiling: region {box} is not inside the computed {have}")
    ys, xs = box.slices(origin)
    return t[..., ys, xs]


# -- one spatial step of a call -------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Step:
    """One leaf's effect on regions, per axis (y, x): ``kind`` is ``conv`` (also pools),
    ``tconv``, ``shuffle`` (up by ``stride``), ``unshuffle`` (down by ``stride``), ``halo``,
    ``local_pool`` (NAFNetLocal's clipped window) or ``global``. ``in_size``: the
    input map's size at the recorded full resolution. ``path``: the module's name in the model."""

    kind: str
    in_size: tuple[int, int]
    kernel: tuple[int, int] = (1, 1)
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    dilation: tuple[int, int] = (1, 1)
    path: str = ""
    channels: int = 0  # of a global step: the statistic's length

    @property
    def is_identity(self) -> bool:
        """A step that maps every region to itself (a 1x1 convolution, stride 1)."""
        return self.kind == "conv" and self.kernel == (1, 1) and self.stride == (1, 1) and (
            self.padding == (0, 0))

    def need(self, box: Box) -> Box:
        """The input region the outputs in ``box`` read, clipped to the input map."""
        ys = self._need_axis(box.ys, 0)
        xs = self._need_axis(box.xs, 1)
        h, w = self.in_size
        return Box(max(0, ys[0]), min(h, ys[1]), max(0, xs[0]), min(w, xs[1]))

    def _need_axis(self, span: Span, a: int) -> Span:
        o0, o1 = span
        k, s, p, d = self.kernel[a], self.stride[a], self.padding[a], self.dilation[a]
        if self.kind == "conv":
            return (o0 * s - p, (o1 - 1) * s - p + d * (k - 1) + 1)
        if self.kind == "tconv":  # output j reads input i where j = i*s - p + m*d, 0 <= m < k
            return (-((-(o0 + p - d * (k - 1))) // s), (o1 - 1 + p) // s + 1)
        if self.kind == "shuffle":
            return (o0 // s, -(-o1 // s))
        if self.kind == "unshuffle":
            return (o0 * s, o1 * s)
        if self.kind == "halo":
            return (o0 - k, o1 + k)
        if self.kind == "local_pool":  # output P averages [c, c + k), c = clamp(P - (k-1)//2)
            n = self.in_size[a]

            def start(pos: int) -> int:
                return min(max(pos - (k - 1) // 2, 0), n - k)

            return (start(o0), start(o1 - 1) + k)
        return span  # global: the same region


def _pair(v: Any) -> tuple[int, int]:
    return (int(v), int(v)) if isinstance(v, int) else (int(v[0]), int(v[1]))


POINTWISE: tuple[type[nn.Module], ...] = (
    nn.Identity, nn.Dropout, nn.ReLU, nn.ReLU6, nn.GELU, nn.SiLU, nn.Sigmoid, nn.Tanh,
    nn.LeakyReLU, nn.PReLU, nn.ELU, nn.Hardswish, nn.LayerNorm, nn.Linear, nn.BatchNorm2d,
    LayerNorm2d, SimpleGate,
)  # fmt: skip
_WHOLE_MAP_NORMS = (nn.InstanceNorm2d, nn.GroupNorm)


def step_of(module: nn.Module, path: str, inp: torch.Tensor, out: torch.Tensor) -> Step | None:
    """The ``Step`` of one leaf call (None: it maps every region to itself, as pointwise
    modules and 1x1 convolutions do; also those applied to a pooled statistic).
    Raises ``ConfigError`` for a leaf that cannot be tiled exactly."""
    size = (int(inp.shape[-2]), int(inp.shape[-1])) if inp.dim() >= 2 else (1, 1)
    declared = getattr(module, "tile_halo", None)
    if declared is not None:
        return Step("halo", size, kernel=(int(declared),) * 2, path=path)
    if isinstance(module, LocalAvgPool2d):
        kh, kw = module.kernel
        if kh >= size[0] and kw >= size[1]:
            return Step("global", size, path=path, channels=int(inp.shape[1]))
        return Step("local_pool", size, kernel=(min(kh, size[0]), min(kw, size[1])), path=path)
    if isinstance(module, nn.AdaptiveAvgPool2d) and _pair(module.output_size) == (1, 1):
        return Step("global", size, path=path, channels=int(inp.shape[1]))
    if isinstance(module, GRN):  # (N, H, W, C): space is dims 1, 2
        return Step("global", (int(inp.shape[1]), int(inp.shape[2])), path=path,
                    channels=int(inp.shape[-1]))
    if isinstance(module, _WHOLE_MAP_NORMS):
        raise _cannot(path, module, "it normalises over the whole map")
    if isinstance(module, POINTWISE):  # BatchNorm: the executor runs in eval mode
        return None
    if isinstance(module, nn.Conv2d):
        if module.padding_mode != "zeros" or module.padding == "same":
            raise _cannot(path, module, "only zero padding given as numbers tiles exactly")
        step = Step("conv", size, _pair(module.kernel_size), _pair(module.stride),
                    _pair(0 if module.padding == "valid" else module.padding),
                    _pair(module.dilation), path)  # fmt: skip
        return None if step.is_identity else step
    if isinstance(module, nn.ConvTranspose2d):
        return Step("tconv", size, _pair(module.kernel_size), _pair(module.stride),
                    _pair(module.padding), _pair(module.dilation), path)  # fmt: skip
    if isinstance(module, nn.MaxPool2d | nn.AvgPool2d):
        if module.ceil_mode:
            raise _cannot(path, module, "ceil_mode pools do not tile exactly")
        dil = getattr(module, "dilation", 1)
        return Step("conv", size, _pair(module.kernel_size), _pair(module.stride or
                    module.kernel_size), _pair(module.padding), _pair(dil), path)  # fmt: skip
    if isinstance(module, nn.PixelShuffle):
        return Step("shuffle", size, stride=(module.upscale_factor,) * 2, path=path)
    if isinstance(module, nn.PixelUnshuffle):
        return Step("unshuffle", size, stride=(module.downscale_factor,) * 2, path=path)
    raise _cannot(path, module, "its footprint is not known; give it a tile_halo")


def _cannot(path: str, module: nn.Module, why: str) -> ConfigError:
    return ConfigError(f"tiling: module {path or '(root)'} ({type(module).__name__}) cannot be "
                       f"tiled exactly: {why}; use the layer executor for this model")  # fmt: skip


@dataclasses.dataclass(frozen=True)
class Footprint:
    """The spatial steps of one call, in the order they ran; ``in_size``/``out_size`` of the
    call at full resolution."""

    steps: tuple[Step, ...]
    in_size: tuple[int, int]
    out_size: tuple[int, int]
    out_channels: int

    @property
    def ratio(self) -> Fraction:
        """Output over input resolution (2: upsampling, 1/2: a strided stage); the same along
        both axes (``record`` checks it)."""
        return Fraction(self.out_size[0], self.in_size[0])

    @property
    def globals(self) -> tuple[str, ...]:
        """Paths of the whole-map steps, in call order."""
        return tuple(s.path for s in self.steps if s.kind == "global")

    def need(self, box: Box) -> Box:
        """The input region the outputs in ``box`` need; for a downsampling call grown to
        multiples of its stride, so the output grid of the input region is the global one."""
        for step in reversed(self.steps):
            box = step.need(box)
        if self.ratio < 1:
            step = int(1 / self.ratio)
            box = box.aligned(step, self.in_size)
        return box


class Recorder:
    """Records the ``Step`` of every leaf call under ``model`` while active (``with``); steps
    name their module by its path in ``model``, after ``prefix`` (its path in the whole
    model)."""

    def __init__(self, model: nn.Module, prefix: str = "") -> None:
        self.model = model
        self.names = {m: prefix + n for n, m in model.named_modules()}
        self.steps: list[Step] = []
        self._handles: list[Any] = []
        self._inside = 0  # > 0 while inside a module recorded as one step (tile_halo, GRN)

    def __enter__(self) -> Recorder:
        for module in self.model.modules():
            atomic = _atomic(module)
            if not atomic and list(module.children()):
                continue
            if atomic:
                self._handles.append(module.register_forward_pre_hook(self._enter_atomic))
            self._handles.append(module.register_forward_hook(self._leave, always_call=True))
        return self

    def __exit__(self, *exc: object) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()

    def _enter_atomic(self, module: nn.Module, args: Any) -> None:
        self._inside += 1

    def _leave(self, module: nn.Module, args: Any, out: Any) -> None:
        atomic = _atomic(module)
        if atomic:
            self._inside -= 1
        if self._inside or not args or not isinstance(args[0], torch.Tensor):
            return
        if not isinstance(out, torch.Tensor):
            return
        step = step_of(module, self.names.get(module, ""), args[0], out)
        if step is not None:
            self.steps.append(step)

    def call(self, fn: Callable[[], torch.Tensor], inp: torch.Tensor) -> tuple[Footprint, Any]:
        """Run ``fn`` (a call on ``inp``) with recording on; its footprint and its output."""
        self.steps.clear()
        out = fn()
        if not isinstance(out, torch.Tensor) or out.dim() != 4:
            raise ConfigError("tiling: a call returned no (N, C, H, W) map; this model cannot be "
                              "tiled")  # fmt: skip
        size_in = (int(inp.shape[-2]), int(inp.shape[-1]))
        size_out = (int(out.shape[-2]), int(out.shape[-1]))
        if Fraction(size_out[0], size_in[0]) != Fraction(size_out[1], size_in[1]):
            raise ConfigError(f"tiling: a call maps {size_in} to {size_out}, rescaling the axes "
                              "differently; this model cannot be tiled")  # fmt: skip
        return Footprint(tuple(self.steps), size_in, size_out, int(out.shape[1])), out


def _atomic(module: nn.Module) -> bool:
    """A module recorded as one step although it has children."""
    return getattr(module, "tile_halo", None) is not None and bool(list(module.children()))

