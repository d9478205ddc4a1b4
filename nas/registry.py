"""Name -> object registries (backbones, skip designs, search spaces, ...).

``REG.register("name")`` decorates a class or factory; ``REG.get("name")`` returns it or raises
``UnknownNameError`` listing every registered name. Tests iterate ``REG.names()``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from nas.errors import UnknownNameError

T = TypeVar("T")


class Registry(Generic[T]):
    """An ordered mapping of unique names to objects of one kind."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}
        self._aliases: dict[str, str] = {}  # an old name -> the name it was renamed to

    def register(self, name: str) -> Callable[[T], T]:
        def add(obj: T) -> T:
            if name in self._items or name in self._aliases:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._items[name] = obj
            return obj

        return add

    def alias(self, old: str, name: str) -> None:
        """Keep ``old``, a renamed entry's former name, working: ``get(old)`` is ``get(name)``
        and ``canonical(old)`` is ``name``; ``names()`` lists ``name`` only."""
        if old in self._items or old in self._aliases:
            raise ValueError(f"{self.kind} {old!r} is registered twice")
        if name not in self._items:
            raise ValueError(f"{self.kind} {old!r}: alias of {name!r}, which is not registered")
        self._aliases[old] = name

    def canonical(self, name: str) -> str:
        """``name``, or the name an old alias was renamed to."""
        return self._aliases.get(name, name)

    def aliases(self) -> dict[str, str]:
        return dict(self._aliases)

    def unregister(self, name: str) -> T:
        """Remove ``name`` (a plug-in's or a test's own entry, with its aliases) and return what
        it held."""
        self._aliases = {old: new for old, new in self._aliases.items() if new != name}
        return self._items.pop(name)

    def get(self, name: str) -> T:
        try:
            return self._items[self.canonical(name)]
        except KeyError:
            known = ", ".join(self._items) or "(none)"
            raise UnknownNameError(f"unknown {self.kind} {name!r}; choose one of: {known}") from None

    def names(self) -> list[str]:
        return list(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items or name in self._aliases

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)


# The project's registries. Entries are added by the modules that define them (a backbone's
# module registers its config, its presets and its replayable blocks: ``nas.backbones`` finds
# the modules itself); importing ``nas`` fills them.
BACKBONES: Registry = Registry("backbone")  # config classes (each has ``build``)
SKIP_DESIGNS: Registry = Registry("skip design")
BACKBONE_PRESETS: Registry[Callable[[], object]] = Registry("backbone preset")  # name -> config
# Blocks the cost engine may trace once and replay (``nas.cost.replay``): fixed ops, no state,
# one tensor in and one out, their effect on a trace set by their structure and input layout.
REPLAYABLE_BLOCKS: list[type] = []


def replayable(cls: type) -> type:
    """Class decorator: mark a block as replayable by the cost engine (see above)."""
    REPLAYABLE_BLOCKS.append(cls)
    return cls
