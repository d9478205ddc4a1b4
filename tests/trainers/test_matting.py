"""Alpha matting: metrics against hand-computed values, procedural mattes, data, a proxy run."""

from __future__ import annotations

import math

import numpy as np
import pytest
import skimage.io
import torch
from scipy import ndimage

from nas import ArchConfig, FullSkipsConfig, NAFNetConfig
from nas.backbones import MSCANConfig
from nas.errors import ConfigError
from trainers.config import DataConfig, ProxyBudget, TaskConfig
from trainers.mattes import random_alpha, trimap_of
from trainers.matting import MattingStream, matting_validation_set
from trainers.metrics import matting_scores, mse, sad, unknown_region
from trainers.proxy import train_and_eval

MATTING = TaskConfig(name="matting")


def _map(rows: list[list[float]]) -> torch.Tensor:
    """A 2x2 pattern blown up to 12x12 (each value a 6x6 block): ``(1, 1, 12, 12)``."""
    return torch.tensor(rows, dtype=torch.float32).repeat_interleave(6, 0).repeat_interleave(
        6, 1)[None, None]  # fmt: skip


def test_sad_and_mse_by_hand_whole_image_and_unknown_region() -> None:
    alpha = _map([[0.0, 0.5], [1.0, 1.0]])
    pred = _map([[0.1, 0.5], [0.8, 1.2]])  # 1.2 is clamped to 1: errors 0.1, 0, 0.2, 0
    trimap = _map([[0.0, 0.5], [0.5, 1.0]])  # unknown: the top-right and bottom-left blocks
    region = unknown_region(trimap)
    assert float(region.sum()) == 72 and float(region[0, 0, 0, 11]) == 1
    assert sad(pred, alpha).tolist() == pytest.approx([36 * (0.1 + 0.2) / 1000])
    assert mse(pred, alpha).tolist() == pytest.approx([36 * (0.01 + 0.04) / 144])
    assert sad(pred, alpha, region).tolist() == pytest.approx([36 * 0.2 / 1000])
    assert mse(pred, alpha, region).tolist() == pytest.approx([36 * 0.04 / 72])
    scores = matting_scores(pred, alpha, trimap)
    assert float(scores["psnr"]) == pytest.approx(10 * math.log10(1 / 0.0125), abs=1e-4)
    assert float(scores["sad_unknown"]) == pytest.approx(36 * 0.2 / 1000)
    assert set(scores) == {"psnr", "ssim", "sad", "mse", "sad_unknown", "mse_unknown"}
    assert set(matting_scores(pred, alpha)) == {"psnr", "ssim", "sad", "mse"}


def test_scores_are_per_image_and_nan_for_an_empty_unknown_region() -> None:
    alpha = torch.zeros(2, 1, 10, 10)
    pred = torch.stack([torch.full((1, 10, 10), 0.5), torch.zeros(1, 10, 10)])
    trimap = torch.zeros(2, 1, 10, 10)
    trimap[0, 0, :2] = 0.5  # 20 unknown pixels in image 0, none in image 1
    region = unknown_region(trimap)
    assert sad(pred, alpha).tolist() == pytest.approx([50 / 1000, 0.0])
    assert mse(pred, alpha).tolist() == pytest.approx([0.25, 0.0])
    got = sad(pred, alpha, region)
    assert got[0] == pytest.approx(10 / 1000) and math.isnan(got[1])
    assert math.isnan(mse(pred, alpha, region)[1])


def test_random_alpha_is_soft_seeded_and_has_thin_structures() -> None:
    a = random_alpha(96, 96, np.random.default_rng(3))
    assert a.dtype == np.float32 and a.shape == (96, 96) and 0 <= a.min() and a.max() <= 1
    assert np.array_equal(a, random_alpha(96, 96, np.random.default_rng(3)))
    assert not np.array_equal(a, random_alpha(96, 96, np.random.default_rng(4)))
    fractions = [(random_alpha(64, 64, np.random.default_rng(s)) > 0.5).mean() for s in range(20)]
    assert 0.1 < min(fractions) and max(fractions) < 0.9  # both layers always present
    soft = ((a > 0.05) & (a < 0.95)).mean()
    assert 0.02 < soft < 0.6  # soft edges, not a hard mask
    # thin structures: foreground pixels that a 3x3 opening removes (1-2 px wide strands)
    thin = [(m := random_alpha(96, 96, np.random.default_rng(s)) > 0.3) & ~ndimage.binary_opening(m)
            for s in range(5)]  # fmt: skip
    assert sum(t.sum() for t in thin) > 50


