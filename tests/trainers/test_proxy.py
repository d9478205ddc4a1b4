"""trainers.proxy: a real short training run, early stop, divergence, the proxy architecture."""

from __future__ import annotations

import math

import pytest
import torch
from torch.optim.optimizer import register_optimizer_step_post_hook

from nas import ArchConfig, FullSkipsConfig, NAFNetConfig, SubsetSkipsConfig, UNetConfig
from nas.errors import ConfigError, UnetmmError
from nas.presets import backbone_preset, reference_designs
from trainers.config import ProxyBudget, TaskConfig
from trainers.proxy import (
    ProxyResult,
    TrainingDiverged,
    default_proxy_backbone,
    proxy_arch,
    train_and_eval,
)


def test_proxy_run_learns_to_denoise(tiny_arch: ArchConfig) -> None:
    budget = ProxyBudget(steps=60, eval_every=20, crop=32, batch=4, val_crop=64, lr=5e-3)
    r = train_and_eval(tiny_arch, TaskConfig(sigma=25), budget, threads=1)
    assert isinstance(r, ProxyResult) and not r.stopped
    assert r.steps == 60 and [s for s, _ in r.curve] == [20, 40, 60]
    assert r.psnr == r.curve[-1][1] and 0 < r.ssim < 1 and r.seconds > 0
    assert r.input_psnr == pytest.approx(20.45, abs=0.3)  # sigma 25 on the 4 validation crops
    assert r.psnr > r.input_psnr + 1.0  # ~10k parameters, 60 steps: already a clear gain


def test_proxy_runs_are_deterministic_and_leave_the_callers_rng(
    tiny_unetmm: ArchConfig, tiny_budget: ProxyBudget
) -> None:
    budget = tiny_budget.model_copy(update={"steps": 10, "eval_every": 5})
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    a = train_and_eval(tiny_unetmm, TaskConfig(), budget, seed=1)
    assert torch.equal(torch.rand(3), expected)
    b = train_and_eval(tiny_unetmm, TaskConfig(), budget, seed=1)
    assert a.curve == b.curve
    assert train_and_eval(tiny_unetmm, TaskConfig(), budget, seed=2).curve != a.curve


def test_callback_sees_every_evaluation_and_can_stop_early(
    tiny_arch: ArchConfig, tiny_budget: ProxyBudget
) -> None:
    seen: list[tuple[int, float, int]] = []

    def callback(step: int, value: float) -> bool:
        seen.append((step, value, torch.get_num_threads()))
        return step >= 20

    torch.set_num_threads(2)  # the caller's setting; the run uses one thread and restores it
    r = train_and_eval(tiny_arch, TaskConfig(), tiny_budget, callback=callback, threads=1)
    assert r.stopped and r.steps == 20 and [s for s, _ in r.curve] == [10, 20]
    assert [(s, v) for s, v, _ in seen] == r.curve and r.psnr == seen[-1][1]
    assert {t for *_, t in seen} == {1} and torch.get_num_threads() == 2


def test_a_budget_of_two_seeds_scores_the_mean_of_two_runs(
    tiny_unetmm: ArchConfig, tiny_budget: ProxyBudget
) -> None:
    """``seeds: 2`` at seed 1 trains seeds 2 and 3 in step: its score, curve, metrics and the
    callback's values are the means of those two single runs, exactly."""
    from trainers.config import DataConfig, training_identity

    one = tiny_budget.model_copy(update={"steps": 20})
    two = one.model_copy(update={"seeds": 2})
    a, b = (train_and_eval(tiny_unetmm, TaskConfig(), one, seed=s, threads=1) for s in (2, 3))
    seen: list[tuple[int, float]] = []
    r = train_and_eval(tiny_unetmm, TaskConfig(), two, seed=1, threads=1,
                       callback=lambda step, v: seen.append((step, v)))  # fmt: skip
    assert r.psnr == pytest.approx((a.psnr + b.psnr) / 2, abs=1e-12) and a.psnr != b.psnr
    assert [s for s, _ in r.curve] == [s for s, _ in a.curve] == [10, 20]
    assert [v for _, v in r.curve] == pytest.approx(
        [(x + y) / 2 for (_, x), (_, y) in zip(a.curve, b.curve)], abs=1e-12)
    assert seen == r.curve and r.steps == 20
    assert r.metrics["ssim"] == pytest.approx((a.ssim + b.ssim) / 2, abs=1e-12)
    same = training_identity(TaskConfig(), DataConfig(), one)
    assert "seeds" not in same["budget"]  # studies from before the field keep their identity
    assert training_identity(TaskConfig(), DataConfig(), two)["budget"]["seeds"] == 2


