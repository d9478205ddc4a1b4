"""The two config contracts every caller relies on, as ``typing.Protocol``s.

An ``ArchConfig`` pairs a ``BackboneConfig`` with a ``SkipConfig``. Both are frozen, hashable
dataclasses registered by ``name`` (``nas.registry``); callers use only the members below, never
probe for others. ``nas.backbones.base.BackboneConfigBase`` and ``nas.skips.base.SkipConfigBase``
give the shared defaults.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from torch import nn

Size = tuple[int, int]


@runtime_checkable
class BackboneConfig(Protocol):
    """A registered backbone's config (``nas.backbones.base`` states the module contract)."""

    name: str

    @property
    def stage_channels(self) -> tuple[int, ...]:
        """Channels of E_1..E_N (shallowest first)."""

    @property
    def stage_strides(self) -> tuple[int, ...]:
        """The downsampling factor of E_1..E_N against the input (consecutive ones differ by 2)."""

    @property
    def in_channels(self) -> int:
        """Channels of the input image."""

    @property
    def pad_input(self) -> bool:
        """Whether the model pads any input up to ``size_multiple`` (else it must divide)."""

    @property
    def size_multiple(self) -> int:
        """The factor an input's height and width are padded to (or must divide)."""

    def build(self, skip_present: tuple[bool, ...]) -> nn.Module:
        """The backbone module; ``skip_present[i]``: stage i receives a skip."""

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON with ``name``; ``ArchConfig.from_dict`` reads it back."""


@runtime_checkable
class SkipConfig(Protocol):
    """A registered skip design's config (``nas.skips.base`` states the module contract)."""

    name: str

    def delivers(self, num_stages: int) -> tuple[bool, ...]:
        """Which decoder stages (0-based) receive a skip."""

    def validate(self, stage_channels: tuple[int, ...]) -> None:
        """Raise ``ConfigError`` unless the design fits a backbone with these stage channels."""

    def held_elements(self, stage_channels: tuple[int, ...], sizes: list[Size]) -> list[int]:
        """The analytic M_sc timeline in elements per image, at every stage boundary."""

    def with_absolute_channels(self, stage_channels: tuple[int, ...]) -> SkipConfig:
        """The same design with its widths spelled out in channels (for another backbone)."""

    def build(self, stage_channels: tuple[int, ...]) -> nn.Module:
        """The skip-design module (``push``/``pull``)."""

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON with ``name``."""
