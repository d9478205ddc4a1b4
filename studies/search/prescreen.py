"""``unetmm search --prescreen oneshot``: rank many designs with one weight-sharing supernet and
queue the best for real trials (the ``nni`` extra).

Offered because it was measured first (``benchmarks/oneshot_prescreen.py``, README): a supernet
trained 1200 steps (4 proxy runs) over the 13 designs of ``benchmarks/proxy_fidelity.py``
ranked them with Kendall tau-b 0.667 against their stand-alone proxy scores (0.590 against
runs 4x longer; the default proxy's own tau there: 0.769). ``prescreen`` runs in the driver,
before Ray starts:

1. the study is prepared and its reference points queued, as the search would;
2. ``designs`` distinct designs are drawn from the study's space (NNI's sampling of its model
   space, ``search_spaces.nni_space``, seeded by the study seed), none the study holds already;
   those that break a hard (cost) constraint are dropped, costed as the searcher costs them;
3. one supernet of their proxy architectures (``search_spaces.nni_supernet``) trains
   SPOS-style (``trainers.oneshot``) for ``steps`` (default: 4x the proxy budget's steps) on the
   study's proxy task, data and budget; each design is then scored with the inherited weights;
4. the best ones fill the run's free slots (``n_trials`` less the queued trials) as queued
   trials with ``ATTR_PRESCREEN`` (their supernet PSNR rank); the search then judges them
   first, with the study's trial function, and its sampler proposes the rest of a later run.

Each design gets ``steps / designs`` training steps on average (the measurement: about 90), so
keep ``designs`` near ``steps / 90``; the default draws 16 for 4x a 300-step budget.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import optuna

from nas.errors import ConfigError
from search_spaces import get_space, nni_imports
from studies.schema import ATTR_ARCH_KEY, ATTR_PRESCREEN

METHODS = ("oneshot",)
DEFAULT_DESIGNS = 16
STEPS_FACTOR = 4  # supernet steps: this many proxy budgets


@dataclasses.dataclass(frozen=True)
class Prescreened:
    """What a pre-screen did: every design's label and supernet PSNR, best first; the labels
    queued; the designs dropped as infeasible; the supernet's steps."""

    ranked: list[tuple[str, float]]
    queued: list[str]
    infeasible: int
    steps: int


def check(method: str, designs: int) -> None:
    """``ConfigError`` (one line) for an unknown method, too few designs or a missing extra,
    before anything runs."""
    if method not in METHODS:
        raise ConfigError(f"--prescreen: unknown method {method!r}; choose one of {METHODS}")
    if designs < 2:
        raise ConfigError(f"--prescreen-designs: {designs} < 2; a ranking needs two or more")
    if not nni_imports.available():
        raise ConfigError(nni_imports.missing_message("--prescreen oneshot"))


def run_prescreen(spec: Any, storage: str | None, study_name: str | None, designs: int,
                  console: Any) -> Prescreened:  # fmt: skip
    """The CLI's pre-screen: open the storage and prepare the study as the search will, queue
    its reference points, pre-screen, and say what was queued."""
    from studies.search.driver import enqueue_references, prepare_study
    from studies.storage import (
        default_storage_url,
        normalize_url,
        open_storage,
        require_persistent,
    )

    url = normalize_url(storage or spec.storage or default_storage_url())
    require_persistent(url)
    study = prepare_study(spec, study_name or spec.name, open_storage(url))
    enqueue_references(study, spec, spec.n_trials)
    console.print(f"pre-screen: one supernet over up to {designs} new designs "
                  f"({STEPS_FACTOR * spec.proxy.budget.steps} proxy steps)")  # fmt: skip
    done = prescreen(spec, study, designs, seed=spec.seed)
    for rank, (label, psnr) in enumerate(done.ranked, 1):
        mark = "queued" if label in done.queued else ""
        console.print(f"  {rank:3d}. {psnr:6.2f} dB  {label}  {mark}")
    console.print(f"pre-screen: queued {len(done.queued)} design(s) for this run; "
                  f"{done.infeasible} drawn design(s) broke a hard constraint")  # fmt: skip
    return done


