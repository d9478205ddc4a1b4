"""Official checkpoints (BasicSR layout: ``{"params": state_dict}``) in unetmm models.

A published ``.pth`` (NAFNet-SIDD-width32, ...) holds the state dict of the official module.
Its names differ from a ``SkipUNet``'s: ours sit under ``backbone.`` (a skip design's own
modules under ``skip.``), and each family renames a few more; the backbone's config states its
family's layout (``official_name``, ``detects_official``, ``from_official``,
``official_to_ours``: ``nas.backbones.base.BackboneConfigBase``), so this module knows no
family. NAFNet's: ``nas.backbones.nafnet``.

The backbone of a UNet-- (or any skip design) is the same module as with full skips, so the
official weights load into its ``backbone.`` and leave the skip design's tensors as initialised
(a warm start, ``strict=False``). State dicts in unetmm's own layout (``model.pt``,
``ckpt_*.pt``: the ``model`` entry) load the same way, names unchanged. Every problem raises
one ``ConfigError`` line naming ``field`` (the flag or config field that gave the checkpoint).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from nas.errors import ConfigError
from nas.model import SkipUNet
from nas.registry import BACKBONES

# where a checkpoint file keeps its state dict: BasicSR's keys, then unetmm's model.pt/ckpt
STATE_KEYS = ("params", "params_ema", "model", "state_dict")
OURS = ("backbone.", "skip.")

StateDict = dict[str, torch.Tensor]


@dataclasses.dataclass(frozen=True)
class LoadReport:
    """What a load did: ``loaded`` (model names given the checkpoint's values) and ``new`` (model
    names the checkpoint does not hold: left as initialised), both in the model's order."""

    loaded: tuple[str, ...]
    new: tuple[str, ...]
    layout: str  # the family of an official checkpoint ("NAFNet"), or "unetmm"

    def summary(self) -> str:
        """One line: counts per top-level module, e.g. ``loaded 388 tensors (backbone: 388) of
        an official NAFNet checkpoint; 34 new (skip: 34)``."""
        text = f"loaded {len(self.loaded)} tensors ({_groups(self.loaded)}) of "
        text += f"an official {self.layout}" if self.layout != "unetmm" else "a unetmm"
        text += " checkpoint"
        return text + (f"; {len(self.new)} new ({_groups(self.new)})" if self.new else "")


def _groups(names: tuple[str, ...]) -> str:
    counts: dict[str, int] = {}
    for name in names:
        top = name.split(".", 1)[0]
        counts[top] = counts.get(top, 0) + 1
    return ", ".join(f"{k}: {v}" for k, v in counts.items()) or "none"


def read_state_dict(source: str | Path | Mapping[str, Any], field: str = "checkpoint") -> StateDict:
    """The tensors of a checkpoint file or mapping: its ``params`` (BasicSR), ``params_ema``,
    ``model`` (unetmm) or ``state_dict`` entry, else the mapping itself; a ``module.`` prefix
    (DataParallel) is dropped. Files are read with ``weights_only=True`` on the CPU."""
    if isinstance(source, str | Path):
        path = Path(source).expanduser()
        if not path.is_file():
            raise ConfigError(f"{field}: no checkpoint file {str(source)!r}")
        try:
            source = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001  (torn file, pickle with code, not torch at all)
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ConfigError(f"{field}: cannot read {str(path)!r} as a torch checkpoint "
                              f"({reason})") from None  # fmt: skip
    if not isinstance(source, Mapping):
        raise ConfigError(f"{field}: expected a state dict, got {type(source).__name__}")
    state: Any = next((source[k] for k in STATE_KEYS if isinstance(source.get(k), Mapping)), source)
    out = {k.removeprefix("module."): v for k, v in state.items() if isinstance(v, torch.Tensor)}
    if not out:
        raise ConfigError(f"{field}: holds no tensors (expected a state dict, e.g. under "
                          f"'params' as BasicSR saves it)")  # fmt: skip
    return out


