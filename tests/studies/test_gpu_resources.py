"""GPU resources of a search: a GPU request on a machine without one fails before any trial
(or falls back to the CPU when the spec says so); trials that hold a GPU share train there."""

from __future__ import annotations

import pytest
import torch

from nas.errors import ConfigError
from studies.cli import main
from studies.search.protocol import TrialSettings
from studies.search.ray_session import check_gpus
from studies.spec import parse_spec

NO_GPU = pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")


def test_gpu_share_sets_the_device_and_stays_out_of_the_fingerprint():
    cpu = parse_spec({"name": "g"}, "")
    gpu = parse_spec({"name": "g", "gpus_per_trial": 0.25}, "")
    assert TrialSettings.from_spec(cpu).device == "cpu"
    assert TrialSettings.from_spec(gpu).device == "cuda"
    assert gpu.fingerprint == cpu.fingerprint  # where trials run does not change results
    with pytest.raises(ConfigError, match="gpus_per_trial"):
        parse_spec({"name": "g", "gpus_per_trial": -1}, "")


@NO_GPU
def test_gpu_request_without_a_gpu_fails_or_falls_back():
    with pytest.raises(ConfigError, match=r"gpus_per_trial: 0.25 asks for a GPU share"):
        check_gpus(0.25, False, None)
    assert check_gpus(0.25, True, None) == 0.0  # gpu_fallback: the CPU, with a warning
    assert check_gpus(0.0, False, None) == 0.0
    assert check_gpus(0.5, False, "127.0.0.1:6379") == 0.5  # a cluster is checked once joined


@NO_GPU
def test_search_asking_for_a_gpu_fails_before_touching_the_storage(tmp_path, capsys):
    db = tmp_path / "g.db"
    code = main(["search", "quick", "--storage", f"sqlite:///{db}", "--gpus-per-trial", "0.25"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("error: gpus_per_trial: 0.25")
    assert not db.exists()  # nothing created, no trial run
