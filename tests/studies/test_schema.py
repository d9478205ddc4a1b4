"""``studies.schema``: what goes where (short attributes, artifacts), old keys read as new ones,
constraints read by name whichever form Optuna holds them in."""

from __future__ import annotations

import optuna
import pytest

import nas
from studies import schema
from studies.metrics import METRICS, by_optuna_name


def test_split_keeps_bulky_data_out_of_the_attributes() -> None:
    arch = nas.model_config("nafnet-w16-unetmm")
    attrs = {"arch": arch.to_dict(), "proxy_arch": arch.to_dict(), "m_sc_timeline": [["E1", 4]],
             "curve": [[50, 20.5], [100, 21.25]], "psnr_db": 21.25, "seconds": 1.23456789, "seconds_cost": 0.000213456,
             "t_start_unix": 1764490000.123456, "steps": 100}  # fmt: skip
    compact, bulky = schema.split(attrs)
    assert set(bulky) == {"arch", "proxy_arch", "m_sc_timeline", "curve"}
    assert compact == {"psnr_db": 21.25, "seconds": 1.235, "seconds_cost": 0.0002135,
                       "t_start_unix": 1764490000.123,
                       "steps": 100, "val_step": 100, "val_psnr_db": 21.25}  # fmt: skip


def test_old_keys_read_as_the_current_ones() -> None:
    arch = nas.model_config("nafnet-w16-full")
    old = {"psnr": 25.0, "macs": 10**9, "input_psnr": 20.0, "t_start": 1.0, "t_end": 2.0,
           "arch": arch.to_dict(), "curve": [[100, 24.0], [200, 25.0]], "m_sc_bytes": 7}  # fmt: skip
    new = schema.current(old)
    assert new == {"psnr_db": 25.0, "macs_fvcore": 10**9, "input_psnr_db": 20.0,
                   "t_start_unix": 1.0, "t_end_unix": 2.0, "arch": arch.to_dict(),
                   "arch_key": arch.key(), "curve": [[100, 24.0], [200, 25.0]], "m_sc_bytes": 7,
                   "val_step": 200, "val_psnr_db": 25.0}  # fmt: skip
    assert schema.current(new) == new  # current keys stay
    assert set(schema.LEGACY_KEYS.values()) <= {m.key for m in (METRICS.get(n) for n in METRICS)} | {
        schema.INPUT_PSNR, schema.T_START, schema.T_END
    }  # fmt: skip


def test_metric_names_map_back_to_metrics() -> None:
    for name in METRICS.names():
        row = METRICS.get(name)
        assert by_optuna_name(row.optuna_name) is row and by_optuna_name(name) is row
    assert METRICS.get("psnr").optuna_name == "PSNR [dB]"
    assert METRICS.get("m_sc").optuna_name == "skip memory M_sc [bytes]"
    assert by_optuna_name("Objective 0") is None


@pytest.fixture
def trial() -> optuna.Trial:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.create_study().ask()


def test_constraints_are_read_by_name_in_either_form(trial) -> None:
    from studies import compat

    trial.set_constraint("m_sc <= 1 MiB", -0.5)
    trial.set_constraint("psnr >= 21", 1.5)
    compat.write_constraint_list(trial, schema.constraint_list(
        {"m_sc <= 1 MiB": -0.5, "psnr >= 21": 1.5}))  # fmt: skip
    frozen = trial.study.trials[-1]
    assert len(frozen.constraints) == 4  # Optuna lists each value once per form
    assert schema.trial_constraints(frozen) == {"m_sc <= 1 MiB": -0.5, "psnr >= 21": 1.5}
    listed = optuna.trial.create_trial(state=optuna.trial.TrialState.COMPLETE, value=1.0,
                                       system_attrs={"constraints": [0.25, -1.0]})  # fmt: skip
    assert schema.trial_constraints(listed) == {
        "0": 0.25,
        "1": -1.0,
    }  # a sampler's constraints_func
