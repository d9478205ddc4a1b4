"""Matting data: training batches ``(image, alpha)`` and validation sets with trimaps.

Two sources (see ``trainers.config.DataConfig``):

- synthetic (``builtin`` or unpaired folders): a foreground photo and a different, defocused
  background photo, cropped and flipped independently, composited with a procedural matte
  (``trainers.mattes``); the validation set composites the centre crop of every validation photo
  over every other one (4 photos: 12 composites), with backgrounds, mattes and trimaps seeded by
  ``VAL_SEED`` and the pair (the same in every trial);
- real (``paired: true``): images under ``input_dir``, alpha mattes under ``target_dir`` with the
  same relative path and stem (any image extension: P3M pairs ``.jpg`` images with ``.png``
  masks), trimaps the same way under a sibling ``trimap`` folder when present. Mattes are read as
  one channel: gray as is, the alpha channel of gray+alpha or RGBA files, the first channel of RGB.

Batches are a pure function of ``(seed, step)``, as ``trainers.data.TrainStream``'s.
"""

from __future__ import annotations

import warnings
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from nas.errors import ConfigError
from trainers.config import DataConfig
from trainers.data import (
    BUILTIN_VAL,
    IMAGE_SUFFIXES,
    VAL_SEED,
    ImageSkipped,
    ImageSource,
    Loader,
    ValSet,
    _augment,
    _center,
    _crop,
    _pad_to,
    list_images,
    open_source,
    read_image,
    to_float,
    train_source,
)
from trainers.mattes import composite, defocus, random_alpha, trimap_of

TRIMAP_DIR = "trimap"
BASELINE_ALPHA = 0.5  # the do-nothing prediction a matting model must beat


def read_matte(path: Path) -> np.ndarray:
    """Decode a matte or trimap to ``(H, W, 1)`` (dtype as stored); raises on unreadable files."""
    import skimage.io

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        img = np.asarray(skimage.io.imread(str(path)))
    if img.ndim == 3:
        img = img[..., -1] if img.shape[-1] in (2, 4) else img[..., 0]
    if img.ndim != 2:
        raise ValueError(f"expected a 2-D matte, got shape {img.shape}")
    if img.dtype == bool:
        img = img.astype(np.float32)
    return np.ascontiguousarray(img[..., None])


def _sibling(root: Path, path: Path, src: str, dst: str) -> Path | None:
    """``.../src/rel/stem.ext`` -> an existing ``.../dst/rel/stem.<any image suffix>``."""
    parts = path.relative_to(root).parts
    if src not in parts[:-1]:
        return None
    k = len(parts) - 2 - parts[:-1][::-1].index(src)
    folder = root.joinpath(*parts[:k], dst, *parts[k + 1 : -1])
    for suffix in (path.suffix, *IMAGE_SUFFIXES, *(s.upper() for s in IMAGE_SUFFIXES)):
        candidate = folder / (path.stem + suffix)
        if candidate.is_file():
            return candidate
    return None


def _matte_loader(image: Path, alpha: Path, trimap: Path | None) -> Loader:
    def load() -> tuple[np.ndarray, ...]:
        img, a = read_image(image), read_matte(alpha)
        t = read_matte(trimap) if trimap is not None else None
        for name, m in (("alpha", a), ("trimap", t)):
            if m is not None and m.shape[:2] != img.shape[:2]:
                raise ValueError(f"image {img.shape[:2]} and {name} {m.shape[:2]} sizes differ")
        return (img, a) if t is None else (img, a, t)

    return load  # type: ignore[return-value]


def matting_source(spec: str, data: DataConfig, field: str) -> ImageSource:
    """A paired folder of (image, alpha[, trimap]) items (see the module docstring)."""
    root, loaders = Path(spec).expanduser(), []
    for path in list_images(spec, field):
        alpha = _sibling(root, path, data.input_dir, data.target_dir)
        if alpha is None:
            if data.input_dir in path.relative_to(root).parts[:-1]:
                warnings.warn(f"skipping {path}: no matte under '{data.target_dir}/'",
                              ImageSkipped, stacklevel=2)  # fmt: skip
            continue
        trimap = _sibling(root, path, data.input_dir, TRIMAP_DIR)
        loaders.append((str(path), _matte_loader(path, alpha, trimap)))
    if not loaders:
        raise ConfigError(
            f"{field}: no image/matte pairs in {spec!r}; expected images under "
            f"'{data.input_dir}/' and mattes with the same names under '{data.target_dir}/' "
            "(data.input_dir / data.target_dir)"
        )
    return ImageSource(loaders, data.cache_mb * 2**20)


def _to_tensor(arrays: list[np.ndarray]) -> torch.Tensor:
    # (B, H, W, C) -> (B, C, H, W)
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()


