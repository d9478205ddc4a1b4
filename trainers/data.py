"""Training and validation images: the bundled scikit-image photographs or image folders.

Built-in split (``data.train: builtin`` / ``data.val: builtin``), all shipped inside
scikit-image 0.26 (no download; gray images are repeated to RGB):

- train (14): astronaut, camera, coffee, rocket, immunohistochemistry, hubble_deep_field,
  retina, brick, grass, gravel, moon, cell, text, colorwheel (colour: astronaut, coffee, rocket,
  immunohistochemistry, hubble_deep_field, retina, colorwheel; the others gray);
- validation (4): chelsea (colour, 451x300), coins (384x303), clock (400x300), page (384x191)
  (gray); the proxy scores their centre 128x128 crops (``ProxyBudget.val_crop``).

Left out: cat (the same photo as chelsea), microaneurysms (102x102), checkerboard and the binary
images (synthetic), and those that need the optional download (eagle, kidney, lily, ...).

Folders are searched recursively for png/jpg/jpeg/tif/tiff/bmp. Unpaired folders give clean
images that get the task's synthetic degradation; paired folders (``data.paired``) give
(degraded, clean) pairs matched by sub-folder (``input_dir``/``target_dir``) or by a token in the
file name (``input_pattern``/``target_pattern``, SIDD's own layout), see
``trainers.config.DataConfig``. An unreadable or corrupt file (or a pair whose sizes differ) is
skipped with an ``ImageSkipped`` warning naming it; a missing folder, or one with no usable image
or pair, raises ``ConfigError`` naming the config field. ``check_data`` finds these before any
training starts (a search runs it before its first trial).

Training batches are a pure function of ``(seed, step)``: the images, crop positions, flips and
the degradation noise of step k never depend on earlier steps, so a resumed run sees exactly the
batches an uninterrupted one would. Validation pairs are built once per process (``validation_set``
is cached) with fixed-seed noise, so scores compare across trials; the training images are decoded
once per process too (``train_source`` is cached), so a Ray worker prepares its data once.
"""

from __future__ import annotations

import dataclasses
import functools
import warnings
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from nas.errors import ConfigError
from trainers.config import BUILTIN, DataConfig, TaskConfig
from trainers.degrade import degrade
from trainers.metrics import psnr

BUILTIN_TRAIN = (
    "astronaut", "camera", "coffee", "rocket", "immunohistochemistry", "hubble_deep_field",
    "retina", "brick", "grass", "gravel", "moon", "cell", "text", "colorwheel",
)  # fmt: skip
BUILTIN_VAL = ("chelsea", "coins", "clock", "page")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
VAL_SEED = 20_240_611  # fixed: validation noise is the same in every trial and process

Array = np.ndarray  # (H, W, 3), uint8 / uint16 / float32 in [0, 1]
Item = tuple[Array | None, Array]  # (degraded or None, clean)


class ImageSkipped(UserWarning):
    """An image file could not be used and was skipped."""


def to_rgb(img: np.ndarray) -> Array:
    """Any decoded image -> (H, W, 3): gray repeated, alpha dropped, bool/float -> float32."""
    if img.dtype == bool:
        img = img.astype(np.float32)
    elif img.dtype.kind == "f":
        img = np.clip(img.astype(np.float32), 0, 1)
    elif img.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"unsupported pixel type {img.dtype}")
    if img.ndim == 2:
        img = img[..., None]
    if img.ndim != 3:
        raise ValueError(f"expected a 2-D image, got shape {img.shape}")
    c = img.shape[-1]
    if c in (1, 2):  # gray (+ alpha)
        img = np.repeat(img[..., :1], 3, axis=-1)
    elif c >= 3:
        img = img[..., :3]
    return np.ascontiguousarray(img)


def to_float(img: Array) -> np.ndarray:
    """(H, W, 3) of any stored dtype -> float32 in [0, 1]."""
    if img.dtype == np.uint8:
        return img.astype(np.float32) / 255.0
    if img.dtype == np.uint16:
        return img.astype(np.float32) / 65535.0
    return img.astype(np.float32, copy=False)


def read_image(path: Path) -> Array:
    """Decode ``path`` to (H, W, 3); raises on unreadable or corrupt files."""
    import skimage.io

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # low-contrast / plugin chatter from the decoders
        return to_rgb(np.asarray(skimage.io.imread(str(path))))


