"""Procedural alpha mattes and trimaps, for a matting set composited from ordinary photographs.

``random_alpha(h, w, rng)`` draws a soft foreground matte ``(h, w)`` float32 in [0, 1]:

- a body: a low-frequency random field (white noise blurred by 8-20% of the image side) cut at
  the quantile that makes 20-65% of the pixels foreground, then blurred by 0.7-3 px (soft edges);
- thin structures: 3-12 "hair" strands, smooth random walks of 15-45% of the side from points on
  the body's edge, about 1 px wide (bilinear coverage) at 35-100% opacity (combined by maximum);
- with probability 0.3, a semi-transparent patch (an ellipse at constant alpha 0.2-0.8, blurred).

``trimap_of(alpha)`` marks pixels 0 (background), 1 (foreground) or 0.5 (unknown: every pixel
within ``UNKNOWN_RADIUS`` of a pixel whose alpha is neither ~0 nor ~1). ``composite`` is the
matting equation ``I = alpha F + (1 - alpha) B``; ``defocus`` makes the background photo look like
a portrait's (blurred, flatter, darker). With two plain photos nothing says which layer is in
front: MSCAN's proxy stayed below the 6.5 dB alpha PSNR of a constant 0.5 after 200 steps; with a
blurred background alone it crept to ~7.5 dB in 300 steps. Version 1 (blurred, flattened, dimmed
to 50-80%) left it at 8-9 dB however long it trained, at any width, learning rate or loss: all
designs alike, so no ranking (``benchmarks/task_fidelity.py``). Version 2 dims the background to
20-40% (a subject lit in front of a darker scene), and the proxy reaches ~11 dB in 300 steps with
the designs apart. Everything draws only from the generator given, so a batch is a pure function
of its seed. ``VERSION`` is part of a synthetic matting study's fingerprint
(``trainers.config.training_identity``): a study trained on another version does not resume.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

VERSION = 2  # of the synthetic compositing: a new version changes every synthetic matting score
EPS = 1 / 255  # alpha below EPS counts as background, above 1 - EPS as foreground
UNKNOWN_RADIUS = 3  # px: how far the trimap's unknown band reaches beyond the soft pixels


def _body(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    # the random field is drawn on an 8x coarser grid and upsampled: same look, ~20x cheaper
    sh, sw = max(2, -(-h // 8)), max(2, -(-w // 8))
    sigma = rng.uniform(0.08, 0.2) * min(h, w) / 8
    coarse = ndimage.gaussian_filter(rng.standard_normal((sh, sw)), sigma=sigma, mode="wrap")
    field = ndimage.zoom(coarse, (h / sh, w / sw), order=1)[:h, :w]
    cut = np.quantile(field, 1 - rng.uniform(0.2, 0.65))
    hard = (field > cut).astype(np.float32)
    return ndimage.gaussian_filter(hard, sigma=rng.uniform(0.7, 3.0))


def _strands(alpha: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random-walk strands from edge points, splatted bilinearly at 0.5 px spacing."""
    h, w = alpha.shape
    out = np.zeros(h * w, dtype=np.float32)
    edge = np.argwhere((alpha > 0.3) & (alpha < 0.7))
    if len(edge) == 0:
        return out.reshape(h, w)
    for _ in range(int(rng.integers(3, 13))):
        start = edge[rng.integers(len(edge))].astype(np.float64)
        n = max(4, int(rng.uniform(0.15, 0.45) * min(h, w) * 2))  # points 0.5 px apart
        heading = rng.uniform(0, 2 * np.pi) + np.cumsum(rng.normal(0, 0.12, n))
        y = start[0] + np.cumsum(0.5 * np.sin(heading))
        x = start[1] + np.cumsum(0.5 * np.cos(heading))
        opacity = rng.uniform(0.35, 1.0)
        y0, x0 = np.floor(y).astype(int), np.floor(x).astype(int)
        fy, fx = y - y0, x - x0
        for dy, dx, wt in ((0, 0, (1 - fy) * (1 - fx)), (0, 1, (1 - fy) * fx),
                           (1, 0, fy * (1 - fx)), (1, 1, fy * fx)):  # fmt: skip
            yy, xx = y0 + dy, x0 + dx
            ok = (yy >= 0) & (yy < h) & (xx >= 0) & (xx < w)
            # a 1-px line: a pixel's coverage is its largest bilinear weight along the path
            np.maximum.at(out, yy[ok] * w + xx[ok], (opacity * np.minimum(1, 2 * wt[ok])))
    return out.reshape(h, w)


def _veil(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    cy, cx = rng.uniform(0, h), rng.uniform(0, w)
    ry, rx = rng.uniform(0.1, 0.35) * h, rng.uniform(0.1, 0.35) * w
    yy, xx = np.mgrid[0:h, 0:w]
    inside = (((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1).astype(np.float32)
    return ndimage.gaussian_filter(inside * rng.uniform(0.2, 0.8), sigma=rng.uniform(0.7, 2.0))


def random_alpha(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """A procedural soft matte ``(h, w)`` float32 in [0, 1] (see the module docstring)."""
    alpha = _body(h, w, rng)
    alpha = np.maximum(alpha, _strands(alpha, rng))
    if rng.uniform() < 0.3:
        alpha = np.maximum(alpha, _veil(h, w, rng))
    return np.clip(alpha, 0, 1).astype(np.float32)


def trimap_of(alpha: np.ndarray) -> np.ndarray:
    """0 / 0.5 / 1 trimap of a matte: unknown within ``UNKNOWN_RADIUS`` px of soft pixels."""
    soft = (alpha > EPS) & (alpha < 1 - EPS)
    unknown = ndimage.binary_dilation(soft, iterations=UNKNOWN_RADIUS)
    trimap = (alpha >= 1 - EPS).astype(np.float32)
    trimap[unknown] = 0.5
    return trimap


def composite(fg: np.ndarray, bg: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """``alpha * fg + (1 - alpha) * bg`` for ``(H, W, 3)`` images in [0, 1] and an ``(H, W)``
    matte."""
    a = alpha[..., None]
    return (a * fg + (1 - a) * bg).astype(np.float32)


def defocus(bg: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """An ``(H, W, 3)`` background as behind a portrait: blurred by a Gaussian of sigma 3-8 px
    (per channel), its contrast lowered to 30-60% around its mean, dimmed to 20-40%."""
    sigma = rng.uniform(3.0, 8.0)
    blurred = ndimage.gaussian_filter(bg, sigma=(sigma, sigma, 0), mode="reflect")
    mean = blurred.mean(axis=(0, 1), keepdims=True)
    flat = mean + rng.uniform(0.3, 0.6) * (blurred - mean)
    return (rng.uniform(0.2, 0.4) * flat).astype(np.float32)
