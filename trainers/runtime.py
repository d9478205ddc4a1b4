"""Carrying out a ``ProxyRuntime``: the device, the memory format, training-time stand-ins for
slow blocks, the compiled training forward, mixed precision.

``resolve_device("auto")`` is CUDA when torch sees a GPU, else the CPU; asking for ``cuda`` on a
machine without one raises ``ConfigError`` naming the field. ``Executor`` holds what a run needs
to execute its steps: the model on its device and in its memory format (with stand-ins swapped
in), the forward used for training (compiled or not) and the input conversion.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterator

import torch
import torch.nn.functional as F
from torch import nn

from nas.blocks import LayerNorm2d
from nas.errors import ConfigError
from trainers.config import ProxyRuntime


def resolve_device(device: str, field: str = "device") -> torch.device:
    """``auto`` -> ``cuda`` when available, else ``cpu``; ``cpu``/``cuda`` as asked. Raises
    ``ConfigError`` naming ``field`` for ``cuda`` without a GPU, or an unknown name."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"{field}: cuda is not available on this machine; use cpu")
    if device not in ("cpu", "cuda"):
        raise ConfigError(f"{field}: unknown device {device!r}; use auto, cpu or cuda")
    return torch.device(device)


class ChannelLayerNorm(nn.Module):
    """``LayerNorm2d`` as one ``layer_norm`` kernel over the channels of an NHWC view. Holds the
    replaced module's own parameters, so the optimizer and ``state_dict`` see the same tensors
    under the same names; equal to ``LayerNorm2d`` up to float rounding."""

    def __init__(self, norm: LayerNorm2d) -> None:
        super().__init__()
        self.weight, self.bias, self.eps = norm.weight, norm.bias, norm.eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nhwc = x.permute(0, 2, 3, 1)  # a plain view when x is channels_last
        return F.layer_norm(nhwc, (x.shape[1],), self.weight, self.bias, self.eps).permute(
            0, 3, 1, 2
        )


# block type -> its faster training-time equivalent (built from the block; same parameters)
STAND_INS: dict[type[nn.Module], Callable[[nn.Module], nn.Module]] = {
    LayerNorm2d: ChannelLayerNorm,
}


def swap_stand_ins(model: nn.Module) -> nn.Module:
    """Replace every block ``STAND_INS`` knows by its stand-in, in place; returns ``model``."""
    for parent in list(model.modules()):
        for name, child in parent.named_children():
            make = STAND_INS.get(type(child))
            if make is not None:
                setattr(parent, name, make(child))
    return model


@dataclasses.dataclass
class Executor:
    """A model prepared for ``runtime`` (moved, converted, stand-ins in). ``train_forward`` is
    the (possibly compiled) forward for training steps; ``model`` itself stays eager for
    validation; ``inputs`` moves a CPU batch to the device and memory format."""

    model: nn.Module
    train_forward: Callable[[torch.Tensor], torch.Tensor]
    device: torch.device
    memory_format: torch.memory_format
    runtime: ProxyRuntime

    @classmethod
    def build(cls, model: nn.Module, runtime: ProxyRuntime) -> Executor:
        device = resolve_device(runtime.device, "runtime.device")
        fmt = torch.channels_last if runtime.channels_last else torch.contiguous_format
        if runtime.fused_norm:
            swap_stand_ins(model)
        model = model.to(device=device, memory_format=fmt)
        forward: Callable[[torch.Tensor], torch.Tensor] = model
        if runtime.compile:
            forward = torch.compile(model, dynamic=False)
        return cls(model, forward, device, fmt, runtime)

    def inputs(self, *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(t.to(self.device, memory_format=self.memory_format) for t in tensors)

    @contextlib.contextmanager
    def precision(self) -> Iterator[None]:
        """Autocast for the training forward as ``runtime.autocast`` says (off: float32)."""
        enabled = self.runtime.autocast != "off"
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=enabled):
            yield