def _draw(spec: Any, study: optuna.Study, n: int, seed: int) -> list[Any]:
    """``n`` distinct candidates of the study's space the study has not seen, queued ones
    included (fewer if the space runs out within 50 draws per design)."""
    from search_spaces.nni_space import executable, to_candidate
    from studies.compat import already_enqueued

    space_name, bounds, backbone = spec.space.name, spec.bounds, spec.target.backbone_config()
    seen = {t.user_attrs.get(ATTR_ARCH_KEY) for t in study.get_trials(deepcopy=False)}
    model_space, rng = executable(space_name, bounds), np.random.RandomState(seed)
    space = get_space(space_name)
    out: dict[str, Any] = {}
    for _ in range(50 * n):
        if len(out) == n:
            break
        memo: dict[str, Any] = {}
        model_space.random(memo=memo, random_state=rng)
        candidate = to_candidate(memo, space_name, bounds)
        key = candidate.arch(backbone).key()
        params = space.encode(candidate.skip, bounds)
        if key not in seen and key not in out and params is not None and (
                not already_enqueued(study, params)):  # fmt: skip
            out[key] = candidate
    return list(out.values())


def _feasible(spec: Any, candidates: list[Any]) -> list[Any]:
    from studies.constraints import broken, constraint_values
    from studies.search.protocol import TrialSettings
    from studies.search.worker import cost_attrs

    settings = TrialSettings.from_spec(spec).for_constraints()
    if not settings.hard_constraints:
        return candidates
    backbone = spec.target.backbone_config()
    return [c for c in candidates if not broken(constraint_values(
        settings.hard_constraints, cost_attrs(c.arch(backbone), settings)))]  # fmt: skip


def prescreen(spec: Any, study: optuna.Study, designs: int = DEFAULT_DESIGNS,
              steps: int | None = None, seed: int = 0) -> Prescreened:  # fmt: skip
    """Pre-screen for ``study`` (prepared, references queued): see the module docstring."""
    nni_imports.require("--prescreen oneshot")
    if not spec.needs_training:
        raise ConfigError("--prescreen: it ranks designs by proxy PSNR, and this study trains "
                          "none (no accuracy objective or constraint)")  # fmt: skip
    from search_spaces.nni_supernet import one_shot
    from trainers.loop import compute_settings
    from trainers.oneshot import score_designs, train_supernet
    from trainers.proxy import proxy_arch

    drawn = _draw(spec, study, designs, seed)
    candidates = _feasible(spec, drawn)
    if len(candidates) < 2:
        raise ConfigError(f"--prescreen: {len(candidates)} feasible new design(s) of "
                          f"{len(drawn)} drawn; nothing to rank")  # fmt: skip
    target, p = spec.target.backbone_config(), spec.proxy
    proxy = p.backbone_config(target)
    by_key = {c.arch(target).key(): c for c in candidates}  # path names: keys, not labels
    archs = {k: proxy_arch(c.arch(target), proxy) for k, c in by_key.items()}
    steps = steps or STEPS_FACTOR * p.budget.steps
    with compute_settings(spec.cpus_per_trial):
        net = one_shot(archs, seed)
        train_supernet(net, p.task, p.budget, steps, p.data, seed)
        scores = score_designs(net, p.task, p.budget, steps, p.data)
    best = sorted(scores, key=lambda k: -scores[k]["psnr"])
    waiting = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.WAITING,))
    free = max(0, spec.n_trials - len(waiting))
    space, queued = get_space(spec.space.name), []
    for rank, key in enumerate(best[:free], 1):
        params = space.encode(by_key[key].skip, spec.bounds)
        if params is not None:
            study.enqueue_trial(params, user_attrs={ATTR_PRESCREEN: rank})
            queued.append(by_key[key].label)
    ranked = [(by_key[k].label, scores[k]["psnr"]) for k in best]
    return Prescreened(ranked, queued, len(drawn) - len(candidates), steps)
