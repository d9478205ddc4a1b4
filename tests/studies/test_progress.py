"""The live progress line: judged/running/failed counts, proposals not trained (infeasible,
copies: no slot of n_trials) and the front in distinct designs, as a user sees it."""

from __future__ import annotations

import optuna
from rich.console import Console

from studies.search.progress import Progress

optuna.logging.set_verbosity(optuna.logging.WARNING)


def test_status_line_counts_trials_and_the_front():
    study = optuna.create_study(directions=["maximize", "minimize"])
    console = Console(record=True, width=200, force_terminal=False)
    progress = Progress(study, n_trials=5, console=console, objectives=("psnr", "m_sc"))
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
        t.set_user_attr("arch", {"design": t.number})
        if values:
            t.set_user_attr("psnr", values[0])
            study.tell(t, values)
        else:
            t.set_user_attr("error", "RuntimeError: boom")
            study.tell(t, state=optuna.trial.TrialState.FAIL)
        progress("finish", study._storage.get_trial(t._trial_id))
    assert progress.status_line().startswith(
        "done 3/5: 2 complete 0 stopped 1 failed | not trained: 0 infeasible, 0 copies | "
        "running 0 +1 queued | front 1 designs |"  # 23.5 dB at 1 MiB beats 22.0 dB at 1 MiB
    )
    lines = console.export_text().splitlines()
    assert lines[0] == "#0   complete   subset [1]: PSNR 23.50 dB, M_sc 1.000 MiB"
    assert lines[1].strip().startswith("done 1/5: 1 complete 0 stopped 0 failed | not trained: "
                                       "0 infeasible, 0 copies | running 2 +1 queued | front 1 ")  # fmt: skip
    assert lines[4] == "#2   failed     subset [3]: M_sc 1.000 MiB, RuntimeError: boom"
    assert "done 3/5" in lines[5] and "running 0 +1 queued | front 1 designs" in lines[5]
    # proposals told without a trial: an infeasible one and a copy of trial 0 (the same design)
    last = trials[3]
    for attrs in ({"status": "infeasible", "m_sc_bytes": 2**22},):
        for key, value in attrs.items():
            last.set_user_attr(key, value)
    study.tell(last, state=optuna.trial.TrialState.PRUNED)
    progress("reject", study._storage.get_trial(last._trial_id))
    copy = study.ask()
    for key, value in {"status": "complete", "psnr": 23.5, "m_sc_bytes": 2**20, "copy_of": 0,
                       "arch": {"design": 0}, "design": "subset [1]"}.items():  # fmt: skip
        copy.set_user_attr(key, value)
    study.tell(copy, [23.5, 2**20])
    progress("reject", study._storage.get_trial(copy._trial_id))
    assert progress.status_line().startswith(
        "done 3/5: 2 complete 0 stopped 1 failed | not trained: 1 infeasible, 1 copies | "
        "running 0 | front 1 designs |")  # fmt: skip
    assert console.export_text().splitlines()[-2].endswith("copy of #0")
