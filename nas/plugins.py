"""Plugins: your own backbones, metrics or tasks in modules of your own.

A plugin module registers what it adds when it is imported (``nas.registry.BACKBONES`` and
``BACKBONE_PRESETS``, ``studies.metrics.register_metric``, ``trainers.tasks.TASKS``; see
``docs/extending.md``). ``load_plugins`` imports, once per process, the modules named by

- the entry points of the group ``unetmm.plugins`` of installed packages (in ``pyproject.toml``:
  ``[project.entry-points."unetmm.plugins"] mine = "mypackage.mymodule"``), and
- ``UNETMM_PLUGINS``: module names separated by commas, importable from ``PYTHONPATH``.

``import nas`` calls it last, so the search's driver and every Ray worker (which imports ``nas``
to read a trial's architecture, and inherits the environment) load the same plugins. A name
that cannot be imported is a ``ConfigError`` naming it.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os

from nas.errors import ConfigError

ENTRY_POINTS = "unetmm.plugins"
ENV = "UNETMM_PLUGINS"
_LOADED: set[str] = set()


def load_plugins() -> list[str]:
    """Import every plugin module not imported yet; returns the names imported now."""
    names = [e.value for e in importlib.metadata.entry_points(group=ENTRY_POINTS)]
    names += [n.strip() for n in os.environ.get(ENV, "").split(",") if n.strip()]
    new = [n for n in dict.fromkeys(names) if n not in _LOADED]
    for name in new:
        _LOADED.add(name)
        try:
            importlib.import_module(name)
        except ImportError as exc:
            raise ConfigError(f"{ENV}: plugin {name!r} cannot be imported ({exc}); put its "
                              "folder on PYTHONPATH or install its package") from None  # fmt: skip
    return new
