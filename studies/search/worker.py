"""What one trial does on its Ray worker: target costs -> proxy training.

``run_trial(config, settings)`` is the Ray Tune trainable; ``studies.search.protocol`` states
what it reads from ``config`` and the three phases it reports. The driver judged the design
feasible before it launched the trial. Any error is caught and reported as
``failed`` with its reason, so the study goes on; only a worker that dies (or is stopped by
ASHA) ends without a final report, and the searcher knows why.
"""

from __future__ import annotations

import dataclasses
import math
import time
import traceback
from typing import Any

from nas.config import ArchConfig
from nas.cost import measure_cost
from studies.constraints import broken, constraint_values
from studies.metrics import cost_metrics, get_metric, score_metrics
from studies.schema import (
    ATTR_ERROR,
    ATTR_NODE,
    ATTR_PROXY_ARCH,
    ATTR_SCORE_CACHED,
    ATTR_STATUS,
    ATTR_WARNINGS,
    CURVE,
    INPUT_PSNR,
    M_SC_TIMELINE,
    STATUS_COMPLETE,
    STATUS_FAILED,
    T_END,
    T_START,
)
from studies.search import protocol
from studies.search.protocol import TrialSettings


def cost_attrs(arch: ArchConfig, settings: TrialSettings) -> dict[str, Any]:
    """The target's costs as trial attributes: every cost metric's key, and the timeline."""
    s = settings
    r = measure_cost(arch, s.input_size, s.batch, s.bits, s.cost_engine, tile=s.tile,
                     split=s.split)  # fmt: skip
    values = {m.key: m.from_cost(r) for m in cost_metrics() if m.from_cost is not None}
    tiling = {} if r.tile is None else {"tiling": {"tile": r.tile, "split": r.split}}
    return {
        **{k: v for k, v in values.items() if v is not None},
        **tiling,
        M_SC_TIMELINE: [[label, int(b)] for label, b in r.m_sc_timeline],
        "bits": r.bits,
        "input_size": [r.height, r.width],
        "cost_engine": r.engine,
    }


def hard_costs(arch: ArchConfig, settings: TrialSettings) -> tuple[dict[str, Any], list[str]]:
    """The one check of a design against the hard (cost) constraints of ``settings``, before
    any training: the costs they read (``cost_attrs`` of ``settings.for_constraints()``) and the
    names of the constraints the design breaks (empty: feasible)."""
    costs = cost_attrs(arch, settings.for_constraints())
    return costs, broken(constraint_values(settings.hard_constraints, costs))


def evaluate(arch: ArchConfig, settings: TrialSettings, report: Any) -> dict[str, Any]:
    """Costs, then training; returns the final attributes (``status`` included). The driver
    launches only designs that meet the hard constraints (``StudySearcher._judge``, the one
    place that checks them), so none is checked here."""
    import torch

    t_start, t0 = time.time(), time.perf_counter()
    torch.set_num_threads(settings.threads)
    arch.skip.validate(arch.backbone.stage_channels)
    costs = cost_attrs(arch, settings) if settings.costs else {}
    node = ray_node()
    report(protocol.costs_result({**costs, **({ATTR_NODE: node} if node else {})},
                                 time.perf_counter() - t0, t_start))
    if not settings.needs_training:
        return {ATTR_STATUS: STATUS_COMPLETE}
    return train(arch, settings, report)


