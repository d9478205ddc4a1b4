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


def test_grn_gradient_is_finite_when_a_channel_is_all_zero() -> None:
    """A dead channel (e.g. GELU of very negative inputs) must not turn gradients into NaN."""
    from nas.blocks import GRN

    grn = GRN(4)
    torch.nn.init.constant_(grn.gamma, 0.1)
    x = torch.randn(2, 5, 5, 4)
    x[..., 0] = 0
    x.requires_grad_(True)
    grn(x).sum().backward()
    assert torch.isfinite(x.grad).all() and torch.isfinite(grn.gamma.grad).all()


def test_identity_init_hands_each_header_its_own_reduced_map() -> None:
    """At init, E' is the concatenation, so pixel-shuffling it back to stage i yields RC(E_i)."""
    from nas import NAFNetConfig, UNetMMConfig
    from nas.skips.unetmm import resize

    arch = ArchConfig(NAFNetConfig(16, (1,) * 4, 1, (1,) * 4), UNetMMConfig(aggregated_channels=256))
    skip = build_model(arch).skip
    torch.manual_seed(0)
    sizes = [(32, 32), (16, 16), (8, 8), (4, 4)]
    es = [torch.randn(1, c, *hw) for c, hw in zip(arch.backbone.stage_channels, sizes)]
    held: dict = {}
    with torch.no_grad():
        for i, e in enumerate(es):
            skip.push(held, i, e)
        agg = held["agg"]
        offset = 0
        for s in (1, 2, 3, 4):
            reduced = skip.reducers[str(s)](es[s - 1])
            start = offset // 4 ** (4 - s)  # channel block of stage s after shuffling E' to s
            back = resize(agg, 4, s)[:, start : start + reduced.shape[1]]
            torch.testing.assert_close(back, reduced)
            offset += skip.cfg.part_channels(s, arch.backbone.stage_channels)
