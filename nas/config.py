"""Typed, frozen, hashable configs and their JSON/YAML round trip.

``ArchConfig`` = backbone config + skip-design config. Both halves are frozen dataclasses with a
registered ``name``; ``to_dict``/``from_dict`` round-trip through plain JSON types, and ``key()`` is
a stable content hash used to cache costs.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import numbers
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import yaml

from nas.errors import ConfigError
from nas.protocols import BackboneConfig, SkipConfig
from nas.registry import BACKBONES, SKIP_DESIGNS

C = TypeVar("C", bound="ConfigBase")


def _plain(value: Any) -> Any:
    """Tuples -> lists, recursively, so the value is plain JSON."""
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


def _frozen(value: Any) -> Any:
    """Lists -> tuples, recursively, so the value is hashable."""
    if isinstance(value, list | tuple):
        return tuple(_frozen(v) for v in value)
    return value


@dataclasses.dataclass(frozen=True)
class ConfigBase:
    """A frozen dataclass config with a registered ``name`` (a class variable)."""

    name: ClassVar[str] = ""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name}
        for f in dataclasses.fields(self):
            out[f.name] = _plain(getattr(self, f.name))
        return out

    @classmethod
    def from_fields(cls: type[C], data: dict[str, Any], where: str) -> C:
        """Build from a mapping of field values; unknown or mistyped fields raise ConfigError
        (each config's ``__post_init__`` checks its fields' types and values)."""
        known = {f.name for f in dataclasses.fields(cls)}
        for key in data:
            if key not in known:
                raise ConfigError(
                    f"{where}.{key}: unknown field for {cls.name!r}; known fields: {sorted(known)}"
                )
        return cls(**{k: _frozen(v) for k, v in data.items()})

    def replace(self: C, **changes: Any) -> C:
        return dataclasses.replace(self, **{k: _frozen(v) for k, v in changes.items()})


def check(cond: bool, field: str, message: str) -> None:
    """Raise ConfigError(``field: message``) unless ``cond``."""
    if not cond:
        raise ConfigError(f"{field}: {message}")


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def int_field(value: Any, field: str, minimum: int | None = None) -> int:
    """``value`` as an int (bools and floats like 2.0 or '2' are refused), at least ``minimum``."""
    check(_is_int(value), field, f"must be an integer, got {value!r}")
    check(minimum is None or value >= minimum, field, f"must be >= {minimum}, got {value}")
    return int(value)


def ints_field(value: Any, field: str, minimum: int | None = None) -> tuple[int, ...]:
    """``value`` as a tuple of ints, each at least ``minimum``."""
    check(isinstance(value, list | tuple), field, f"must be a list of integers, got {value!r}")
    for v in value:
        check(_is_int(v), field, f"must be a list of integers, got {v!r} in {list(value)}")
    low = [v for v in value if minimum is not None and v < minimum]
    check(not low, field, f"each entry must be >= {minimum}, got {list(value)}")
    return tuple(int(v) for v in value)


def real_field(value: Any, field: str) -> float:
    """``value`` as a finite real number (an int or a float; not a bool or a string)."""
    real = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    check(real, field, f"must be a number, got {value!r}")
    return float(value)


def reals_field(value: Any, field: str) -> tuple[float, ...]:
    """``value`` as a tuple of finite real numbers (ints and floats; not bools or strings)."""
    check(isinstance(value, list | tuple), field, f"must be a list of numbers, got {value!r}")
    for v in value:
        real = isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v)
        check(real, field, f"must be a list of numbers, got {v!r} in {list(value)}")
    return tuple(value)


def bool_field(value: Any, field: str) -> bool:
    check(isinstance(value, bool), field, f"must be true or false, got {value!r}")
    return value


def set_fields(config: Any, **values: Any) -> None:
    """Store checked (normalised) values on a frozen dataclass, from its ``__post_init__``."""
    for name, value in values.items():
        object.__setattr__(config, name, value)


def _from_named(registry: Any, data: Any, where: str) -> Any:
    if not isinstance(data, dict) or "name" not in data:
        raise ConfigError(f"{where}: expected a mapping with a 'name' key, got {data!r}")
    fields = dict(data)
    name = fields.pop("name")
    cls = registry.get(name)
    return cls.from_fields(fields, where)


@dataclasses.dataclass(frozen=True)
class ArchConfig:
    """A complete architecture: which backbone, and how its encoder reaches its decoder."""

    backbone: BackboneConfig  # a registered backbone config
    skip: SkipConfig  # a registered skip-design config

    def to_dict(self) -> dict[str, Any]:
        return {"backbone": self.backbone.to_dict(), "skip": self.skip.to_dict()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ArchConfig:
        import nas.backbones  # noqa: F401  (fills the registries)
        import nas.skips  # noqa: F401

        if not isinstance(data, dict):
            raise ConfigError(f"arch: expected a mapping with 'backbone' and 'skip', got {data!r}")
        extra = set(data) - {"backbone", "skip"}
        check(not extra, "arch", f"unknown keys {sorted(extra)}; expected 'backbone' and 'skip'")
        check("backbone" in data, "arch.backbone", "missing; e.g. {name: nafnet, width: 32}")
        skip = data.get("skip", {"name": "full"})
        return cls(
            backbone=_from_named(BACKBONES, data["backbone"], "arch.backbone"),
            skip=_from_named(SKIP_DESIGNS, skip, "arch.skip"),
        )

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> ArchConfig:
        return cls.from_dict(json.loads(text))

    def key(self) -> str:
        """A stable 16-hex-digit content hash (same config, same key, in every process)."""
        return arch_key(self.to_dict())

    def replace(self, **changes: Any) -> ArchConfig:
        return dataclasses.replace(self, **changes)


def arch_key(arch: Mapping[str, Any]) -> str:
    """The design identity: 16 hex digits of an architecture dict's canonical JSON
    (``ArchConfig.key``; a stored ``arch`` attribute keys the same way without being parsed)."""
    text = json.dumps(arch, sort_keys=True, separators=(",", ":"))
    return hashlib.sha1(text.encode()).hexdigest()[:16]


MAX_YAML_BYTES = 256 << 10  # a config or study file is a few KiB; more is the wrong file
MAX_YAML_ITEMS = 1_000_000  # values once YAML aliases are expanded (the text holds far fewer)
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's, when PyYAML has it


def read_yaml(path: str | Path, what: str = "config file") -> Any:
    """``yaml.safe_load`` of a small UTF-8 file. An unreadable file, one larger than
    ``MAX_YAML_BYTES`` (refused before it is parsed), text that is not UTF-8, bad YAML, or YAML
    whose aliases expand to more than ``MAX_YAML_ITEMS`` values is one ``ConfigError`` line."""
    path = Path(path)
    name = str(path)
    try:
        with open(path, "rb") as fh:  # at most one byte past the limit (a pipe, /dev/zero, ...)
            raw = fh.read(MAX_YAML_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"{what} {name!r} cannot be read: {exc.strerror}") from None
    if len(raw) > MAX_YAML_BYTES:
        raise ConfigError(
            f"{what} {name!r} is larger than {MAX_YAML_BYTES >> 10} KiB, far more than a "
            "config needs (YAML takes seconds per MiB to read); is it the right file?"
        )
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{what} {name!r} is not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset "
            f"{exc.start}); save it as UTF-8"
        ) from None
    try:
        data = yaml.load(text, Loader=_LOADER)  # a safe loader (libyaml when available)
    except yaml.YAMLError as exc:
        first = str(exc).splitlines()[0] if str(exc) else "syntax error"
        raise ConfigError(f"{what} {name!r} is not valid YAML: {first}") from None
    size = _expanded_size(data)
    if size is None:
        raise ConfigError(f"{what} {name!r} refers to itself through a YAML alias (*name)")
    if size > MAX_YAML_ITEMS:
        raise ConfigError(
            f"{what} {name!r} holds {size:,} values once its YAML aliases (*name) are "
            f"expanded, more than the {MAX_YAML_ITEMS:,} a config may have; write the values out"
        )
    return data


def _expanded_size(data: Any) -> int | None:
    """How many values ``data`` holds with shared (aliased) containers counted each time they
    appear, as a validator would walk it; None if a container contains itself. Each distinct
    container is visited once, so this costs what the YAML text holds, not its expansion."""
    sizes: dict[int, int] = {}
    visiting: set[int] = set()
    stack: list[tuple[Any, bool]] = [(data, False)] if isinstance(data, dict | list) else []
    while stack:
        node, children_done = stack.pop()
        children = [*node.keys(), *node.values()] if isinstance(node, dict) else node
        if children_done:
            visiting.discard(id(node))
            sizes[id(node)] = 1 + sum(sizes.get(id(c), 1) for c in children)
            continue
        if id(node) in sizes:
            continue
        visiting.add(id(node))
        stack.append((node, True))
        for child in children:
            if isinstance(child, dict | list):
                if id(child) in visiting:
                    return None
                stack.append((child, False))
    return sizes.get(id(data), 1)


def load_config(path: str | Path) -> ArchConfig:
    """Read an ArchConfig from a YAML/JSON file: either the arch mapping itself or a training
    config with an ``arch:`` section (as ``unetmm export`` writes)."""
    data = read_yaml(path)
    if isinstance(data, dict) and "arch" in data:
        data = data["arch"]
    return ArchConfig.from_dict(data)


def save_config(arch: ArchConfig, path: str | Path) -> Path:
    """Write ``arch`` as YAML (``load_config`` reads it back to an equal config)."""
    path = Path(path)
    path.write_text(yaml.safe_dump(arch.to_dict(), sort_keys=False))
    return path
