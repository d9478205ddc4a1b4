"""NNI's strategies as study samplers (``nni-evolution``, ``nni-tpe``, ``nni-random``), on a
real SQLite study told the way the searcher tells it (``outcome.decide`` + ``apply``): each
proposes new designs only, learns from infeasible trials and skips copies and stopped ones
without error, repeats itself with the same seed, and a sampler rebuilt on the stored study
(a resume) proposes exactly what an uninterrupted one would. Without the extra, a study naming
one ends with one ``error:`` line before anything runs."""

from __future__ import annotations

import math

import optuna
import pytest
from optuna.trial import TrialState

from nas.errors import ConfigError
from search_spaces import get_space, nni_imports
from studies import compat
from studies.cli import main
from studies.search.driver import prepare_study
from studies.search.outcome import apply, decide
from studies.search.samplers import NNI_SAMPLERS, make_sampler
from studies.spec import parse_spec
from studies.storage import open_storage

optuna.logging.set_verbosity(optuna.logging.ERROR)
needs_nni = pytest.mark.skipif(not nni_imports.available(),
                               reason=f"NNI (the 'nni' extra) is not installed: "
                                      f"{nni_imports.INSTALL}")  # fmt: skip
LIMIT = 200 * 1024  # m_sc <= 200 KiB (a stand-in: kept channels x 1 KiB)
SPEC = {"name": "nni", "objectives": ["psnr", "m_sc"], "constraints": ["m_sc <= 200 KiB"],
        "n_trials": 16}  # fmt: skip


def stand_in(skip, channels) -> dict:
    """Results from the design's own numbers: more skip channels, more PSNR and memory."""
    if skip.name == "unetmm":
        kept = sum(skip.reduced(channels)) + skip.aggregated_channels
    else:
        kept = sum(channels[s - 1] for s in skip.skip_stages(len(channels)))
    costs = {"m_sc_bytes": kept * 1024, "macs_fvcore": 1e9 + kept}
    if costs["m_sc_bytes"] > LIMIT:
        return costs | {"status": "infeasible"}
    return costs | {"status": "complete", "psnr_db": 20.0 + math.log1p(kept)}


def run(study, spec, n: int, seed: int = 0) -> list[str]:
    """``n`` proposals of the spec's sampler, told like the searcher: infeasible designs with
    costs only, a design seen before as a copy (PRUNED), some trained ones stopped."""
    sampler = make_sampler(spec.sampler.name, seed, spec.sampler.options, spec.n_trials)
    study = optuna.load_study(study_name=study.study_name, storage=compat.study_storage(study),
                              sampler=sampler)  # fmt: skip
    space, bounds, keys = get_space(spec.space.name), spec.bounds, {}
    for t in study.get_trials():
        keys.setdefault(t.user_attrs["arch_key"], t.number)
    out, trained = [], sum(t.user_attrs.get("status") in ("complete", "stopped")
                           and "copy_of" not in t.user_attrs for t in study.get_trials())
    for _ in range(n):
        trial = study.ask()
        skip = space.suggest(trial, bounds).skip
        key = repr(skip)
        trial.set_user_attr("arch_key", key)
        attrs = stand_in(skip, bounds.stage_channels)
        if key in keys:
            attrs["copy_of"] = keys[key]
        elif attrs["status"] == "complete":
            trained += 1
            if trained % 3 == 0:  # stopped early: no status, no score
                attrs = {k: v for k, v in attrs.items() if k not in ("status", "psnr_db")}
        keys.setdefault(key, trial.number)
        apply(study, trial, decide(attrs, spec.objective_keys, spec.parsed_constraints))
        out.append(key)
    return out


def fresh(tmp_path, name: str, sampler: str):
    spec = parse_spec({**SPEC, "name": name, "sampler": sampler}, "")
    return prepare_study(spec, name, open_storage(f"sqlite:///{tmp_path / 'nni.db'}")), spec


@needs_nni
@pytest.mark.parametrize("sampler", list(NNI_SAMPLERS))
def test_nni_sampler_proposes_new_designs_and_resumes_from_storage(tmp_path, sampler):
    study, spec = fresh(tmp_path, "whole", sampler)
    whole = run(study, spec, 12)
    assert len(set(whole)) == 12  # never a design it proposed before (no copy told)
    trials = study.get_trials()
    states = [t.state for t in trials]
    assert TrialState.FAIL not in states and TrialState.PRUNED in states  # stopped ones
    assert any(t.user_attrs.get("status") == "infeasible" for t in trials)
    # a resume: 5 proposals, then a new sampler (a new run) on the stored study, 7 more
    study2, _ = fresh(tmp_path, "split", sampler)
    assert run(study2, spec, 5) + run(study2, spec, 7) == whole
    # another seed, other designs
    study3, _ = fresh(tmp_path, "other", sampler)
    assert run(study3, spec, 12, seed=1) != whole


@needs_nni
def test_evolution_breeds_from_its_population_once_full(tmp_path):
    """Population 4: trials 4.. are mutations of the best of 2 drawn from the last 4 scored,
    so they stay close to them: most labels of each child equal a population member's."""
    study, spec = fresh(tmp_path, "evo", "nni-evolution")
    spec = parse_spec({**SPEC, "name": "evo", "sampler": {"name": "nni-evolution",
                       "population_size": 4, "sample_size": 2}}, "")  # fmt: skip
    run(study, spec, 12)
    trials = study.get_trials()
    for child in trials[8:]:
        nearest = max(sum(child.params.get(k) == v for k, v in t.params.items())
                      / max(len(t.params), 1) for t in trials[:child.number])  # fmt: skip
        assert nearest >= 0.5, child.params


@pytest.mark.parametrize("sampler", list(NNI_SAMPLERS))
def test_without_the_extra_a_study_says_how_to_install_it(tmp_path, monkeypatch, capsys,
                                                          sampler):  # fmt: skip
    monkeypatch.setattr(nni_imports, "NEEDED", ("nni_is_not_installed_here",))
    with pytest.raises(ConfigError, match=r"^sampler\.nni-.*needs NNI.*pip install"):
        parse_spec({**SPEC, "sampler": sampler}, "")
    path = tmp_path / "s.yaml"
    path.write_text(f"name: nni\nsampler: {sampler}\n")
    db = tmp_path / "s.db"
    assert main(["search", str(path), "--storage", f"sqlite:///{db}"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "unetmm[nni]" in err
    assert not db.exists()  # before the first trial: nothing was created


def test_a_wrong_option_names_the_field():
    with pytest.raises(ConfigError, match=r"sampler\.nni-evolution: unknown option.*popsize"):
        make_sampler("nni-evolution", 0, {"popsize": 4})
    with pytest.raises(ConfigError, match=r"sampler\.nni-tpe\.objective: unknown metric .pnsr."):
        make_sampler("nni-tpe", 0, {"objective": "pnsr"})


@needs_nni
def test_objective_option_picks_the_metric_nni_optimises(tmp_path):
    """``objective: m_sc``: NNI's TPE minimises skip memory (after 4 random startup samples,
    a quarter of the budget), so its designs keep less memory than NNI's random search's."""
    medians = {}
    for sampler in ("nni-tpe", "nni-random"):
        study, _ = fresh(tmp_path, sampler, sampler)
        spec = parse_spec({**SPEC, "name": sampler, "sampler": {"name": sampler,
                           "objective": "m_sc"}}, "")  # fmt: skip
        run(study, spec, 16)
        medians[sampler] = sorted(t.user_attrs["m_sc_bytes"] for t in study.get_trials())[8]
    assert medians["nni-tpe"] < medians["nni-random"], medians