def test_trimap_marks_every_soft_pixel_unknown() -> None:
    a = random_alpha(64, 64, np.random.default_rng(0))
    t = trimap_of(a)
    assert set(np.unique(t)) <= {0.0, 0.5, 1.0}
    soft = (a > 1 / 255) & (a < 1 - 1 / 255)
    assert (t[soft] == 0.5).all()
    assert (a[t == 1] >= 1 - 1 / 255).all() and (a[t == 0] <= 1 / 255).all()


def test_synthetic_stream_is_a_pure_function_of_seed_and_step() -> None:
    stream = MattingStream(DataConfig(), crop=48, batch=3, seed=0)
    x, y = stream.batch_at(5)
    assert x.shape == (3, 3, 48, 48) and y.shape == (3, 1, 48, 48)
    assert 0 <= float(x.min()) and float(x.max()) <= 1 and 0 <= float(y.min()) <= float(y.max()) <= 1
    x2, y2 = MattingStream(DataConfig(), crop=48, batch=3, seed=0).batch_at(5)
    assert torch.equal(x, x2) and torch.equal(y, y2)
    assert not torch.equal(y, stream.batch_at(6)[1])


def test_builtin_validation_composites_every_pair_with_trimaps() -> None:
    val = matting_validation_set(DataConfig(), 64)
    assert len(val.inputs) == 12 and len(val.trimaps) == 12  # 4 photos, each over the 3 others
    assert val.names[0] == "skimage.data.chelsea over skimage.data.coins"
    assert val.inputs[0].shape == (1, 3, 64, 64) and val.targets[0].shape == (1, 1, 64, 64)
    expected = np.mean([10 * math.log10(1 / float((t - 0.5).square().mean())) for t in val.targets])
    assert val.input_psnr == pytest.approx(expected, abs=1e-4)  # baseline: alpha = 0.5
    assert matting_validation_set(DataConfig(val_limit=2), 64).names[1].startswith(
        "skimage.data.coins over")  # fmt: skip


def _write_set(root, layout: tuple[str, str], trimaps: bool) -> None:
    image_dir, alpha_dir = layout
    rng = np.random.default_rng(0)
    for name in ("p_a", "p_b"):
        for folder in (image_dir, alpha_dir, *(("trimap",) if trimaps else ())):
            (root / folder).mkdir(parents=True, exist_ok=True)
        alpha = random_alpha(80, 72, rng)
        img = (rng.uniform(0, 1, (80, 72, 3)) * 255).astype(np.uint8)
        skimage.io.imsave(root / image_dir / f"{name}.jpg", img, check_contrast=False)
        skimage.io.imsave(root / alpha_dir / f"{name}.png", (alpha * 255).round().astype(np.uint8),
                          check_contrast=False)  # fmt: skip
        if trimaps:
            tri = (trimap_of(alpha) * 255).round().astype(np.uint8)  # 0 / 128 / 255
            skimage.io.imsave(root / "trimap" / f"{name}.png", tri, check_contrast=False)


