"""unetmm.studies: study specs, the Ray Tune + Optuna search, reports, export and the CLI.

Public names are imported lazily (``import studies.cli`` stays light): ``StudySpec``,
``load_spec`` (a YAML file or a preset name), ``run_search`` and its ``SearchResult``.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "StudySpec": "studies.spec",
    "load_spec": "studies.spec",
    "run_search": "studies.run",
    "SearchResult": "studies.run",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'studies' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
