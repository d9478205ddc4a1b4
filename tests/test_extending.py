"""docs/extending.md, followed step by step: its code blocks become one plugin module, loaded
the way a user loads theirs (``UNETMM_PLUGINS``), and the new backbone, metric and task run
through costs, a one-step proxy and a tiny search on Ray."""

from __future__ import annotations

import importlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "extending.md"


def _blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", PAGE.read_text(), re.DOTALL)


@pytest.fixture(scope="module")
def plugin(tmp_path_factory):
    folder = tmp_path_factory.mktemp("plugin")
    backbone, usage, metric, task = _blocks()
    (folder / "toynet.py").write_text(backbone + "\n\n" + metric + "\n\n" + task)
    (folder / "usage.py").write_text(usage)
    import nas
    from nas import plugins, registry
    from studies.metrics import METRICS
    from trainers.degrade import DEGRADATIONS
    from trainers.tasks import TASKS

    tables = (registry.BACKBONES, registry.BACKBONE_PRESETS, METRICS, TASKS, DEGRADATIONS)
    before = [set(t.names()) for t in tables]
    blocks = list(registry.REPLAYABLE_BLOCKS)
    sys.path.insert(0, str(folder))
    os.environ["UNETMM_PLUGINS"] = "toynet"
    nas.load_plugins()
    yield folder
    sys.path.remove(str(folder))
    os.environ.pop("UNETMM_PLUGINS")
    for table, names in zip(tables, before):  # the rest of the session sees no toy
        for name in set(table.names()) - names:
            table.unregister(name)
    registry.REPLAYABLE_BLOCKS[:] = blocks
    plugins._LOADED.discard("toynet")
    sys.modules.pop("toynet", None)
    sys.modules.pop("usage", None)


def test_the_page_has_its_four_blocks() -> None:
    assert len(_blocks()) == 4


def test_the_backbone_runs_through_costs_and_every_design(plugin) -> None:
    import nas
    from nas.registry import BACKBONES

    assert "toynet" in BACKBONES and "toynet-w8-unetmm" in nas.list_models("toynet-*")
    importlib.import_module("usage")  # the page's usage block runs as written
    for name in nas.list_models("toynet-w8-*"):
        cost = nas.measure_cost(nas.model_config(name), (48, 64), engine="meta", tile=16)
        assert cost.m_sc_bytes == cost.m_sc_traced_bytes and cost.peak_tiled_bytes > 0


def test_a_one_step_proxy_of_the_new_task_and_the_new_metric(plugin) -> None:
    import nas
    from studies.metrics import get_metric
    from trainers.config import ProxyBudget, TaskConfig
    from trainers.proxy import proxy_arch, train_and_eval

    arch = nas.model_config("toynet-w8-unetmm", aggregated_channels=32)
    assert proxy_arch(arch).backbone.width == 4
    budget = ProxyBudget(steps=1, eval_every=1, batch=2, crop=32, val_crop=32)
    result = train_and_eval(proxy_arch(arch), TaskConfig(name="dropout"), budget)
    assert result.steps == 1 and result.psnr > 0
    cost = nas.measure_cost(arch, (64, 64), engine="meta")
    assert get_metric("skip_count").from_cost(cost) == 3  # UNet-- delivers to every stage


@pytest.mark.slow
def test_a_tiny_search_loads_the_plugin_in_every_worker(plugin, tmp_path) -> None:
    spec = tmp_path / "toy.yaml"
    spec.write_text(
        "name: toy\ntarget: {backbone: toynet-w8, input_size: 64}\n"
        "proxy: {task: {name: dropout}, data: {val_limit: 1},\n"
        "        budget: {steps: 4, eval_every: 2, batch: 2, crop: 32, val_crop: 32}}\n"
        "objectives: [psnr, skip_count]\nconstraints: ['skip_count <= 3']\n"
        "early_stopping: false\nn_trials: 2\nconcurrency: 1\nscore_cache: false\n")  # fmt: skip
    env = {**os.environ, "UNETMM_PLUGINS": "toynet",
           "PYTHONPATH": os.pathsep.join([str(plugin), str(ROOT)])}  # fmt: skip
    proc = subprocess.run([sys.executable, "-m", "studies.cli", "search", str(spec), "s.db"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "2 design(s) judged this run (2 complete)" in proc.stdout, proc.stdout[-3000:]
