"""The persistent score cache: a hit trains nothing; every input that decides a score changes
the key; only complete runs are stored; concurrent writers never leave a half entry; the worker
marks a cached trial. Real (tiny) proxy training on the bundled photographs."""

from __future__ import annotations

import json
import multiprocessing
import os
from pathlib import Path

import numpy as np
import pytest

from nas import ArchConfig, FullSkipsConfig, NAFNetConfig, NoSkipsConfig
from studies.search import score_cache
from studies.search.protocol import TrialSettings, reported_keys
from studies.search.score_cache import cached_train_and_eval, key_fields, lookup, store
from studies.spec import parse_spec
from trainers.config import DataConfig, ProxyBudget, TaskConfig
from trainers.proxy import ProxyResult

ARCH = ArchConfig(NAFNetConfig(8, (1, 1), 1, (1, 1)), FullSkipsConfig())
TASK = TaskConfig(sigma=25)
BUDGET = ProxyBudget(steps=3, eval_every=3, batch=1, crop=16, val_crop=16)
DATA = DataConfig(val_limit=1)


@pytest.fixture(autouse=True)
def _own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("UNETMM_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("UNETMM_SCORE_CACHE", raising=False)


def entries() -> list[Path]:
    folder = score_cache.cache_dir()
    return sorted(folder.glob("*.json")) if folder and folder.is_dir() else []


def test_a_second_run_is_a_hit_with_the_same_scores_and_trains_nothing():
    calls = []
    first, cached = cached_train_and_eval(ARCH, TASK, BUDGET, DATA, seed=0,
                                          callback=lambda s, p: calls.append(s))  # fmt: skip
    assert not cached and calls == [3] and len(entries()) == 1
    assert first.psnr > first.input_psnr - 5 and np.isfinite(first.ssim)
    again, cached = cached_train_and_eval(ARCH, TASK, BUDGET, DATA, seed=0,
                                          callback=lambda s, p: calls.append(s))  # fmt: skip
    assert cached and calls == [3]  # no training, no callback
    assert (again.psnr, again.ssim, again.steps, again.curve, again.input_psnr, again.metrics) == (
        first.psnr, first.ssim, first.steps, first.curve, first.input_psnr, first.metrics)  # fmt: skip
    assert first.metrics["psnr"] == first.psnr
    entry = json.loads(entries()[0].read_text())
    assert entry["fields"] == key_fields(ARCH, TASK, BUDGET, DATA, 0)  # what decided it, readable
    assert entry["fields"]["code"]["torch"] and entry["fields"]["seed"] == 0


def _changed_inputs(folder: Path):
    yield "arch", (ARCH.replace(skip=NoSkipsConfig()), TASK, BUDGET, DATA, 0)
    yield "proxy width", (ArchConfig(NAFNetConfig(16, (1, 1), 1, (1, 1)), FullSkipsConfig()),
                          TASK, BUDGET, DATA, 0)  # fmt: skip
    yield "task", (ARCH, TaskConfig(sigma=15), BUDGET, DATA, 0)
    yield "budget steps", (ARCH, TASK, BUDGET.model_copy(update={"steps": 4}), DATA, 0)
    yield "budget lr", (ARCH, TASK, BUDGET.model_copy(update={"lr": 1e-3}), DATA, 0)
    yield "budget val_crop", (ARCH, TASK, BUDGET.model_copy(update={"val_crop": 32}), DATA, 0)
    yield "data", (ARCH, TASK, BUDGET, DataConfig(val_limit=2), 0)
    yield "data folder", (ARCH, TASK, BUDGET, DataConfig(val=str(folder)), 0)
    yield "seed", (ARCH, TASK, BUDGET, DATA, 1)


def test_every_input_that_decides_a_score_is_a_miss(tmp_path, monkeypatch):
    folder = tmp_path / "val"
    folder.mkdir()
    (folder / "a.png").write_bytes(b"not decoded by the key")
    result, _ = cached_train_and_eval(ARCH, TASK, BUDGET, DATA, seed=0)
    assert lookup(key_fields(ARCH, TASK, BUDGET, DATA, 0)) is not None
    assert lookup(key_fields(ARCH, TASK, BUDGET, DataConfig(val_limit=1, cache_mb=7), 0))  # kept
    keys = set()
    for what, inputs in _changed_inputs(folder):
        fields = key_fields(*inputs)
        assert lookup(fields) is None, what
        keys.add(score_cache.score_key(fields))
    assert len(keys) == 9  # all different from one another too

    # a folder whose files change is other data
    store(key_fields(ARCH, TASK, BUDGET, DataConfig(val=str(folder)), 0), result)
    assert lookup(key_fields(ARCH, TASK, BUDGET, DataConfig(val=str(folder)), 0)) is not None
    (folder / "b.png").write_bytes(b"another image")
    assert lookup(key_fields(ARCH, TASK, BUDGET, DataConfig(val=str(folder)), 0)) is None

    # other code: nas or trainers sources, torch, numpy, scikit-image
    real = score_cache.code_versions()
    for part in real:
        monkeypatch.setattr(score_cache, "code_versions", lambda p=part: {**real, p: "other"})
        assert lookup(key_fields(ARCH, TASK, BUDGET, DATA, 0)) is None, part
    monkeypatch.setattr(score_cache, "code_versions", lambda: dict(real))
    assert lookup(key_fields(ARCH, TASK, BUDGET, DATA, 0)) is not None


def test_a_source_edit_changes_the_code_version(tmp_path):
    from nas.cost.report import source_hash

    (tmp_path / "m.py").write_text("x = 1\n")
    before = source_hash(tmp_path)
    (tmp_path / "m.py").write_text("x = 2\n")
    assert source_hash(tmp_path) != before
    versions = score_cache.code_versions()
    assert set(versions) == {"nas", "trainers", "torch", "numpy", "scikit-image"}


def test_off_stopped_and_unfinite_runs_store_nothing(monkeypatch):
    _, cached = cached_train_and_eval(ARCH, TASK, BUDGET, DATA, seed=0, enabled=False)
    assert not cached and entries() == []
    stopped = ProxyResult(20.0, 0.5, 1.0, 1, [(1, 20.0)], stopped=True, input_psnr=19.0)
    nan = ProxyResult(float("nan"), 0.5, 1.0, 3, [(3, float("nan"))], input_psnr=19.0)
    fields = key_fields(ARCH, TASK, BUDGET, DATA, 0)
    assert not store(fields, stopped) and not store(fields, nan) and entries() == []
    monkeypatch.setenv("UNETMM_SCORE_CACHE", "0")
    assert score_cache.cache_dir() is None
    cached_train_and_eval(ARCH, TASK, BUDGET, DATA, seed=0)
    monkeypatch.delenv("UNETMM_SCORE_CACHE")
    assert entries() == []


def _writer(fields: dict, n: int) -> None:
    for i in range(n):
        store(fields, ProxyResult(20.0 + i % 2, 0.5, 1.0, 3, [(3, 20.0)] * 200, input_psnr=19.0))


def test_concurrent_writers_never_leave_a_half_entry():
    fields = {"design": "shared"}
    ctx = multiprocessing.get_context("fork")
    writers = [ctx.Process(target=_writer, args=(fields, 150)) for _ in range(2)]
    for w in writers:
        w.start()
    seen = 0
    while any(w.is_alive() for w in writers):
        hit = lookup(fields)
        if hit is not None:
            seen += 1
            assert hit.psnr in (20.0, 21.0) and len(hit.curve) == 200
    for w in writers:
        w.join()
        assert w.exitcode == 0
    assert lookup(fields) is not None and len(entries()) == 1
    assert not [p for p in os.listdir(score_cache.cache_dir()) if p.endswith(".tmp")]


def test_the_worker_marks_a_cached_score_and_the_spec_switch_keeps_the_fingerprint():
    from studies.search.worker import train

    spec = parse_spec({"name": "s", "proxy": {"data": {"val_limit": 1}, "budget": {
        "steps": 3, "eval_every": 3, "batch": 1, "crop": 16, "val_crop": 16}},
        "early_stopping": False}, "")  # fmt: skip
    settings = TrialSettings.from_spec(spec)
    target = ArchConfig(spec.target.backbone_config(), FullSkipsConfig())
    reports: list = []
    first = train(target, settings, reports.append)
    assert "score_cached" not in first and len(reports) == 1 and first["seconds_train"] > 0
    second = train(target, settings, reports.append)
    assert second["score_cached"] is True and len(reports) == 1  # nothing reported: not trained
    assert second["seconds_train"] == 0.0
    assert {k: second[k] for k in ("psnr_db", "ssim", "curve", "proxy_arch")} == {
        k: first[k] for k in ("psnr_db", "ssim", "curve", "proxy_arch")}  # fmt: skip
    assert "score_cached" in reported_keys()

    off = spec.with_overrides(score_cache=False)
    assert off.fingerprint == spec.fingerprint and not TrialSettings.from_spec(off).score_cache
    third = train(target, TrialSettings.from_spec(off), reports.append)
    assert "score_cached" not in third and len(reports) == 2
