"""A skip-design space as an NNI model space (the ``nni`` extra; importing this imports NNI).

``SkipDesignSpace(space_name, bounds, backbone=None)`` is an ``nni.nas`` ``ModelSpace`` with
one ``nni.choice`` per parameter of the Optuna space (``PARAMETERS``: the parameter sets of
``search_spaces.flat``, same labels, same values; a flat twin has its conditional space's).
Frozen with a sample (``space.freeze(sample)``, or an NNI strategy's ``executable_model()``)
it holds the design that the Optuna space's ``suggest`` returns for
those values (``candidate``: the very same code maps both, so the two spaces yield exactly the
same designs) and, given a backbone, that network (``network``, ``forward``).

An NNI sample is flat: it has every label, also those of the families and stages a design does
not use; the Optuna parameters of a design are the labels ``suggest`` reads. ``sample_of``
goes back: Optuna parameters with the unused labels at their first value (one canonical sample
per parameter set).
"""

from __future__ import annotations

from typing import Any

from optuna.distributions import BaseDistribution, CategoricalDistribution
from optuna.trial import FixedTrial

from nas.errors import ConfigError
from search_spaces.bounds import SpaceBounds
from search_spaces.candidate import Candidate
from search_spaces.flat import ParamSet, skip_designs_params, unetmm_params
from search_spaces.nni_imports import require
from search_spaces.registry import get_space

nni = require("search_spaces.nni_space")  # one line saying how to install NNI, if missing
from nni.mutable import ensure_frozen
from nni.nas.nn.pytorch import ModelSpace
from nni.nas.space import RawFormatModelSpace, current_model, model_context

Sample = dict[str, Any]
PARAMETERS: dict[str, ParamSet] = {  # space -> every parameter it may ask for
    "skip_designs": skip_designs_params, "skip_designs_flat": skip_designs_params,
    "unetmm": unetmm_params, "unetmm_flat": unetmm_params,
}  # fmt: skip


def _values(dist: BaseDistribution) -> tuple[Any, ...]:
    if isinstance(dist, CategoricalDistribution):
        return tuple(dist.choices)
    return tuple(range(dist.low, dist.high + 1, dist.step))  # an IntDistribution


def choices(space_name: str, bounds: SpaceBounds) -> dict[str, tuple[Any, ...]]:
    """Every parameter of the space ``space_name`` and its values (``ConfigError`` for a space
    NNI does not know)."""
    if space_name not in PARAMETERS:
        raise ConfigError(f"space.name: NNI samplers search {sorted(PARAMETERS)}, not "
                          f"{space_name!r}")  # fmt: skip
    return {k: _values(d) for k, d in PARAMETERS[space_name](bounds).items()}


def to_candidate(sample: Sample, space_name: str, bounds: SpaceBounds) -> Candidate:
    """The design of an NNI sample: the Optuna space's ``suggest`` on those values."""
    return get_space(space_name).suggest(FixedTrial(dict(sample)), bounds)


def sample_of(params: dict[str, Any], table: dict[str, tuple[Any, ...]]) -> Sample:
    """The canonical NNI sample of Optuna parameters: unused labels at their first value
    (values are taken from ``table``, so numpy scalars become the table's Python values)."""
    out = {}
    for label, values in table.items():
        value = params.get(label, values[0])
        out[label] = next((v for v in values if v == value), value)
    return out


class SkipDesignSpace(ModelSpace):
    """The NNI model space of ``space_name`` (see the module docstring)."""

    def __init__(self, space_name: str, bounds: SpaceBounds, backbone: Any = None) -> None:
        super().__init__()
        self.space_name, self.bounds = space_name, bounds
        self.frozen = current_model() is not None  # inside ``freeze``
        self.values = {
            label: ensure_frozen(self.add_mutable(nni.choice(label, list(values))))
            for label, values in choices(space_name, bounds).items()
        }  # the labels' values when frozen, their first values while NNI traces the space
        self.candidate = to_candidate(self.values, space_name, bounds)
        self.network = None
        if backbone is not None and self.frozen:
            from nas import build_model

            self.network = build_model(self.candidate.arch(backbone))

    def freeze(self, sample: Sample) -> SkipDesignSpace:
        with model_context(sample):
            return self.__class__(*self.trace_args, **self.trace_kwargs)

    def forward(self, x: Any) -> Any:
        if self.network is None:
            raise RuntimeError("freeze the space with a sample, and give it a backbone, first")
        return self.network(x)


def executable(space_name: str, bounds: SpaceBounds, backbone: Any = None) -> Any:
    """What NNI's strategies explore: the space as an ``nni.nas.space.RawFormatModelSpace``
    (no evaluator: unetmm's own trial function scores the designs)."""
    return RawFormatModelSpace(SkipDesignSpace(space_name, bounds, backbone), None)
