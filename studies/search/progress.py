"""Live progress of a search: one line per finished trial and a status line with the counts.

``Progress`` is fed by the searcher (a trial is asked for; a judged trial is told: ``finish``;
a proposal is told without training, infeasible or a copy: ``reject``) and by Ray Tune (a trial
starts on a worker, ``TrialStartCallback``). ``done N/n_trials`` counts judged designs only:
rejected proposals cost no trial and are counted apart. The front is counted in distinct
designs (``studies.results.pareto.distinct_front``). On a terminal the status line stays at the
bottom (rich); elsewhere (CI logs, pipes) it is printed with every finished trial.
"""

from __future__ import annotations

import collections
import threading
import time
from typing import Any

import optuna
from ray.tune import Callback
from rich.console import Console
from rich.live import Live
from rich.text import Text

from nas.cost import MIB
from studies import schema
from studies.metrics import get_metric
from studies.results.pareto import distinct_front, load_points, study_objectives
from studies.schema import (
    ATTR_COPY_OF,
    ATTR_DESIGN,
    ATTR_ERROR,
    ATTR_NODE,
    ATTR_REFERENCE,
    ATTR_STATUS,
    ATTR_WARNINGS,
    STATUS_FAILED,
)
from studies.search.protocol import NUMBER_KEY

STATUS_STYLE = {"complete": "green", "stopped": "yellow", "infeasible": "magenta",
                "failed": "red"}  # fmt: skip


