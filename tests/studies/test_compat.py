"""The one door to Optuna's and Ray's private names: nothing else may open it, and each use still
works with the installed versions (an upgrade that breaks one fails here, loudly)."""

from __future__ import annotations

import ast
import os
import pathlib

import optuna
import pytest
from optuna.trial import TrialState

from studies import compat

ROOT = pathlib.Path(__file__).resolve().parents[2]
PACKAGES = ("nas", "search_spaces", "trainers", "studies", "benchmarks")


def _private_uses(path: pathlib.Path) -> list[str]:
    """``file:line what`` for every private Optuna/Ray import and every access to a name of
    ``compat.PRIVATE_NAMES``; in ``studies/``, also any ``obj._name`` on another object."""
    found = []
    tree = ast.parse(path.read_text(), str(path))
    in_studies = path.relative_to(ROOT).parts[0] == "studies"
    for node in ast.walk(tree):
        where = f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', 0)}"
        modules = []
        if isinstance(node, ast.ImportFrom) and node.module:
            modules = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            modules = [a.name for a in node.names]
        for module in modules:
            parts = module.split(".")
            if parts[0] in ("optuna", "ray") and any(p.startswith("_") for p in parts):
                found.append(f"{where} imports {module}")
        if isinstance(node, ast.Attribute):
            if node.attr in compat.PRIVATE_NAMES:
                found.append(f"{where} touches {ast.unparse(node)}")
            elif (in_studies and node.attr.startswith("_") and not node.attr.startswith("__")
                  and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))):
                found.append(f"{where} touches {ast.unparse(node)}")  # fmt: skip
    return found


def test_no_module_but_compat_touches_private_optuna_or_ray_names():
    files = [f for pkg in PACKAGES for f in (ROOT / pkg).rglob("*.py")]
    assert len(files) > 60
    offenders = [u for f in files if f != ROOT / "studies" / "compat.py" for u in _private_uses(f)]
    assert offenders == []


def test_the_scan_catches_a_private_use():
    bad = ROOT / "studies" / "_scan_probe.py"
    bad.write_text("import optuna.storages._rdb.models\n\ndef f(study):\n    return study._storage\n")
    try:
        assert [u.split(" ", 1)[1] for u in _private_uses(bad)] == [
            "imports optuna.storages._rdb.models", "touches study._storage"]
    finally:
        bad.unlink()


@pytest.fixture
def study(tmp_path):
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    url = f"sqlite:///{tmp_path / 'compat.db'}"
    return optuna.create_study(storage=url, study_name="compat")


def test_optuna_privates_still_work(study):
    study.enqueue_trial({"x": 1.0})
    assert compat.already_enqueued(study, {"x": 1.0})
    assert not compat.already_enqueued(study, {"x": 2.0})
    storage = compat.study_storage(study)
    assert isinstance(storage, optuna.storages.BaseStorage)
    trial = study.ask()
    assert compat.was_enqueued(trial) and not compat.was_enqueued(study.ask())
    tid = compat.trial_id(trial)
    frozen = storage.get_trial(tid)
    assert compat.trial_id(frozen) == tid and frozen.state == TrialState.RUNNING
    storage.record_heartbeat(tid)
    ages = compat.heartbeat_ages(study)
    assert set(ages) == {tid} and 0 <= ages[tid] < 60
    assert compat.storage_engine(storage).url.database.endswith("compat.db")
    assert compat.storage_engine(optuna.storages.InMemoryStorage()) is None
    trial.set_constraint("a", 0.5)
    compat.write_constraint_list(trial, [0.5])
    stored = storage.get_trial(tid).system_attrs
    assert stored["constraints"] == [0.5] and stored["constraints:a"] == 0.5


def test_ray_optuna_search_privates_still_work(study):
    from ray.tune.search.optuna import OptunaSearch

    def space(trial):
        trial.suggest_float("x", 0, 1)

    searcher = OptunaSearch(space=space, metric="y", mode="min", study_name="compat",
                            storage=compat.study_storage(study))  # fmt: skip
    assert compat.searcher_study(searcher).study_name == "compat"
    config = searcher.suggest("ray-1")
    assert set(config) == {"x"}
    assert list(compat.searcher_trials(searcher)) == ["ray-1"]
    searcher.on_trial_complete("ray-1", {"y": 0.5})
    assert "ray-1" in compat.searcher_completed(searcher)
    assert study.trials[-1].state == TrialState.COMPLETE


def test_local_ray_options_make_the_node_address_loopback(tmp_path):
    """In a fresh process (a Ray already started here would answer with its own address): inside
    the block Ray's node address is 127.0.0.1 (what its servers bind to) and ``ray.init`` still
    takes ``_temp_dir``; after it, both are back. A real search's sockets are checked in
    ``test_faults.py`` (slow)."""
    import json
    import subprocess
    import sys

    code = (
        "import inspect, json, os, ray\n"
        "from ray._private import services\n"
        "from studies import compat\n"
        "before = services.get_node_ip_address()\n"
        f"with compat.local_ray_options({str(tmp_path)!r}) as options:\n"
        "    inside = services.get_node_ip_address()\n"
        "    env = os.environ.get('RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER')\n"
        "print(json.dumps({'before': before, 'inside': inside, 'after':\n"
        "    services.get_node_ip_address(), 'options': options, 'env': env, 'env_after':\n"
        "    os.environ.get('RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER'),\n"
        "    'takes_temp_dir': '\"_temp_dir\"' in inspect.getsource(ray.init)}))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", None)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          timeout=120, check=True)  # fmt: skip
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["inside"] == "127.0.0.1" and seen["after"] == seen["before"]
    assert seen["options"] == {"_temp_dir": str(tmp_path)} and seen["takes_temp_dir"]
    assert seen["env"] == "0" and seen["env_after"] is None


def test_trials_read_once_serves_one_read_of_the_storage(study, monkeypatch):
    """Inside the block every read of the trials (any states, deep copies or not, nested
    blocks) returns what the storage held when it began, from one storage read."""
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=3)
    running = study.ask()
    before = {s: study.get_trials(states=s) for s in [None, (TrialState.RUNNING,)]}
    storage = compat.study_storage(study)
    reads = []
    original = storage.get_all_trials
    monkeypatch.setattr(storage, "get_all_trials",
                        lambda *a, **k: reads.append(1) or original(*a, **k))
    with compat.trials_read_once(study):
        with compat.trials_read_once(study):
            for s, trials in before.items():
                assert study.get_trials(states=s) == trials
                assert study.get_trials(deepcopy=False, states=s) == trials
        assert [t.number for t in study.get_trials(states=(TrialState.COMPLETE,))] == [0, 1, 2]
        sampler = optuna.samplers.TPESampler(constant_liar=True, seed=0)
        frozen = study.trials[-1]  # the running trial, as samplers get it
        assert frozen.number == running.number
        value = sampler.sample_independent(study, frozen, "x",
                                           optuna.distributions.FloatDistribution(0, 1))
        assert 0 <= value <= 1
    assert len(reads) == 1
    assert "_get_trials" not in vars(study)  # the study reads the storage again after
    study.get_trials()
    assert len(reads) == 2
