"""Every backbone x every skip design: builds, runs forward and backward, keeps the input shape."""

from __future__ import annotations

import pytest
import torch

from nas import BACKBONES, SKIP_DESIGNS, ArchConfig, build_model
from tests.nas.designs import all_archs

ARCHS = all_archs()


def test_designs_cover_every_registered_backbone_and_skip_design() -> None:
    used_backbones = {a.backbone.name for a in ARCHS.values()}
    used_skips = {a.skip.name for a in ARCHS.values()}
    assert used_backbones == set(BACKBONES.names())
    assert used_skips == set(SKIP_DESIGNS.names())
    targets = {a.skip.target_stage for a in ARCHS.values() if a.skip.name == "unetmm"}
    assert {None, 1, 2} <= targets  # Fig. 3 a (deepest), b (middle), c (shallowest)


@pytest.mark.parametrize("name", sorted(ARCHS))
@pytest.mark.parametrize("size", [(32, 32), (40, 24), (37, 45)])
def test_forward_backward_keeps_shape(name: str, size: tuple[int, int]) -> None:
    torch.manual_seed(0)
    model = build_model(ARCHS[name])
    x = torch.randn(2, 3, *size, requires_grad=True)
    y = model(x)
    assert y.shape == x.shape
    assert torch.isfinite(y).all()
    y.square().mean().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert torch.isfinite(x.grad).all()


def test_skip_changes_output_only_where_designs_differ() -> None:
    """Two designs on one backbone share the backbone's parameter names and shapes."""
    full, none = ARCHS["nafnet-w8/full"], ARCHS["nafnet-w8/none"]
    a = {k: v.shape for k, v in build_model(full).state_dict().items()}
    b = {k: v.shape for k, v in build_model(none).state_dict().items()}
    assert a == b  # NAFNet adds skips: no parameters depend on them


def test_unet_without_skip_has_narrower_decoder() -> None:
    full = build_model(ARCHS["unet-w8-d3/full"])
    none = build_model(ARCHS["unet-w8-d3/none"])
    assert full.backbone.decoders[0][0].in_channels == 16  # concat(8 + 8)
    assert none.backbone.decoders[0][0].in_channels == 8


def test_arch_round_trips_and_hash_is_stable() -> None:
    for arch in ARCHS.values():
        again = ArchConfig.from_json(arch.to_json())
        assert again == arch and hash(again) == hash(arch)
        assert again.key() == arch.key()
    assert len({a.key() for a in ARCHS.values()}) == len(ARCHS)
