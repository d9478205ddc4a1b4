"""``Candidate``: what a search space returns, a skip-design config and a short label.

It builds nothing: ``arch(backbone)`` pairs it with a backbone config into an ``ArchConfig``,
which ``nas.build_model`` and ``nas.measure_cost`` take.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from nas.config import ArchConfig


@dataclasses.dataclass(frozen=True)
class Candidate:
    """One point of a search space.

    - ``skip``: a registered skip-design config (``FullSkipsConfig``, ``NoSkipsConfig``,
      ``SubsetSkipsConfig``, ``UNetMMConfig``), already valid for the space's backbone;
    - ``label``: a short human description, e.g. ``unetmm t=4 A=256 c=[2,4,8,32] d=1``.
    """

    skip: Any
    label: str

    def arch(self, backbone: Any) -> ArchConfig:
        """The full architecture on ``backbone`` (a backbone config)."""
        return ArchConfig(backbone, self.skip)
