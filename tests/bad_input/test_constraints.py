"""Constraints that cannot mean anything are refused: a negative limit on a cost, a lower bound
on a cost, two limits on one metric, and limits no design can be compared with."""

from __future__ import annotations

import pytest

CASES = [
    (["m_sc <= -1 MiB"], "constraints[0]: m_sc <= -1 is below zero"),
    (["macs <= -5 G"], "constraints[0]: macs <= -5 is below zero"),
    (["params <= -1"], "constraints[0]: params <= -1 is below zero"),
    (["peak_tiled <= -0.5 MiB"], "constraints[0]: peak_tiled <= -0.5 is below zero"),
    (["m_sc >= 1 MiB"], "constraints[0]: m_sc >= ... puts a lower bound on a cost"),
    (["macs >= 1 G"], "constraints[0]: macs >= ... puts a lower bound on a cost"),
    (["peak_memory >= 1 MiB"], "constraints[0]: peak_memory >= ..."),
    (["m_sc <= 1 MiB", "m_sc <= 2 MiB"], "constraints[1]: m_sc is limited by constraints[0]"),
    (["psnr >= 20", "psnr >= 25 dB"], "constraints[1]: psnr is limited by constraints[0]"),
    (["m_sc <= 1 MiB", "m_sc <= 1 MiB"], "constraints[1]: 'm_sc <= 1 MiB' is constraints[0] again"),
    (["m_sc <= inf MiB"], "constraints[0]: 'm_sc <= inf MiB' is not a constraint"),
    (["m_sc <= nan"], "constraints[0]: 'm_sc <= nan' is not a constraint"),
    (["m_sc < 1 MiB"], "constraints[0]: 'm_sc < 1 MiB' is not a constraint"),
    (["speed <= 3"], "constraints[0]: unknown metric 'speed'"),
    (["m_sc <= 3 G"], "constraints[0]: unit 'G' does not fit m_sc"),
    (["sad <= 3"], "constraints[0]: sad is measured by the matting task only"),
    ([5], "constraints"),
]


@pytest.mark.parametrize(("constraints", "needle"), CASES, ids=[c[1] for c in CASES])
def test_constraints_that_mean_nothing(refused, spec_file, constraints, needle) -> None:
    refused(["search", spec_file(constraints=constraints), "s.db"], needle)
