"""Optional extras of the package: whether one is installed, and the one line that says how to
install it. The core (``search``, ``report``, ``export``, ``train`` on SQLite) needs none.

- ``postgres``: psycopg 3, for PostgreSQL study storages;
- ``onnx``: onnx and onnxruntime, for ``unetmm train --onnx`` and ONNX Runtime's memory;
- ``nni``: NNI's strategies and one-shot pre-screening (``search_spaces.nni_imports`` imports it,
  with its own message naming what needs it).

``installed`` finds the packages and imports nothing, so a spec or a command line is refused
before any work.
"""

from __future__ import annotations

import importlib.util

from nas.errors import ConfigError

EXTRAS = {
    "postgres": ("psycopg",),
    "onnx": ("onnx", "onnxruntime"),
    "nni": ("nni", "pytorch_lightning"),
}


def missing(extra: str) -> list[str]:
    """The modules of ``extra`` that are not installed."""
    return [m for m in EXTRAS[extra] if importlib.util.find_spec(m) is None]


def installed(extra: str) -> bool:
    return not missing(extra)


def install_command(extra: str) -> str:
    return f"pip install -e '.[{extra}]' (in a checkout) or pip install 'unetmm[{extra}]'"


def require_extra(extra: str, what: str) -> None:
    """``ConfigError`` (one line, naming ``what`` and the install command) unless ``extra`` is
    installed."""
    gone = missing(extra)
    if gone:
        raise ConfigError(f"{what}: needs the '{extra}' extra, which is not installed (no module "
                          f"{', '.join(gone)}); install it: {install_command(extra)}")  # fmt: skip
