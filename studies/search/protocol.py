"""The driver <-> worker protocol of a search, in one piece.

Driver -> worker. ``StudySearcher.suggest`` returns the trial's Ray config: the sampled Optuna
parameters (Ray's OptunaSearch puts them there; the worker ignores them) and

- ``ARCH_KEY``: the target ``ArchConfig`` as JSON;
- ``NUMBER_KEY``: the Optuna trial number (progress lines, logs);
- ``REFERENCE_KEY``: the reference point's name (early stopping exempts it);
- ``SEED_KEY`` (confirmation jobs only): the seed of this run, instead of the settings'.

Every trial also gets the study's ``TrialSettings`` (``tune.with_parameters``): exactly what a
worker needs, resolved once by the driver (no StudySpec is validated in a worker).

Worker -> driver. ``tune.report`` results, each with ``PHASE``:

1. ``PHASE_COSTS``: the cost attributes (``studies.metrics`` cost keys and
   ``schema.COST_EXTRA_KEYS``), ``seconds_cost``, ``t_start_unix``;
2. ``PHASE_TRAIN``: ``STEP`` and ``VAL_PSNR`` after every proxy validation (ASHA reads them);
3. ``PHASE_FINAL``: ``status`` and the trial's scores, ``proxy_arch`` (a JSON string: Ray
   flattens nested dicts in results), curve, seconds and times.

A trial stopped by ASHA ends after a ``PHASE_TRAIN`` result; a worker that died ends without a
final one. ``trial_attrs`` keeps only what becomes a trial user attribute.
"""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any

from studies import schema
from studies.constraints import Constraint
from studies.metrics import METRICS

ARCH_KEY = "arch_json"
NUMBER_KEY = "optuna_number"
REFERENCE_KEY = "reference_point"
SEED_KEY = "job_seed"

PHASE = "phase"
PHASE_COSTS = "costs"
PHASE_TRAIN = "train"
PHASE_FINAL = "final"
STEP = "step"
VAL_PSNR = "val_psnr"


@dataclasses.dataclass(frozen=True)
class TrialSettings:
    """What every worker needs to run a trial of one study (built by ``from_spec``)."""

    input_size: tuple[int, int]
    batch: int
    bits: int
    cost_engine: str
    hard_constraints: tuple[Constraint, ...]  # cost constraints: checked before training
    needs_training: bool
    proxy_backbone: Any  # the resolved proxy backbone config
    task: Any  # trainers.config.TaskConfig
    data: Any  # trainers.config.DataConfig
    budget: Any  # trainers.config.ProxyBudget
    seed: int
    threads: int
    score_cache: bool = True  # read and write the persistent score cache
    device: str = "cpu"  # where the proxy trains: "cuda" when the trial holds a GPU share
    spare_cpus_file: str | None = None  # where the driver shares idle CPUs (``spare_cpus``)
    tile: int | None = None  # the tiled executor's tile (None: no tiled costs)
    split: int | str = "auto"
    costs: bool = True  # measure the target's costs first (a confirmation job's are known)

    def for_constraints(self) -> TrialSettings:
        """These settings costing only what the hard constraints read: the driver checks them
        before a trial starts, the worker measures every cost (the tiled executor's takes
        ~0.5 s a new design, off the driver's path unless a constraint needs it)."""
        if self.tile is None or any(c.row.executor == "tiled" for c in self.hard_constraints):
            return self
        return dataclasses.replace(self, tile=None)

    @classmethod
    def from_spec(cls, spec: Any) -> TrialSettings:
        """The settings of ``spec`` (a ``StudySpec``)."""
        t, p = spec.target, spec.proxy
        return cls(
            input_size=tuple(t.input_size),
            batch=t.batch,
            bits=t.bits,
            cost_engine=t.cost_engine,
            hard_constraints=tuple(c for c in spec.parsed_constraints if c.is_cost),
            needs_training=spec.needs_training,
            proxy_backbone=p.backbone_config(t.backbone_config()),
            task=p.task,
            data=p.data,
            budget=p.budget,
            seed=spec.seed,
            threads=spec.cpus_per_trial,
            score_cache=spec.score_cache,
            device="cuda" if spec.gpus_per_trial > 0 else "cpu",
            tile=None if t.tiling is None else t.tiling.tile,
            split="auto" if t.tiling is None else t.tiling.split,
        )


def costs_result(costs: dict[str, Any], seconds: float, t_start: float) -> dict[str, Any]:
    return {PHASE: PHASE_COSTS, **costs, "seconds_cost": seconds, schema.T_START: t_start}


def train_result(step: int, psnr: float, warned: list[str] | None = None) -> dict[str, Any]:
    """A validation; ``warned``: warnings raised since the last report (said by the driver)."""
    out = {PHASE: PHASE_TRAIN, STEP: int(step), VAL_PSNR: float(psnr)}
    return {**out, schema.ATTR_WARNINGS: warned} if warned else out


def final_result(final: dict[str, Any], **times: float) -> dict[str, Any]:
    return {PHASE: PHASE_FINAL, **final, **times}


def phase_of(result: dict[str, Any] | None) -> str | None:
    return (result or {}).get(PHASE)


def curve_point(result: dict[str, Any]) -> list[Any]:
    """``[step, psnr]`` of a ``PHASE_TRAIN`` result."""
    return [int(result[STEP]), float(result[VAL_PSNR])]


def reported_keys() -> frozenset[str]:
    """Result keys that become trial attributes (the rest of a Ray result is bookkeeping)."""
    return frozenset(
        (*(METRICS.get(n).key for n in METRICS.names()), *schema.COST_EXTRA_KEYS,
         *schema.METRIC_EXTRA_KEYS, *schema.TIME_KEYS, schema.ATTR_STATUS, schema.ATTR_ERROR,
         schema.ATTR_BROKEN, schema.ATTR_PROXY_ARCH, schema.ATTR_SCORE_CACHED,
         schema.ATTR_WARNINGS)
    )  # fmt: skip


def trial_attrs(result: dict[str, Any]) -> dict[str, Any]:
    """The attribute part of a result: reported keys only, NaNs dropped, ``proxy_arch`` decoded."""
    keys = reported_keys()
    attrs = {k: v for k, v in result.items() if k in keys and not _is_nan(v)}
    if isinstance(attrs.get(schema.ATTR_PROXY_ARCH), str):
        attrs[schema.ATTR_PROXY_ARCH] = json.loads(attrs[schema.ATTR_PROXY_ARCH])
    return attrs


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)