def test_callback_exceptions_propagate_unchanged(
    tiny_arch: ArchConfig, tiny_budget: ProxyBudget
) -> None:
    class Pruned(Exception):
        pass

    def prune(step: int, value: float) -> None:
        raise Pruned(f"pruned at {step}")

    with pytest.raises(Pruned, match="pruned at 10"):
        train_and_eval(tiny_arch, TaskConfig(), tiny_budget, callback=prune)


def test_divergence_raises_naming_the_step(tiny_arch: ArchConfig, tiny_budget: ProxyBudget) -> None:
    budget = tiny_budget.model_copy(update={"lr": 1e4})
    with pytest.raises(TrainingDiverged, match=r"loss is (nan|inf) at step \d+") as info:
        train_and_eval(tiny_arch, TaskConfig(), budget)
    assert isinstance(info.value, UnetmmError)


def test_nan_weights_after_the_last_step_raise_instead_of_a_nan_score(
    tiny_arch: ArchConfig, tiny_budget: ProxyBudget
) -> None:
    """The last optimizer step turns the weights NaN: its loss was finite, so only the final
    evaluation (a real forward pass of the NaN model) can tell."""
    budget = tiny_budget.model_copy(update={"steps": 15})  # evaluations at 10 and 15
    steps = 0

    def poison_last_step(optimizer: torch.optim.Optimizer, *_: object) -> None:
        nonlocal steps
        steps += 1
        if steps == budget.steps:
            with torch.no_grad():
                for group in optimizer.param_groups:
                    for p in group["params"]:
                        p.fill_(math.nan)

    handle = register_optimizer_step_post_hook(poison_last_step)
    try:
        with pytest.raises(TrainingDiverged, match=r"validation PSNR is nan at step 15"):
            train_and_eval(tiny_arch, TaskConfig(), budget, threads=1)
    finally:
        handle.remove()
    assert steps == 15


def test_proxy_arch_keeps_the_targets_absolute_skip_widths() -> None:
    target = reference_designs(backbone_preset("nafnet-w32"))
    proxy = proxy_arch(target["unetmm"])
    assert proxy.backbone == default_proxy_backbone() == NAFNetConfig(16, (1,) * 4, 1, (1,) * 4)
    # ratios {1/16, 1/16, 1/16, 1/8} of (32, 64, 128, 256), not of the proxy's (16, ..., 128)
    assert proxy.skip.reduced_channels == (2, 4, 8, 32)
    assert (proxy.skip.aggregated_channels, proxy.skip.target_stage) == (256, 4)
    assert proxy.skip.iem_depth == target["unetmm"].skip.iem_depth
    assert proxy_arch(target["full"]).skip == FullSkipsConfig()
    subset = target["full"].replace(skip=SubsetSkipsConfig(stages=(2,)))
    assert proxy_arch(subset).skip == SubsetSkipsConfig(stages=(2,))


def test_proxy_backbone_follows_the_target_family_and_depth() -> None:
    unet = ArchConfig(UNetConfig(width=64, depth=3), FullSkipsConfig())
    assert proxy_arch(unet).backbone == UNetConfig(width=16, depth=3)
    gopro = default_proxy_backbone(backbone_preset("nafnet-gopro"))
    assert gopro == NAFNetConfig(16, (1,) * 4, 1, (1,) * 4)
    with pytest.raises(ConfigError, match="proxy backbone: has 4 stages but the target has 3"):
        proxy_arch(unet, default_proxy_backbone())


def test_proxy_scores_full_skips_above_no_skips_on_real_photos() -> None:
    """The default proxy backbone at a small budget already separates the two extremes."""
    designs = reference_designs(backbone_preset("nafnet-w32"))
    budget = ProxyBudget(steps=40, eval_every=40, crop=32, batch=4, val_crop=64, lr=3e-3)
    full = train_and_eval(proxy_arch(designs["full"]), TaskConfig(), budget, threads=1)
    none = train_and_eval(proxy_arch(designs["none"]), TaskConfig(), budget, threads=1)
    assert math.isfinite(full.psnr) and full.psnr > none.psnr + 1.0
