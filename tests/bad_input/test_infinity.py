"""Infinity and NaN are no numbers for any field: ``.inf`` passed ``gt=0`` checks before (an
infinite lr trained a NaN model and the search still ended "complete")."""

from __future__ import annotations

import pytest

INF, NAN = float("inf"), float("nan")
FIELDS = [  # (spec changes, the field the error names)
    ({"proxy": {"budget": {"lr": "VALUE"}}}, "proxy.budget.lr"),
    ({"proxy": {"budget": {"lr_min": "VALUE"}}}, "proxy.budget.lr_min"),
    ({"proxy": {"budget": {"weight_decay": "VALUE"}}}, "proxy.budget.weight_decay"),
    ({"proxy": {"budget": {"betas": ["VALUE", 0.9]}}}, "proxy.budget.betas"),
    ({"proxy": {"task": {"sigma": "VALUE"}}}, "proxy.task.sigma"),
    ({"proxy": {"task": {"name": "deblur", "blur_sigma": "VALUE"}}}, "proxy.task.blur_sigma"),
    ({"early_stopping": {"reduction_factor": "VALUE"}}, "early_stopping.reduction_factor"),
    ({"early_stopping": {"margin_db": "VALUE"}}, "early_stopping.margin_db"),
    ({"gpus_per_trial": "VALUE"}, "gpus_per_trial"),
]


def _with(changes: dict, value: float) -> dict:
    def fill(x):  # type: ignore[no-untyped-def]
        if isinstance(x, dict):
            return {k: fill(v) for k, v in x.items()}
        if isinstance(x, list):
            return [fill(v) for v in x]
        return value if x == "VALUE" else x

    return fill(changes)


@pytest.mark.parametrize("value", [INF, -INF, NAN], ids=["inf", "-inf", "nan"])
@pytest.mark.parametrize(("changes", "field"), FIELDS, ids=[f for _, f in FIELDS])
def test_no_field_takes_infinity(refused, spec_file, changes, field, value) -> None:
    line = refused(["search", spec_file(**_with(changes, value)), "s.db"], field)
    assert "finite" in line or "greater" in line or "less" in line or "Input" in line


@pytest.mark.parametrize(("argv", "needle"), [
    (["search", "quick", "s.db", "--gpus-per-trial", "inf"], "--gpus-per-trial: Input should be a finite"),
    (["search", "quick", "s.db", "--gpus-per-trial", "nan"], "--gpus-per-trial: Input should be a finite"),
    (["export", "s.db", "--max-m-sc", "inf", "--out", "x"], "--max-m-sc: 'inf'"),
    (["export", "s.db", "--max-macs", "nan", "--out", "x"], "--max-macs: 'nan'"),
    (["export", "s.db", "--max-peak-tiled", "inf MiB", "--out", "x"], "--max-peak-tiled: 'inf MiB'"),
])  # fmt: skip
def test_flags_take_no_infinity(refused, argv, needle) -> None:
    refused(argv, needle)
