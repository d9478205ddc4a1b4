"""Building blocks shared by backbones and skip designs.

Every block is plain ``nn.Module`` code over standard ops (no custom autograd ``Function``),
so fvcore's tracer, ONNX export and the memory tracer all see every op.

Layouts: all blocks take and return ``(N, C, H, W)`` tensors.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from nas.registry import replayable


class LayerNorm2d(nn.Module):
    """LayerNorm over the channel axis of an ``(N, C, H, W)`` map, with a per-channel affine.

    Written with ordinary tensor ops (NAFNet's original hides it in an autograd Function, which
    fvcore cannot trace).
    """

    def __init__(self, channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mu = x.mean(1, keepdim=True)
        var = (x - mu).pow(2).mean(1, keepdim=True)
        y = (x - mu) / torch.sqrt(var + self.eps)
        return self.weight.view(1, -1, 1, 1) * y + self.bias.view(1, -1, 1, 1)


class SimpleGate(nn.Module):
    """Split channels in two halves and multiply them: ``(N, 2C, H, W) -> (N, C, H, W)``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = x.chunk(2, dim=1)
        return a * b


class LocalAvgPool2d(nn.AdaptiveAvgPool2d):
    """NAFNetLocal's test-time local pooling (TLC; Chu et al., "Revisiting Global Statistics
    Aggregation for Improving Image Restoration"): on a map no larger than ``kernel`` (both sides)
    the global mean ``(N, C, 1, 1)``, as ``nn.AdaptiveAvgPool2d(1)``; on a larger map the mean of
    the ``kernel`` window (clipped to the map) at every position, stride 1, the border replicate-
    padded back to ``(N, C, H, W)``. It is an ``AdaptiveAvgPool2d`` (output size 1) so cost
    counters treat it as the pooling it replaces.
    """

    def __init__(self, kernel: tuple[int, int]) -> None:
        super().__init__(1)
        self.kernel = kernel

    def extra_repr(self) -> str:
        return f"kernel={self.kernel}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = int(x.shape[-2]), int(x.shape[-1])
        if self.kernel[0] >= h and self.kernel[1] >= w:
            return F.adaptive_avg_pool2d(x, 1)
        kh, kw = min(h, self.kernel[0]), min(w, self.kernel[1])
        out = F.avg_pool2d(x, (kh, kw), stride=1)  # (N, C, H - kh + 1, W - kw + 1)
        ph, pw = kh - 1, kw - 1
        return F.pad(out, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2), mode="replicate")


class SimplifiedChannelAttention(nn.Module):
    """NAFNet's SCA: global average pool, point-wise conv, multiply back onto the input. With
    ``pool_kernel`` the pool is ``LocalAvgPool2d`` (NAFNetLocal)."""

    def __init__(self, channels: int, pool_kernel: tuple[int, int] | None = None) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1) if pool_kernel is None else LocalAvgPool2d(pool_kernel)
        self.conv = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.conv(self.pool(x))


@replayable
class NAFBlock(nn.Module):
    """NAFNet's nonlinear-activation-free block (Chen et al. 2022), channel count preserved;
    ``pool_kernel``: local channel-attention pooling (see ``LocalAvgPool2d``)."""

    def __init__(self, channels: int, dw_expand: int = 2, ffn_expand: int = 2,
                 pool_kernel: tuple[int, int] | None = None) -> None:  # fmt: skip
        super().__init__()
        dw = channels * dw_expand
        ffn = channels * ffn_expand
        self.norm1 = LayerNorm2d(channels)
        self.conv1 = nn.Conv2d(channels, dw, 1)
        self.conv2 = nn.Conv2d(dw, dw, 3, padding=1, groups=dw)
        self.gate = SimpleGate()
        self.sca = SimplifiedChannelAttention(dw // 2, pool_kernel)
        self.conv3 = nn.Conv2d(dw // 2, channels, 1)
        self.norm2 = LayerNorm2d(channels)
        self.conv4 = nn.Conv2d(channels, ffn, 1)
        self.conv5 = nn.Conv2d(ffn // 2, channels, 1)
        self.beta = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.gamma = nn.Parameter(torch.zeros(1, channels, 1, 1))

    def forward(self, inp: torch.Tensor) -> torch.Tensor:
        x = self.conv2(self.conv1(self.norm1(inp)))
        x = self.conv3(self.sca(self.gate(x)))
        y = inp + x * self.beta
        x = self.conv5(self.gate(self.conv4(self.norm2(y))))
        return y + x * self.gamma


class GRN(nn.Module):
    """ConvNeXt V2 global response normalisation on a channels-last ``(N, H, W, C)`` tensor."""

    def __init__(self, channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.zeros(1, 1, 1, channels))
        self.beta = nn.Parameter(torch.zeros(1, 1, 1, channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # L2 norm over space, (N, H, W, C) -> (N, 1, 1, C). vector_norm's gradient at a
        # channel that is all zero is 0; sqrt(sum(x**2)) would make it NaN and kill training.
        return self.from_norm(x, torch.linalg.vector_norm(x, dim=(1, 2), keepdim=True))

    def from_norm(self, x: torch.Tensor, gx: torch.Tensor) -> torch.Tensor:
        """The response given the spatial L2 norm ``gx`` (N, 1, 1, C) of the whole map (the
        tiled executor gathers it over all tiles first)."""
        nx = gx / (gx.mean(dim=-1, keepdim=True) + self.eps)
        return self.gamma * (x * nx) + self.beta + x


@replayable
class ConvNeXtV2Block(nn.Module):
    """ConvNeXt V2 block (Woo et al. 2023): dw 7x7, LayerNorm, MLP x4 with GELU and GRN, residual."""

    def __init__(self, channels: int, mlp_ratio: int = 4, kernel_size: int = 7) -> None:
        super().__init__()
        hidden = channels * mlp_ratio
        self.dwconv = nn.Conv2d(
            channels, channels, kernel_size, padding=kernel_size // 2, groups=channels
        )
        self.norm = nn.LayerNorm(channels, eps=1e-6)
        self.pwconv1 = nn.Linear(channels, hidden)
        self.act = nn.GELU()
        self.grn = GRN(hidden)
        self.pwconv2 = nn.Linear(hidden, channels)

    def forward(self, inp: torch.Tensor) -> torch.Tensor:
        x = self.dwconv(inp).permute(0, 2, 3, 1)  # (N, C, H, W) -> (N, H, W, C)
        x = self.pwconv2(self.grn(self.act(self.pwconv1(self.norm(x)))))
        return inp + x.permute(0, 3, 1, 2)  # (N, H, W, C) -> (N, C, H, W)


class SeparableConv(nn.Sequential):
    """Depthwise ``k x k`` conv followed by a point-wise conv that sets the output channels."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3) -> None:
        super().__init__(
            nn.Conv2d(
                in_channels, in_channels, kernel_size, padding=kernel_size // 2, groups=in_channels
            ),
            nn.Conv2d(in_channels, out_channels, 1),
        )


@replayable
class DoubleConv(nn.Sequential):
    """The classic U-Net stage body: (3x3 conv, optional BatchNorm, ReLU) twice."""

    def __init__(self, in_channels: int, out_channels: int, batch_norm: bool = True) -> None:
        layers: list[nn.Module] = []
        for cin in (in_channels, out_channels):
            layers.append(nn.Conv2d(cin, out_channels, 3, padding=1, bias=not batch_norm))
            if batch_norm:
                layers.append(nn.BatchNorm2d(out_channels))
            layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)
