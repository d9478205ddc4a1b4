"""An NNI strategy as a study's sampler, end to end: a cost-only study (every trial a costing
on Ray, no training) with ``sampler: nni-evolution`` judges its budget of designs in the SQLite
storage, a second run resumes it from the storage with the strategy rebuilt from the stored
trials and judges new designs only, and ``unetmm report`` reads the study as any other. A
``--prescreen oneshot`` queue is trained first, in rank order."""

from __future__ import annotations

import collections

import optuna
import pytest
from optuna.trial import TrialState

from search_spaces import nni_imports
from studies.cli import main
from studies.search.driver import run_search
from studies.spec import parse_spec

pytestmark = pytest.mark.skipif(not nni_imports.available(),
                                reason=f"NNI (the 'nni' extra) is not installed: "
                                       f"{nni_imports.INSTALL}")  # fmt: skip
SPEC = {  # tests/studies/test_many_drivers.py's cost-only study, with NNI's evolution
    "name": "nni",
    "target": {"input_size": 64},
    "objectives": ["m_sc", "macs"],
    "constraints": ["m_sc <= 64 KiB"],
    "sampler": {"name": "nni-evolution", "population_size": 4, "sample_size": 2},
    "space": {"references": ["full", "unetmm"]},
    "n_trials": 4,
    "concurrency": 1,
}


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_nni_evolution_study_runs_on_ray_and_resumes(tmp_path, local_ray):
    url = f"sqlite:///{tmp_path / 'nni.db'}"
    spec = parse_spec(SPEC, "")
    first = run_search(spec, url)
    assert len(first.judged) == 4 and first.stop_reason is None
    again = run_search(spec, url)  # resume: the strategy is rebuilt from the stored trials
    assert len(again.judged) == 4 and again.run_index == 1 and again.stop_reason is None
    assert set(first.run_trials).isdisjoint(again.run_trials)

    trials = optuna.load_study(study_name="nni", storage=url).get_trials()
    assert all(t.state.is_finished() for t in trials)
    assert not [t for t in trials if t.state == TrialState.FAIL]
    judged = [t for t in trials if t.number in first.judged + again.judged]
    assert all(t.user_attrs["status"] in ("complete", "infeasible") for t in judged)
    designs = collections.Counter(t.user_attrs["arch_key"] for t in judged)
    assert max(designs.values()) == 1  # a new design each time, across the resume
    proposed = [t for t in judged if "reference" not in t.user_attrs]
    assert len(proposed) >= 6 and all("design" in t.params for t in proposed)
    out = tmp_path / "report"
    assert main(["report", url, "--study", "nni", "--out", str(out)]) == 0


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_prescreened_designs_are_trained_first(tmp_path, local_ray):
    """``--prescreen oneshot``'s queue, then the search: the run trains the reference points and
    the supernet's best designs, in rank order, before its sampler proposes anything."""
    from rich.console import Console

    from studies.search.prescreen import run_prescreen

    url = f"sqlite:///{tmp_path / 'pre.db'}"
    spec = parse_spec({
        "name": "pre", "target": {"input_size": 64}, "n_trials": 4, "concurrency": 1,
        "proxy": {"data": {"val_limit": 1}, "budget": {"steps": 3, "eval_every": 3, "batch": 2,
                                                       "crop": 32, "val_crop": 32}},
        "space": {"references": ["full"]}, "early_stopping": False,
    }, "")  # fmt: skip
    done = run_prescreen(spec, url, None, 6, Console(quiet=True))
    assert len(done.queued) == 3  # 4 trials: the reference, then the 3 best
    result = run_search(spec, url)
    trials = optuna.load_study(study_name="pre", storage=url).get_trials()
    judged = [t for t in trials if t.number in result.judged]
    assert [t.user_attrs.get("reference") for t in judged[:1]] == ["full"]
    assert [t.user_attrs.get("prescreen") for t in judged[1:]] == [1, 2, 3]
    assert [t.user_attrs["design"] for t in judged[1:]] == done.queued
    assert all(t.state == TrialState.COMPLETE and t.user_attrs["status"] == "complete"
               for t in judged)  # fmt: skip
