"""``measure_cost``: every cost of one architecture at one input size, as a ``CostReport``.

Results are cached by (code version, ArchConfig key, input size, batch, bits, engine) in memory
and, unless disabled, as JSON files in a cache folder (``$UNETMM_CACHE_DIR`` or
``~/.cache/unetmm/costs``; ``UNETMM_COST_CACHE=0`` turns the disk cache off), so a design seen
before costs nothing, also in another process (each Ray worker is one). The code version hashes
the ``nas`` package's source files and the torch and fvcore versions: a file written by other
code is never read. Every call returns its own copy of the report.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import hashlib
import importlib.metadata
import json
import os
import time
from pathlib import Path
from typing import Any, Literal

import torch

from nas.backbones.base import padded_size
from nas.config import ArchConfig
from nas.cost.macs import count_params, fvcore_macs
from nas.cost.memory import check_bits, skip_memory_peak, skip_memory_timeline
from nas.cost.trace import trace_forward
from nas.errors import ConfigError, InternalError
from nas.files import write_text_atomic
from nas.model import META_LOCK, build_meta_model, build_model
from nas.units import format_bytes, format_count

Engine = Literal["fvcore", "meta"]
MIB = 2**20


@dataclasses.dataclass(repr=False)
class CostReport:
    """Costs of ``arch`` on a ``batch x C x height x width`` input; memory in bytes at ``bits``.

    - ``m_sc_timeline``/``m_sc_bytes``: skip memory at each stage boundary and its peak (the
      paper's M_sc), analytic from shapes; ``m_sc_traced_*``: the same measured on a forward
      pass as every live activation off the backbone's main path at each boundary (see
      ``nas.cost.trace``). ``measure_cost`` raises ``InternalError`` unless they are equal.
    - ``m_sc_transient_bytes``: traced, the most the skip design holds at any moment, inside
      ``push`` included (MSIAM's last push holds parts, concat and E' at once: 3x the paper
      design's M_sc); IEM's header temporaries during ``pull`` count only in the peak below.
    - ``peak_activation_bytes``: the peak of all live activations of the whole forward pass
      (input included, parameters excluded), traced; ``peak_activation_stage`` says where.
    - ``macs``: fvcore's count (one multiply-add once); ``macs_paper``: the paper's ptflops
      convention (conv + bias adds + pooling, ...); ``macs_by_op`` and ``uncounted_ops`` (ops
      the count skipped) as fvcore reports them; both engines give the same four.
    - The tiled executor (``nas.tiling``; only with a ``tile``): ``peak_tiled_bytes``, its peak
      of on-chip activations for ``tile`` and ``split`` (``"auto"`` resolved: the split with
      the least peak), ``peak_tiled_stage`` where it happens, and ``recompute_macs``: the MACs
      it runs beyond the layer-by-layer forward (halo overlaps and the passes that gather
      whole-map statistics), by fvcore's rules. ``peak_activation_bytes`` is the layer-by-layer
      peak (``peak_bytes("layer")``).
    """

    arch: dict[str, Any]
    arch_key: str
    height: int
    width: int
    padded_height: int
    padded_width: int
    batch: int
    bits: int
    m_sc_timeline: list[tuple[str, int]]
    m_sc_bytes: int
    m_sc_traced_timeline: list[tuple[str, int]]
    m_sc_traced_bytes: int
    m_sc_transient_bytes: int
    peak_activation_bytes: int
    peak_activation_stage: str
    macs: int
    macs_by_op: dict[str, int]
    macs_paper: int
    uncounted_ops: dict[str, int]
    params: int
    engine: str
    seconds: float
    tile: int | None = None
    split: int | None = None
    peak_tiled_bytes: int | None = None
    peak_tiled_stage: str | None = None
    recompute_macs: int | None = None

    def peak_bytes(self, executor: str = "layer") -> int:
        """The peak activation bytes under ``executor``: ``layer`` or ``tiled``."""
        if executor == "layer":
            return self.peak_activation_bytes
        if executor != "tiled":
            raise ConfigError(f"executor: {executor!r} is not known; use 'layer' or 'tiled'")
        if self.peak_tiled_bytes is None:
            raise ConfigError("executor: tiled costs were not measured; pass a tile")
        return self.peak_tiled_bytes

    @property
    def m_sc_mib(self) -> float:
        return self.m_sc_bytes / MIB

    @property
    def peak_activation_mib(self) -> float:
        return self.peak_activation_bytes / MIB

    @property
    def design(self) -> str:
        """``"unetmm on nafnet"``: the skip design and the backbone, by name."""
        return f"{self.arch['skip']['name']} on {self.arch['backbone']['name']}"

    @property
    def input_shape(self) -> str:
        """``"1x3x256x256"`` (batch x channels x height x width)."""
        channels = ArchConfig.from_dict(self.arch).backbone.in_channels
        return f"{self.batch}x{channels}x{self.height}x{self.width}"

    def summary(self) -> str:
        """Short lines: what was measured, then M_sc, peak activations (and tiled), MACs, params."""
        at = next((label for label, b in self.m_sc_timeline if b == self.m_sc_bytes), "-")
        rows = {
            "skip memory M_sc": f"{format_bytes(self.m_sc_bytes)} ({self.m_sc_bytes:,} B; "
            f"peak at {at})",
            "peak activations": f"{format_bytes(self.peak_activation_bytes)} "
            f"(layer by layer, at {self.peak_activation_stage})",
            "MACs": f"{format_count(self.macs)} (fvcore), {format_count(self.macs_paper)} "
            "(paper convention)",
            "params": format_count(self.params),
        }
        if self.peak_tiled_bytes is not None:
            rows["peak, tiled"] = (
                f"{format_bytes(self.peak_tiled_bytes)} (tile {self.tile}, split {self.split}, "
                f"at {self.peak_tiled_stage}; +{format_count(self.recompute_macs or 0)} MACs "
                "recomputed)"
            )
        head = f"{self.design}, input {self.input_shape}, {self.bits} bit ({self.engine} engine)"
        return "\n".join([head, *(f"  {k:<18} {v}" for k, v in rows.items())])

    def __repr__(self) -> str:
        """One line (the full fields: ``to_dict()``; readable: ``summary()``)."""
        return (
            f"CostReport({self.design}, {self.input_shape}, {self.bits} bit: "
            f"M_sc={format_bytes(self.m_sc_bytes)}, "
            f"peak={format_bytes(self.peak_activation_bytes)}, "
            f"MACs={format_count(self.macs)}, params={format_count(self.params)})"
        )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CostReport:
        data = dict(data)
        for key in ("m_sc_timeline", "m_sc_traced_timeline"):
            data[key] = [tuple(x) for x in data[key]]
        return cls(**data)


_MEMORY_CACHE: dict[str, CostReport] = {}


def _cache_dir() -> Path | None:
    if os.environ.get("UNETMM_COST_CACHE", "1") == "0":
        return None
    root = os.environ.get("UNETMM_CACHE_DIR")
    base = Path(root) if root else Path.home() / ".cache" / "unetmm"
    return base / "costs"


def source_hash(root: Path) -> str:
    """SHA-1 of every ``*.py`` file under ``root`` (relative path and bytes, sorted)."""
    digest = hashlib.sha1()
    for path in sorted(root.rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


@functools.cache
def code_version() -> str:
    """12 hex digits naming the code that computes costs: ``nas`` sources, torch, fvcore."""
    try:
        fvcore = importlib.metadata.version("fvcore")
    except importlib.metadata.PackageNotFoundError:
        fvcore = "none"
    nas_root = Path(__file__).resolve().parent.parent
    text = f"{source_hash(nas_root)} torch={torch.__version__} fvcore={fvcore}"
    return hashlib.sha1(text.encode()).hexdigest()[:12]


def _cache_key(arch: ArchConfig, h: int, w: int, batch: int, bits: int, engine: str,
               tile: int | None, split: object) -> str:  # fmt: skip
    tiled = "" if tile is None else f"-t{tile}s{split}"
    return f"{code_version()}-{arch.key()}-{h}x{w}-b{batch}-{bits}bit-{engine}{tiled}"


def _read_cache(key: str) -> CostReport | None:
    if key in _MEMORY_CACHE:
        return copy.deepcopy(_MEMORY_CACHE[key])
    folder = _cache_dir()
    if folder is None:
        return None
    try:
        report = CostReport.from_dict(json.loads((folder / f"{key}.json").read_text()))
    except (OSError, ValueError, TypeError, KeyError):
        return None
    _MEMORY_CACHE[key] = copy.deepcopy(report)
    return report


def _write_cache(key: str, report: CostReport) -> None:
    _MEMORY_CACHE[key] = copy.deepcopy(report)
    folder = _cache_dir()
    if folder is None:
        return
    try:
        folder.mkdir(parents=True, exist_ok=True)
        write_text_atomic(folder / f"{key}.json", json.dumps(report.to_dict()))
    except OSError:
        pass  # a read-only home still gets the in-memory cache


def clear_memory_cache() -> None:
    _MEMORY_CACHE.clear()


def measure_cost(
    arch: ArchConfig,
    input_size: tuple[int, int] = (256, 256),
    batch: int = 1,
    bits: int = 8,
    engine: Engine = "fvcore",
    use_cache: bool = True,
    tile: int | None = None,
    split: int | str = "auto",
) -> CostReport:
    """Measure every cost of ``arch``. Raises ConfigError for a design that cannot run.

    With ``tile`` (input pixels), also the tiled executor's peak and recomputed MACs for that
    tile and ``split`` (a stage, or ``"auto"``: the least peak); ``ConfigError`` for a tile or
    split the model cannot run with.

    ``engine="fvcore"`` counts MACs with fvcore on a real CPU forward (seconds for NAFNet-w32);
    ``engine="meta"`` counts them with the same rules from a shape-only pass (milliseconds; equal
    to fvcore on every registered design, see tests). Memory is always traced on ``meta``.
    Raises ``InternalError`` (a bug, not a user mistake) if the traced M_sc differs from the
    analytic one at any stage boundary.
    """
    if engine not in ("fvcore", "meta"):
        raise ConfigError(f"engine: {engine!r} is not known; use 'fvcore' or 'meta'")
    check_bits(bits)
    height, width = input_size
    if height < 1 or width < 1:
        raise ConfigError(f"input_size: must be positive, got {height}x{width}")
    key = _cache_key(arch, height, width, batch, bits, engine, tile, split)
    if use_cache and (hit := _read_cache(key)) is not None:
        return hit

    start = time.perf_counter()
    timeline = skip_memory_timeline(arch, height, width, batch, bits)  # validates the design
    shape = (batch, arch.backbone.in_channels, height, width)
    with META_LOCK:
        meta_model = build_meta_model(arch)
        trace = trace_forward(meta_model, shape, bits)
    check_traced_m_sc(arch, timeline, trace.skip_timeline)
    params = count_params(meta_model)
    if engine == "fvcore":
        counted = fvcore_macs(build_model(arch), shape)
        macs, by_op, uncounted = counted.total, counted.by_op, counted.uncounted_ops
    else:
        macs, by_op, uncounted = trace.macs_fvcore_rules, trace.macs_by_op, trace.uncounted_ops
    ph, pw = padded_size(arch.backbone, height, width)
    tiled = None
    if tile is not None:
        from nas.cost.tiled import resolve_tiled

        tiled = resolve_tiled(arch, (height, width), tile, split, batch, bits)  # type: ignore[arg-type]
    report = CostReport(
        arch=arch.to_dict(),
        arch_key=arch.key(),
        height=height,
        width=width,
        padded_height=ph,
        padded_width=pw,
        batch=batch,
        bits=bits,
        m_sc_timeline=timeline,
        m_sc_bytes=skip_memory_peak(timeline),
        m_sc_traced_timeline=trace.skip_timeline,
        m_sc_traced_bytes=skip_memory_peak(trace.skip_timeline),
        m_sc_transient_bytes=trace.skip_transient_bytes,
        peak_activation_bytes=trace.peak_activation_bytes,
        peak_activation_stage=trace.peak_at,
        macs=macs,
        macs_by_op=by_op,
        macs_paper=trace.macs_paper,
        uncounted_ops=uncounted,
        params=params,
        engine=engine,
        seconds=time.perf_counter() - start,
        tile=tile,
        split=None if tiled is None else tiled.split,
        peak_tiled_bytes=None if tiled is None else tiled.peak_bytes,
        peak_tiled_stage=None if tiled is None else tiled.peak_at,
        recompute_macs=None if tiled is None else tiled.macs - trace.macs_fvcore_rules,
    )
    if use_cache:
        _write_cache(key, report)
    return report


def check_traced_m_sc(
    arch: ArchConfig, analytic: list[tuple[str, int]], traced: list[tuple[str, int]]
) -> None:
    """Raise ``InternalError`` unless the traced skip bytes equal the analytic ones everywhere."""
    if traced == analytic:
        return
    if [label for label, _ in traced] != [label for label, _ in analytic]:
        where = f"boundaries {[lb for lb, _ in traced]} != {[lb for lb, _ in analytic]}"
    else:
        label, t, a = next((lb, t, a) for (lb, t), (_, a) in zip(traced, analytic) if t != a)
        where = f"at boundary {label}: traced {t:,} bytes, analytic {a:,} bytes"
    raise InternalError(
        f"traced skip memory differs from the analytic M_sc {where}, for {arch.to_json()}. "
        "The forward holds tensors off the main path that the design's held_elements does not "
        "describe (or the reverse): a bug in unetmm or in that design, please report it"
    )

