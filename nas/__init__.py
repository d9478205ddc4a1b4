"""unetmm.nas: U-Net backbones, skip designs (full, none, subset, UNet--) and their costs.

This package knows nothing of Optuna or Ray.
"""

from nas import backbones as _backbones  # noqa: F401  (registers backbones)
from nas import skips as _skips  # noqa: F401  (registers skip designs)
from nas.backbones import NAFNetConfig, UNetConfig, nafnet_gopro, nafnet_sidd
from nas.config import ArchConfig, load_config, save_config
from nas.cost import CostReport, measure_cost
from nas.errors import ConfigError, UnetmmError, UnknownNameError
from nas.model import SkipUNet, build_model
from nas.protocols import BackboneConfig, SkipConfig
from nas.registry import BACKBONES, SKIP_DESIGNS
from nas.skips import FullSkipsConfig, NoSkipsConfig, SubsetSkipsConfig, UNetMMConfig

__all__ = [
    "BACKBONES",
    "SKIP_DESIGNS",
    "ArchConfig",
    "BackboneConfig",
    "ConfigError",
    "CostReport",
    "FullSkipsConfig",
    "NAFNetConfig",
    "NoSkipsConfig",
    "SkipConfig",
    "SkipUNet",
    "SubsetSkipsConfig",
    "UNetConfig",
    "UNetMMConfig",
    "UnetmmError",
    "UnknownNameError",
    "build_model",
    "load_config",
    "measure_cost",
    "nafnet_gopro",
    "nafnet_sidd",
    "save_config",
]