class Progress:
    """Counts of queued / running / judged / rejected trials and the Pareto front size."""

    def __init__(
        self,
        study: optuna.Study,
        n_trials: int,
        console: Console | None = None,
        objectives: tuple[str, ...] | None = None,
    ) -> None:
        self.study = study
        self.n_trials = n_trials
        self.console = console or Console(highlight=False)
        self.objectives = objectives or study_objectives(study)
        self.queued: set[int] = set()
        self.running: set[int] = set()
        self.done: collections.Counter[str] = collections.Counter()
        self.rejected: collections.Counter[str] = collections.Counter()  # infeasible, copy, failed
        self.front = 0
        self.lost = 0  # trials whose worker or node died: queued again
        self.warned: set[str] = set()
        self._t0 = time.perf_counter()
        self._lock = threading.Lock()
        self._live: Live | None = None

    # -- events ---------------------------------------------------------------------------
    def __call__(self, event: str, trial: optuna.trial.FrozenTrial) -> None:
        """The searcher's listener: ``start`` (asked), ``finish`` (a judged trial told),
        ``reject`` (a proposal told without a trial of its own), ``lost`` (its worker or node
        died; the design was queued again) or ``warn`` (the trial's worker warned: each warning
        is printed once per search)."""
        with self._lock:
            if event == "warn" or trial.user_attrs.get(ATTR_WARNINGS):
                for text in trial.user_attrs.get(ATTR_WARNINGS) or []:
                    if text not in self.warned:  # each once, whichever trial said it
                        self.warned.add(text)
                        self.console.print(Text(f"warning: {text}", style="yellow"),
                                           soft_wrap=True)  # one line, however long
                if event == "warn":
                    return
            if event == "start":
                self.queued.add(trial.number)
            elif event == "lost":
                self.queued.discard(trial.number)
                self.running.discard(trial.number)
                self.lost += 1
                node = trial.user_attrs.get(ATTR_NODE)
                where = f" on node {node[:12]}" if node else ""
                line = Text(f"#{trial.number:<3} ")
                line.append(f"{'lost':<10}", style="red")
                line.append(f" {trial.user_attrs.get(ATTR_DESIGN, '?')}: its worker died{where};"
                            " the design is queued again and costs no trial")  # fmt: skip
                self.console.print(line)
            else:
                self.queued.discard(trial.number)
                self.running.discard(trial.number)
                status = trial.user_attrs.get(ATTR_STATUS, STATUS_FAILED)
                if event == "reject":
                    self.rejected["copy" if ATTR_COPY_OF in trial.user_attrs else status] += 1
                else:
                    self.done[status] += 1
                self.front = len(distinct_front(load_points(self.study), self.objectives))
                self.console.print(self._trial_line(trial, status))
            self._refresh()

    def started(self, number: int) -> None:
        with self._lock:
            self.queued.discard(number)
            self.running.add(number)
            self._refresh()

    # -- text -----------------------------------------------------------------------------
    def status_line(self) -> str:
        d, r = self.done, self.rejected
        parts = " ".join(f"{d[s]} {s}" for s in ("complete", "stopped", "failed"))
        free = f"{r['infeasible']} infeasible, {r['copy']} copies" + (
            f", {r[STATUS_FAILED]} failed to cost" if r[STATUS_FAILED] else "")
        queued = f" +{len(self.queued)} queued" if self.queued else ""
        queued += f" | lost {self.lost} (re-run)" if self.lost else ""
        return (f"done {sum(d.values())}/{self.n_trials}: {parts} | not trained: {free} | "
                f"running {len(self.running)}{queued} | front {self.front} designs | "
                f"{time.perf_counter() - self._t0:.0f} s")  # fmt: skip

    def _trial_line(self, t: optuna.trial.FrozenTrial, status: str) -> Text:
        a = schema.current(t.user_attrs)
        psnr, m_sc, macs = (get_metric(n).key for n in ("psnr", "m_sc", "macs"))
        ref = f" [{a[ATTR_REFERENCE]}]" if a.get(ATTR_REFERENCE) else ""
        bits = []
        if psnr in a:
            bits.append(f"PSNR {a[psnr]:.2f} dB")
        elif schema.VAL_PSNR in a:
            bits.append(f"PSNR {a[schema.VAL_PSNR]:.2f} dB at step {a[schema.VAL_STEP]}")
        if m_sc in a:
            bits.append(f"M_sc {a[m_sc] / MIB:.3f} MiB")
        for name in self.objectives:  # the study's other costs, e.g. the tiled peak
            m = get_metric(name)
            if m.cost and name not in ("m_sc", "macs") and m.key in a:
                bits.append(f"{m.short} {m.format(a[m.key])}")
        if macs in a:
            bits.append(f"{a[macs] / 1e9:.2f} GMACs")
        if "seconds" in a:
            bits.append(f"{a['seconds']:.0f} s")
        if status == STATUS_FAILED and a.get(ATTR_ERROR):
            bits.append(str(a[ATTR_ERROR]))
        if a.get(ATTR_COPY_OF) is not None:
            bits.append(f"copy of #{a[ATTR_COPY_OF]}")
        line = Text(f"#{t.number:<3} ")
        line.append(f"{status:<10}", style=STATUS_STYLE.get(status, ""))
        line.append(f" {a.get(ATTR_DESIGN, '?')}{ref}: {', '.join(bits)}")
        if not self.console.is_terminal:
            line.append(f"\n     {self.status_line()}", style="dim")
        return line

    # -- live line ------------------------------------------------------------------------
    def __enter__(self) -> Progress:
        if self.console.is_terminal:
            self._live = Live(Text(self.status_line()), console=self.console,
                              refresh_per_second=2, transient=True)  # fmt: skip
            self._live.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._live is not None:
            self._live.__exit__(*exc)
            self._live = None

    def _refresh(self) -> None:
        if self._live is not None:
            self._live.update(Text(self.status_line()))


class TrialStartCallback(Callback):
    """Tells ``Progress`` when Ray starts a trial on a worker."""

    def __init__(self, progress: Progress) -> None:
        self.progress: Progress | None = progress

    def __getstate__(self) -> dict[str, Any]:  # Ray pickles callbacks with the Tuner
        return {"progress": None}

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        number = trial.config.get(NUMBER_KEY)
        if number is not None and self.progress is not None:
            self.progress.started(int(number))
