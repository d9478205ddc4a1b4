"""What one trial does on its Ray worker: target costs -> constraint check -> proxy training.

``run_trial(config, spec)`` is the Ray Tune trainable. It reports three kinds of results
(plain keys, all of them trial user-attributes of ``studies.schema``):

1. ``phase="costs"``: the target model's costs (cheap; cached by arch key), its arch;
2. ``phase="train"``: ``step`` and ``val_psnr`` after every proxy validation (ASHA reads them);
3. ``phase="final"``: ``status`` and the metrics, seconds and times.

A trial that breaks a hard constraint reports ``infeasible`` and is not trained. Any error is
caught and reported as ``failed`` with its reason, so the study goes on; only a worker that
dies (or is stopped by ASHA) ends without a final report, and the searcher knows why.
"""

from __future__ import annotations

import math
import time
import traceback
from typing import Any

from ray import tune

from nas.config import ArchConfig
from nas.cost import measure_cost
from studies.constraints import broken, constraint_values
from studies.schema import (
    ATTR_BROKEN,
    ATTR_ERROR,
    ATTR_PROXY_ARCH,
    ATTR_STATUS,
    STATUS_COMPLETE,
    STATUS_FAILED,
    STATUS_INFEASIBLE,
)
from studies.spec import StudySpec

ARCH_KEY = "arch_json"  # config key: the target ArchConfig as JSON (set by the searcher)
NUMBER_KEY = "optuna_number"  # config key: the Optuna trial number (for logs)
REUSE_KEY = "reuse_trial"  # config key: number of an earlier trial of the same design


def cost_attrs(arch: ArchConfig, spec: StudySpec) -> dict[str, Any]:
    """The target's costs as trial attributes (``m_sc_bytes``, ``macs``, ...)."""
    t = spec.target
    r = measure_cost(arch, t.input_size, t.batch, t.bits, t.cost_engine)
    return {
        "m_sc_bytes": r.m_sc_bytes,
        "macs": r.macs,
        "macs_paper": r.macs_paper,
        "params": r.params,
        "peak_activation_bytes": r.peak_activation_bytes,
        "m_sc_timeline": [[label, int(b)] for label, b in r.m_sc_timeline],
        "bits": r.bits,
        "input_size": [r.height, r.width],
        "cost_engine": r.engine,
    }


def evaluate(arch: ArchConfig, spec: StudySpec, report: Any) -> dict[str, Any]:
    """Costs, constraints, training; returns the final attributes (``status`` included)."""
    import torch

    t_start, t0 = time.time(), time.perf_counter()
    torch.set_num_threads(spec.cpus_per_trial)
    arch.skip.validate(arch.backbone.stage_channels)
    costs = cost_attrs(arch, spec)
    seconds_cost = time.perf_counter() - t0
    report({"phase": "costs", **costs, "seconds_cost": seconds_cost, "t_start": t_start})
    hard = tuple(c for c in spec.parsed_constraints if c.is_cost)
    violated = broken(constraint_values(hard, costs))
    if violated:
        return {ATTR_STATUS: STATUS_INFEASIBLE, ATTR_BROKEN: violated}
    if not spec.needs_training:
        return {ATTR_STATUS: STATUS_COMPLETE}
    return train(arch, spec, report)


def train(arch: ArchConfig, spec: StudySpec, report: Any) -> dict[str, Any]:
    """The proxy run: reports every validation; returns the final metrics."""
    from trainers.proxy import proxy_arch, train_and_eval

    proxy = proxy_arch(arch, spec.proxy.backbone_config(arch.backbone))

    def on_validation(step: int, psnr: float) -> None:
        report({"phase": "train", "step": int(step), "val_psnr": float(psnr)})

    p = spec.proxy
    result = train_and_eval(proxy, p.task, p.budget, p.data, callback=on_validation,
                            threads=spec.cpus_per_trial, seed=spec.seed)  # fmt: skip
    out = {
        ATTR_PROXY_ARCH: proxy.to_json(),  # a string: Ray flattens nested dicts in results
        "psnr": float(result.psnr),
        "ssim": float(result.ssim),
        "input_psnr": float(getattr(result, "input_psnr", math.nan)),
        "steps": int(result.steps),
        "curve": [[int(s), float(v)] for s, v in result.curve],
        "seconds_train": float(result.seconds),
    }
    if not (math.isfinite(out["psnr"]) and math.isfinite(out["ssim"])):
        return {**out, ATTR_STATUS: STATUS_FAILED, ATTR_ERROR: "proxy scores are not finite"}
    return {**out, ATTR_STATUS: STATUS_COMPLETE}


def run_trial(config: dict[str, Any], spec: dict[str, Any]) -> None:
    """The Ray Tune trainable (``spec`` is ``StudySpec.model_dump()``; see the module doc)."""
    t_start, t0, cpu0 = time.time(), time.perf_counter(), time.process_time()
    report = tune.report
    try:
        if config.get(REUSE_KEY) is not None:  # the searcher copies that trial's results
            final = {}
        else:
            study_spec = StudySpec.model_validate(spec)
            final = evaluate(ArchConfig.from_json(config[ARCH_KEY]), study_spec, report)
    except Exception as exc:  # noqa: BLE001  (recorded as the trial's failure reason)
        final = {ATTR_STATUS: STATUS_FAILED, ATTR_ERROR: _reason(exc)}
    report({"phase": "final", **final, "seconds": time.perf_counter() - t0,
            "cpu_seconds": time.process_time() - cpu0, "t_start": t_start,
            "t_end": time.time()})  # fmt: skip


def _reason(exc: BaseException) -> str:
    """``Type: message (file:line)`` of the innermost frame, one line."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" ({frames[-1].filename.rsplit('/', 1)[-1]}:{frames[-1].lineno})" if frames else ""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}{where}"
