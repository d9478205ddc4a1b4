"""Small instances of every backbone and every skip design kind, for contract tests."""

from __future__ import annotations

from nas import (
    ArchConfig,
    FullSkipsConfig,
    NAFNetConfig,
    NoSkipsConfig,
    SubsetSkipsConfig,
    UNetConfig,
    UNetMMConfig,
)
from nas.backbones import MSCANConfig
from nas.backbones.kbnet import KBNetConfig


def small_backbones() -> dict[str, object]:
    return {
        "nafnet-w8": NAFNetConfig(8, (1, 1, 1, 1), 1, (1, 1, 1, 1)),
        "kbnet-w8": KBNetConfig(8, (1, 1, 1, 1), 1, (1, 1, 1, 1)),
        "unet-w8-d3": UNetConfig(width=8, depth=3),
        "unet-w8-d4": UNetConfig(width=8, depth=4, batch_norm=False, residual=False),
        # E1 at H/4 (stem stride 4), E4 at H/32; restoration head (3 channels out)
        "mscan-w8": MSCANConfig((8, 16, 24, 32), (1, 1, 1, 1), (2, 2, 2, 2), out_channels=3,
                                residual=True, head_channels=4),
    }


def _reduced_for_target(num_stages: int, target: int) -> tuple[int, ...]:
    """Reduced channels that pixel-shuffle cleanly to ``target`` (2 per stage, x4 per step up)."""
    return tuple(2 * 4 ** max(0, s - target) for s in range(1, num_stages + 1))


def skip_designs(num_stages: int) -> dict[str, object]:
    n = num_stages
    return {
        "full": FullSkipsConfig(),
        "none": NoSkipsConfig(),
        "subset": SubsetSkipsConfig(stages=(1, n)),
        # Fig. 3a: aggregate at the deepest stage (the paper's choice)
        "unetmm-a": UNetMMConfig(ratios=(0.25,) * n, aggregated_channels=64),
        # Fig. 3b: a middle stage, pixel-unshuffle shallower and pixel-shuffle deeper maps
        "unetmm-b": UNetMMConfig(
            ratios=None, reduced_channels=_reduced_for_target(n, 2), target_stage=2,
            aggregated_channels=16, iem_depth=2,
        ),  # fmt: skip
        # Fig. 3c: the shallowest stage
        "unetmm-c": UNetMMConfig(
            ratios=None, reduced_channels=_reduced_for_target(n, 1), target_stage=1,
            aggregated_channels=8, iem_depth=0,
        ),  # fmt: skip
        "unetmm-part": UNetMMConfig(
            ratios=(0.5,) * n, target_stage=n - 1, stages=(2, n), aggregated_channels=32
        ),
    }


def all_archs() -> dict[str, ArchConfig]:
    out = {}
    for bname, backbone in small_backbones().items():
        for sname, skip in skip_designs(len(backbone.stage_channels)).items():
            out[f"{bname}/{sname}"] = ArchConfig(backbone, skip)
    return out
