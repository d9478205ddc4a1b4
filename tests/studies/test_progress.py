"""The live progress line: done/running/failed counts and the front size, as a user sees it."""

from __future__ import annotations

import optuna
from rich.console import Console

from studies.search.progress import Progress

optuna.logging.set_verbosity(optuna.logging.WARNING)


def test_status_line_counts_trials_and_the_front():
    study = optuna.create_study(directions=["maximize", "minimize"])
    console = Console(record=True, width=200, force_terminal=False)
    progress = Progress(study, n_trials=5, console=console)
    trials = [study.ask() for _ in range(4)]
    for t in trials:
        progress("start", study._storage.get_trial(t._trial_id))
    for t in trials[:3]:
        progress.started(t.number)
    outcomes = [("complete", [23.5, 2**20]), ("complete", [22.0, 2**19]), ("failed", None)]
    for t, (status, values) in zip(trials, outcomes):
        t.set_user_attr("status", status)
        t.set_user_attr("design", f"subset [{t.number + 1}]")
        t.set_user_attr("m_sc_bytes", 2**20)
        if values:
            t.set_user_attr("psnr", values[0])
            study.tell(t, values)
        else:
            t.set_user_attr("error", "RuntimeError: boom")
            study.tell(t, state=optuna.trial.TrialState.FAIL)
        progress("finish", study._storage.get_trial(t._trial_id))
    assert progress.status_line().startswith(
        "done 3/5: 2 complete 0 stopped 0 infeasible 1 failed | running 0 +1 queued | front 2 |"
    )
    lines = console.export_text().splitlines()
    assert lines[0] == "#0   complete   subset [1]: PSNR 23.50 dB, M_sc 1.000 MiB"
    assert lines[1].strip().startswith("done 1/5: 1 complete 0 stopped 0 infeasible 0 failed | "
                                       "running 2 +1 queued | front 1 |")  # fmt: skip
    assert lines[4] == "#2   failed     subset [3]: M_sc 1.000 MiB, RuntimeError: boom"
    assert "done 3/5" in lines[5] and "running 0 +1 queued | front 2" in lines[5]
