"""A study that constrains the tiled executor's peak (``peak_tiled``): real costs in a real
search on Ray into a SQLite file, read back with plain Optuna; and the spec's checks of
``target.tiling``."""

from __future__ import annotations

import optuna
import pytest

from nas.errors import ConfigError
from studies.search.driver import run_search
from studies.spec import parse_spec

MIB = 2**20
# NAFNet-w32 at 256x256, 8 bit, 64-pixel tiles (split auto: 3 for all three references):
# full skips peak at 6.28 MiB on chip, no skips 2.78 MiB, the paper's UNet-- 3.75 MiB.
SPEC = {
    "name": "tiled",
    "target": {"input_size": 256, "tiling": {"tile": 64, "split": "auto"}},
    "objectives": ["peak_tiled", "m_sc"],
    "constraints": ["peak_tiled <= 3.5 MiB"],
    "sampler": "random",
    "n_trials": 3,
    "concurrency": 1,
}


def test_peak_tiled_constrains_a_search(tmp_path, local_ray) -> None:
    url = f"sqlite:///{tmp_path / 'study.db'}"
    result = run_search(parse_spec(SPEC, ""), url)
    study = optuna.load_study(study_name="tiled", storage=url)
    refs = {t.user_attrs.get("reference"): t for t in study.get_trials()}
    full, none, paper = refs["full"], refs["none"], refs["unetmm"]
    assert round(full.user_attrs["peak_tiled_bytes"] / MIB, 2) == 6.28
    assert round(none.user_attrs["peak_tiled_bytes"] / MIB, 2) == 2.78
    assert round(paper.user_attrs["peak_tiled_bytes"] / MIB, 2) == 3.75
    # costed in the driver (the constraint reads it): infeasible ones are never trained
    assert full.user_attrs["status"] == paper.user_attrs["status"] == "infeasible"
    assert none.user_attrs["status"] == "complete"
    assert none.user_attrs["tiling"] == {"tile": 64, "split": 3}
    assert none.user_attrs["recompute_macs"] > 0
    assert none.values == [none.user_attrs["peak_tiled_bytes"], 0.0]
    assert study.metric_names == ["peak memory (tiled) [bytes]", "skip memory M_sc [bytes]"]
    for t in study.best_trials:  # Optuna's own front: feasible designs only
        assert t.user_attrs["peak_tiled_bytes"] <= 3.5 * MIB
    assert none.number in [t.number for t in study.best_trials]
    assert len(result.judged) == 3


@pytest.mark.parametrize(("target", "extra", "needle"), [
    ({"input_size": 256, "tiling": {"tile": 24, "split": 4}}, {},
     "target.tiling.tile: 24 is not a multiple of 16"),
    ({"input_size": 48, "tiling": {"tile": 64}}, {},
     "target.tiling.tile: 64 is larger than the input (48x48 after padding)"),
    ({"input_size": 256, "tiling": {"tile": 64, "split": 9}}, {},
     "target.tiling.split: must be a stage 1..4"),
    ({"input_size": 256, "tiling": None}, {"constraints": ["peak_tiled <= 3 MiB"]},
     "constraints[0]: peak_tiled is measured under the tiled executor, and target.tiling is null"),
])  # fmt: skip
def test_spec_checks_its_tiling(target, extra, needle) -> None:
    with pytest.raises(ConfigError) as err:
        parse_spec({"name": "t", "target": target, **extra}, "")
    assert needle in str(err.value)


def test_a_study_without_tiling_records_no_tiled_costs() -> None:
    from studies.search.protocol import TrialSettings

    spec = parse_spec({"name": "t", "target": {"tiling": None}}, "")
    assert TrialSettings.from_spec(spec).tile is None
    # with tiling, the driver costs only what its constraints read: the worker the rest
    settings = TrialSettings.from_spec(parse_spec({"name": "t"}, ""))
    assert settings.tile == 64 and settings.for_constraints().tile is None
