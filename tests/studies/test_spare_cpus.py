"""Spare CPUs at the end of a search: the driver's callback shares them once the last trial has
started, and a running proxy takes them at its next validation, only for cores really idle, and
gives them back when another process crowds it out."""

from __future__ import annotations

import contextlib
import dataclasses
import multiprocessing
import os
import pickle
import time
from types import SimpleNamespace

import pytest
import torch

from nas import ArchConfig, FullSkipsConfig
from studies.search import spare_cpus
from studies.search.protocol import TrialSettings
from studies.search.spare_cpus import CpuMeter, SpareCpus, spare_threads, threads_now

LINUX = os.path.exists("/proc/stat")


class Reading:
    """A meter that reports fixed numbers (for the rule; ``CpuMeter`` itself is tested for real)."""

    def __init__(self, idle: float, used: float) -> None:
        self.reading = (idle, used)

    def sample(self) -> tuple[float, float]:
        return self.reading


def _burn(seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


@contextlib.contextmanager
def busy_machine(seconds: float = 60.0):
    """Every core busy with a CPU-bound process of this process's nice value."""
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_burn, args=(seconds,)) for _ in range(os.cpu_count() or 1)]
    for p in procs:
        p.start()
    time.sleep(0.5)
    try:
        yield
    finally:
        for p in procs:
            p.terminate()
            p.join()
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
    idle = Reading(idle=1.0, used=1.0)
    assert threads_now(None, 1, meter=idle) == 1
    assert threads_now(str(path), 1, meter=idle) == 1  # not written yet
    path.write_text("2")
    assert threads_now(str(path), 1, meter=idle) == 2 and threads_now(str(path), 3) == 3
    assert threads_now(str(path), 1) == 1  # no measurement: no share
    path.write_text("garbled")
    assert threads_now(str(path), 1, meter=idle) == 1


@pytest.mark.parametrize(("share", "current", "idle", "used", "threads"), [
    (4, 1, 3.1, 1.0, 4),   # alone on 4 cores: all of the share
    (4, 1, 1.0, 1.0, 2),   # another process holds 2 cores: only the idle one
    (2, 1, 0.7, 1.0, 1),   # less than a core idle: nothing
    (2, 1, 0.85, 1.0, 2),  # idle but for the measurement's noise: taken
    (2, 2, 0.0, 1.9, 2),   # holding the share and getting its cores: kept
    (2, 2, 0.0, 1.3, 1),   # crowded out (2 threads, 1.3 cores): given back
    (4, 3, 0.0, 2.8, 3),   # no idle core left: no more, keeps what it gets
    (1, 1, 3.0, 1.0, 1),   # no share: its own
])  # fmt: skip
def test_spare_threads_follow_the_idle_cores(share, current, idle, used, threads):
    assert spare_threads(share, 1, current, idle, used) == threads


@pytest.mark.skipif(not LINUX, reason="CpuMeter reads /proc/stat")
def test_cpu_meter_measures_this_process_and_a_busy_machine():
    meter = CpuMeter()
    _burn(1.0)
    idle, used = meter.sample()
    assert 0.1 < used <= 1.1 and 0 <= idle <= os.cpu_count()  # one thread: at most a core
    with busy_machine():
        meter.sample()
        time.sleep(1.0)
        idle, used = meter.sample()
    assert idle < 0.5 and used < 0.1  # every core taken by the burners; this process slept


def test_a_running_proxy_takes_the_shared_threads_at_its_next_validation(tmp_path, monkeypatch):
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
    monkeypatch.setattr(spare_cpus.CpuMeter, "sample", lambda self: (1.0, 1.0))  # a core idle
    train(target, shared, lambda _: seen.append(torch.get_num_threads()))
    assert seen == [1, 2]  # the share is read after the first validation
    assert torch.get_num_threads() == before  # the run's settings end with it
    if LINUX:  # measured for real: every core busy, so the share is not taken
        monkeypatch.undo()
        seen.clear()
        with busy_machine():
            train(target, shared, lambda _: seen.append(torch.get_num_threads()))
        assert seen == [1, 1]
