"""``TilingPlan``: how a model runs under the tiled executor at one input size.

The plan splits a U-Net at stage ``split`` (1..N):

- **encoder tiles**: the stem and encoder stages 1..split run tile by tile. A tile is a square of
  ``tile`` input pixels; it owns the matching part of the map stage ``split`` hands on (``X``,
  assembled whole) and of every encoder output on the way (pushed to the skip design per tile).
  Its input region is the owned part grown by every layer's halo (``Footprint.need``), so each
  tile's owned outputs equal the whole-map forward's.
- **deep stages**: stages split+1..N, the middle and the decoder back to stage split+1 run whole,
  layer by layer, as ``SkipUNet.forward`` does.
- **decoder tiles**: decoder stages split..1 and the head run per output tile, reading the region
  of the deep decoder output they need and pulling each skip for their region only.

Everything here is geometry from one ``meta`` pass with recording hooks (no arithmetic); the
executor (``nas.tiling.executor``) runs it on real tensors. ``plan_tiling`` raises ``ConfigError``
for a tile or split the model cannot run with, before any work.
"""

from __future__ import annotations

import dataclasses
import functools
from fractions import Fraction
from typing import Any

import torch

from nas.backbones.base import padded_size
from nas.config import ArchConfig
from nas.errors import ConfigError
from nas.model import META_LOCK, build_meta_model
from nas.tiling.geometry import Box, Footprint, Recorder


@dataclasses.dataclass(frozen=True)
class Calls:
    """The footprint of every call of one model at one padded input size."""

    padded: tuple[int, int]
    stem: Footprint
    enc: tuple[Footprint, ...]
    down: tuple[Footprint, ...]
    up: tuple[Footprint, ...]
    dec: tuple[Footprint, ...]
    head: Footprint
    skip: dict[int, Footprint]  # the skip design's per-tile calls by stage (IEM headers)
    channels: dict[str, int]  # channels of each whole-map step, by module path

    @property
    def num_stages(self) -> int:
        return len(self.enc)

    def stage_size(self, i: int) -> tuple[int, int]:
        """The full size of E_{i+1} (0-based ``i``)."""
        return self.enc[i].out_size

    def stride(self, i: int) -> int:
        """Input pixels per pixel of E_{i+1}."""
        return self.padded[0] // self.stage_size(i)[0]


def record_calls(arch: ArchConfig, height: int, width: int, batch: int = 1) -> Calls:
    """The footprint of every call of ``arch`` at ``height x width`` (from ``meta`` passes).
    Raises ``ConfigError`` for a module the tiled executor cannot run exactly."""
    return _record_calls(arch, height, width, batch)


@functools.lru_cache(maxsize=256)
def _record_calls(arch: ArchConfig, height: int, width: int, batch: int) -> Calls:
    ph, pw = padded_size(arch.backbone, height, width)
    delivers = arch.skip.delivers(len(arch.backbone.stage_channels))
    bb = _backbone_calls(arch.backbone, delivers, ph, pw, batch)
    with META_LOCK, torch.no_grad():
        skip = build_meta_model(arch).skip.eval()
        sizes = [fp.out_size for fp in bb["enc"]]
        calls = {}
        with Recorder(skip, prefix="skip.") as rec:
            for i, (module, inp) in skip.tile_calls(sizes, batch).items():
                calls[i], _ = rec.call(lambda: module(inp), inp)
    fps = [*bb["all"], *calls.values()]
    channels = {s.path: s.channels for fp in fps for s in fp.steps if s.kind == "global"}
    return Calls((ph, pw), bb["stem"], bb["enc"], bb["down"], bb["up"], bb["dec"], bb["head"],
                 calls, channels)  # fmt: skip


@functools.lru_cache(maxsize=64)
def _backbone_calls(backbone: object, delivers: tuple[bool, ...], ph: int, pw: int,
                    batch: int) -> dict[str, Any]:  # fmt: skip
    """The backbone's call footprints: shared by every skip design delivering the same stages
    (a skip input is a zero map of the decoder's shape: only its shape reaches the footprints)."""
    from nas.model import _meta_backbone

    with META_LOCK, torch.no_grad():
        bb = _meta_backbone(backbone, delivers)
        was_training = bb.training
        bb.eval()
        try:
            return _record_backbone(bb, delivers, ph, pw, batch)
        finally:
            bb.train(was_training)


