"""Claims: what several drivers on one study agree on through the storage, atomically.

A claim is a study system attribute written with one INSERT (``compat.insert_study_system_attr``):
the storage's unique (study, key) index lets exactly one process win it, on SQLite and
PostgreSQL alike, however many drivers start at once. Three kinds:

- ``unetmm:run:<k>``: a run's index (0, 1, 2, ... in claim order). Each run seeds its sampler
  with ``run_seed(seed, k)``: one driver's runs repeat exactly, two drivers started together
  draw different designs.
- ``unetmm:reference:<name>:<attempt>``: the right to queue a reference point. Attempt 0 queues
  it once per study; a later attempt re-queues a reference whose trials all failed for an
  infrastructure reason (its worker died), at most ``max_attempts`` in all.
- ``unetmm:queued:<trial id>``: the right to run a trial popped from Optuna's WAITING queue.
  ``study.ask()`` pops a queued trial atomically on PostgreSQL (a row lock) but not on SQLite,
  where two drivers can both take the same one; the claim leaves it to exactly one.
- ``unetmm:design:<digest>:<attempt>``: the right to train a design (its ``digest`` hashes the
  target architecture and the study fingerprint), held by one trial. A driver that loses it
  waits for the holder's result and copies it; a later attempt is claimed only when the holder
  failed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from typing import Any

import numpy as np
import optuna

from studies import compat

RUN = "unetmm:run:"
REFERENCE = "unetmm:reference:"
DESIGN = "unetmm:design:"
QUEUED = "unetmm:queued:"


def claim(study: optuna.Study, key: str, value: Any) -> bool:
    """Whether this call won ``key`` (stored ``value`` under it)."""
    return compat.insert_study_system_attr(study, key, value)


def claims(study: optuna.Study, prefix: str) -> dict[str, Any]:
    """``key -> value`` of the study's claims under ``prefix``."""
    return {k: v for k, v in compat.study_system_attrs(study).items() if k.startswith(prefix)}


# -- runs -----------------------------------------------------------------------------------
def claim_run(study: optuna.Study, driver: str) -> int:
    """The index of this run among all runs of the study (the first free one, atomically)."""
    k = len(claims(study, RUN))
    while not claim(study, f"{RUN}{k}", {"driver": driver, "time": time.time()}):
        k += 1
    return k


def run_seed(seed: int, run: int) -> int:
    """The sampler seed of run ``run``: the study seed itself for run 0 (a first run samples
    what plain Optuna with that seed samples), a well-mixed other one for each later run."""
    if run == 0:
        return seed
    return int(np.random.SeedSequence([seed, run]).generate_state(1)[0])


# -- references -----------------------------------------------------------------------------
def reference_attempts(study: optuna.Study, name: str) -> dict[int, dict[str, Any]]:
    """``attempt -> claim`` of reference ``name``."""
    prefix = f"{REFERENCE}{name}:"
    return {int(k[len(prefix):]): v for k, v in claims(study, prefix).items()}


def claim_reference(study: optuna.Study, name: str, attempt: int, driver: str) -> bool:
    return claim(study, f"{REFERENCE}{name}:{attempt}", {"driver": driver, "time": time.time()})


def claim_queued(study: optuna.Study, trial: optuna.Trial, driver: str) -> bool:
    """Whether this driver may run ``trial`` as returned by ``study.ask()``: always for a new
    trial; for one popped from the WAITING queue, only if this driver won its claim."""
    if not compat.was_enqueued(trial):
        return True
    return claim(study, f"{QUEUED}{compat.trial_id(trial)}", {"driver": driver,
                                                             "time": time.time()})


# -- designs --------------------------------------------------------------------------------
def design_digest(arch: dict[str, Any], fingerprint: str) -> str:
    """32 hex digits naming a design measured under a fingerprint."""
    text = json.dumps([arch, fingerprint], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


@dataclasses.dataclass(frozen=True)
class DesignClaim:
    """The outcome of ``claim_design``: ``won`` the right to train, or who holds it."""

    won: bool
    attempt: int
    holder: int  # trial id of the holder (this trial if won)


def claim_design(
    study: optuna.Study, digest: str, trial_id: int, failed: Any, max_attempts: int
) -> DesignClaim | None:
    """Claim the design ``digest`` for trial ``trial_id``: the first attempt whose holder did
    not fail (``failed(holder_id) -> bool``) is either won now or held by another trial.
    None when ``max_attempts`` holders failed already (the design is not trained again)."""
    held = {int(k.rsplit(":", 1)[1]): v for k, v in claims(study, f"{DESIGN}{digest}:").items()}
    for attempt in range(max_attempts):
        holder = held.get(attempt)
        if holder is None:
            if claim(study, f"{DESIGN}{digest}:{attempt}", trial_id):
                return DesignClaim(True, attempt, trial_id)
            holder = compat.study_system_attrs(study)[f"{DESIGN}{digest}:{attempt}"]
        if holder == trial_id:
            return DesignClaim(True, attempt, trial_id)
        if not failed(holder):
            return DesignClaim(False, attempt, holder)
    return None
