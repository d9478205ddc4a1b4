"""unetmm.studies: study specs and the one metric table at the top; in rooms of their own,
``search`` (running a search: driver, Ray workers, Optuna bookkeeping), ``results`` (reading a
study: fronts, figures, report, export, dashboard) and ``cli`` (the ``unetmm`` command line).
``compat`` is the one door to Optuna's and Ray's private names.

Public names are imported lazily (``import studies.cli`` stays light): ``StudySpec``,
``load_spec`` (a YAML file or a preset name), ``run_search`` and its ``SearchResult``.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "StudySpec": "studies.spec",
    "load_spec": "studies.spec",
    "run_search": "studies.search.driver",
    "SearchResult": "studies.search.driver",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'studies' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