def test_real_matting_folders_pair_by_stem_and_read_trimaps(tmp_path) -> None:
    _write_set(tmp_path / "p3m", ("blurred_image", "mask"), trimaps=True)  # P3M: .jpg + .png
    data = DataConfig(train=str(tmp_path / "p3m"), val=str(tmp_path / "p3m"), paired=True,
                      input_dir="blurred_image", target_dir="mask")  # fmt: skip
    val = matting_validation_set(data, None)
    assert len(val.names) == 2 and val.names[0].endswith("blurred_image/p_a.jpg")
    assert val.targets[0].shape == (1, 1, 80, 72) and len(val.trimaps) == 2
    assert set(torch.unique(val.trimaps[0]).tolist()) <= {0.0, 0.5, 1.0}
    x, y = MattingStream(data, crop=32, batch=2, seed=0).batch_at(0)
    assert x.shape == (2, 3, 32, 32) and y.shape == (2, 1, 32, 32)
    _write_set(tmp_path / "rwp", ("image", "alpha"), trimaps=False)
    plain = DataConfig(train=str(tmp_path / "rwp"), val=str(tmp_path / "rwp"), paired=True,
                       input_dir="image", target_dir="alpha")  # fmt: skip
    assert matting_validation_set(plain, 64).trimaps == ()
    with pytest.raises(ConfigError, match=r"data.val: no image/matte pairs.*'input/'"):
        matting_validation_set(DataConfig(val=str(tmp_path / "rwp"), train=str(tmp_path / "rwp"),
                                          paired=True), 64)  # fmt: skip


def test_matting_proxy_run_reports_psnr_and_matting_scores() -> None:
    arch = ArchConfig(MSCANConfig((8, 16, 24, 32), (1, 1, 1, 1), (2, 2, 2, 2)), FullSkipsConfig())
    budget = ProxyBudget(steps=20, eval_every=10, crop=32, batch=4, val_crop=64, lr=5e-3)
    r = train_and_eval(arch, MATTING, budget, DataConfig(val_limit=2), threads=1)
    assert set(r.metrics) == {"psnr", "ssim", "sad", "mse", "sad_unknown", "mse_unknown"}
    assert r.psnr == r.metrics["psnr"] == r.curve[-1][1] and r.ssim == r.metrics["ssim"]
    assert r.metrics["psnr"] == pytest.approx(-10 * math.log10(r.metrics["mse"]), abs=0.5)
    assert r.input_psnr == pytest.approx(matting_validation_set(DataConfig(val_limit=2), 64)
                                         .input_psnr)  # fmt: skip


@pytest.mark.parametrize(
    ("backbone", "task", "match"),
    [
        (NAFNetConfig(8, (1, 1), 1, (1, 1)), MATTING, r"task matting: .* maps 3 to 3"),
        (MSCANConfig((8, 16), (1, 1), (2, 2)), TaskConfig(), r"task denoise: .* 3 channels to 1"),
    ],
)
def test_task_and_model_channels_must_fit(backbone, task: TaskConfig, match: str) -> None:
    budget = ProxyBudget(steps=1, eval_every=1, crop=32, batch=1, val_crop=32)
    with pytest.raises(ConfigError, match=match):
        train_and_eval(ArchConfig(backbone, FullSkipsConfig()), task, budget)


def test_the_compositing_version_is_part_of_a_synthetic_matting_study_fingerprint() -> None:
    """Composited matting data changed (version 2: a darker background), so a study trained on
    version 1 must not resume as if comparable; restoration and real-matte studies are unaffected
    (the flagship's fingerprint is still the one stored studies carry)."""
    from studies.spec import load_spec
    from trainers.config import training_identity
    from trainers.mattes import VERSION, defocus

    matting = TaskConfig(name="matting")
    assert training_identity(matting, DataConfig(), ProxyBudget())["mattes"] == VERSION == 2
    assert "mattes" not in training_identity(matting, DataConfig(train="x", val="y", paired=True),
                                             ProxyBudget())  # fmt: skip
    assert "mattes" not in training_identity(TaskConfig(), DataConfig(), ProxyBudget())
    assert load_spec("nafnet_sidd").fingerprint == "7ef66f69ea4de55a"
    assert load_spec("matting_mscan").comparable()["proxy.mattes"] == 2
    assert load_spec("matting_mscan").fingerprint != "3f2f6e293d68a6d0"  # version 1's
    bg = np.full((32, 32, 3), 0.8, dtype=np.float32)
    dimmed = defocus(bg, np.random.default_rng(0))
    assert 0.8 * 0.2 - 1e-6 <= dimmed.mean() <= 0.8 * 0.4 + 1e-6  # dimmed to 20-40%
