"""Space bounds have sane maxima: a bound that builds a 512 GB map or a 1000-block header is
refused before anything is built."""

from __future__ import annotations

import pytest

CASES = [
    ({"aggregated_log2": [30, 40]}, "aggregated_log2: high 40 > 12"),
    ({"aggregated_log2": [4, 13]}, "aggregated_log2: high 13 > 12"),
    ({"aggregated_log2": [-1, 4]}, "aggregated_log2: low -1 < 0"),
    ({"aggregated_log2": [9, 4]}, "aggregated_log2: low 9 > high 4"),
    ({"iem_depth": [500, 1000]}, "iem_depth: high 1000 > 8"),
    ({"iem_depth": [0, 9]}, "iem_depth: high 9 > 8"),
    ({"iem_depth": [-2, 1]}, "iem_depth: low -2 < 0"),
    ({"ratio_log2": [-1, 40]}, "ratio_log2: high 40 > 0"),
    ({"ratio_log2": [-1, -6]}, "ratio_log2: low -1 > high -6"),
    ({"designs": []}, "designs: needs at least one"),
    ({"designs": ["subset", "subset"]}, "designs: lists a design twice"),
    ({"designs": ["unet"]}, "designs"),
    ({"target_stages": [0]}, "target_stages: [0] out of range"),
    ({"stage_channels": [1, 2]}, "stage_channels is set from target.backbone"),
    ({"iem_depth": [0.5, 1]}, "iem_depth"),
    ({"aggregated_log2": [4, "x"]}, "aggregated_log2"),
]


@pytest.mark.parametrize(("bounds", "needle"), CASES, ids=[c[1] for c in CASES])
def test_space_bounds(refused, spec_file, bounds, needle) -> None:
    refused(["search", spec_file(space={"bounds": bounds}), "s.db"], f"space.bounds.{needle}"
            if not needle.startswith(("stage_channels", "target_stages")) else needle)
