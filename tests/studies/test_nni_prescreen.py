"""``unetmm search --prescreen oneshot`` (the ``nni`` extra): one supernet ranks new designs of
the study's space, the designs that break a hard constraint are left out, and the best fill the
run's free slots after the reference points, queued with their rank; mistakes and a missing
extra end with one ``error:`` line before anything runs."""

from __future__ import annotations

import optuna
import pytest
from optuna.trial import FixedTrial, TrialState

from nas.errors import ConfigError
from search_spaces import get_space, nni_imports
from studies.cli import main
from studies.search.driver import enqueue_references, prepare_study
from studies.search.protocol import TrialSettings
from studies.search.worker import cost_attrs
from studies.spec import parse_spec
from studies.storage import open_storage

needs_nni = pytest.mark.skipif(not nni_imports.available(),
                               reason=f"NNI (the 'nni' extra) is not installed: "
                                      f"{nni_imports.INSTALL}")  # fmt: skip
TINY = {"name": "pre", "target": {"input_size": 64}, "n_trials": 5, "concurrency": 1,
        "proxy": {"data": {"val_limit": 1},
                  "budget": {"steps": 3, "eval_every": 3, "batch": 2, "crop": 32, "val_crop": 32}},
        "constraints": ["m_sc <= 64 KiB"], "early_stopping": False}  # fmt: skip


@needs_nni
def test_prescreen_queues_the_best_feasible_new_designs_after_the_references(tmp_path):
    from studies.search.prescreen import prescreen

    spec = parse_spec(TINY, "")
    study = prepare_study(spec, "pre", open_storage(f"sqlite:///{tmp_path / 'pre.db'}"))
    refs = enqueue_references(study, spec, spec.n_trials).queued
    done = prescreen(spec, study, designs=8, steps=6)
    assert done.steps == 6 and 2 <= len(done.ranked) <= 8
    assert [p for _, p in done.ranked] == sorted((p for _, p in done.ranked), reverse=True)
    assert done.queued == [label for label, _ in done.ranked[:spec.n_trials - len(refs)]]
    waiting = study.get_trials(states=(TrialState.WAITING,))
    assert [t.user_attrs.get("reference") for t in waiting[:len(refs)]] == refs
    ranks = [t.user_attrs["prescreen"] for t in waiting[len(refs):]]
    assert ranks == list(range(1, len(done.queued) + 1))
    assert done.infeasible >= 1  # at 64x64, full skips hold 240 KiB
    space, bounds = get_space(spec.space.name), spec.bounds
    backbone, settings = spec.target.backbone_config(), TrialSettings.from_spec(spec)
    designs = [space.suggest(FixedTrial(t.system_attrs["fixed_params"]), bounds)
               for t in waiting]  # fmt: skip
    assert len({d.label for d in designs}) == len(designs)  # new: no reference again
    for design in designs[len(refs):]:  # and they fit the hard constraint
        assert cost_attrs(design.arch(backbone), settings)["m_sc_bytes"] <= 64 * 1024


def test_prescreen_mistakes_and_a_missing_extra_are_one_line(tmp_path, monkeypatch, capsys):
    path = tmp_path / "pre.yaml"
    path.write_text("name: pre\n")
    db = tmp_path / "pre.db"
    for flags, message in [(["--prescreen", "twoshot"], "--prescreen: unknown method"),
                           (["--prescreen", "oneshot", "--prescreen-designs", "1"],
                            "--prescreen-designs: 1 < 2")]:  # fmt: skip
        assert main(["search", str(path), "--storage", f"sqlite:///{db}", *flags]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: ") and "\n" not in err and message in err
    monkeypatch.setattr(nni_imports, "NEEDED", ("nni_is_not_installed_here",))
    assert main(["search", str(path), "--storage", f"sqlite:///{db}", "--prescreen",
                 "oneshot"]) == 2  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --prescreen oneshot: needs NNI") and "\n" not in err
    assert not db.exists()


@needs_nni
def test_a_study_that_trains_nothing_has_nothing_to_prescreen(tmp_path):
    from studies.search.prescreen import prescreen

    spec = parse_spec({**TINY, "objectives": ["m_sc", "macs"]}, "")
    study = prepare_study(spec, "pre", open_storage(f"sqlite:///{tmp_path / 'pre.db'}"))
    with pytest.raises(ConfigError, match="--prescreen: .*trains none"):
        prescreen(spec, study, designs=4, steps=2)
    assert optuna.load_study(study_name="pre", storage=f"sqlite:///{tmp_path / 'pre.db'}")
