"""Official NAFNet checkpoints (megvii-research/NAFNet, BasicSR layout) in unetmm models.

The published ``.pth`` files (NAFNet-SIDD-width32/64, NAFNet-GoPro-width32/64, ...) hold
``{"params": state_dict}`` of the official ``NAFNet`` module. Its tensor names differ from a
``SkipUNet`` over a ``nafnet`` backbone in three ways:

- ours sit under ``backbone.`` (a skip design's own modules under ``skip.``);
- a block's channel attention is ``sca.1`` there (an ``nn.Sequential(pool, conv)``), ``sca.conv``
  here;
- ``ups.k`` / ``decoders.k`` count from the deepest stage there (k = 0 follows the middle
  blocks), from the shallowest here: ours ``i = N - 1 - k`` for N stages.

The backbone of a UNet-- (or any skip design) over NAFNet is the same module, so the official
weights load into its ``backbone.`` and leave the skip design's tensors as initialised (a warm
start, ``strict=False``). State dicts in unetmm's own layout (``model.pt``, ``ckpt_*.pt``: the
``model`` entry) load the same way, names unchanged. Every problem raises one ``ConfigError``
line naming ``field`` (the flag or config field that gave the checkpoint).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from nas.backbones.nafnet import NAFNetConfig
from nas.errors import ConfigError
from nas.model import SkipUNet

# where a checkpoint file keeps its state dict: BasicSR's keys, then unetmm's model.pt/ckpt
STATE_KEYS = ("params", "params_ema", "model", "state_dict")
OURS = ("backbone.", "skip.")
_INDEXED = re.compile(r"^(encoders|decoders|middle_blks|downs|ups)\.(\d+)(?:\.(\d+))?\.")

StateDict = dict[str, torch.Tensor]


@dataclasses.dataclass(frozen=True)
class LoadReport:
    """What a load did: ``loaded`` (model names given the checkpoint's values) and ``new`` (model
    names the checkpoint does not hold: left as initialised), both in the model's order."""

    loaded: tuple[str, ...]
    new: tuple[str, ...]
    layout: str  # "official" (BasicSR NAFNet) or "unetmm"

    def summary(self) -> str:
        """One line: counts per top-level module, e.g. ``loaded 388 tensors (backbone: 388) of
        an official NAFNet checkpoint; 34 new (skip: 34)``."""
        text = f"loaded {len(self.loaded)} tensors ({_groups(self.loaded)}) of a"
        text += "n official NAFNet" if self.layout == "official" else " unetmm"
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


def official_config(state: Mapping[str, torch.Tensor], field: str = "checkpoint") -> NAFNetConfig:
    """The ``NAFNetConfig`` an official state dict was trained with, read off its names and
    shapes (width and channels from ``intro``, block counts from the indices; ``dec_blk_nums``
    deepest first as in NAFNet). Raises ``ConfigError`` if it is not a NAFNet state dict."""
    intro = state.get("intro.weight")
    if intro is None or intro.ndim != 4:
        raise ConfigError(f"{field}: not an official NAFNet checkpoint (no 'intro.weight'; "
                          f"first name {next(iter(state))!r})")  # fmt: skip
    blocks: dict[str, dict[int, set[int]]] = {}
    for key in state:
        m = _INDEXED.match(key)
        if m:
            inner = blocks.setdefault(m.group(1), {}).setdefault(int(m.group(2)), set())
            if m.group(3) is not None:
                inner.add(int(m.group(3)))
    n = len(blocks.get("downs", {}))

    def counts(part: str) -> tuple[int, ...]:
        found = blocks.get(part, {})
        return tuple(max(found[i]) + 1 if found.get(i) else 0 for i in range(n))

    middle = blocks.get("middle_blks", {})
    return NAFNetConfig(
        width=int(intro.shape[0]),
        enc_blk_nums=counts("encoders"),
        middle_blk_num=max(middle) + 1 if middle else 0,
        dec_blk_nums=counts("decoders"),
        img_channels=int(intro.shape[1]),
    )


def official_to_ours(key: str, num_stages: int) -> str:
    """One official NAFNet name as unetmm's: ``ups.0.0.weight`` -> ``backbone.ups.3.0.weight``
    (4 stages), ``encoders.1.0.sca.1.bias`` -> ``backbone.encoders.1.0.sca.conv.bias``."""
    parts = key.split(".")
    if parts[0] in ("ups", "decoders") and len(parts) > 1 and parts[1].isdigit():
        parts[1] = str(num_stages - 1 - int(parts[1]))
    name = ".".join(parts).replace(".sca.1.", ".sca.conv.")
    return "backbone." + name


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _shape(t: torch.Tensor) -> str:
    return "(" + ", ".join(str(s) for s in t.shape) + ")"


def _check_backbone(model: SkipUNet, state: Mapping[str, torch.Tensor], field: str) -> int:
    """The model's stage count, after checking the checkpoint's NAFNet fits its backbone."""
    backbone = model.arch.backbone
    if not isinstance(backbone, NAFNetConfig):
        raise ConfigError(f"{field}: an official NAFNet checkpoint needs a nafnet backbone, "
                          f"the model's is {backbone.name!r}")  # fmt: skip
    found = official_config(state, field)
    # the fields that shape the tensors (tlc_train_size does not: NAFNetLocal loads them too)
    pairs = (("width", found.width, backbone.width),
             ("img_channels", found.img_channels, backbone.img_channels),
             ("enc_blk_nums", found.enc_blk_nums, backbone.enc_blk_nums),
             ("middle_blk_num", found.middle_blk_num, backbone.middle_blk_num),
             ("dec_blk_nums", found.dec_blk_nums, backbone.dec_blk_nums))  # fmt: skip
    for f, have, want in pairs:
        if have != want:
            raise ConfigError(f"{field}: the checkpoint's NAFNet has {f} {_plain(have)}, the "
                              f"model's backbone.{f} is {_plain(want)}")  # fmt: skip
    return len(backbone.enc_blk_nums)


def load_official_nafnet(
    model: SkipUNet,
    source: str | Path | Mapping[str, Any],
    strict: bool = True,
    field: str = "checkpoint",
) -> LoadReport:
    """Load an official NAFNet checkpoint (file or state dict; or one in unetmm's layout) into
    ``model`` (a ``SkipUNet``), in place. Every checkpoint tensor must find a model tensor of the
    same shape; with ``strict`` every model tensor must also be in the checkpoint (NAFNet as
    published: full skips), without it the others stay as initialised (warm start of a UNet--
    from a NAFNet backbone). Raises ``ConfigError`` naming ``field`` and the first mismatch;
    nothing is changed then."""
    state = read_state_dict(source, field)
    official = is_official(state)
    if official:
        n = _check_backbone(model, state, field)
        mapped = {official_to_ours(k, n): (k, v) for k, v in state.items()}
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
    return LoadReport(loaded, new, "official" if official else "unetmm")