def list_images(folder: str, field: str) -> list[Path]:
    """Image files below ``folder`` (recursive, sorted); ConfigError naming ``field`` if none."""
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise ConfigError(f"{field}: folder {folder!r} does not exist; give a folder or 'builtin'")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise ConfigError(
            f"{field}: no {'/'.join(s[1:] for s in IMAGE_SUFFIXES)} images in {folder!r}"
        )
    return files


Loader = Callable[[], Item]


def _builtin_loader(name: str) -> Loader:
    def load() -> Item:
        import skimage.data

        return None, to_rgb(np.asarray(getattr(skimage.data, name)()))

    return load


def _file_loader(path: Path) -> Loader:
    return lambda: (None, read_image(path))


def _pair_loader(inp: Path, tgt: Path) -> Loader:
    def load() -> Item:
        a, b = read_image(inp), read_image(tgt)
        if a.shape != b.shape:
            raise ValueError(f"input {a.shape[:2]} and target {b.shape[:2]} sizes differ")
        return a, b

    return load


def _target_by_dir(root: Path, path: Path, data: DataConfig) -> Path | None:
    """``.../input_dir/rel`` -> ``.../target_dir/rel`` (the deepest ``input_dir``), else None."""
    parts = path.relative_to(root).parts
    if data.input_dir not in parts[:-1]:
        return None
    k = len(parts) - 2 - parts[:-1][::-1].index(data.input_dir)
    return root.joinpath(*parts[:k], data.target_dir, *parts[k + 1 :])


def _target_by_name(path: Path, data: DataConfig) -> Path | None:
    """``dir/a_NOISY_b.png`` -> ``dir/a_GT_b.png`` (``input_pattern`` -> ``target_pattern``)."""
    assert data.input_pattern is not None and data.target_pattern is not None
    if data.input_pattern not in path.name:
        return None
    return path.with_name(path.name.replace(data.input_pattern, data.target_pattern, 1))


def _paired_loaders(folder: str, data: DataConfig, field: str) -> list[tuple[str, Loader]]:
    """(name, loader) for every input file whose target exists (see ``DataConfig``)."""
    out, root = [], Path(folder).expanduser()
    for path in list_images(folder, field):
        if data.input_pattern is not None:
            target = _target_by_name(path, data)
        else:
            target = _target_by_dir(root, path, data)
        if target is None:
            continue
        if not target.is_file():
            warnings.warn(f"skipping {path}: no target {target}", ImageSkipped, stacklevel=2)
            continue
        out.append((str(path), _pair_loader(path, target)))
    if out:
        return out
    if data.input_pattern is not None:
        raise ConfigError(
            f"{field}: no input/target pairs in {folder!r}; expected files named with "
            f"{data.input_pattern!r} next to the same names with {data.target_pattern!r} "
            "(data.input_pattern / data.target_pattern)"
        )
    raise ConfigError(
        f"{field}: no input/target pairs in {folder!r}; expected images under "
        f"'{data.input_dir}/' with the same names under '{data.target_dir}/' "
        f"(data.input_dir / data.target_dir)"
    )


class ImageSource:
    """An ordered list of images (clean, or degraded + clean pairs), decoded on first use and
    kept in memory up to ``cache_bytes``. ``get(i)`` returns None for an unusable file (warned
    about once)."""

    def __init__(self, loaders: list[tuple[str, Loader]], cache_bytes: int) -> None:
        self.names = [n for n, _ in loaders]
        self._loaders = [fn for _, fn in loaders]
        self._cache: dict[int, Item] = {}
        self._bad: set[int] = set()
        self._cache_bytes, self._held = cache_bytes, 0

    def __len__(self) -> int:
        return len(self.names)

    def get(self, i: int) -> Item | None:
        if i in self._cache:
            return self._cache[i]
        if i in self._bad:
            return None
        try:
            item = self._loaders[i]()
        except Exception as exc:  # noqa: BLE001  (any decoder failure means: skip this file)
            self._bad.add(i)
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            warnings.warn(f"skipping unreadable image {self.names[i]}: {reason}", ImageSkipped,
                          stacklevel=2)  # fmt: skip
            return None
        size = sum(a.nbytes for a in item if a is not None)
        if self._held + size <= self._cache_bytes:
            self._cache[i] = item
            self._held += size
        return item


