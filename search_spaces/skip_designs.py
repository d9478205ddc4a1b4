"""The skip-design spaces: ``skip_designs`` (full / none / subset / UNet-- and its knobs) and
``unetmm`` (UNet-- knobs only).

Parameters (conditional ones are suggested only where they apply; stages are 1-based):

- ``design``: one of ``bounds.designs`` (``skip_designs`` only; default ``subset``, ``unetmm``);
- ``subset.s{i}`` (bool): stage i keeps its skip; no stage is ``none``, every stage ``full``;
- ``unetmm.target``: aggregation stage t (Fig. 3: deepest = a, middle = b, shallowest = c);
- ``unetmm.s{i}`` (bool, if ``bounds.search_stages``): stage i takes part (none chosen: t only);
- ``unetmm.r{i}_log2`` (for taking-part stages): r_i = 2**value;
- ``unetmm.agg_log2``: aggregated channels A = 2**value;
- ``unetmm.iem_depth``: ConvNeXt V2 blocks per IEM header.

Two pixel-shuffle rules would make ``validate`` reject a point; the space repairs them instead,
by rounding *up* (never dropping information): a stage s deeper than t keeps a multiple of
4**(s-t) channels, and A is at least 4**(t - shallowest taking-part stage). ``bounds`` only
allows targets for which the repair exists. Defaults are spelled canonically (``target_stage``
None for the deepest, ``stages`` None for all), so the paper's point equals
``UNetMMConfig.paper(n, C1)`` exactly.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

from nas.skips import FullSkipsConfig, NoSkipsConfig, SubsetSkipsConfig, UNetMMConfig
from nas.skips.unetmm import round_half_up
from search_spaces.bounds import SpaceBounds
from search_spaces.candidate import Candidate
from search_spaces.registry import Params, SearchSpace, register_space

UNUSED_RATIO = 1.0  # ratio recorded for a stage that does not take part (it is never used)


def describe(skip: Any, stage_channels: tuple[int, ...]) -> str:
    """A short label: ``full``, ``none``, ``subset [1, 3]``, ``unetmm t=4 A=256 c=[..] d=1``."""
    if isinstance(skip, SubsetSkipsConfig):
        return f"subset {list(skip.stages)}"
    if isinstance(skip, UNetMMConfig):
        n = len(stage_channels)
        part = skip.skip_stages(n)
        reduced = skip.reduced(stage_channels)
        kept = ",".join(str(reduced[s - 1]) if s in part else "-" for s in range(1, n + 1))
        a, d = skip.aggregated_channels, skip.iem_depth
        return f"unetmm t={skip.target(n)} A={a} c=[{kept}] d={d}"
    return str(skip.name)


def _design(skip: Any, bounds: SpaceBounds) -> Candidate:
    return Candidate(skip, describe(skip, bounds.stage_channels))


# -- suggest ---------------------------------------------------------------------------------
def suggest_subset(trial: Any, bounds: SpaceBounds) -> Candidate:
    n = bounds.num_stages
    kept = tuple(
        s for s in range(1, n + 1) if trial.suggest_categorical(f"subset.s{s}", (False, True))
    )
    if not kept:
        return _design(NoSkipsConfig(), bounds)
    if len(kept) == n:
        return _design(FullSkipsConfig(), bounds)
    return _design(SubsetSkipsConfig(stages=kept), bounds)


def _repaired_ratio(channels: int, ratio: float, multiple: int) -> float:
    """A ratio keeping a multiple of ``multiple`` channels, at least ``round(channels*ratio)``."""
    kept = max(1, round_half_up(channels * ratio))
    if kept % multiple == 0:
        return ratio
    return math.ceil(kept / multiple) * multiple / channels


def suggest_unetmm(trial: Any, bounds: SpaceBounds) -> Candidate:
    n, channels = bounds.num_stages, bounds.stage_channels
    t = trial.suggest_categorical("unetmm.target", bounds.allowed_targets())
    if bounds.search_stages:
        part = tuple(
            s for s in range(1, n + 1) if trial.suggest_categorical(f"unetmm.s{s}", (False, True))
        ) or (t,)
    else:
        part = tuple(range(1, n + 1))
    ratios = [UNUSED_RATIO] * n
    lo, hi = bounds.ratio_log2
    for s in part:
        r = 2.0 ** trial.suggest_int(f"unetmm.r{s}_log2", lo, hi)
        ratios[s - 1] = _repaired_ratio(channels[s - 1], r, 4 ** (s - t)) if s > t else r
    agg = 2 ** trial.suggest_int("unetmm.agg_log2", *bounds.aggregated_log2)
    agg = max(agg, 4 ** (t - min(part)))
    depth = trial.suggest_int("unetmm.iem_depth", *bounds.iem_depth)
    skip = UNetMMConfig(
        ratios=tuple(ratios),
        target_stage=None if t == n else t,
        aggregated_channels=agg,
        iem_depth=depth,
        stages=None if len(part) == n else part,
    )
    return _design(skip, bounds)


SUGGEST_FAMILY = {
    "full": lambda trial, bounds: _design(FullSkipsConfig(), bounds),
    "none": lambda trial, bounds: _design(NoSkipsConfig(), bounds),
    "subset": suggest_subset,
    "unetmm": suggest_unetmm,
}


def suggest_skip_designs(trial: Any, bounds: SpaceBounds) -> Candidate:
    family = trial.suggest_categorical("design", bounds.designs)
    return SUGGEST_FAMILY[family](trial, bounds)


# -- encode ----------------------------------------------------------------------------------
def _log2_int(x: float) -> int | None:
    k = math.log2(x) if x > 0 else math.nan
    return int(round(k)) if abs(k - round(k)) < 1e-9 else None


def encode_unetmm(skip: Any, bounds: SpaceBounds) -> Params | None:
    """Raw parameters of a UNet-- config, or None if it is not a point of this space."""
    if not isinstance(skip, UNetMMConfig) or skip.reduced_channels is not None:
        return None
    if skip.sep_kernel != UNetMMConfig.sep_kernel or len(skip.ratios or ()) != bounds.num_stages:
        return None
    n = bounds.num_stages
    part = skip.skip_stages(n)
    params: Params = {"unetmm.target": skip.target(n)}
    if bounds.search_stages:
        params.update({f"unetmm.s{s}": s in part for s in range(1, n + 1)})
    for s in part:
        params[f"unetmm.r{s}_log2"] = _log2_int(skip.ratios[s - 1])
    params["unetmm.agg_log2"] = _log2_int(skip.aggregated_channels)
    params["unetmm.iem_depth"] = skip.iem_depth
    if None in params.values():
        return None
    return params


def _encode_direct(skip: Any, bounds: SpaceBounds) -> Params | None:
    n = bounds.num_stages
    direct = {FullSkipsConfig: "full", NoSkipsConfig: "none", SubsetSkipsConfig: "subset"}
    family = direct.get(type(skip))
    if family in bounds.designs and family != "subset":
        return {"design": family}
    if family is not None and "subset" in bounds.designs:  # subset's extremes are full, none
        kept = set(skip.skip_stages(n))
        return {"design": "subset", **{f"subset.s{s}": s in kept for s in range(1, n + 1)}}
    if isinstance(skip, UNetMMConfig) and "unetmm" in bounds.designs:
        inner = encode_unetmm(skip, bounds)
        return None if inner is None else {"design": "unetmm", **inner}
    return None


def _checked(encode: Any, suggest: Any) -> Any:
    """Wrap ``encode`` so it answers only when ``suggest`` maps the params back to ``skip``
    (replayed with ``optuna.trial.FixedTrial``; a value out of bounds counts as a miss)."""

    def encode_checked(skip: Any, bounds: SpaceBounds) -> Params | None:
        from optuna.trial import FixedTrial

        params = encode(skip, bounds)
        if params is None:
            return None
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # FixedTrial warns on out-of-range values
            try:
                back = suggest(FixedTrial(params), bounds).skip
            except (ValueError, UserWarning):
                return None
        return params if back == skip else None

    return encode_checked


register_space(
    SearchSpace(
        "skip_designs",
        suggest_skip_designs,
        _checked(_encode_direct, suggest_skip_designs),
        "full, none, subset or UNet-- (with its knobs), as a categorical 'design'",
    )
)
register_space(
    SearchSpace(
        "unetmm",
        suggest_unetmm,
        _checked(encode_unetmm, suggest_unetmm),
        "UNet-- knobs only: target stage, taking-part stages, ratios, A, IEM depth",
    )
)
