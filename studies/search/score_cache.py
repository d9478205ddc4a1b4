"""A persistent cache of proxy scores: a design trained once is not trained again, in any study.

A score is keyed by everything that decides it (``score_key``): the architecture trained (the
proxy ``ArchConfig``, or the target one when ``unetmm confirm --backbone target`` trains it), the
task, the data (its config less the in-memory cache size, plus what the folders hold: each
image file's path, size and modification time; ``builtin`` is scikit-image's version), the
budget, the seed, and the code that trains (``code_versions``: hashes of the ``nas`` and
``trainers`` sources, the torch, numpy and scikit-image versions). Thread count is not part of
it: it changes a score by float rounding at most.

Entries are JSON files ``<key>.json`` in ``$UNETMM_CACHE_DIR/scores`` (else
``~/.cache/unetmm/scores``), one per key, written atomically (a temporary file renamed into
place), so several workers and several searches share the folder safely: a reader sees a whole
entry or none, and two writers of one key write the same score. Each file also holds its key's
fields, checked on read. Only complete runs are stored: never a run stopped early, one that
diverged, or one whose scores are not finite. ``UNETMM_SCORE_CACHE=0`` (or ``enabled=False``:
``unetmm search --no-score-cache``, ``score_cache: false`` in a study) turns it off.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import json
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nas.config import ArchConfig
from nas.cost.report import source_hash
from nas.files import write_text_atomic
from trainers.config import (
    BUILTIN,
    DataConfig,
    ProxyBudget,
    ProxyRuntime,
    TaskConfig,
    training_identity,
)
from trainers.proxy import ProxyResult, train_and_eval

KEY_VERSION = 1  # bump when the entry format changes


def cache_dir() -> Path | None:
    """The folder of the score entries; None when ``UNETMM_SCORE_CACHE=0``."""
    if os.environ.get("UNETMM_SCORE_CACHE", "1") == "0":
        return None
    root = os.environ.get("UNETMM_CACHE_DIR")
    return (Path(root) if root else Path.home() / ".cache" / "unetmm") / "scores"


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "none"


@functools.cache
def code_versions() -> dict[str, str]:
    """What the code that trains and scores is: source hashes of ``nas`` and ``trainers``, and
    the versions of torch, numpy and scikit-image."""
    import torch

    import nas
    import trainers

    return {
        "nas": source_hash(Path(nas.__file__).resolve().parent),
        "trainers": source_hash(Path(trainers.__file__).resolve().parent),
        "torch": torch.__version__,
        "numpy": _version("numpy"),
        "scikit-image": _version("scikit-image"),
    }


def _folder_state(folder: str) -> str:
    """A hash of every file below ``folder``: relative path, size, modification time (read
    anew for every key: a folder may change while a worker lives)."""
    root = Path(folder).expanduser()
    digest = hashlib.sha1()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        st = path.stat()
        digest.update(f"{path.relative_to(root).as_posix()}\0{st.st_size}\0{st.st_mtime_ns}\n"
                      .encode())  # fmt: skip
    return digest.hexdigest()


def data_state(data: DataConfig) -> dict[str, str]:
    """What the data's images are, beyond their config: per folder a hash of its files."""
    return {
        field: f"builtin scikit-image {_version('scikit-image')}" if where == BUILTIN
        else _folder_state(str(Path(where).expanduser().resolve()))
        for field, where in (("train", data.train), ("val", data.val))
    }  # fmt: skip


def key_fields(
    arch: ArchConfig, task: TaskConfig, budget: ProxyBudget, data: DataConfig, seed: int
) -> dict[str, Any]:
    """Everything a score depends on, as plain JSON (what ``score_key`` hashes)."""
    fields = {
        "format": KEY_VERSION,
        "arch": arch.to_dict(),
        **training_identity(task, data, budget),
        "data_state": data_state(data),
        "seed": int(seed),
        "code": code_versions(),
    }
    return json.loads(json.dumps(fields))


def score_key(fields: dict[str, Any]) -> str:
    """32 hex digits naming ``key_fields``."""
    text = json.dumps(fields, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _to_json(result: ProxyResult) -> dict[str, Any]:
    return {
        "psnr": result.psnr, "ssim": result.ssim, "seconds": result.seconds,
        "steps": result.steps, "curve": [[int(s), float(v)] for s, v in result.curve],
        "input_psnr": result.input_psnr, "seconds_setup": result.seconds_setup,
        "seconds_eval": result.seconds_eval,
        "metrics": {k: float(v) for k, v in result.metrics.items()},
    }  # fmt: skip


def _from_json(entry: dict[str, Any]) -> ProxyResult:
    return ProxyResult(
        psnr=float(entry["psnr"]), ssim=float(entry["ssim"]), seconds=float(entry["seconds"]),
        steps=int(entry["steps"]), curve=[(int(s), float(v)) for s, v in entry["curve"]],
        input_psnr=float(entry["input_psnr"]),
        seconds_setup=float(entry.get("seconds_setup", 0.0)),
        seconds_eval=float(entry.get("seconds_eval", 0.0)),
        metrics={k: float(v) for k, v in (entry.get("metrics") or {}).items()},
    )  # fmt: skip


def lookup(fields: dict[str, Any]) -> ProxyResult | None:
    """The stored result for ``fields``, or None (no entry, unreadable, or other fields)."""
    folder = cache_dir()
    if folder is None:
        return None
    try:
        entry = json.loads((folder / f"{score_key(fields)}.json").read_text())
        if entry.get("fields") != fields:
            return None
        return _from_json(entry["result"])
    except (OSError, ValueError, TypeError, KeyError):
        return None


def store(fields: dict[str, Any], result: ProxyResult) -> bool:
    """Write ``result`` for ``fields`` unless it was stopped or is not finite; True if written.
    A folder that cannot be written is skipped silently (the score is still the trial's)."""
    folder = cache_dir()
    if folder is None or result.stopped or not all(map(math.isfinite, (result.psnr, result.ssim))):
        return False
    key = score_key(fields)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        write_text_atomic(folder / f"{key}.json",
                          json.dumps({"fields": fields, "result": _to_json(result)}))
    except OSError:
        return False
    return True


def cached_train_and_eval(
    arch: ArchConfig,
    task: TaskConfig,
    budget: ProxyBudget,
    data: DataConfig,
    *,
    seed: int,
    threads: int | None = None,
    callback: Callable[[int, float], bool | None] | None = None,
    enabled: bool = True,
    runtime: ProxyRuntime | None = None,
) -> tuple[ProxyResult, bool]:
    """``trainers.proxy.train_and_eval`` through the cache: ``(result, True)`` for a stored
    score (nothing trained, ``callback`` not called), else ``(result, False)`` after training
    (and storing a complete run). ``enabled=False`` neither reads nor writes."""
    fields = key_fields(arch, task, budget, data, seed) if enabled else None
    if fields is not None and (hit := lookup(fields)) is not None:
        return hit, True
    result = train_and_eval(arch, task, budget, data, callback=callback, threads=threads,
                            seed=seed, runtime=runtime)  # fmt: skip
    if fields is not None:
        store(fields, result)
    return result, False
