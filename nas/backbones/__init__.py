"""Registered backbones (see ``base.Backbone`` for the contract)."""

from nas.backbones.base import Backbone, pad_to_multiple
from nas.backbones.mscan import MSCAN, MSCANConfig, mscan_tiny
from nas.backbones.nafnet import NAFNet, NAFNetConfig, nafnet_gopro, nafnet_sidd
from nas.backbones.unet import UNet, UNetConfig

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
    "pad_to_multiple",
]
