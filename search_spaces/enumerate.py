"""Every point of a define-by-run space, walked exhaustively without Optuna (no model built).

``parameter_sets(space, bounds)`` yields ``(params, candidate)`` for every distinct parameter
set ``space.suggest`` can ask for, depth first: a parameter asked only on some branches (a
UNet-- ratio of a stage that takes part) is enumerated only there. Several parameter sets may
give one design; callers dedupe by ``ArchConfig.key``. A point whose ``suggest`` raises
``ConfigError`` is yielded with candidate None. ``weighted_parameter_sets`` adds each set's
probability under a sampler that picks every asked parameter uniformly among its choices
(Optuna's ``RandomSampler`` on these spaces, which ask only categorical and linear int
parameters): the product of 1 / choices over the parameters asked; they sum to 1.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Any

from nas.errors import ConfigError
from search_spaces.bounds import SpaceBounds
from search_spaces.candidate import Candidate
from search_spaces.registry import Params, SearchSpace


class _Odometer:
    """A trial whose i-th suggestion takes choice ``picks[i]`` (0 past the end of ``picks``),
    recording how many choices each suggestion had."""

    def __init__(self, picks: Sequence[int]) -> None:
        self.picks, self.sizes, self.params = picks, [], {}

    def _pick(self, name: str, choices: tuple[Any, ...]) -> Any:
        i = len(self.sizes)
        value = choices[self.picks[i] if i < len(self.picks) else 0]
        self.sizes.append(len(choices))
        self.params[name] = value
        return value

    def suggest_categorical(self, name: str, choices: Sequence[Any]) -> Any:
        return self._pick(name, tuple(choices))

    def suggest_int(self, name: str, low: int, high: int, step: int = 1, log: bool = False) -> int:
        return self._pick(name, tuple(range(low, high + 1, step)))


def parameter_sets(space: SearchSpace, bounds: SpaceBounds
                   ) -> Iterator[tuple[Params, Candidate | None]]:  # fmt: skip
    """Every parameter set of ``space`` under ``bounds`` and its candidate (see module doc)."""
    for params, candidate, _ in weighted_parameter_sets(space, bounds):
        yield params, candidate


def weighted_parameter_sets(space: SearchSpace, bounds: SpaceBounds
                            ) -> Iterator[tuple[Params, Candidate | None, float]]:  # fmt: skip
    """``parameter_sets`` with each set's probability under uniform random picks (module doc)."""
    picks: list[int] = []
    while True:
        trial = _Odometer(picks)
        try:
            candidate: Candidate | None = space.suggest(trial, bounds)
        except ConfigError:
            candidate = None
        yield dict(trial.params), candidate, 1.0 / math.prod(trial.sizes)
        taken = [picks[i] if i < len(picks) else 0 for i in range(len(trial.sizes))]
        while taken and taken[-1] + 1 >= trial.sizes[len(taken) - 1]:
            taken.pop()
        if not taken:
            return
        taken[-1] += 1
        picks = taken
