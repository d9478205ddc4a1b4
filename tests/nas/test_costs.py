"""Costs: traced skip memory equals the analytic M_sc, meta counts equal fvcore and ptflops."""

from __future__ import annotations

import json
import logging

import pytest
import torch

from nas import ArchConfig, FullSkipsConfig, UNetMMConfig, build_model, measure_cost
from nas.cost import clear_memory_cache, fvcore_macs, skip_memory_timeline, trace_forward
from nas.skips.base import boundary_labels
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
    assert real.macs_paper == meta.macs_paper
    assert real.macs_fvcore_rules == meta.macs_fvcore_rules


@pytest.mark.parametrize("name", sorted(ARCHS))
def test_meta_mac_rules_equal_fvcore(name: str) -> None:
    arch = ARCHS[name]
    counted = fvcore_macs(build_model(arch), (1, 3, 48, 80))
    assert _meta_trace(arch, (48, 80)).macs_fvcore_rules == counted.total


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
    assert measure_cost(arch, (64, 64), engine="meta") is first  # in-memory hit
    clear_memory_cache()
    again = measure_cost(arch, (64, 64), engine="meta")  # read back from disk
    assert again is not first and again == first
    other = measure_cost(arch, (64, 64), bits=16, engine="meta")
    assert other.m_sc_bytes == 2 * first.m_sc_bytes


def test_unetmm_paper_point_on_other_depths() -> None:
    for depth in (3, 5):
        cfg = UNetMMConfig.paper(depth)
        assert len(cfg.ratios) == depth and cfg.ratios[-1] == 1 / 8
