"""Reference points: the designs every study evaluates first, as parameters of a space.

The built-in ones are ``nas.presets.reference_designs``: NAFNet-style full skips, no skips and
the paper's UNet-- point. Users add their own skip configs (``encode_point``).
"""

from __future__ import annotations

from typing import Any

from nas.errors import ConfigError
from nas.presets import reference_designs
from nas.registry import SKIP_DESIGNS
from search_spaces.bounds import SpaceBounds
from search_spaces.registry import Params, SearchSpace

REFERENCE_NAMES = ("full", "none", "unetmm")


def reference_points(
    space: SearchSpace, bounds: SpaceBounds, backbone: Any, names: tuple[str, ...] = REFERENCE_NAMES
) -> dict[str, Params | None]:
    """``name -> params`` of each reference design on ``backbone``; None where ``space`` (with
    these bounds) cannot express it, e.g. ``full`` in the ``unetmm`` space."""
    designs = reference_designs(backbone)
    unknown = [n for n in names if n not in designs]
    if unknown:
        raise ConfigError(
            f"space.references: unknown {unknown}; choose from {list(designs)} (or [] for none)"
        )
    return {name: space.encode(designs[name].skip, bounds) for name in names}


def encode_point(space: SearchSpace, skip: Any, bounds: SpaceBounds, where: str) -> Params:
    """Params of a user's skip design (a config or a mapping like ``{name: unetmm, ...}``);
    ConfigError naming ``where`` if the space cannot express it."""
    shown = skip if isinstance(skip, dict) else skip.to_dict()
    if isinstance(skip, dict):
        fields = dict(skip)
        if "name" not in fields:
            raise ConfigError(f"{where}: needs a 'name' (one of {SKIP_DESIGNS.names()})")
        skip = SKIP_DESIGNS.get(fields.pop("name")).from_fields(fields, where)
    try:
        skip.validate(bounds.stage_channels)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    params = space.encode(skip, bounds)
    if params is None:
        raise ConfigError(
            f"{where}: {shown} is not a point of space {space.name!r} with these bounds "
            "(ratios and aggregated channels must be powers of two inside space.bounds)"
        )
    return params
