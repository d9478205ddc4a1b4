"""Named architectures users can ask for on the command line, in study files and in Python.

``backbone_preset("nafnet-w32")`` gives a backbone config (the presets are registered by the
backbones' own modules in ``nas.registry.BACKBONE_PRESETS``); ``list_models()``, ``model_config``
and ``create_model`` name whole models (backbone preset + skip design) in timm's style.
"""

from __future__ import annotations

import dataclasses
import difflib
import fnmatch
from typing import Any

import torch

import nas.backbones  # noqa: F401  (each backbone module registers its presets)
from nas.config import ArchConfig
from nas.errors import ConfigError
from nas.model import build_model
from nas.registry import BACKBONE_PRESETS, SKIP_DESIGNS
from nas.skips import FullSkipsConfig, NoSkipsConfig, UNetMMConfig


def backbone_preset(name: str) -> object:
    """The backbone config registered as ``name`` (e.g. ``nafnet-w32``)."""
    return BACKBONE_PRESETS.get(name)()


def reference_designs(backbone: object) -> dict[str, ArchConfig]:
    """The three reference points of every study: full skips, no skips, the paper's UNet--
    (scaled to the backbone's depth and E1 width: ``UNetMMConfig.paper``)."""
    channels = backbone.stage_channels  # type: ignore[attr-defined]
    return {
        "full": ArchConfig(backbone, FullSkipsConfig()),
        "none": ArchConfig(backbone, NoSkipsConfig()),
        "unetmm": ArchConfig(backbone, UNetMMConfig.paper(len(channels), channels[0])),
    }


# -- models by name, in timm's style ---------------------------------------------------------
def _model_names(aliases: bool = False) -> dict[str, tuple[str, str]]:
    """``"nafnet-w32-unetmm"`` -> ``("nafnet-w32", "unetmm")``: every backbone preset with
    every skip design (registries may grow, so this is built on each call); ``aliases``: also
    the former names of renamed presets (``nafnet-sidd-unetmm``)."""
    backbones = BACKBONE_PRESETS.names() + (list(BACKBONE_PRESETS.aliases()) if aliases else [])
    return {f"{b}-{d}": (b, d) for b in backbones for d in SKIP_DESIGNS.names()}


def list_models(filter: str = "") -> list[str]:  # timm's name for the pattern
    """Names ``create_model`` accepts, sorted: ``<backbone preset>-<skip design>``, e.g.
    ``nafnet-w32-full`` (NAFNet as published), ``nafnet-w32-unetmm`` (the paper's UNet--).
    ``filter`` is a shell-style pattern (``"nafnet-*-unetmm"``); empty lists all."""
    names = sorted(_model_names())
    return [n for n in names if fnmatch.fnmatchcase(n, filter)] if filter else names


def model_config(name: str, **overrides: Any) -> ArchConfig:
    """The ``ArchConfig`` of model ``name`` (see ``list_models``), with ``overrides`` applied to
    the backbone or the skip design, whichever has the field (``width=64``,
    ``aggregated_channels=128``). The ``unetmm`` design is the paper's point for the backbone's
    depth and width; ``subset`` keeps E1 only unless ``stages`` says otherwise.
    An unknown name or field, or a bad value, raises ``ConfigError`` naming it."""
    names = _model_names(aliases=True)
    if name not in names:
        close = difflib.get_close_matches(name, list(_model_names()), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ConfigError(
            f"model: unknown name {name!r}{hint} "
            f"(nas.list_models() lists all {len(_model_names())})"
        )
    backbone_name, design = names[name]
    backbone = backbone_preset(backbone_name)
    backbone_fields = {f.name for f in dataclasses.fields(backbone)}  # type: ignore[arg-type]
    skip_class = SKIP_DESIGNS.get(design)
    skip_fields = {f.name for f in dataclasses.fields(skip_class)}
    unknown = sorted(set(overrides) - backbone_fields - skip_fields)
    if unknown:
        raise ConfigError(
            f"model {name}: {unknown[0]!r} is not a field of its backbone "
            f"({', '.join(sorted(backbone_fields))}) or skip design "
            f"({', '.join(sorted(skip_fields)) or 'none'})"
        )
    backbone = dataclasses.replace(  # type: ignore[type-var]
        backbone, **{k: v for k, v in overrides.items() if k in backbone_fields}
    )
    refs = reference_designs(backbone)
    skip = refs[design].skip if design in refs else skip_class()
    skip = dataclasses.replace(skip, **{k: v for k, v in overrides.items() if k in skip_fields})
    arch = ArchConfig(backbone, skip)
    skip.validate(backbone.stage_channels)  # type: ignore[attr-defined]
    return arch


def create_model(name: str, **overrides: Any) -> torch.nn.Module:
    """The model ``name`` (see ``list_models``) as a freshly initialised ``nn.Module``,
    ``overrides`` as in ``model_config``: ``create_model("nafnet-w32-unetmm", iem_depth=2)``."""
    return build_model(model_config(name, **overrides))