def _record_backbone(bb: Any, delivers: tuple[bool, ...], ph: int, pw: int,
                     batch: int) -> dict[str, Any]:  # fmt: skip
    n = bb.num_stages
    x0 = torch.zeros(batch, bb.in_channels, ph, pw, device="meta")
    out: dict[str, Any] = {"enc": [], "down": [], "up": [None] * n, "dec": [None] * n}
    with Recorder(bb, prefix="backbone.") as rec:
        out["stem"], x = rec.call(lambda: bb.stem(x0), x0)
        for i in range(n):
            fp, e = rec.call(lambda: bb.encoders[i](x), x)
            out["enc"].append(fp)
            fp, x = rec.call(lambda: bb.downs[i](e), e)
            out["down"].append(fp)
        x = bb.middle(x)
        for i in reversed(range(n)):
            out["up"][i], x = rec.call(lambda: bb.ups[i](x), x)
            skip = torch.zeros(batch, bb.stage_channels[i], *x.shape[-2:], device="meta")
            x = bb.merge(i, x, skip if delivers[i] else None)
            out["dec"][i], x = rec.call(lambda: bb.decoders[i](x), x)
        out["head"], _ = rec.call(lambda: bb.head(x, x0), x)
    for key in ("enc", "down", "up", "dec"):
        out[key] = tuple(out[key])
    out["all"] = [out["stem"], *out["enc"], *out["down"], *out["up"], *out["dec"], out["head"]]
    return out


@dataclasses.dataclass(frozen=True)
class EncoderTile:
    """One tile of the encoder phase: its owned box of ``X`` and, per stage ``i < split``, the
    input box of the stem (``x0``), of encoder ``i``, of down ``i``, and its owned box of E_i."""

    owned_x: Box
    x0: Box
    enc_in: tuple[Box, ...]
    down_in: tuple[Box, ...]
    owned: tuple[Box, ...]

    def shapes(self) -> tuple[object, ...]:
        boxes = (self.owned_x, self.x0, *self.enc_in, *self.down_in, *self.owned)
        return tuple(b.shape for b in boxes)


@dataclasses.dataclass(frozen=True)
class DecoderTile:
    """One output tile: its box of the (padded) output, the box of the deep decoder output it
    reads, per stage ``i < split`` the input boxes of up ``i`` and decoder ``i`` and its owned box
    at stage ``i``, and the head's input box at stage 1."""

    out: Box
    deep: Box
    up_in: tuple[Box, ...]
    dec_in: tuple[Box, ...]
    owned: tuple[Box, ...]
    head_in: Box

    def shapes(self) -> tuple[object, ...]:
        boxes = (self.out, self.deep, *self.up_in, *self.dec_in, *self.owned, self.head_in)
        return tuple(b.shape for b in boxes)


