"""The weight-sharing supernet (``search_spaces.nni_supernet`` + ``trainers.oneshot``): all
designs share one backbone module, a few SPOS steps train it, and every design, scored with the
inherited weights, maps an image to one of the same shape with finite scores; a concatenating
backbone (nothing to share) is refused in one line."""

from __future__ import annotations

import math

import pytest
import torch

from nas import ArchConfig, FullSkipsConfig, NoSkipsConfig, SubsetSkipsConfig, UNetMMConfig
from nas.errors import ConfigError
from nas.presets import backbone_preset
from search_spaces import nni_imports
from trainers.config import ProxyBudget, TaskConfig
from trainers.proxy import default_proxy_backbone, proxy_arch

pytestmark = pytest.mark.skipif(not nni_imports.available(),
                                reason=f"NNI (the 'nni' extra) is not installed: "
                                       f"{nni_imports.INSTALL}")  # fmt: skip
PAPER = UNetMMConfig.paper(4)
SKIPS = {"full": FullSkipsConfig(), "none": NoSkipsConfig(),
         "subset{2}": SubsetSkipsConfig(stages=(2,)), "unet--": PAPER,
         "unet--(t=3)": PAPER.replace(target_stage=3)}  # fmt: skip


def test_every_design_inherits_weights_same_shape_finite_scores():
    from search_spaces.nni_supernet import one_shot
    from trainers.oneshot import score_designs, train_supernet

    target = backbone_preset("nafnet-w32")
    proxy = default_proxy_backbone(target)
    designs = {n: proxy_arch(ArchConfig(target, s), proxy) for n, s in SKIPS.items()}
    net = one_shot(designs)
    backbones = {id(net.paths[n].backbone) for n in net.names}
    assert backbones == {id(net.backbone)}  # one backbone module behind every path
    budget = ProxyBudget(steps=6, batch=2, crop=32, val_crop=32, eval_every=6)
    before = [p.detach().clone() for p in net.backbone.parameters()]
    drawn = train_supernet(net, TaskConfig(name="denoise", sigma=25), budget, 6)
    assert sum(drawn.values()) == 6 and set(drawn) == set(SKIPS)
    assert any(not torch.equal(a, b) for a, b in zip(before, net.backbone.parameters()))
    x = torch.rand(1, 3, 32, 32)
    for name in net.names:
        net.select(name)
        with torch.no_grad():
            assert net(x).shape == x.shape, name
    scores = score_designs(net, TaskConfig(name="denoise", sigma=25), budget)
    assert set(scores) == set(SKIPS)
    assert all(math.isfinite(s["psnr"]) and math.isfinite(s["ssim"]) for s in scores.values())
    assert len({round(s["psnr"], 6) for s in scores.values()}) > 1  # the designs differ


def test_a_concatenating_backbone_has_nothing_to_share():
    from search_spaces.nni_supernet import one_shot

    unet = backbone_preset("unet-w32-d3")
    designs = {"full": ArchConfig(unet, FullSkipsConfig()), "none": ArchConfig(unet, NoSkipsConfig())}
    with pytest.raises(ConfigError, match="supernet: .*concatenates"):
        one_shot(designs)
