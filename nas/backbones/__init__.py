"""Registered backbones (see ``base.Backbone`` for the contract, ``base.BackboneConfigBase``
for what a backbone's module declares).

Every module in this package is imported here, so a new backbone is one new file: its module
registers its config, presets and replayable blocks itself. A backbone in your own module is a
plugin (``nas.load_plugins``).
"""

import importlib
import pkgutil

from nas.backbones.base import Backbone, pad_to_multiple
from nas.backbones.mscan import MSCAN, MSCANConfig, mscan_tiny
from nas.backbones.nafnet import NAFNet, NAFNetConfig, nafnet_gopro, nafnet_sidd, nafnet_w32
from nas.backbones.unet import UNet, UNetConfig

for _info in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_info.name}")

__all__ = [
    "MSCAN",
    "Backbone",
    "MSCANConfig",
    "NAFNet",
    "NAFNetConfig",
    "UNet",
    "UNetConfig",
    "mscan_tiny",
    "nafnet_gopro",
    "nafnet_sidd",
    "nafnet_w32",
    "pad_to_multiple",
]