def is_official(state: Mapping[str, Any]) -> bool:
    """Whether ``state`` is in the official layout (no name under ``backbone.``/``skip.``)."""
    return not any(k.startswith(OURS) for k in state)


def official_config(state: Mapping[str, torch.Tensor], field: str = "checkpoint") -> Any:
    """The backbone config an official state dict was trained with: the first registered
    family that recognises its names reads it off them (``ConfigError`` if none does)."""
    for name in BACKBONES.names():
        cls = BACKBONES.get(name)
        if cls.official_name and cls.detects_official(state):
            return cls.from_official(state, field)
    known = [BACKBONES.get(n).official_name for n in BACKBONES.names()
             if BACKBONES.get(n).official_name]  # fmt: skip
    raise ConfigError(f"{field}: not an official checkpoint of {', '.join(known)} (first name "
                      f"{next(iter(state), 'none')!r})")  # fmt: skip


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _shape(t: torch.Tensor) -> str:
    return "(" + ", ".join(str(s) for s in t.shape) + ")"


def _check_backbone(model: SkipUNet, state: Mapping[str, torch.Tensor], field: str) -> Any:
    """The model's backbone config, after checking the checkpoint's network fits it."""
    backbone = model.arch.backbone
    family = type(backbone).official_name
    if not family or not type(backbone).detects_official(state):
        found = official_config(state, field)  # names the family the checkpoint is of
        raise ConfigError(f"{field}: an official {found.official_name} checkpoint needs a "
                          f"{found.name} backbone, the model's is {backbone.name!r}")  # fmt: skip
    found = type(backbone).from_official(state, field)
    for f in type(backbone).official_shape_fields:  # the fields that shape the tensors
        have, want = getattr(found, f), getattr(backbone, f)
        if have != want:
            raise ConfigError(f"{field}: the checkpoint's {family} has {f} {_plain(have)}, the "
                              f"model's backbone.{f} is {_plain(want)}")  # fmt: skip
    return backbone


def load_official(
    model: SkipUNet,
    source: str | Path | Mapping[str, Any],
    strict: bool = True,
    field: str = "checkpoint",
) -> LoadReport:
    """Load an official checkpoint (file or state dict; or one in unetmm's layout) into
    ``model`` (a ``SkipUNet``), in place. Every checkpoint tensor must find a model tensor of the
    same shape; with ``strict`` every model tensor must also be in the checkpoint (the network
    as published: full skips), without it the others stay as initialised (warm start of a
    UNet-- from a published backbone). Raises ``ConfigError`` naming ``field`` and the first
    mismatch; nothing is changed then."""
    state = read_state_dict(source, field)
    official = is_official(state)
    if official:
        backbone = _check_backbone(model, state, field)
        mapped = {backbone.official_to_ours(k): (k, v) for k, v in state.items()}
    else:
        mapped = {k: (k, v) for k, v in state.items()}
    own = model.state_dict()
    stray = [src for ours, (src, _) in mapped.items() if ours not in own]
    if stray:
        raise ConfigError(f"{field}: {len(stray)} tensor(s) of the checkpoint have no place in "
                          f"the model (first: {stray[0]!r})")  # fmt: skip
    for ours, (src, value) in mapped.items():
        if value.shape != own[ours].shape:
            raise ConfigError(f"{field}: {src} has shape {_shape(value)}, the model's {ours} "
                              f"{_shape(own[ours])}")  # fmt: skip
    new = tuple(k for k in own if k not in mapped)
    if strict and new:
        raise ConfigError(f"{field}: {len(new)} of the model's tensors are not in the "
                          f"checkpoint (first: {new[0]!r}; {_groups(new)}); load it as a warm "
                          f"start (strict=False) to keep them as initialised")  # fmt: skip
    model.load_state_dict({k: v for k, (_, v) in mapped.items()}, strict=False)
    loaded = tuple(k for k in own if k in mapped)
    layout = type(model.arch.backbone).official_name if official else "unetmm"
    return LoadReport(loaded, new, layout or "unetmm")
