"""Official NAFNet state dicts for tests, built from the public model's naming scheme and shapes
(megvii-research/NAFNet, ``basicsr/models/archs/NAFNet_arch.py``: ``intro``, ``encoders.i.j``,
``downs.i``, ``middle_blks.j``, ``ups.k.0`` and ``decoders.k.j`` counted from the deepest stage,
``ending``; a block's ``sca.1``), and a functional forward written from the official one. No
network: nothing is downloaded.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from nas import NAFNetConfig


def _block_shapes(c: int) -> dict[str, tuple[int, ...]]:
    dw = 2 * c  # DW_Expand = FFN_Expand = 2
    return {
        "beta": (1, c, 1, 1), "gamma": (1, c, 1, 1),
        "conv1.weight": (dw, c, 1, 1), "conv1.bias": (dw,),
        "conv2.weight": (dw, 1, 3, 3), "conv2.bias": (dw,),
        "conv3.weight": (c, dw // 2, 1, 1), "conv3.bias": (c,),
        "sca.1.weight": (dw // 2, dw // 2, 1, 1), "sca.1.bias": (dw // 2,),
        "conv4.weight": (2 * c, c, 1, 1), "conv4.bias": (2 * c,),
        "conv5.weight": (c, c, 1, 1), "conv5.bias": (c,),
        "norm1.weight": (c,), "norm1.bias": (c,), "norm2.weight": (c,), "norm2.bias": (c,),
    }  # fmt: skip


def official_shapes(cfg: NAFNetConfig, block_shapes: Callable[[int], dict[str, tuple[int, ...]]]
                    = _block_shapes) -> dict[str, tuple[int, ...]]:  # fmt: skip
    """Name -> shape of the official ``NAFNet(img_channel, width, middle_blk_num, enc_blk_nums,
    dec_blk_nums)`` state dict; ``block_shapes(c)``: a block's own (another family on NAFNet's
    layout, e.g. KBNet_s, passes its block's)."""
    w, img = cfg.width, cfg.img_channels
    out: dict[str, tuple[int, ...]] = {
        "intro.weight": (w, img, 3, 3), "intro.bias": (w,),
        "ending.weight": (img, w, 3, 3), "ending.bias": (img,),
    }  # fmt: skip

    def blocks(prefix: str, count: int, c: int) -> None:
        for j in range(count):
            out.update({f"{prefix}.{j}.{k}": s for k, s in block_shapes(c).items()})

    chan = w
    for i, n in enumerate(cfg.enc_blk_nums):
        blocks(f"encoders.{i}", n, chan)
        out[f"downs.{i}.weight"], out[f"downs.{i}.bias"] = (2 * chan, chan, 2, 2), (2 * chan,)
        chan *= 2
    blocks("middle_blks", cfg.middle_blk_num, chan)
    for k, n in enumerate(cfg.dec_blk_nums):
        out[f"ups.{k}.0.weight"] = (2 * chan, chan, 1, 1)  # no bias
        chan //= 2
        blocks(f"decoders.{k}", n, chan)
    return out


def official_state(cfg: NAFNetConfig, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random values in the official layout (no zero beta/gamma: every block counts)."""
    gen = torch.Generator().manual_seed(seed)
    state = {}
    for name, shape in official_shapes(cfg).items():
        t = torch.randn(shape, generator=gen)
        if name.endswith(("norm1.weight", "norm2.weight")):
            t = 1 + 0.1 * t
        elif name.endswith(("beta", "gamma", "bias")):
            t = 0.1 * t
        else:  # a conv weight: unit gain over its fan-in
            t = t / (shape[1] * shape[2] * shape[3]) ** 0.5
        state[name] = t
    return state


def _ln(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    mu = x.mean(1, keepdim=True)
    var = (x - mu).pow(2).mean(1, keepdim=True)
    return w.view(1, -1, 1, 1) * (x - mu) / torch.sqrt(var + 1e-6) + b.view(1, -1, 1, 1)


def _conv(s: dict, name: str, x: torch.Tensor, **kw: int) -> torch.Tensor:
    return F.conv2d(x, s[f"{name}.weight"], s.get(f"{name}.bias"), **kw)


def _official_block(s: dict, p: str, inp: torch.Tensor) -> torch.Tensor:
    x = _conv(s, f"{p}.conv1", _ln(inp, s[f"{p}.norm1.weight"], s[f"{p}.norm1.bias"]))
    x = _conv(s, f"{p}.conv2", x, padding=1, groups=x.shape[1])
    a, b = x.chunk(2, dim=1)
    x = a * b
    x = _conv(s, f"{p}.conv3", x * _conv(s, f"{p}.sca.1", x.mean((2, 3), keepdim=True)))
    y = inp + x * s[f"{p}.beta"]
    a, b = _conv(s, f"{p}.conv4", _ln(y, s[f"{p}.norm2.weight"], s[f"{p}.norm2.bias"])).chunk(2, 1)
    return y + _conv(s, f"{p}.conv5", a * b) * s[f"{p}.gamma"]


def official_forward(s: dict, cfg: NAFNetConfig, inp: torch.Tensor) -> torch.Tensor:
    """The official ``NAFNet.forward`` over state dict ``s``."""
    h, w = inp.shape[-2:]
    m = 2 ** len(cfg.enc_blk_nums)
    inp = F.pad(inp, (0, (m - w % m) % m, 0, (m - h % m) % m))
    x, encs = _conv(s, "intro", inp, padding=1), []
    for i, n in enumerate(cfg.enc_blk_nums):
        for j in range(n):
            x = _official_block(s, f"encoders.{i}.{j}", x)
        encs.append(x)
        x = _conv(s, f"downs.{i}", x, stride=2)
    for j in range(cfg.middle_blk_num):
        x = _official_block(s, f"middle_blks.{j}", x)
    for k, n in enumerate(cfg.dec_blk_nums):
        x = F.pixel_shuffle(_conv(s, f"ups.{k}.0", x), 2) + encs[::-1][k]
        for j in range(n):
            x = _official_block(s, f"decoders.{k}.{j}", x)
    return (_conv(s, "ending", x, padding=1) + inp)[..., :h, :w]
