"""Where a benchmark result came from, and the one writer of result files.

``started(argv)`` records, when a benchmark starts: the git commit (and whether the tree had
uncommitted changes), the UTC date, the CPU model and core count, the load average, the versions
of Python, torch, optuna, ray and onnxruntime, and the exact command. ``write_result(path, data,
prov)`` adds the load average at the end and writes ``{"provenance": ..., **data}`` atomically
(a killed run leaves the old file or the new one). History stays in git, not in file names.
"""

from __future__ import annotations

import datetime
import importlib.metadata
import json
import os
import platform
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

from nas.files import write_text_atomic

RESULTS = Path(__file__).parent / "results"


def _git(*args: str) -> str:
    try:
        out = subprocess.run(["git", *args], capture_output=True, text=True, timeout=10,
                             cwd=Path(__file__).parent)  # fmt: skip
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def started(argv: list[str] | None = None) -> dict[str, Any]:
    """The provenance of a run starting now (``argv``: the command's arguments)."""
    argv = sys.argv if argv is None else argv
    return {
        "commit": _git("rev-parse", "HEAD") or "unknown",
        "uncommitted_changes": bool(_git("status", "--porcelain", "--untracked-files=no")),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "load_start": [round(v, 2) for v in os.getloadavg()],
        "versions": {"python": platform.python_version(),
                     **{p: _version(p) for p in ("torch", "optuna", "ray", "onnxruntime")}},
        "command": "PYTHONPATH=. python " + shlex.join(argv),
    }  # fmt: skip


def write_json_atomic(path: str | Path, obj: Any) -> None:
    """Write ``obj`` as JSON to ``path`` through a temporary file in the same folder."""
    write_text_atomic(path, json.dumps(obj, indent=1))


def finished(prov: dict[str, Any]) -> dict[str, Any]:
    """``prov`` with the load average now, at the end of the run (one record's provenance)."""
    return {**prov, "load_end": [round(v, 2) for v in os.getloadavg()]}


def write_result(path: str | Path, data: dict[str, Any], prov: dict[str, Any]) -> Path:
    """``{"provenance": prov + load at the end, **data}`` to ``path``, atomically."""
    write_json_atomic(path, {"provenance": finished(prov), **data})
    return Path(path)
