"""The public ``nas`` API: models by name (timm's style), ``CostReport`` summaries, version, typing."""

from __future__ import annotations

import importlib.metadata
import tomllib
from pathlib import Path

import pytest
import torch

import nas
from nas.presets import BACKBONE_PRESETS

REPO = Path(__file__).resolve().parents[2]


def test_list_models_names_every_backbone_with_every_skip_design() -> None:
    names = nas.list_models()
    assert names == sorted(names)
    assert len(names) == len(BACKBONE_PRESETS.names()) * len(nas.SKIP_DESIGNS.names())
    assert {"nafnet-sidd-full", "nafnet-sidd-none", "nafnet-sidd-unetmm", "unet-subset"} <= set(
        names
    )
    assert nas.list_models("nafnet-sidd-*") == [
        "nafnet-sidd-full", "nafnet-sidd-none", "nafnet-sidd-subset", "nafnet-sidd-unetmm",
    ]  # fmt: skip
    assert nas.list_models("*-unetmm") == [n for n in names if n.endswith("-unetmm")]
    assert nas.list_models("resnet*") == []


def test_model_config_is_the_paper_design_and_takes_overrides() -> None:
    paper = nas.model_config("nafnet-sidd-unetmm")
    assert paper == nas.ArchConfig(nas.nafnet_sidd(), nas.UNetMMConfig.paper(4))
    assert nas.measure_cost(paper, (256, 256), engine="meta").m_sc_bytes == 262_144  # Table 4
    assert nas.model_config("nafnet-sidd-full").skip == nas.FullSkipsConfig()
    # Overrides go to whichever config has the field; the paper point follows the depth.
    arch = nas.model_config("unet-w32-d3-unetmm", aggregated_channels=64, in_channels=1,
                            out_channels=1)
    assert arch.skip.aggregated_channels == 64 and arch.backbone.in_channels == 1
    assert arch.skip.ratios == (1 / 16, 1 / 16, 1 / 8)
    assert nas.model_config("nafnet-w16-subset", stages=[1, 3]).skip.stages == (1, 3)


def test_create_model_builds_a_working_module() -> None:
    torch.manual_seed(0)
    model = nas.create_model("nafnet-w16-unetmm", aggregated_channels=64)
    assert isinstance(model, torch.nn.Module)
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        y = model(x)
    assert y.shape == x.shape and torch.isfinite(y).all()
    same = nas.build_model(nas.model_config("nafnet-w16-unetmm", aggregated_channels=64))
    assert sum(p.numel() for p in model.parameters()) == sum(p.numel() for p in same.parameters())


@pytest.mark.parametrize(
    ("name", "overrides", "message"),
    [
        ("nafnet-sid-unetmm", {}, "model: unknown name 'nafnet-sid-unetmm'; did you mean "
                                  "nafnet-sidd-unetmm"),
        ("nafnet-sidd-unetmm", {"widht": 64}, "model nafnet-sidd-unetmm: 'widht' is not a field"),
        ("nafnet-sidd-unetmm", {"width": "wide"}, "backbone.width: must be an integer"),
        ("nafnet-sidd-subset", {"stages": (7,)}, "skip.stages: [7] out of range"),
    ],
)  # fmt: skip
def test_model_errors_name_the_field(name: str, overrides: dict, message: str) -> None:
    with pytest.raises(nas.ConfigError) as info:
        nas.create_model(name, **overrides)
    assert str(info.value).startswith(message), str(info.value)
    assert "\n" not in str(info.value)


def test_cost_report_summary_and_repr_are_short() -> None:
    report = nas.measure_cost(nas.model_config("nafnet-sidd-unetmm"), (256, 256), engine="meta")
    text = repr(report)
    assert text == (
        "CostReport(unetmm on nafnet, 1x3x256x256, 8 bit: M_sc=256 KiB, peak=14.3 MiB, "
        "MACs=17.1 G, params=29.9 M)"
    )
    assert len(text) <= 120  # the dataclass repr was ~1,400 characters
    lines = report.summary().splitlines()
    assert len(lines) == 5 and max(map(len, lines)) <= 80
    assert lines[0] == "unetmm on nafnet, input 1x3x256x256, 8 bit (meta engine)"
    assert "256 KiB (262,144 B; peak at E4)" in lines[1]
    assert "17.1 G (fvcore), 17.2 G (paper convention)" in lines[3]
    assert lines[4].endswith("29.9 M")


def test_version_comes_from_the_package_metadata() -> None:
    assert nas.__version__ == importlib.metadata.version("unetmm")
    with (REPO / "pyproject.toml").open("rb") as fh:
        project = tomllib.load(fh)
    assert nas.__version__ == project["project"]["version"]


def test_packages_ship_py_typed() -> None:
    with (REPO / "pyproject.toml").open("rb") as fh:
        data = tomllib.load(fh)["tool"]["setuptools"]["package-data"]
    for package in ("nas", "search_spaces", "trainers", "studies"):
        assert (REPO / package / "py.typed").is_file(), package
        assert "py.typed" in data[package], package
