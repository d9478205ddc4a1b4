"""unetmm.nas: U-Net backbones, skip designs (full, none, subset, UNet--) and their costs.

This package knows nothing of Optuna or Ray. Models by name, in timm's style:
``nas.list_models()``, ``nas.create_model("nafnet-w32-unetmm", aggregated_channels=128)``.
"""

from importlib.metadata import PackageNotFoundError as _NotInstalled
from importlib.metadata import version as _version

from nas import backbones as _backbones  # noqa: F401  (registers backbones)
from nas import skips as _skips  # noqa: F401  (registers skip designs)
from nas.backbones import NAFNetConfig, UNetConfig, nafnet_gopro, nafnet_sidd, nafnet_w32
from nas.config import ArchConfig, load_config, save_config
from nas.cost import CostReport, measure_cost
from nas.errors import ConfigError, UnetmmError, UnknownNameError
from nas.model import SkipUNet, build_model
from nas.presets import create_model, list_models, model_config
from nas.protocols import BackboneConfig, SkipConfig
from nas.registry import BACKBONES, SKIP_DESIGNS
from nas.skips import FullSkipsConfig, NoSkipsConfig, SubsetSkipsConfig, UNetMMConfig
from nas.tiling import tiled_forward

from nas.plugins import load_plugins  # noqa: E402

try:
    __version__ = _version("unetmm")  # the installed distribution's version (pyproject.toml)
except _NotInstalled:  # a source tree on sys.path without an install
    __version__ = "0+unknown"

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
    "__version__",
    "build_model",
    "create_model",
    "list_models",
    "load_config",
    "load_plugins",
    "measure_cost",
    "model_config",
    "nafnet_gopro",
    "nafnet_sidd",
    "nafnet_w32",
    "save_config",
    "tiled_forward",
]

load_plugins()  # last: a plugin may use every name above
