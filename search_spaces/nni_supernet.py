"""A weight-sharing supernet of skip designs, for one-shot pre-screening (the ``nni`` extra).

``SkipSupernet(designs)`` is an ``nni.nas`` model space whose one ``LayerChoice`` (label
``skip``) picks among named ``ArchConfig``s on one backbone. Every candidate is a ``SkipUNet``
over the *same* backbone module, so the encoder, middle, decoder and head weights are shared by
all designs; a design's own skip module (UNet--'s reducers, aggregation and IEM headers) is its
own, trained on the steps its path is drawn; full, none and subset skips have no weights, so
those designs share everything. ``one_shot(designs)`` turns the choice into NNI's one-shot
``PathSamplingLayer`` (what ``RandomOneShot``, i.e. SPOS, trains): ``select(name)`` fixes
one path; a trainer selects a design drawn uniformly at random for each step (SPOS), and to
score a design, selects it: its forward then runs with the inherited weights.

The backbone must merge skips by addition (NAFNet, MSCAN): a concatenating U-Net's decoder
widths depend on which skips arrive, which leaves nothing to share (``ConfigError``).
"""

from __future__ import annotations

from typing import Any

import torch

from nas.config import ArchConfig
from nas.errors import ConfigError
from nas.model import SkipUNet
from search_spaces.nni_imports import require

require("search_spaces.nni_supernet")  # one line saying how to install NNI, if missing
from nni.mutable import frozen_context
from nni.nas.nn.pytorch import LayerChoice, ModelSpace
from nni.nas.oneshot.pytorch.supermodule.sampling import PathSamplingLayer

LABEL = "skip"


def _shapes(module: torch.nn.Module) -> list[tuple[str, tuple[int, ...]]]:
    return [(k, tuple(v.shape)) for k, v in module.state_dict().items()]


def _shared_backbone(designs: dict[str, ArchConfig]) -> Any:
    """The one backbone module of ``designs``; ``ConfigError`` if they have several, or if its
    weights depend on which skips arrive (a concatenating decoder)."""
    configs = {a.backbone for a in designs.values()}
    if len(configs) != 1:
        raise ConfigError(f"supernet: designs on {len(configs)} backbones; give one")
    config = configs.pop()
    n = len(config.stage_channels)
    for arch in designs.values():
        arch.skip.validate(config.stage_channels)
    backbone = config.build((True,) * n)
    if _shapes(backbone) != _shapes(config.build((False,) * n)):
        raise ConfigError("supernet: this backbone's decoder widths depend on the skips it "
                          "gets (it concatenates them): no weights to share")  # fmt: skip
    return backbone


class SkipSupernet(ModelSpace):
    """``designs`` (name -> ``ArchConfig``, one backbone) as one supernet (module docstring)."""

    def __init__(self, designs: dict[str, ArchConfig]) -> None:
        super().__init__()
        self.backbone = _shared_backbone(designs)
        paths = {name: SkipUNet(arch, self.backbone, arch.skip.build(arch.backbone.stage_channels))
                 for name, arch in designs.items()}  # fmt: skip
        self.paths = LayerChoice(paths, label=LABEL)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.paths(x)

    @property
    def names(self) -> list[str]:
        return list(self.paths.names)

    def select(self, name: str) -> None:
        """Fix the path of design ``name`` (NNI's ``resample`` with it in the memo): forward
        runs that design with the shared (inherited) weights."""
        if name not in self.paths.names:
            raise ConfigError(f"supernet: no design {name!r}; it has {self.names}")
        self.paths.resample({LABEL: name})


def one_shot(designs: dict[str, ArchConfig], seed: int = 0) -> SkipSupernet:
    """The supernet with its choice mutated into NNI's ``PathSamplingLayer`` (random init from
    ``seed``, without touching the caller's torch RNG)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = SkipSupernet(designs)
    with frozen_context():  # a dry run, as inside the space's __init__
        net.paths = PathSamplingLayer.mutate(net.paths, LABEL, {}, {})
    return net
