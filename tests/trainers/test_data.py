"""trainers.data: the built-in split, folders (unpaired and paired), corrupt files, determinism."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import skimage.data
import skimage.io
import torch

from nas.errors import ConfigError
from trainers.config import DataConfig, TaskConfig
from trainers.data import (
    BUILTIN_TRAIN,
    BUILTIN_VAL,
    ImageSkipped,
    TrainStream,
    open_source,
    to_rgb,
    train_source,
    validation_set,
)


def test_builtin_split_is_disjoint_and_decodes_to_rgb() -> None:
    assert not set(BUILTIN_TRAIN) & set(BUILTIN_VAL)
    assert len(BUILTIN_TRAIN) == 14 and BUILTIN_VAL == ("chelsea", "coins", "clock", "page")
    source = train_source(DataConfig())
    assert source.names == [f"skimage.data.{n}" for n in BUILTIN_TRAIN]
    for i in range(len(source)):
        deg, clean = source.get(i)
        assert deg is None and clean.ndim == 3 and clean.shape[-1] == 3


def test_gray_and_alpha_images_become_rgb() -> None:
    gray = to_rgb(skimage.data.camera())
    assert gray.shape == (512, 512, 3) and np.array_equal(gray[..., 0], gray[..., 2])
    assert to_rgb(skimage.data.logo()).shape == (500, 500, 3)  # RGBA: alpha dropped


def _write_folder(root: Path) -> None:
    root.mkdir(parents=True)
    skimage.io.imsave(root / "a.png", skimage.data.astronaut()[:96, :96])
    skimage.io.imsave(root / "b.jpg", skimage.data.coffee()[:80, :120], check_contrast=False)
    (root / "sub").mkdir()
    skimage.io.imsave(root / "sub" / "c.tif", skimage.data.camera()[:64, :64], check_contrast=False)
    (root / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    (root / "notes.txt").write_text("ignored")


def test_folder_images_with_a_corrupt_file_skipped_by_name(tmp_path: Path) -> None:
    _write_folder(tmp_path / "imgs")
    source = open_source(str(tmp_path / "imgs"), DataConfig(), "data.train", ())
    assert [Path(n).name for n in source.names] == ["a.png", "b.jpg", "broken.png", "c.tif"]
    with pytest.warns(ImageSkipped, match="broken.png"):
        assert source.get(2) is None
    assert source.get(3)[1].shape == (64, 64, 3)
    stream = TrainStream(source, TaskConfig(), crop=48, batch=16, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the bad file is known by now: no repeated warnings
        inp, target = stream.batch_at(0)
    assert inp.shape == target.shape == (16, 3, 48, 48)
    assert 0 <= float(target.min()) and float(target.max()) <= 1


def test_training_images_are_decoded_once_per_process(tmp_path: Path) -> None:
    """A worker's later trials reuse the first trial's decoded images, whatever the validation
    settings; other training data gets its own source."""
    root = tmp_path / "imgs"
    root.mkdir()
    skimage.io.imsave(root / "a.png", skimage.data.astronaut()[:64, :64])
    data = DataConfig(train=str(root), val_limit=1)
    source = train_source(data)
    first = source.get(0)
    assert train_source(data.model_copy(update={"val_limit": None, "val": str(root)})) is source
    assert train_source(data).get(0) is first  # decoded once, kept
    (root / "a.png").unlink()  # the cached source no longer needs the file
    assert train_source(data).get(0) is first
    assert train_source(DataConfig()) is not source


def test_missing_and_empty_folders_name_the_field(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^data.train: folder .* does not exist"):
        train_source(DataConfig(train=str(tmp_path / "nope")))
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.md").write_text("no images")
    with pytest.raises(ConfigError, match=r"^data.val: no png/jpg"):
        validation_set(DataConfig(val=str(tmp_path / "empty")), TaskConfig(), 64)


def test_a_folder_of_only_corrupt_images_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "x.png").write_bytes(b"garbage")
    with pytest.warns(ImageSkipped), pytest.raises(ConfigError, match="data.train: none"):
        TrainStream(train_source(DataConfig(train=str(tmp_path / "bad"))), TaskConfig(), 32, 2)


def test_batches_are_a_function_of_seed_and_step() -> None:
    source = train_source(DataConfig())
    a = TrainStream(source, TaskConfig(), crop=32, batch=4, seed=0)
    b = TrainStream(source, TaskConfig(), crop=32, batch=4, seed=0)
    for x, y in zip(a.batch_at(7), b.batch_at(7)):
        assert torch.equal(x, y)
    assert not torch.equal(a.batch_at(7)[1], a.batch_at(8)[1])
    c = TrainStream(source, TaskConfig(), crop=32, batch=4, seed=1)
    assert not torch.equal(a.batch_at(7)[1], c.batch_at(7)[1])
    inp, target = a.batch_at(7)
    assert (inp - target).std().item() == pytest.approx(25 / 255, rel=0.1)  # sigma-25 noise


def _write_pairs(root: Path, inp: str, tgt: str, scene: str = "") -> None:
    photo = skimage.data.chelsea()[:64, :64]
    for name, crop in (("x.png", photo), ("y.png", photo[::-1])):
        for sub, img in ((inp, 255 - crop), (tgt, crop)):
            folder = root / scene / sub
            folder.mkdir(parents=True, exist_ok=True)
            skimage.io.imsave(folder / name, img, check_contrast=False)


@pytest.mark.parametrize(("inp", "tgt", "scene"), [("input", "target", ""),
                                                   ("blur", "sharp", "GOPR0372_07_00")])
def test_paired_folders_give_aligned_crops(tmp_path: Path, inp: str, tgt: str, scene: str) -> None:
    _write_pairs(tmp_path / "train", inp, tgt, scene)
    (tmp_path / "train" / scene / inp / "z.png").write_bytes(b"orphan")  # no target: skipped
    data = DataConfig(train=str(tmp_path / "train"), val=str(tmp_path / "train"), paired=True,
                      input_dir=inp, target_dir=tgt)  # fmt: skip
    with pytest.warns(ImageSkipped, match="z.png: no target"):
        source = train_source(data)
    assert len(source) == 2
    x, y = TrainStream(source, TaskConfig(), crop=24, batch=6, seed=3).batch_at(0)
    # inputs were written as 255 - target: same crop and flips in both
    assert torch.allclose(x, 1 - y, atol=1e-6)
    with pytest.warns(ImageSkipped):
        val = validation_set(data, TaskConfig(), None)
    assert len(val.names) == 2 and torch.allclose(val.inputs[0], 1 - val.targets[0], atol=1e-6)


def test_paired_folder_without_pairs_names_the_fields(tmp_path: Path) -> None:
    _write_pairs(tmp_path / "t", "noisy", "clean")
    data = DataConfig(train=str(tmp_path / "t"), val=str(tmp_path / "t"), paired=True)
    with pytest.raises(ConfigError, match="data.train: no input/target pairs.*data.input_dir"):
        train_source(data)


def test_sidd_native_layout_pairs_by_name_in_each_scene_folder(tmp_path: Path) -> None:
    """SIDD as downloaded: <scene>/0001_NOISY_SRGB_010.PNG next to 0001_GT_SRGB_010.PNG."""
    photo = skimage.data.chelsea()[:48, :48]
    for k, scene in enumerate(("0001_001_S6_00100_00060_3200_L", "0002_001_S6_00100_00020_3200_N")):
        folder = tmp_path / "Data" / scene
        folder.mkdir(parents=True)
        clean = np.roll(photo, 7 * k, axis=1)
        skimage.io.imsave(folder / f"000{k + 1}_GT_SRGB_010.PNG", clean, check_contrast=False)
        skimage.io.imsave(folder / f"000{k + 1}_NOISY_SRGB_010.PNG", 255 - clean,
                          check_contrast=False)  # fmt: skip
        (folder / f"000{k + 1}_NOISY_RAW_010.MAT").write_bytes(b"not an image")  # ignored
    orphan = tmp_path / "Data" / "0001_001_S6_00100_00060_3200_L" / "0001_NOISY_SRGB_011.PNG"
    skimage.io.imsave(orphan, photo, check_contrast=False)
    root = str(tmp_path / "Data")
    data = DataConfig(train=root, val=root, paired=True, input_pattern="NOISY",
                      target_pattern="GT")  # fmt: skip
    with pytest.warns(ImageSkipped, match="0001_NOISY_SRGB_011.PNG: no target"):
        source = train_source(data)
    assert [Path(n).name for n in source.names] == ["0001_NOISY_SRGB_010.PNG",
                                                    "0002_NOISY_SRGB_010.PNG"]  # fmt: skip
    noisy, clean = source.get(1)
    assert np.array_equal(clean, np.roll(photo, 7, axis=1)) and np.array_equal(noisy, 255 - clean)
    x, y = TrainStream(source, TaskConfig(), crop=24, batch=6, seed=3).batch_at(0)
    assert torch.allclose(x, 1 - y, atol=1e-6)  # same crop and flips in both
    with pytest.warns(ImageSkipped), pytest.raises(ConfigError, match=(
        r"^data.train: no input/target pairs in .*'NOISY'.*'noisy' "
        r"\(data.input_pattern / data.target_pattern\)$"
    )):  # fmt: skip
        train_source(data.model_copy(update={"target_pattern": "noisy"}))


def test_validation_set_is_cached_with_fixed_noise() -> None:
    task = TaskConfig(sigma=25)
    val = validation_set(DataConfig(), task, 96)
    assert validation_set(DataConfig(), task, 96) is val  # built once per process
    assert val.names == tuple(f"skimage.data.{n}" for n in BUILTIN_VAL)
    assert val.batched and val.batches()[0][0].shape == (4, 3, 96, 96)
    validation_set.cache_clear()
    again = validation_set(DataConfig(), task, 96)
    assert again is not val and all(torch.equal(a, b) for a, b in zip(val.inputs, again.inputs))
    limited = validation_set(DataConfig(val_limit=2), task, 96)
    assert torch.equal(limited.inputs[1], val.inputs[1])  # noise depends on the image, not the set
    whole = validation_set(DataConfig(), task, None)
    assert not whole.batched and whole.targets[3].shape == (1, 3, 191, 384)  # page, full size
