"""The one atomic file writer: a reader, a concurrent worker or a killed process sees the old
file or the new one, never half of one."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any


def replace_atomically(path: str | Path, write: Callable[[Path], Any]) -> None:
    """``write(tmp)`` to a temporary file next to ``path`` (named for this process), then rename
    it to ``path``. The temporary file is removed if ``write`` fails; errors propagate."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text_atomic(path: str | Path, text: str) -> None:
    """``text`` to ``path`` through ``replace_atomically``."""
    replace_atomically(path, lambda tmp: tmp.write_text(text))
