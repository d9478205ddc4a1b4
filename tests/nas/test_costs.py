"""Costs: traced skip memory equals the analytic M_sc, meta counts equal fvcore and ptflops."""

from __future__ import annotations

import json
import logging
from typing import ClassVar

import pytest
import torch

from nas import (
    ArchConfig,
    CostReport,
    FullSkipsConfig,
    NAFNetConfig,
    NoSkipsConfig,
    UNetMMConfig,
    build_model,
    measure_cost,
)
from nas.cost import clear_memory_cache, fvcore_macs, skip_memory_timeline, trace_forward
from nas.cost.report import code_version, source_hash
from nas.errors import InternalError
from nas.skips.base import boundary_labels
from nas.skips.direct import DirectSkips
from tests.nas.designs import all_archs

ARCHS = all_archs()
# square, non-square, and one that needs padding to a multiple of 2**stages
SIZES = [(64, 64), (48, 80), (50, 37)]


def _meta_trace(arch: ArchConfig, size: tuple[int, int], bits: int = 8, batch: int = 1):
    with torch.device("meta"):
        model = build_model(arch)
    return trace_forward(model, (batch, 3, *size), bits)


@pytest.mark.parametrize("name", sorted(ARCHS))
@pytest.mark.parametrize("size", SIZES)
def test_traced_m_sc_equals_analytic(name: str, size: tuple[int, int]) -> None:
    arch = ARCHS[name]
    analytic = skip_memory_timeline(arch, *size, batch=2, bits=16)
    traced = _meta_trace(arch, size, bits=16, batch=2).skip_timeline
    assert traced == analytic
    assert [label for label, _ in analytic] == boundary_labels(len(arch.backbone.stage_channels))
    if arch.skip.name == "none":
        assert all(b == 0 for _, b in analytic)
    else:
        assert max(b for _, b in analytic) > 0
    assert analytic[-1][1] == 0  # everything released after D1


@pytest.mark.parametrize(
    "name", ["nafnet-w8/full", "nafnet-w8/unetmm-b", "unet-w8-d3/unetmm-c", "unet-w8-d4/subset"]
)
def test_meta_trace_equals_trace_of_a_real_cpu_forward(name: str) -> None:
    """The meta pass is a shortcut, not an estimate: a real forward holds the same bytes."""
    arch = ARCHS[name]
    meta = _meta_trace(arch, (50, 37))
    real = trace_forward(build_model(arch), (1, 3, 50, 37), 8)
    assert real.skip_timeline == meta.skip_timeline
    assert real.peak_activation_bytes == meta.peak_activation_bytes
    assert real == meta  # every field: timelines, transient, peak, MACs by op, uncounted ops


@pytest.mark.parametrize("name", sorted(ARCHS))
def test_meta_mac_rules_equal_fvcore(name: str) -> None:
    arch = ARCHS[name]
    counted = fvcore_macs(build_model(arch), (1, 3, 48, 80))
    meta = _meta_trace(arch, (48, 80))
    assert meta.macs_fvcore_rules == counted.total
    assert meta.macs_by_op == counted.by_op
    assert meta.uncounted_ops == counted.uncounted_ops


@pytest.mark.parametrize(
    ("name", "expected_uncounted"),
    [
        ("unet-w8-d3/full", {"aten::max_pool2d": 3, "aten::pad": 1, "aten::add": 1}),
        ("nafnet-w8/unetmm-b", {"aten::pixel_shuffle": 7, "aten::pixel_unshuffle": 3,
                                "aten::mean": 44, "aten::pad": 1}),
    ],
)  # fmt: skip
def test_meta_engine_reports_what_fvcore_reports(name: str, expected_uncounted: dict) -> None:
    """Same MACs by op and the same list of ops fvcore skips, on a size that needs padding."""
    fv = measure_cost(ARCHS[name], (50, 37), engine="fvcore", use_cache=False)
    meta = measure_cost(ARCHS[name], (50, 37), engine="meta", use_cache=False)
    assert meta.macs_by_op == fv.macs_by_op and meta.macs_by_op["conv"] > 0
    assert meta.uncounted_ops == fv.uncounted_ops
    assert expected_uncounted.items() <= fv.uncounted_ops.items()
    skip = {"engine", "seconds"}
    assert {k: v for k, v in meta.to_dict().items() if k not in skip} == {
        k: v for k, v in fv.to_dict().items() if k not in skip
    }


@pytest.mark.parametrize("name", ["nafnet-w8/full", "nafnet-w8/unetmm-a", "unet-w8-d3/unetmm-b"])
def test_paper_convention_equals_ptflops_module_hooks(name: str) -> None:
    ptflops = pytest.importorskip("ptflops")
    logging.getLogger("ptflops").setLevel(logging.ERROR)
    arch = ARCHS[name]
    macs, params = ptflops.get_model_complexity_info(
        build_model(arch).eval(), (3, 64, 64), as_strings=False, backend="pytorch",
        print_per_layer_stat=False, verbose=False,
        backend_specific_config={"count_functional": False},
    )  # fmt: skip
    report = measure_cost(arch, (64, 64), engine="meta")
    assert report.macs_paper == macs
    assert report.params == params


