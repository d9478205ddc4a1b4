"""Spare CPUs at the end of a search: the driver's callback shares them once the last trial has
started, and a running proxy takes them at its next validation."""

from __future__ import annotations

import dataclasses
import pickle
from types import SimpleNamespace

import torch

from nas import ArchConfig, FullSkipsConfig
from studies.search.protocol import TrialSettings
from studies.search.spare_cpus import SpareCpus, threads_now
from studies.spec import parse_spec


def test_the_share_is_written_only_once_no_trial_is_left_to_start(tmp_path):
    path = tmp_path / "spare_cpus"
    cb = SpareCpus(str(path), n_trials=3, total_cpus=2, cpus_per_trial=1)
    a, b, c = (SimpleNamespace(trial_id=x) for x in "abc")
    cb.on_trial_start(0, [], a)
    cb.on_trial_start(0, [], b)
    cb.on_trial_complete(0, [], a)  # a third trial will start in a's slot: nothing to share
    assert not path.exists()
    cb.on_trial_start(0, [], c)
    cb.on_trial_complete(0, [], b)  # the budget is started: c may use both CPUs
    assert path.read_text() == "2"
    cb.on_trial_error(0, [], c)
    assert path.read_text() == "2" and cb.running == set()
    wide = SpareCpus(str(tmp_path / "wide"), n_trials=4, total_cpus=8, cpus_per_trial=2)
    trials = [SimpleNamespace(trial_id=str(i)) for i in range(4)]
    for t in trials:
        wide.on_trial_start(0, [], t)
    wide.on_trial_complete(0, [], trials[0])
    assert (tmp_path / "wide").read_text() == "2"  # 8 CPUs over 3 trials: no more than their own
    wide.on_trial_complete(0, [], trials[1])
    assert (tmp_path / "wide").read_text() == "4"
    assert not list(tmp_path.glob("*.tmp"))
    done = [False]
    early = SpareCpus(str(tmp_path / "early"), n_trials=10, total_cpus=2, cpus_per_trial=1,
                      finished=lambda: done[0])  # fmt: skip
    early.on_trial_start(0, [], a)
    early.on_trial_start(0, [], b)
    early.on_trial_complete(0, [], a)
    assert not (tmp_path / "early").exists()  # the searcher may still start more
    early.on_trial_start(0, [], c)
    done[0] = True  # the searcher found nothing new: no trial will start
    early.on_trial_complete(0, [], b)
    assert (tmp_path / "early").read_text() == "2"
    assert pickle.loads(pickle.dumps(early)).finished is None  # Ray may pickle callbacks


def test_threads_now_reads_the_share_and_never_goes_below_the_trials_own(tmp_path):
    path = tmp_path / "spare_cpus"
    assert threads_now(None, 1) == 1
    assert threads_now(str(path), 1) == 1  # not written yet
    path.write_text("2")
    assert threads_now(str(path), 1) == 2 and threads_now(str(path), 3) == 3
    path.write_text("garbled")
    assert threads_now(str(path), 1) == 1


def test_a_running_proxy_takes_the_shared_threads_at_its_next_validation(tmp_path):
    from studies.search.worker import train

    spec = parse_spec({"name": "s", "score_cache": False, "proxy": {
        "data": {"val_limit": 1},
        "budget": {"steps": 4, "eval_every": 2, "batch": 1, "crop": 16, "val_crop": 16}},
        "early_stopping": False}, "")  # fmt: skip
    path = tmp_path / "spare_cpus"
    path.write_text("2")
    settings = TrialSettings.from_spec(spec)
    assert settings.threads == 1 and settings.spare_cpus_file is None
    target = ArchConfig(spec.target.backbone_config(), FullSkipsConfig())
    before = torch.get_num_threads()
    seen: list[int] = []
    train(target, settings, lambda _: seen.append(torch.get_num_threads()))
    assert seen == [1, 1]  # no file given: its own thread throughout
    seen.clear()
    shared = dataclasses.replace(settings, spare_cpus_file=str(path))
    train(target, shared, lambda _: seen.append(torch.get_num_threads()))
    assert seen == [1, 2]  # the share is read after the first validation
    assert torch.get_num_threads() == before  # the run's settings end with it