def open_source(spec: str, data: DataConfig, field: str, builtin: tuple[str, ...]) -> ImageSource:
    """The images ``spec`` names: ``builtin`` (then ``builtin`` lists them) or a folder."""
    if spec == BUILTIN:
        loaders = [(f"skimage.data.{n}", _builtin_loader(n)) for n in builtin]
    elif data.paired:
        loaders = _paired_loaders(spec, data, field)
    else:
        loaders = [(str(p), _file_loader(p)) for p in list_images(spec, field)]
    return ImageSource(loaders, data.cache_mb * 2**20)


CHECK_TRIES = 8  # images decoded per folder by check_data before it calls the folder unreadable


def check_data(data: DataConfig, field: str = "data") -> None:
    """``ConfigError`` naming ``field.train``/``field.val`` if a folder does not exist, holds no
    image (or pair), or none of its first ``CHECK_TRIES`` images can be decoded. Built-in
    images need no check."""
    for name, spec, builtin in (("train", data.train, BUILTIN_TRAIN),
                                ("val", data.val, BUILTIN_VAL)):  # fmt: skip
        if spec == BUILTIN:
            continue
        source = open_source(spec, data, f"{field}.{name}", builtin)
        with warnings.catch_warnings(record=True) as said:
            warnings.simplefilter("always", ImageSkipped)
            tried = min(CHECK_TRIES, len(source))
            if any(source.get(i) is not None for i in range(tried)):
                continue
        first = str(said[0].message) if said else f"{source.names[0]} cannot be read"
        raise ConfigError(
            f"{field}.{name}: none of the first {tried} image(s) in {spec!r} can be read "
            f"({first.removeprefix('skipping ')}); check the files or the folder"
        )


def train_source(data: DataConfig) -> ImageSource:
    """The training images ``data`` names, one ``ImageSource`` per process and training data
    (the validation fields do not matter): a worker's later trials reuse the images its first
    trial decoded. A folder's files are listed on the first call."""
    return _train_source(data.model_copy(update={"val": data.train, "val_limit": None}))


@lru_cache(maxsize=2)
def _train_source(data: DataConfig) -> ImageSource:
    return open_source(data.train, data, "data.train", BUILTIN_TRAIN)


def _seed_of(*key: int) -> int:
    return int(np.random.SeedSequence(list(key)).generate_state(1)[0])


def _crop(img: Array, y: int, x: int, size: int) -> Array:
    return img[y : y + size, x : x + size]


def _augment(img: np.ndarray, flips: np.ndarray) -> np.ndarray:
    """Dihedral augmentation of an (H, W, 3) crop: vertical flip, horizontal flip, transpose."""
    if flips[0]:
        img = img[::-1]
    if flips[1]:
        img = img[:, ::-1]
    if flips[2]:
        img = img.transpose(1, 0, 2)
    return img


def _pad_to(img: Array, size: int) -> Array:
    h, w = img.shape[:2]
    if h >= size and w >= size:
        return img
    return np.pad(img, ((0, max(0, size - h)), (0, max(0, size - w)), (0, 0)), mode="reflect")