def test_peak_activation_counts_skips_that_outlive_the_working_set() -> None:
    """With wide skips on a deep-and-narrow net, the skips dominate the peak."""
    from nas import NAFNetConfig, NoSkipsConfig

    bb = NAFNetConfig(4, (0, 0, 0, 0), 0, (0, 0, 0, 0))  # no blocks: only convs and skips
    full = _meta_trace(ArchConfig(bb, FullSkipsConfig()), (64, 64))
    none = _meta_trace(ArchConfig(bb, NoSkipsConfig()), (64, 64))
    assert full.peak_activation_bytes > none.peak_activation_bytes
    assert full.peak_activation_bytes >= max(b for _, b in full.skip_timeline)


def test_cache_returns_equal_report_from_disk(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("UNETMM_CACHE_DIR", str(tmp_path))
    clear_memory_cache()
    arch = ARCHS["nafnet-w8/unetmm-a"]
    first = measure_cost(arch, (64, 64), engine="meta")
    files = list((tmp_path / "costs").glob("*.json"))
    assert len(files) == 1 and json.loads(files[0].read_text())["arch_key"] == arch.key()
    assert files[0].name.startswith(f"{code_version()}-{arch.key()}-")
    hit = measure_cost(arch, (64, 64), engine="meta")  # in-memory hit
    assert hit == first and hit is not first
    hit.m_sc_timeline.clear()  # each caller gets its own copy: mutating it spoils nothing
    first.uncounted_ops.clear()
    again = measure_cost(arch, (64, 64), engine="meta")
    assert again.m_sc_timeline and again.uncounted_ops
    assert again == CostReport.from_dict(json.loads(files[0].read_text()))
    clear_memory_cache()
    disk = measure_cost(arch, (64, 64), engine="meta")  # read back from disk
    assert disk == again
    other = measure_cost(arch, (64, 64), bits=16, engine="meta")
    assert other.m_sc_bytes == 2 * disk.m_sc_bytes


def test_code_version_follows_the_source(tmp_path) -> None:
    (tmp_path / "a.py").write_text("x = 1\n")
    before = source_hash(tmp_path)
    assert source_hash(tmp_path) == before
    (tmp_path / "a.py").write_text("x = 2\n")
    assert source_hash(tmp_path) != before
    assert len(code_version()) == 12 and code_version() == code_version()


class LeakySkips(DirectSkips):
    """Declares no skips (``held`` stays empty) but keeps E1 in an attribute until D1: a bug."""

    def push(self, held, i, e):  # type: ignore[no-untyped-def]
        if i == 0:
            self.stash = [e]

    def pull(self, held, i):  # type: ignore[no-untyped-def]
        if i == 0:
            self.stash = []
        return None


class LeakyConfig(NoSkipsConfig):
    name = "leaky-test"  # not registered: only this test builds it

    def build(self, stage_channels: tuple[int, ...]) -> LeakySkips:
        return LeakySkips(self, stage_channels)


def test_trace_catches_a_tensor_kept_outside_held() -> None:
    arch = ArchConfig(NAFNetConfig(8, (1,) * 4, 1, (1,) * 4), LeakyConfig())
    e1 = 8 * 64 * 64  # bytes of E1 at 8 bit
    traced = _meta_trace(arch, (64, 64)).skip_timeline
    assert [b for _, b in traced] == [e1] * 8 + [0]
    assert all(b == 0 for _, b in skip_memory_timeline(arch, 64, 64))
    with pytest.raises(InternalError, match=f"at boundary E1: traced {e1:,} bytes, analytic 0"):
        measure_cost(arch, (64, 64), engine="meta", use_cache=False)


def test_transient_counts_msiam_parts_concat_and_aggregate_at_once() -> None:
    """At the last push MSIAM holds all parts, their concatenation and E' together."""
    arch = ARCHS["nafnet-w8/unetmm-a"]  # c_i = 2, 4, 8, 16 -> 240 channels at 8x8; E': 64
    parts, agg = 240 * 8 * 8, 64 * 8 * 8
    report = measure_cost(arch, (64, 64), engine="meta")
    assert report.m_sc_bytes == (240 - 16) * 8 * 8  # parts of E1..E3, held after E3
    assert report.m_sc_transient_bytes == 2 * parts + agg
    full = measure_cost(ARCHS["nafnet-w8/full"], (64, 64), engine="meta")
    assert full.m_sc_transient_bytes == full.m_sc_bytes  # direct skips allocate nothing


def test_unetmm_paper_point_on_other_depths() -> None:
    for depth in (3, 5):
        cfg = UNetMMConfig.paper(depth)
        assert len(cfg.ratios) == depth and cfg.ratios[-1] == 1 / 8


@pytest.mark.parametrize("size", SIZES)
def test_replayed_trace_equals_a_plain_one_on_every_design(size: tuple[int, int]) -> None:
    """``nas.cost.replay``: blocks recorded once and replayed after change no field, for every
    registered backbone x skip design; the second trace replays every backbone block."""
    from nas.cost.replay import _RECORDS, clear_records, replayable_blocks

    clear_records()
    for name in sorted(ARCHS):
        with torch.device("meta"):
            model = build_model(ARCHS[name])
        plain = trace_forward(model, (2, 3, *size), 16, replay=False)
        recorded = trace_forward(model, (2, 3, *size), 16)
        replayed = trace_forward(model, (2, 3, *size), 16)
        assert replayed == recorded == plain, name
        assert not any("forward" in vars(b) for b in replayable_blocks(model))  # unwrapped
    assert _RECORDS and all(r is not None for r in _RECORDS.values())


def test_a_block_that_keeps_more_than_its_output_is_not_replayed(monkeypatch) -> None:
    """A block whose call leaves other storages alive (here: one that stashes an intermediate)
    or returns its input is run every time, and the trace still counts what it keeps."""
    from nas.cost import replay

    class Stash(torch.nn.Module):
        kept: ClassVar[list[torch.Tensor]] = []

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            Stash.kept.append(x * 2)
            return x + 1

    class Half(torch.nn.Module):  # returns a view into a bigger new storage
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.cat([x, x], dim=1)[:, : x.shape[1]]

    model = torch.nn.Sequential(Stash(), torch.nn.Identity(), Half())
    monkeypatch.setattr(replay, "REPLAYABLE_BLOCKS", [Stash, torch.nn.Identity, Half])
    replay.clear_records()
    arch = ARCHS["nafnet-w8/full"]
    with torch.device("meta"):
        net = build_model(arch)
    net.backbone.middle_blks = model  # runs in the middle, shape preserved
    first = trace_forward(net, (1, 3, 64, 64), 8)
    second = trace_forward(net, (1, 3, 64, 64), 8)
    assert first == second == trace_forward(net, (1, 3, 64, 64), 8, replay=False)
    assert list(replay._RECORDS.values()) == [None, None, None]  # each runs every time
    net.backbone.middle_blks = torch.nn.Sequential()
    bare = trace_forward(net, (1, 3, 64, 64), 8)
    stash = 128 * 4 * 4  # x * 2 at the middle: 128 channels at 4x4, 8 bits
    assert dict(first.skip_timeline)["M"] == dict(bare.skip_timeline)["M"] + stash
    Stash.kept.clear()


def test_a_trace_puts_back_every_forward_even_when_the_model_raises(monkeypatch) -> None:
    """A block given its own ``forward`` runs it (it is neither wrapped nor replayed), and
    the others get theirs back, after a normal trace and after one that raises in a block."""
    arch = ARCHS["nafnet-w8/full"]
    with torch.device("meta"):
        model = build_model(arch)
    blocks = [m for m in model.modules() if type(m).__name__ == "NAFBlock"]
    patched = blocks[0].forward  # a bound method stored on the instance, as a user might
    blocks[0].forward = patched
    trace_forward(model, (1, 3, 64, 64), 8)
    assert vars(blocks[0])["forward"] is patched
    assert not any("forward" in vars(b) for b in blocks[1:])

    def boom(x: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("boom")

    blocks[-1].forward = boom
    with pytest.raises(RuntimeError, match="boom"):
        trace_forward(model, (1, 3, 64, 64), 8)
    assert vars(blocks[0])["forward"] is patched and vars(blocks[-1])["forward"] is boom
    assert not any("forward" in vars(b) for b in blocks[1:-1])
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in model.modules())
    assert model.training and not model.boundary_hooks


def test_costs_from_the_shared_meta_backbone_equal_a_fresh_model(monkeypatch, tmp_path) -> None:
    """``measure_cost`` builds every design of a backbone on one shared meta backbone; designs
    that deliver different skips, costed in turn, measure what a fresh model's trace does."""
    monkeypatch.setenv("UNETMM_CACHE_DIR", str(tmp_path))
    clear_memory_cache()
    names = [n for n in sorted(ARCHS) if n.startswith("nafnet-w8/")]
    assert len({ARCHS[n].skip.delivers(4) for n in names}) > 1
    for name in names * 2:
        arch = ARCHS[name]
        report = measure_cost(arch, (48, 80), engine="meta", use_cache=False)
        fresh = _meta_trace(arch, (48, 80))
        assert report.m_sc_traced_timeline == fresh.skip_timeline, name
        assert report.peak_activation_bytes == fresh.peak_activation_bytes, name
        assert (report.macs, report.macs_by_op, report.uncounted_ops) == (
            fresh.macs_fvcore_rules, fresh.macs_by_op, fresh.uncounted_ops), name
        assert report.params == sum(p.numel() for p in build_model(arch).parameters())
