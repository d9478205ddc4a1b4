"""``SkipUNet``: a backbone and a skip design joined into one ``nn.Module``; ``build_model``."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable

import torch
from torch import nn

from nas.backbones.base import Backbone, pad_to_multiple, padded_size
from nas.config import ArchConfig
from nas.errors import ConfigError
from nas.skips.base import SkipContext, SkipDesign

# Called with the boundary label and the tensors the backbone's main path holds there.
BoundaryHook = Callable[[str, tuple[torch.Tensor, ...]], None]


class SkipUNet(nn.Module):
    """U-Net forward over any backbone and skip design: ``(B, in, H, W) -> (B, out, H, W)``.

    ``boundary_hooks`` (empty by default) are called after every stage with the boundary label
    (``E1``.., ``M``, ``D4``..) and the main path's tensors there: the input, the padded input
    and the map handed to the next stage. Everything else alive at that moment is held for the
    skips. Locals are dropped as soon as a stage is done so that a live-memory trace sees what a
    careful deployment holds. ``skip_context`` makes the per-forward ``SkipContext`` (the cost
    tracer swaps in one that meters ``push``).
    """

    def __init__(self, arch: ArchConfig, backbone: Backbone, skip: SkipDesign) -> None:
        super().__init__()
        self.arch = arch
        self.backbone = backbone
        self.skip = skip
        self.boundary_hooks: list[BoundaryHook] = []
        self.skip_context: Callable[[SkipDesign], SkipContext] = SkipContext

    def check_input(self, shape: tuple[int, ...] | torch.Size) -> None:
        """Raise ConfigError if an input of ``shape`` cannot run (before any compute)."""
        cfg = self.arch.backbone
        if len(shape) != 4 or shape[1] != cfg.in_channels:
            raise ConfigError(
                f"input: expected shape (B, {cfg.in_channels}, H, W), got {tuple(shape)}"
            )
        if not cfg.pad_input:  # the one divisibility rule (raises ConfigError)
            padded_size(cfg, int(shape[2]), int(shape[3]))

    def _mark(self, label: str, *main: torch.Tensor) -> None:
        for hook in self.boundary_hooks:
            hook(label, main)

    def forward(self, inp: torch.Tensor) -> torch.Tensor:
        self.check_input(inp.shape)
        bb, n = self.backbone, self.backbone.num_stages
        h, w = inp.shape[-2:]
        x0 = pad_to_multiple(inp, bb.size_multiple) if bb.pads_input else inp
        ctx = self.skip_context(self.skip)
        x = bb.stem(x0)
        for i in range(n):
            e = bb.encoders[i](x)
            del x
            ctx.push(i, e)
            x = bb.downs[i](e)
            del e
            self._mark(f"E{i + 1}", inp, x0, x)
        x = bb.middle(x)
        self._mark("M", inp, x0, x)
        for i in reversed(range(n)):
            x = bb.ups[i](x)
            skip = ctx.pull(i)
            x = bb.merge(i, x, skip)
            del skip  # a deployment frees S_i once merged; so does this forward
            x = bb.decoders[i](x)
            self._mark(f"D{i + 1}", inp, x0, x)
        out = bb.head(x, x0)
        return out[..., :h, :w]


def build_model(arch: ArchConfig, backbone: Backbone | None = None) -> SkipUNet:
    """Build the ``nn.Module`` an ``ArchConfig`` describes (random init, train mode); with
    ``backbone``, around that already built backbone module (``build_meta_model``).

    Raises ConfigError if the skip design does not fit the backbone (before any forward pass).
    """
    import nas.backbones  # noqa: F401  (fills the registries)
    import nas.skips  # noqa: F401

    stage_channels = arch.backbone.stage_channels
    arch.skip.validate(stage_channels)
    skip = arch.skip.build(stage_channels)
    if backbone is None:
        backbone = arch.backbone.build(arch.skip.delivers(len(stage_channels)))
    return SkipUNet(arch, backbone, skip)


def randomize(model: torch.nn.Module, scale: float = 0.05, seed: int = 0) -> torch.nn.Module:
    """Add ``scale`` x N(0, 1) noise to every parameter of ``model`` (in place; returned): a
    model whose blocks are no identities (NAFNet's and IEM's start as identities), for checks
    that compare two ways of computing the same output."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(scale * torch.randn(p.shape, generator=gen, dtype=p.dtype).to(p.device))
    return model


META_LOCK = threading.RLock()  # held while a model from ``build_meta_model`` is traced


def build_meta_model(arch: ArchConfig) -> SkipUNet:
    """``build_model`` on the ``meta`` device, for shape-only costing; the backbone module is
    built once per process for each (backbone config, skips delivered) and shared by every
    model built here (its parameters hold no values; initialising NAFNet-w32 on ``meta`` costs
    ~80 ms). Callers that run hooks or change modes on it hold ``META_LOCK`` while they do
    (``trace_forward`` takes it).
    """
    arch.skip.validate(arch.backbone.stage_channels)  # before a backbone is built for it
    backbone = _meta_backbone(arch.backbone, arch.skip.delivers(len(arch.backbone.stage_channels)))
    with torch.device("meta"):
        return build_model(arch, backbone)


@functools.lru_cache(maxsize=8)
def _meta_backbone(backbone: object, delivers: tuple[bool, ...]) -> Backbone:
    import nas.backbones  # noqa: F401

    with torch.device("meta"):
        return backbone.build(delivers)  # type: ignore[attr-defined,no-any-return]
