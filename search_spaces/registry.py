"""``SPACES``: search spaces by name. A space is a pair of plain functions:

- ``suggest(trial, bounds) -> Candidate``: define-by-run, only ``trial.suggest_*`` calls and
  arithmetic (no model is built), so Ray's OptunaSearch can call it in the driver; every design
  it returns passes ``skip.validate(bounds.stage_channels)``;
- ``encode(skip, bounds) -> params | None``: the parameters for which ``suggest`` returns the
  design ``skip`` (what ``study.enqueue_trial`` needs to put a reference point first), or None
  when the space cannot express it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from nas.errors import ConfigError
from nas.registry import Registry
from search_spaces.bounds import SpaceBounds
from search_spaces.candidate import Candidate

Params = dict[str, Any]


@dataclasses.dataclass(frozen=True)
class SearchSpace:
    """A named define-by-run space and its inverse (see the module docstring)."""

    name: str
    suggest: Callable[[Any, SpaceBounds], Candidate]
    encode: Callable[[Any, SpaceBounds], Params | None]
    description: str = ""


SPACES: Registry[SearchSpace] = Registry("search space")


def _needs_backbone(suggest: Callable[[Any, SpaceBounds], Candidate]) -> Callable[..., Candidate]:
    """``suggest`` that first checks the bounds know their backbone (a plain ``SpaceBounds()``
    does not: every knob depends on the stage channels)."""

    def checked(trial: Any, bounds: SpaceBounds) -> Candidate:
        if not bounds.num_stages:
            raise ConfigError(
                "bounds: no stage_channels; apply the bounds to your backbone first: "
                "SpaceBounds().for_backbone(backbone.stage_channels)"
            )
        return suggest(trial, bounds)

    return checked


def register_space(space: SearchSpace) -> SearchSpace:
    """Add ``space``; its ``suggest`` refuses bounds without stage channels (one clear line)."""
    checked = dataclasses.replace(space, suggest=_needs_backbone(space.suggest))
    return SPACES.register(space.name)(checked)


def get_space(name: str) -> SearchSpace:
    """The space registered as ``name``; ``UnknownNameError`` lists the others."""
    return SPACES.get(name)