class MattingStream:
    """Training batches ``(image (B, 3, crop, crop), alpha (B, 1, crop, crop))``, float32, where
    ``batch_at(step)`` depends only on ``(seed, step)``."""

    def __init__(self, data: DataConfig, crop: int, batch: int, seed: int = 0) -> None:
        if data.paired:
            self.source = matting_source(data.train, data, "data.train")
        else:
            self.source = train_source(data)
        if not any(self.source.get(i) is not None for i in range(len(self.source))):
            raise ConfigError("data.train: none of its images can be read (see the warnings)")
        self.paired, self.crop, self.batch, self.seed = data.paired, crop, batch, seed

    def _pick(self, rng: np.random.Generator, avoid: int = -1) -> tuple[int, tuple]:
        n = len(self.source)
        i = int(rng.integers(n))
        if n > 1 and i == avoid:
            i = (i + 1) % n
        while (item := self.source.get(i)) is None:  # skip unreadable files deterministically
            i = (i + 1) % n
        return i, item

    def _window(self, img: np.ndarray, rng: np.random.Generator) -> tuple[int, int, np.ndarray]:
        y = int(rng.integers(img.shape[0] - self.crop + 1))
        x = int(rng.integers(img.shape[1] - self.crop + 1))
        return y, x, rng.integers(2, size=3)

    def batch_at(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        rng = np.random.default_rng([self.seed, step])
        images, alphas = [], []
        for _ in range(self.batch):
            if self.paired:
                _, (img, alpha, *_) = self._pick(rng)
                img, alpha = _pad_to(img, self.crop), _pad_to(alpha, self.crop)
                y, x, flips = self._window(img, rng)
                images.append(to_float(_augment(_crop(img, y, x, self.crop), flips)))
                alphas.append(to_float(_augment(_crop(alpha, y, x, self.crop), flips)))
                continue
            i, (_, fg) = self._pick(rng)
            _, (_, bg) = self._pick(rng, avoid=i)
            parts = []
            for photo in (fg, bg):
                photo = _pad_to(photo, self.crop)
                y, x, flips = self._window(photo, rng)
                parts.append(to_float(_augment(_crop(photo, y, x, self.crop), flips)))
            alpha = random_alpha(self.crop, self.crop, rng)
            images.append(composite(parts[0], defocus(parts[1], rng), alpha))
            alphas.append(alpha[..., None])
        return _to_tensor(images), _to_tensor(alphas)


def _synthetic_item(source: ImageSource, i: int, j: int, val_crop: int | None) -> tuple | None:
    """Photo i over photo j (over its own rotated copy when i == j)."""
    a, b = source.get(i), source.get(j)
    if a is None or b is None:
        return None
    fg, bg = to_float(_center(a[1], val_crop)), to_float(_center(b[1], val_crop))
    if j == i:
        bg = bg[::-1, ::-1]
    h, w = min(fg.shape[0], bg.shape[0]), min(fg.shape[1], bg.shape[1])
    fg, bg = (p[(p.shape[0] - h) // 2 :][:h, (p.shape[1] - w) // 2 :][:, :w] for p in (fg, bg))
    rng = np.random.default_rng([VAL_SEED, i, j])
    alpha = random_alpha(h, w, rng)
    return composite(fg, defocus(bg, rng), alpha), alpha[..., None], trimap_of(alpha)[..., None]


def _real_item(source: ImageSource, i: int, val_crop: int | None) -> tuple | None:
    item = source.get(i)
    if item is None:
        return None
    img, alpha, *rest = item
    trimap = None
    if rest:  # 0 / 128 / 255 (or 0..1 floats) -> 0 / 0.5 / 1
        t = to_float(_center(rest[0], val_crop))
        trimap = np.where(t <= 0, 0.0, np.where(t >= 1, 1.0, 0.5)).astype(np.float32)
    return to_float(_center(img, val_crop)), to_float(_center(alpha, val_crop)), trimap


@lru_cache(maxsize=8)
def matting_validation_set(data: DataConfig, val_crop: int | None) -> ValSet:
    """The matting validation set (cached per process): centre crops of ``val_crop`` (None: whole
    images) of the first ``val_limit`` images (synthetic: composited in every ordered pair).
    Trimaps are kept when every image has one."""
    if data.paired:
        source = matting_source(data.val, data, "data.val")
    else:
        source = open_source(data.val, data, "data.val", BUILTIN_VAL)
    n = len(source) if data.val_limit is None else min(len(source), data.val_limit)
    rows = []
    for i in range(n):
        if data.paired:
            pairs = [(source.names[i], _real_item(source, i, val_crop))]
        else:
            pairs = [(f"{source.names[i]} over {source.names[j]}",
                      _synthetic_item(source, i, j, val_crop))
                     for j in ([k for k in range(n) if k != i] or [i])]  # fmt: skip
        rows += [(name, *item) for name, item in pairs if item is not None]
    if not rows:
        raise ConfigError(f"data.val: none of the images in {data.val!r} can be read")
    one = lambda a: _to_tensor([a])
    trimaps = () if any(r[3] is None for r in rows) else tuple(one(r[3]) for r in rows)
    return ValSet(
        names=tuple(r[0] for r in rows),
        inputs=tuple(one(r[1]) for r in rows),
        targets=tuple(one(r[2]) for r in rows),
        trimaps=trimaps,
        baseline=BASELINE_ALPHA,
    )

