"""Every sampler a study may name works with the skip-design space (and its flat twin), three
objectives, constraints set with ``Trial.set_constraint``, infeasible trials told COMPLETE with
``-inf`` PSNR and PRUNED (stopped) trials without values, the way the searcher tells them. Optuna 5's
samplers read those constraint values themselves (``FrozenTrial.constraints``)."""

from __future__ import annotations

import warnings

import optuna
import pytest
from optuna.trial import TrialState

from search_spaces import SpaceBounds, get_space, nni_imports
from studies.schema import STUDY_ATTR_SPEC
from studies.search.samplers import NNI_SAMPLERS, SAMPLERS, make_sampler
from studies.spec import parse_spec

optuna.logging.set_verbosity(optuna.logging.ERROR)
BOUNDS = SpaceBounds().for_backbone((32, 64, 128, 256))
OPTIONS = {"nsga2": {"population_size": 4}, "nsga3": {"population_size": 4},
           "gp": {"n_startup_trials": 4}, "tpe": {"n_startup_trials": 4}}  # fmt: skip


def score(skip) -> tuple[float, float, float]:
    """A stand-in landscape from the design's own numbers: more skip channels, more PSNR."""
    kept = sum(skip.reduced(BOUNDS.stage_channels)) if skip.name == "unetmm" else (
        sum(BOUNDS.stage_channels[s - 1] for s in skip.skip_stages(4)))  # fmt: skip
    return 20.0 + kept / 100, float(kept), 16e9 + kept * 1e6


@pytest.mark.parametrize("space_name", ["skip_designs", "skip_designs_flat"])
@pytest.mark.parametrize("name", SAMPLERS.names())
def test_sampler_runs_with_constraints_and_pruned_trials(name, space_name):
    if name in NNI_SAMPLERS and not nni_imports.available():
        pytest.skip(f"NNI (the 'nni' extra) is not installed: {nni_imports.INSTALL}")
    sampler = make_sampler(name, 0, OPTIONS.get(name, {}), 10)
    study = optuna.create_study(directions=["maximize", "minimize", "minimize"], sampler=sampler)
    spec = parse_spec({"name": "s", "space": {"name": space_name}}, "")  # NNI's read the space
    study.set_user_attr(STUDY_ATTR_SPEC, spec.model_dump(mode="json"))
    space = get_space(space_name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i in range(10):
            trial = study.ask()
            skip = space.suggest(trial, BOUNDS).skip
            psnr, m_sc, macs = score(skip)
            trial.set_constraint("m_sc <= 300", m_sc - 300)
            if m_sc > 300:  # infeasible: costed, never trained, the worst PSNR
                study.tell(trial, [-float("inf"), m_sc, macs])
            elif i % 5 == 4:  # "stopped by early stopping"
                study.tell(trial, state=TrialState.PRUNED)
            else:
                study.tell(trial, [psnr, m_sc, macs])
    states = [t.state for t in study.trials]
    assert len(states) == 10 and TrialState.FAIL not in states
    assert all(t.state == TrialState.COMPLETE for t in study.best_trials)
    assert all(v <= 0 for t in study.best_trials for v in t.constraints.values())
    infeasible = [t for t in study.trials if t.values and t.values[0] == -float("inf")]
    assert all(t.constraints["m_sc <= 300"] > 0 for t in infeasible)  # what samplers read
