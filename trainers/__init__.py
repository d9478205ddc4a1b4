"""unetmm.trainers: data, degradations, metrics, the proxy score and full training.

The public names are imported lazily, so ``import trainers.config`` does not load the training
stack (scikit-image, onnx) for code that only reads or writes training configs. Full
training: ``trainers.train.train`` (not re-exported: the name is also the submodule's). The
built-in train/validation image lists: ``trainers.data``.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "TaskConfig": "trainers.config",
    "DataConfig": "trainers.config",
    "ProxyBudget": "trainers.config",
    "ProxyRuntime": "trainers.config",
    "Recipe": "trainers.config",
    "TrainConfig": "trainers.config",
    "load_train_config": "trainers.config",
    "ProxyResult": "trainers.proxy",
    "ProxyRun": "trainers.proxy",
    "resolve_device": "trainers.runtime",
    "TrainingDiverged": "trainers.proxy",
    "default_proxy_backbone": "trainers.proxy",
    "proxy_arch": "trainers.proxy",
    "train_and_eval": "trainers.proxy",
    "TrainResult": "trainers.train",
    "TASKS": "trainers.tasks",
    "TaskKind": "trainers.tasks",
    "export_onnx": "trainers.onnx_export",
    "check_onnx": "trainers.onnx_export",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'trainers' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
