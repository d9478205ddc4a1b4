"""Named architectures users can ask for on the command line and in study files."""

from __future__ import annotations

from collections.abc import Callable

from nas.backbones import NAFNetConfig, UNetConfig, mscan_tiny, nafnet_gopro, nafnet_sidd
from nas.config import ArchConfig
from nas.registry import Registry
from nas.skips import FullSkipsConfig, NoSkipsConfig, UNetMMConfig

BACKBONE_PRESETS: Registry[Callable[[], object]] = Registry("backbone preset")
BACKBONE_PRESETS.register("nafnet-sidd")(nafnet_sidd)
BACKBONE_PRESETS.register("nafnet-gopro")(nafnet_gopro)
BACKBONE_PRESETS.register("nafnet-gopro-local")(lambda: nafnet_gopro(local=True))
BACKBONE_PRESETS.register("nafnet-w16")(lambda: NAFNetConfig(16, (1, 1, 1, 1), 1, (1, 1, 1, 1)))
BACKBONE_PRESETS.register("unet")(lambda: UNetConfig())
BACKBONE_PRESETS.register("unet-w32-d3")(lambda: UNetConfig(width=32, depth=3))
BACKBONE_PRESETS.register("unet-w32-d5")(lambda: UNetConfig(width=32, depth=5))
BACKBONE_PRESETS.register("mscan-tiny")(mscan_tiny)


def backbone_preset(name: str) -> object:
    """The backbone config registered as ``name`` (e.g. ``nafnet-sidd``)."""
    return BACKBONE_PRESETS.get(name)()


def reference_designs(backbone: object) -> dict[str, ArchConfig]:
    """The three reference points of every study: full skips, no skips, the paper's UNet--."""
    n = len(backbone.stage_channels)  # type: ignore[attr-defined]
    return {
        "full": ArchConfig(backbone, FullSkipsConfig()),
        "none": ArchConfig(backbone, NoSkipsConfig()),
        "unetmm": ArchConfig(backbone, UNetMMConfig.paper(n)),
    }
