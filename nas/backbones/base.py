"""The backbone contract: the plug-in point every skip design works with.

A backbone is a U-Net without its skip connections. It owns, for ``N`` encoder stages:

- ``stem(x)``: the input projection (identity where ``encoders[0]`` takes the image itself; it
  may also downsample: MSCAN's stem takes the image to ``H / 4``);
- ``encoders[i](x) -> E_{i+1}`` with ``stage_channels[i]`` channels at ``H / stage_strides[i]``
  (``2**i`` for NAFNet and the classic U-Net, ``4 * 2**i`` for MSCAN); consecutive stages differ
  by a factor 2, which the UNet-- pixel (un)shuffles rely on;
- ``downs[i](E_{i+1})``: the map handed to the next stage (or to ``middle`` after the last); it
  must be a new tensor, not ``E_{i+1}`` itself, or a skip that keeps E_{i+1} would share the main
  path's memory and the traced M_sc would not match the analytic one;
- ``middle(x)``: the bottleneck (``H / 2**N`` for NAFNet and U-Net; MSCAN's at E_N's resolution);
- ``ups[i](x)``: brings the deeper decoder map to stage ``i`` (channels and resolution of E_{i+1});
- ``merge(i, x, skip)``: merges the skip input ``S_{i+1}`` (or ``None``: no skip at that stage)
  into the upsampled map its own way (add, concatenate, ...);
- ``decoders[i](x) -> D_{i+1}``: the decoder stage on the merged map;
- ``head(x, inp)``: the output projection (plus a global residual where the backbone has one).

Contract for callers: ``forward`` of ``nas.model.SkipUNet`` calls these in U-Net order, exactly once
each per forward pass; ``skip_present[i]`` (fixed at construction) says whether ``merge(i, ...)``
receives a tensor of ``stage_channels[i]`` channels or ``None``. ``size_multiple`` is the factor the
input's height and width must divide; a backbone with ``pads_input`` pads the input up to it and
crops the output back, so any size works. The backbone's *config* states the same facts without
building anything: ``stage_channels``, ``stage_strides`` and ``size_multiple`` (the analytic M_sc
reads them; tests check config and module agree).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from nas.config import ConfigBase
from nas.errors import ConfigError
from nas.protocols import BackboneConfig


PROXY_WIDTH = 16  # the proxy backbones' width (NAFNet, U-Net); MSCAN halves its own


class BackboneConfigBase(ConfigBase):
    """Defaults of ``nas.protocols.BackboneConfig``: stage i at ``H / 2**i``, so inputs are
    padded (or must divide) to ``2**N``; the input is padded unless a config says otherwise.

    A backbone is one module (``nas/backbones/<name>.py``, found by ``nas.backbones``, or a
    package's ``unetmm.backbones`` entry point) that registers its config in
    ``nas.registry.BACKBONES``, its named configs in ``BACKBONE_PRESETS`` and its repeated
    blocks with ``@replayable``, and overrides here what it supports:

    - ``proxy()``: the narrow, shallow config the search trains in its place (else a study
      must name ``proxy.backbone``);
    - ``official_name`` with ``from_official``/``official_to_ours``: the layout of the
      published weights (``nas.checkpoints``);
    - ``supernet``: whether NNI's one-shot supernet can share it between skip designs (its
      decoder's widths must not depend on the skips: merges by addition).
    """

    official_name: ClassVar[str | None] = None  # the published weights' family, if loadable
    official_shape_fields: ClassVar[tuple[str, ...]] = ()  # fields the weights' shapes fix
    supernet: ClassVar[bool] = False

    def proxy(self) -> BackboneConfigBase:
        """The proxy backbone of this target: the same family and depth, narrow and shallow."""
        raise ConfigError(f"proxy.backbone: backbone {self.name!r} has no proxy rule; set "
                          "proxy.backbone in the study")  # fmt: skip

    @classmethod
    def detects_official(cls, state: Mapping[str, Any]) -> bool:
        """Whether ``state`` (names -> tensors, the official layout) is of this family."""
        return False

    @classmethod
    def from_official(cls, state: Mapping[str, Any], field: str) -> BackboneConfigBase:
        """The config published weights were trained with, read off their names and shapes."""
        raise ConfigError(f"{field}: backbone {cls.name!r} loads no official checkpoints")

    def official_to_ours(self, key: str) -> str:
        """One tensor name of the published layout as unetmm's (under ``backbone.``)."""
        return "backbone." + key

    @property
    def stage_strides(self) -> tuple[int, ...]:
        """E_i is at ``H / 2**(i-1)``: the first stage runs at full resolution."""
        return tuple(2**i for i in range(len(self.stage_channels)))  # type: ignore[attr-defined]

    @property
    def size_multiple(self) -> int:
        return 2 ** len(self.stage_channels)  # type: ignore[attr-defined]

    @property
    def pad_input(self) -> bool:
        return True


def padded_size(cfg: BackboneConfig, height: int, width: int) -> tuple[int, int]:
    """The spatial size a backbone really runs at: padded up to ``size_multiple`` (or, for a
    backbone that does not pad, the size itself, which must divide; else ``ConfigError``)."""
    m = cfg.size_multiple
    if cfg.pad_input:
        return (-(-height // m) * m, -(-width // m) * m)
    if height % m or width % m:
        raise ConfigError(
            f"input: {height}x{width} is not divisible by {m} and the backbone does not pad; "
            f"use a multiple of {m} or set backbone.pad_input: true"
        )
    return (height, width)


class Backbone(nn.Module):
    """Base class of registered backbones; subclasses fill the modules listed above."""

    stage_channels: tuple[int, ...]
    in_channels: int
    out_channels: int
    pads_input: bool = True

    def __init__(self) -> None:
        super().__init__()
        self.encoders = nn.ModuleList()
        self.downs = nn.ModuleList()
        self.ups = nn.ModuleList()
        self.decoders = nn.ModuleList()

    @property
    def num_stages(self) -> int:
        return len(self.stage_channels)

    @property
    def size_multiple(self) -> int:
        return 2 ** self.num_stages

    def stem(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def middle(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def merge(self, i: int, x: torch.Tensor, skip: torch.Tensor | None) -> torch.Tensor:
        raise NotImplementedError

    def head(self, x: torch.Tensor, inp: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


def pad_to_multiple(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """Zero-pad the bottom/right of an ``(N, C, H, W)`` tensor up to a multiple of ``multiple``."""
    h, w = x.shape[-2:]
    if not torch.onnx.is_in_onnx_export():  # ONNX keeps the arithmetic: sizes stay dynamic there
        h, w = int(h), int(w)  # plain ints: fvcore's JIT trace records no shape arithmetic
    ph, pw = (-h) % multiple, (-w) % multiple
    return F.pad(x, (0, pw, 0, ph)) if ph or pw else x
