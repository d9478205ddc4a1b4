"""The one place a Ray Tune run of unetmm trials is set up: the search and ``unetmm confirm``
both hand their searcher to ``run_trials``.

Every trial runs ``worker.run_trial`` (the protocol of ``studies.search.protocol``) with the
given ``TrialSettings``, ``cpus``/``gpus`` each, at most ``concurrency`` at once, for as long as
the searcher hands out configs (``num_samples=-1``: the searcher says ``FINISHED``, so a trial
lost with its worker can run again). Tune's own failure handling is off (the searcher decides
every outcome), its experiment state goes to ``ray_dir``, and the first Ctrl-C or SIGTERM stops
every trial without telling the searcher (``signal_stopper``; the caller fails them afterwards).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from studies.search.protocol import TrialSettings


def run_trials(searcher: Any, settings: TrialSettings, *, name: str, ray_dir: str, cpus: int,
               gpus: float = 0.0, concurrency: int, scheduler: Any = None,
               callbacks: Sequence[Any] = (), stopping: str = "") -> None:  # fmt: skip
    """Run Tune until ``searcher`` is finished or a stop is asked (``stopping``: the notice
    printed on the first Ctrl-C)."""
    from ray import tune

    from studies.search.ray_session import signal_stopper
    from studies.search.worker import run_trial
    from studies.signals import graceful_stop

    resources: dict[str, float] = {"cpu": cpus}
    if gpus:
        resources["gpu"] = gpus
    trainable = tune.with_resources(tune.with_parameters(run_trial, settings=settings), resources)
    tuner = tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(
            search_alg=searcher,
            scheduler=scheduler,
            num_samples=-1,
            max_concurrent_trials=concurrency,
            reuse_actors=True,
        ),
        run_config=tune.RunConfig(
            name=f"{name}-{time.strftime('%Y%m%d-%H%M%S')}",
            storage_path=ray_dir,
            verbose=0,
            callbacks=list(callbacks),
            failure_config=tune.FailureConfig(max_failures=0),
            stop=signal_stopper(),
        ),
    )
    with graceful_stop(stopping):
        tuner.fit()


class StoredInStudy:
    """Mixin of unetmm's Tune searchers. The study lives in the Optuna storage, so Ray's
    experiment checkpoint of the searcher (a pickle of its state, database connection
    included) is neither needed nor wanted; and when Ray pickles the searcher with the Tuner
    (for a ``Tuner.restore`` unetmm never uses: it resumes from the storage), the live helpers
    named in ``_not_pickled`` (heartbeat thread, listener, console) stay out."""

    _not_pickled: tuple[str, ...] = ()

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        for key in self._not_pickled:
            state[key] = None
        return state

    def save_to_dir(self, checkpoint_dir: str, session_str: str = "default") -> None:
        return None

    def save(self, checkpoint_path: str) -> None:
        return None
