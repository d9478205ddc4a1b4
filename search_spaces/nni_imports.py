"""NNI, the optional ``nni`` extra: whether it is installed, and importing it (Optuna's
optional-import pattern: the core never imports it; code that needs it calls ``require``).

- ``available()``: cheap (finds the packages, imports nothing: ``import nni.nas`` takes
  seconds); use it to refuse a spec before the first trial;
- ``require(what)``: imports ``nni.nas`` once (its warnings that this torch is untested and
  its INFO logging to stdout held back) and returns the ``nni`` module; if that fails, raises
  ``ConfigError`` naming ``what`` and the install command, one line.

NNI 3.0 (its last release) imports ``pytorch_lightning`` without declaring it, pins
``filelock<3.12`` and ``typeguard<4.1.3``: the extra installs all three (see the README).
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import warnings
from types import ModuleType

from nas.errors import ConfigError
from nas.extras import EXTRAS, install_command

INSTALL = install_command("nni")
NEEDED = EXTRAS["nni"]  # what `import nni.nas` needs beyond the core (``nas.extras``)
_loaded: dict[str, ModuleType] = {}


def available() -> bool:
    """Whether the packages of the ``nni`` extra are installed (nothing is imported)."""
    return all(importlib.util.find_spec(name) is not None for name in NEEDED)


def missing_message(what: str = "", reason: str = "") -> str:
    """The one line telling that ``what`` (if given) needs the extra, and how to install it."""
    why = f" ({reason})" if reason else ""
    head = f"{what}: " if what else ""
    return f"{head}needs NNI, the 'nni' extra, which is not installed{why}; install it: {INSTALL}"


def require(what: str) -> ModuleType:
    """``nni`` with ``nni.nas`` imported; ``ConfigError`` (one line, naming ``what``) if not
    installed or broken."""
    if "nni" in _loaded:
        return _loaded["nni"]
    if not available():
        missing = [n for n in NEEDED if importlib.util.find_spec(n) is None]
        raise ConfigError(missing_message(what, f"no module {', '.join(missing)}"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "torch 2.13 is not tested", deprecations
        try:
            nni = importlib.import_module("nni")
            for module in ("nni.nas", "nni.nas.nn.pytorch", "nni.nas.space", "nni.nas.strategy"):
                importlib.import_module(module)
        except ImportError as exc:
            raise ConfigError(missing_message(what, f"import failed: {exc}")) from None
    logging.getLogger("nni").setLevel(logging.WARNING)  # strategies log every sample at INFO
    _loaded["nni"] = nni
    return nni