def train(arch: ArchConfig, settings: TrialSettings, report: Any) -> dict[str, Any]:
    """The proxy run: reports every validation; returns the final scores. A score found in the
    persistent score cache (``settings.score_cache``) is returned at once, marked
    ``score_cached`` (no validation is reported: the early stopper has nothing to judge). After
    each validation the run takes the threads the driver shares at the end of a search, for
    cores that are idle, and gives them back when crowded out (``spare_cpus``)."""
    import torch

    from nas.cost.fits import check_fits
    from studies.search.score_cache import cached_train_and_eval
    from studies.search.spare_cpus import CpuMeter, threads_now
    from trainers.config import ProxyRuntime
    from trainers.proxy import proxy_arch

    s = settings
    proxy = proxy_arch(arch, s.proxy_backbone)
    # a design far too big for this machine (UNet-- with a large A aggregated at a shallow
    # stage grows its IEM headers to billions of weights) fails with one line, not an OOM kill
    check_fits(proxy, s.budget.batch, s.budget.crop, "this design's proxy", "proxy.budget")
    caught = DataWarnings()
    meter = CpuMeter() if s.spare_cpus_file else None

    def on_validation(step: int, psnr: float) -> Any:
        stop = report(protocol.train_result(step, psnr, caught.new()))  # True stops the run
        threads = threads_now(s.spare_cpus_file, s.threads, torch.get_num_threads(), meter)
        if threads != torch.get_num_threads():
            torch.set_num_threads(threads)
        return stop

    with caught:
        result, cached = cached_train_and_eval(
            proxy, s.task, s.budget, s.data, seed=s.seed, threads=s.threads,
            enabled=s.score_cache, callback=on_validation, runtime=ProxyRuntime(device=s.device),
        )  # fmt: skip
    scores = {
        get_metric("psnr").key: float(result.psnr),
        get_metric("ssim").key: float(result.ssim),
        **{m.key: float(result.metrics[m.name]) for m in score_metrics()
           if m.tasks is not None and m.name in result.metrics},  # the task's own (matting)
    }  # fmt: skip
    out = {
        ATTR_PROXY_ARCH: proxy.to_json(),
        **scores,
        INPUT_PSNR: float(result.input_psnr),
        "steps": int(result.steps),
        CURVE: [[int(s), float(v)] for s, v in result.curve],
        "seconds_train": 0.0 if cached else float(result.seconds),
    }
    if cached:
        out[ATTR_SCORE_CACHED] = True
    if caught.all:
        out[ATTR_WARNINGS] = caught.all
    if not all(math.isfinite(v) for v in scores.values()):
        return {**out, ATTR_STATUS: STATUS_FAILED, ATTR_ERROR: "proxy scores are not finite"}
    return {**out, ATTR_STATUS: STATUS_COMPLETE}


class DataWarnings:
    """Records the data warnings (``trainers.data.ImageSkipped``) raised inside the block, which
    a Ray worker's log would otherwise keep to itself: ``new()`` those since the last call,
    ``all`` every one (each message once)."""

    def __init__(self) -> None:
        self.all: list[str] = []
        self._said = 0
        self._cm: Any = None

    def __enter__(self) -> DataWarnings:
        import warnings

        from trainers.data import ImageSkipped

        self._cm = warnings.catch_warnings(record=True)
        self._log = self._cm.__enter__()
        warnings.simplefilter("always", ImageSkipped)
        return self

    def __exit__(self, *exc: object) -> None:
        self._collect()
        self._cm.__exit__(*exc)

    def _collect(self) -> None:
        from trainers.data import ImageSkipped

        for w in self._log or []:
            if issubclass(w.category, ImageSkipped) and str(w.message) not in self.all:
                self.all.append(str(w.message))
        if self._log is not None:
            self._log.clear()

    def new(self) -> list[str]:
        self._collect()
        fresh, self._said = self.all[self._said:], len(self.all)
        return fresh


def ray_node() -> str | None:
    """The Ray node id this process runs on (None outside Ray)."""
    import ray

    if not ray.is_initialized():
        return None
    return ray.get_runtime_context().get_node_id()


def run_trial(config: dict[str, Any], settings: TrialSettings) -> None:
    """The Ray Tune trainable (see ``studies.search.protocol``)."""
    from ray import tune

    t_start, t0, cpu0 = time.time(), time.perf_counter(), time.process_time()
    try:
        arch = ArchConfig.from_json(config[protocol.ARCH_KEY])
        if protocol.SEED_KEY in config:
            settings = dataclasses.replace(settings, seed=int(config[protocol.SEED_KEY]))
        final = evaluate(arch, settings, tune.report)
    except Exception as exc:  # noqa: BLE001  (recorded as the trial's failure reason)
        final = {ATTR_STATUS: STATUS_FAILED, ATTR_ERROR: failure_reason(exc)}
    tune.report(protocol.final_result(
        final, seconds=time.perf_counter() - t0, cpu_seconds=time.process_time() - cpu0,
        **{T_START: t_start, T_END: time.time()}))  # fmt: skip


def failure_reason(exc: BaseException) -> str:
    """``Type: message (file:line)`` of the innermost frame, one line."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" ({frames[-1].filename.rsplit('/', 1)[-1]}:{frames[-1].lineno})" if frames else ""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}{where}"
