"""A surrogate of the proxy's final PSNR over a skip-design space (issue 29), from scikit-learn.

``features(arch, costs)`` describes a design by what its decoder gets back and what it costs:
per stage, log2(1 + skip channels that reach the decoder) (a subset's kept stages: all C_i;
UNet--'s taking-part stages: its reduced channels), whether it is UNet--, its aggregation stage,
log2 A, IEM depth, log2(1 + M_sc KiB), GMACs, millions of parameters, the shallowest stage that
gives anything back (5: none), how many do, and log2(1 + values returned per input pixel): a
subset's sum of C_i / 4^(i-1) over its kept stages, UNet--'s A / 4^(t-1) (its one aggregate, at
stage t, is all the decoder gets). The last three cut the held-out RMSE from 0.65 to 0.55 dB at
208 designs (Gaussian process; tau 0.83 -> 0.85). ``REGRESSORS`` are
well-kept scikit-learn learners, each with a fixed random state (the same table fits the same
model). ``cross_validate`` fits each fold's model on the other folds' rows only and reports
Kendall tau-b and RMSE of the held-out predictions (averaged over repeated shuffles: one 5-fold
split of ~300 designs moves the RMSE by 0.1 dB).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from scipy.stats import kendalltau
from sklearn.ensemble import ExtraTreesRegressor, RandomForestRegressor
from sklearn.exceptions import ConvergenceWarning
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel
from sklearn.model_selection import KFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from nas.config import ArchConfig

FEATURE_NAMES = ("log2_skip_c1", "log2_skip_c2", "log2_skip_c3", "log2_skip_c4", "unetmm",
                 "target_stage", "log2_A", "iem_depth", "log2_m_sc_kib", "gmacs", "mparams",
                 "first_stage_back", "stages_back", "log2_values_per_pixel")  # fmt: skip


def features(arch: ArchConfig, costs: dict[str, Any]) -> list[float]:
    """The design's feature vector (``FEATURE_NAMES``; ``costs`` holds ``m_sc_bytes``,
    ``macs_fvcore`` and ``params``)."""
    skip, channels = arch.skip, arch.backbone.stage_channels
    n = len(channels)
    back = [0] * n
    stages = skip.skip_stages(n)
    unetmm = skip.name == "unetmm"
    if unetmm:
        reduced = skip.reduced(channels)
        for s in stages:
            back[s - 1] = reduced[s - 1]
        per_pixel = skip.aggregated_channels / 4 ** (skip.target(n) - 1)
    else:
        for s in stages:
            back[s - 1] = channels[s - 1]
        per_pixel = sum(channels[s - 1] / 4 ** (s - 1) for s in stages)
    return [*(math.log2(1 + c) for c in back), float(unetmm),
            float(skip.target(n)) if unetmm else 0.0,
            math.log2(skip.aggregated_channels) if unetmm else 0.0,
            float(skip.iem_depth) if unetmm else 0.0,
            math.log2(1 + costs["m_sc_bytes"] / 1024), costs["macs_fvcore"] / 1e9,
            costs["params"] / 1e6, float(min(stages, default=n + 1)), float(len(stages)),
            math.log2(1 + per_pixel)]  # fmt: skip


def _gp() -> Any:
    kernel = ConstantKernel() * Matern(length_scale=np.ones(len(FEATURE_NAMES)), nu=2.5) \
        + WhiteKernel(0.1)
    gp = GaussianProcessRegressor(kernel, normalize_y=True, random_state=0, n_restarts_optimizer=2)
    return make_pipeline(StandardScaler(), gp)


REGRESSORS: dict[str, Callable[[], Any]] = {
    "random forest": lambda: RandomForestRegressor(500, min_samples_leaf=2, random_state=0),
    "extra trees": lambda: ExtraTreesRegressor(500, min_samples_leaf=2, random_state=0),
    "gaussian process": _gp,
}


def fit(make: Callable[[], Any], x: np.ndarray, y: np.ndarray) -> Any:
    """``make()`` fitted on (x, y); the GP's hyper-parameter bound warnings kept quiet (its
    held-out scores say how well it fits)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return make().fit(x, y)


def cross_validate(x: np.ndarray, y: np.ndarray, make: Callable[[], Any], folds: int = 5,
                   seed: int = 0, repeats: int = 1) -> dict[str, Any]:  # fmt: skip
    """Held-out predictions of ``make()`` over ``folds`` shuffled folds (each fold's model sees
    only the other folds' rows), the shuffle repeated ``repeats`` times (seeds ``seed``, ``seed
    + 1``, ...): ``tau`` (Kendall tau-b) and ``rmse`` (dB), their means over the repeats;
    ``taus``, ``rmses`` per repeat; ``predicted``: the first shuffle's predictions."""
    taus, rmses, first = [], [], None
    for r in range(repeats):
        predicted = np.full(len(y), np.nan)
        for train, held in KFold(folds, shuffle=True, random_state=seed + r).split(x):
            model = fit(make, x[train], y[train])
            predicted[held] = model.predict(x[held])
        taus.append(float(kendalltau(y, predicted).statistic))
        rmses.append(float(np.sqrt(np.mean((predicted - y) ** 2))))
        first = predicted if first is None else first
    return {"tau": float(np.mean(taus)), "rmse": float(np.mean(rmses)), "taus": taus,
            "rmses": rmses, "predicted": first.tolist()}  # fmt: skip


def seed_noise(pairs: Sequence[tuple[float, float]]) -> float:
    """The pooled seed standard deviation of designs run twice: sqrt(mean((a - b)^2 / 2))."""
    return math.sqrt(sum((a - b) ** 2 / 2 for a, b in pairs) / len(pairs)) if pairs else math.nan