@dataclasses.dataclass(frozen=True)
class TilingPlan:
    """The tiled execution of one architecture at one input size (see the module docstring)."""

    arch: ArchConfig
    input_size: tuple[int, int]
    batch: int
    tile: int
    split: int
    calls: Calls

    @property
    def padded(self) -> tuple[int, int]:
        return self.calls.padded

    @property
    def x_size(self) -> tuple[int, int]:
        """The full size of the map stage ``split`` hands on (``X``)."""
        return self.calls.down[self.split - 1].out_size

    @property
    def x_stride(self) -> int:
        return self.padded[0] // self.x_size[0]

    def stride(self, i: int) -> int:
        return self.calls.stride(i)

    def encoder_globals(self) -> tuple[str, ...]:
        c, s = self.calls, self.split
        fps = [c.stem] + [f for i in range(s) for f in (c.enc[i], c.down[i])]
        return tuple(p for f in fps for p in f.globals)

    def decoder_globals(self) -> tuple[str, ...]:
        c, out = self.calls, []
        for i in reversed(range(self.split)):
            fps = [c.up[i], *([c.skip[i]] if i in c.skip else []), c.dec[i]]
            out += [p for f in fps for p in f.globals]
        return tuple(out + list(c.head.globals))

    def _grid(self, size: tuple[int, int], step: int) -> list[Box]:
        ys = [(y, min(y + step, size[0])) for y in range(0, size[0], step)]
        xs = [(x, min(x + step, size[1])) for x in range(0, size[1], step)]
        return [Box.of(y, x) for y in ys for x in xs]

    @functools.cached_property
    def encoder_tiles(self) -> tuple[EncoderTile, ...]:
        c, s = self.calls, self.split
        out = []
        for owned_x in self._grid(self.x_size, self.tile // self.x_stride):
            owned = [owned_x.scaled(Fraction(self.x_stride, self.stride(i))) for i in range(s)]
            enc_in, down_in = [None] * s, [None] * s
            need = owned_x
            for i in reversed(range(s)):
                down_in[i] = c.down[i].need(need).hull(owned[i])
                enc_in[i] = c.enc[i].need(down_in[i])
                need = enc_in[i]
            x0 = c.stem.need(need)
            out.append(EncoderTile(owned_x, x0, tuple(enc_in), tuple(down_in), tuple(owned)))  # type: ignore[arg-type]
        return tuple(out)

    @functools.cached_property
    def decoder_tiles(self) -> tuple[DecoderTile, ...]:
        c, s = self.calls, self.split
        out = []
        for box in self._grid(self.padded, self.tile):
            owned = [box.scaled(Fraction(1, self.stride(i))) for i in range(s)]
            head_in = c.head.need(box)
            up_in, dec_in = [None] * s, [None] * s
            need = head_in
            for i in range(s):
                dec_in[i] = c.dec[i].need(need).hull(owned[i])
                up_in[i] = c.up[i].need(dec_in[i])
                need = up_in[i]
            out.append(DecoderTile(box, need, tuple(up_in), tuple(dec_in), tuple(owned), head_in))  # type: ignore[arg-type]
        return tuple(out)

    def halos(self) -> dict[str, int]:
        """Pixels an interior tile reads beyond its own: at the input for the encoder tiles, at
        the deep decoder output's resolution for the decoder tiles (what ``export`` writes)."""
        mid_e = self.encoder_tiles[len(self.encoder_tiles) // 2]
        own = mid_e.owned_x.scaled(self.x_stride)
        mid_d = self.decoder_tiles[len(self.decoder_tiles) // 2]
        deep_stride = self.padded[0] // self.calls.up[self.split - 1].in_size[0]
        own_d = mid_d.out.scaled(Fraction(1, deep_stride))
        return {
            "encoder_input_px": max(own.y0 - mid_e.x0.y0, mid_e.x0.y1 - own.y1, 0),
            "decoder_deep_px": max(own_d.y0 - mid_d.deep.y0, mid_d.deep.y1 - own_d.y1, 0),
        }

    def to_dict(self) -> dict[str, object]:
        """What ``unetmm export`` writes beside a config (the predicted peak is added there)."""
        return {
            "executor": "tiled", "tile": self.tile, "split": self.split,
            "input_size": list(self.input_size), "padded_size": list(self.padded),
            "encoder_tiles": len(self.encoder_tiles), "decoder_tiles": len(self.decoder_tiles),
            "halo": self.halos(),
            "whole_map_steps": len(self.encoder_globals()) + len(self.decoder_globals()),
        }  # fmt: skip


def valid_splits(arch: ArchConfig, input_size: tuple[int, int], tile: int) -> list[int]:
    """The splits ``tile`` works with at this size (``tile`` checked as ``plan_tiling`` does)."""
    calls = record_calls(arch, *input_size)
    _check_tile(tile, calls)
    return [s for s in range(1, calls.num_stages + 1) if tile % _x_stride(calls, s) == 0]


def _x_stride(calls: Calls, split: int) -> int:
    return calls.padded[0] // calls.down[split - 1].out_size[0]


def _check_tile(tile: object, calls: Calls) -> None:
    if isinstance(tile, bool) or not isinstance(tile, int) or tile < 1:
        raise ConfigError(f"tile: must be a whole number of pixels >= 1, got {tile!r}")
    ph, pw = calls.padded
    if tile > min(ph, pw):
        raise ConfigError(f"tile: {tile} is larger than the input ({ph}x{pw} after padding); "
                          f"use a tile of at most {min(ph, pw)} pixels")  # fmt: skip


def plan_tiling(arch: ArchConfig, input_size: tuple[int, int], tile: int, split: int,
                batch: int = 1) -> TilingPlan:  # fmt: skip
    """The plan of ``arch`` at ``input_size`` (height, width) with ``tile`` and ``split``.
    Raises ``ConfigError`` naming the field: a tile that is not a multiple of the stride of the
    map ``split`` hands on, larger than the (padded) input, a split outside 1..N, or a model the
    executor cannot tile exactly."""
    calls = record_calls(arch, *input_size, batch)
    n = calls.num_stages
    if isinstance(split, bool) or not isinstance(split, int) or not 1 <= split <= n:
        raise ConfigError(f"split: must be a stage 1..{n} (the deepest stage run in tiles) or "
                          f"'auto', got {split!r}")  # fmt: skip
    _check_tile(tile, calls)
    step = _x_stride(calls, split)
    if tile % step:
        near = step * max(1, round(tile / step))
        raise ConfigError(f"tile: {tile} is not a multiple of {step}, the stride of the map stage "
                          f"{split} hands on; use a multiple of {step} (e.g. {near}) or a "
                          "shallower split")  # fmt: skip
    return TilingPlan(arch, tuple(input_size), batch, tile, split, calls)  # type: ignore[arg-type]


def check_tiling(arch: ArchConfig, input_size: tuple[int, int], tile: object,
                 split: object) -> None:  # fmt: skip
    """``ConfigError`` (naming ``tile`` or ``split``) unless ``tile`` and ``split`` (a stage or
    ``"auto"``) can run ``arch`` at ``input_size``; builds nothing but a ``meta`` pass."""
    if split != "auto":
        plan_tiling(arch, input_size, tile, split)  # type: ignore[arg-type]
    elif not valid_splits(arch, input_size, tile):  # type: ignore[arg-type]
        plan_tiling(arch, input_size, tile, 1)  # type: ignore[arg-type]  # names the stride