class TrainStream:
    """Training batches ``(input, target)``, each ``(batch, 3, crop, crop)`` float32, where
    ``batch_at(step)`` depends only on ``(seed, step)``: random image, crop, flips, and the
    task's degradation (unless the source is paired)."""

    def __init__(self, source: ImageSource, task: TaskConfig, crop: int, batch: int,
                 seed: int = 0) -> None:  # fmt: skip
        if not any(source.get(i) is not None for i in range(len(source))):  # stops at the first
            raise ConfigError("data.train: none of its images can be read (see the warnings)")
        self.source, self.task, self.crop, self.batch, self.seed = source, task, crop, batch, seed

    def _pick(self, rng: np.random.Generator) -> Item:
        i = int(rng.integers(len(self.source)))
        while (item := self.source.get(i)) is None:  # skip unreadable files deterministically
            i = (i + 1) % len(self.source)
        return item

    def batch_at(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        rng = np.random.default_rng([self.seed, step])
        inputs, targets = [], []
        for _ in range(self.batch):
            deg, clean = (None if a is None else _pad_to(a, self.crop) for a in self._pick(rng))
            y = int(rng.integers(clean.shape[0] - self.crop + 1))
            x = int(rng.integers(clean.shape[1] - self.crop + 1))
            flips = rng.integers(2, size=3)
            targets.append(to_float(_augment(_crop(clean, y, x, self.crop), flips)))
            if deg is not None:
                inputs.append(to_float(_augment(_crop(deg, y, x, self.crop), flips)))
        # (B, H, W, C) -> (B, C, H, W)
        target = torch.from_numpy(np.stack(targets)).permute(0, 3, 1, 2).contiguous()
        if inputs:
            return torch.from_numpy(np.stack(inputs)).permute(0, 3, 1, 2).contiguous(), target
        gen = torch.Generator().manual_seed(_seed_of(self.seed, step, 1))
        return degrade(target, self.task, gen), target


@dataclasses.dataclass(frozen=True)
class ValSet:
    """Validation pairs: one ``(1, C, H, W)`` tensor per image, or one stacked batch when all
    share a size (``batched``). ``trimaps`` (matting; empty when there are none) are ``(1, 1, H,
    W)`` maps of 0 / 0.5 / 1 aligned with the targets. ``baseline``: the do-nothing prediction
    (None: the input itself, as in restoration; a number: that constant, as 0.5 for an alpha)."""

    names: tuple[str, ...]
    inputs: tuple[torch.Tensor, ...]
    targets: tuple[torch.Tensor, ...]
    trimaps: tuple[torch.Tensor, ...] = ()
    baseline: float | None = None

    @functools.cached_property
    def input_psnr(self) -> float:
        """Mean PSNR of the do-nothing prediction (``baseline``): the floor a model must beat."""
        scores = []
        for inp, target, _ in self.items():
            guess = inp if self.baseline is None else torch.full_like(target, self.baseline)
            scores.append(psnr(guess, target))
        return float(torch.cat(scores).mean())

    @property
    def batched(self) -> bool:
        return len({t.shape for t in self.targets}) == 1 and len(self.targets) > 1

    def items(self) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]]:
        """``(input, target, trimap or None)`` batches: one stacked batch when ``batched``."""
        trimaps = self.trimaps or (None,) * len(self.targets)
        if self.batched:
            tri = torch.cat(self.trimaps) if self.trimaps else None
            return [(torch.cat(self.inputs), torch.cat(self.targets), tri)]
        return list(zip(self.inputs, self.targets, trimaps))

    def batches(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        return [(inp, target) for inp, target, _ in self.items()]


def _center(img: Array, size: int | None) -> Array:
    if size is None:
        return img
    h, w = img.shape[:2]
    ch, cw = min(size, h), min(size, w)
    y, x = (h - ch) // 2, (w - cw) // 2
    return img[y : y + ch, x : x + cw]


@lru_cache(maxsize=8)
def validation_set(data: DataConfig, task: TaskConfig, val_crop: int | None) -> ValSet:
    """The validation pairs (cached per process): centre crops of ``val_crop`` (None: whole
    images), degraded with noise seeded by ``VAL_SEED`` and the image's index."""
    source = open_source(data.val, data, "data.val", BUILTIN_VAL)
    names, inputs, targets = [], [], []
    for i in range(len(source)):
        if data.val_limit is not None and len(names) >= data.val_limit:
            break
        item = source.get(i)
        if item is None:
            continue
        deg, clean = item
        # (H, W, C) -> (1, C, H, W)
        target = torch.from_numpy(to_float(_center(clean, val_crop))).permute(2, 0, 1)[None]
        if deg is None:
            gen = torch.Generator().manual_seed(_seed_of(VAL_SEED, i))
            inp = degrade(target, task, gen)
        else:
            inp = torch.from_numpy(to_float(_center(deg, val_crop))).permute(2, 0, 1)[None]
        names.append(source.names[i])
        inputs.append(inp.contiguous())
        targets.append(target.contiguous())
    if not names:
        raise ConfigError(f"data.val: none of the images in {data.val!r} can be read")
    return ValSet(tuple(names), tuple(inputs), tuple(targets))
