"""Messages name the field as the user typed it: a refused command-line value names its flag
(``--seed: ...``), not the spec field it overrides (``seed: ...``) or a library's words."""

from __future__ import annotations

import pytest

CASES = [
    (["--seed", "-5"], "--seed: Input should be greater than or equal to 0"),
    (["--seed", "99999999999"], "--seed: Input should be less than or equal to 4294967295"),
    (["--concurrency", "0"], "--concurrency: Input should be greater than or equal to 1"),
    (["--cpus-per-trial", "0"], "--cpus-per-trial: Input should be greater than or equal to 1"),
    (["--gpus-per-trial", "-1"], "--gpus-per-trial: Input should be greater than or equal to 0"),
    (["--n-trials", "0"], "--n-trials: Input should be greater than or equal to 1"),
    (["--sampler", "foo"], "--sampler: unknown sampler 'foo'"),
    (["--worker-niceness", "40"], "--worker-niceness: Input should be less than or equal to 19"),
    (["--worker-niceness", "-3"], "--worker-niceness: Input should be greater than or equal to 0"),
    (["--study-name", "a b"], "--study-name: 'a b': use letters"),
    (["--prescreen", "magic"], "--prescreen"),
    (["--ray-address", "127.0.0.1:9"], "--ray-address: nothing answers at '127.0.0.1:9'"),
]


@pytest.mark.parametrize(("flags", "needle"), CASES, ids=[c[1].split(":")[0] for c in CASES])
def test_search_flags_are_named_as_typed(refused, spec_file, flags, needle) -> None:
    refused(["search", spec_file(), "s.db", *flags], needle)


@pytest.mark.parametrize(("args", "needle"), [
    (["measure", "--tile", "24", "--split", "4"], "--tile: 24 is not a multiple of 16"),
    (["measure", "--split", "x"], "--split: 'x' is not a stage"),
    (["measure", "--size", "0"], "--size: '0' is not a size"),
    (["measure", "--bits", "3"], "bits: 3 is not supported"),
    (["measure", "--image", "nothing.png"], "--image: cannot read 'nothing.png'"),
    (["measure", "--executor", "layer", "--image", "x.png"], "--image: runs the tiled executor"),
])  # fmt: skip
def test_measure_flags_are_named_as_typed(refused, args, needle) -> None:
    refused(args, needle)
