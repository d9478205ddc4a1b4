"""The public ``nas`` API: models by name (timm's style), ``CostReport`` summaries, version, typing."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import pytest
import tomllib
import torch

import nas
from nas.presets import BACKBONE_PRESETS

REPO = Path(__file__).resolve().parents[2]


def test_list_models_names_every_backbone_with_every_skip_design() -> None:
    names = nas.list_models()
    assert names == sorted(names)
    assert len(names) == len(BACKBONE_PRESETS.names()) * len(nas.SKIP_DESIGNS.names())
    assert {"nafnet-w32-full", "nafnet-w32-none", "nafnet-w32-unetmm", "unet-subset"} <= set(
        names
    )
    assert nas.list_models("nafnet-w32-*") == [
        "nafnet-w32-full", "nafnet-w32-none", "nafnet-w32-subset", "nafnet-w32-unetmm",
    ]  # fmt: skip
    assert nas.list_models("*-unetmm") == [n for n in names if n.endswith("-unetmm")]
    assert nas.list_models("resnet*") == []


def test_model_config_is_the_paper_design_and_takes_overrides() -> None:
    paper = nas.model_config("nafnet-w32-unetmm")
    assert paper == nas.ArchConfig(nas.nafnet_w32(), nas.UNetMMConfig.paper(4))
    assert nas.measure_cost(paper, (256, 256), engine="meta").m_sc_bytes == 262_144  # Table 4
    assert nas.model_config("nafnet-w32-full").skip == nas.FullSkipsConfig()
    # Overrides go to whichever config has the field; the paper point follows the depth.
    arch = nas.model_config(
        "unet-w32-d3-unetmm", aggregated_channels=64, in_channels=1, out_channels=1
    )
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
        ("nafnet-sid-unetmm", {},
         "model: unknown name 'nafnet-sid-unetmm'; did you mean nafnet-w32-unetmm"),
        ("nafnet-w32-unetmm", {"widht": 64}, "model nafnet-w32-unetmm: 'widht' is not a field"),
        ("nafnet-w32-unetmm", {"width": "wide"}, "backbone.width: must be an integer"),
        ("nafnet-w32-subset", {"stages": (7,)}, "skip.stages: [7] out of range"),
    ],
)  # fmt: skip
def test_model_errors_name_the_field(name: str, overrides: dict, message: str) -> None:
    with pytest.raises(nas.ConfigError) as info:
        nas.create_model(name, **overrides)
    assert str(info.value).startswith(message), str(info.value)
    assert "\n" not in str(info.value)


def test_renamed_presets_keep_their_old_names_unlisted() -> None:
    """0.1's ``nafnet-sidd`` / ``kbnet-s-sidd`` (which read like the nafnet_sidd / kbnet_sidd
    studies) are ``nafnet-w32`` / ``kbnet-s-light``; the old names still build the same configs
    and models, so stored studies and old scripts keep working, but no listing shows them."""
    preset = nas.presets.backbone_preset
    assert preset("nafnet-sidd") == preset("nafnet-w32") == nas.nafnet_w32()
    assert preset("kbnet-s-sidd") == preset("kbnet-s-light")
    assert nas.nafnet_sidd is nas.nafnet_w32
    assert "nafnet-sidd" in BACKBONE_PRESETS and "nafnet-sidd" not in BACKBONE_PRESETS.names()
    assert BACKBONE_PRESETS.canonical("nafnet-sidd") == "nafnet-w32"
    assert nas.model_config("nafnet-sidd-unetmm") == nas.model_config("nafnet-w32-unetmm")
    assert not nas.list_models("*-sidd-*") and not nas.list_models("kbnet-s-sidd*")
    with pytest.raises(ValueError, match="registered twice"):
        BACKBONE_PRESETS.alias("nafnet-sidd", "nafnet-w16")
    with pytest.raises(ValueError, match="registered twice"):  # a new entry may not shadow it
        BACKBONE_PRESETS.register("nafnet-sidd")(lambda: None)
    with pytest.raises(ValueError, match="not registered"):
        BACKBONE_PRESETS.alias("old-name", "no-such-preset")
    BACKBONE_PRESETS.register("toy-preset")(lambda: None)
    BACKBONE_PRESETS.alias("toy-old", "toy-preset")
    BACKBONE_PRESETS.unregister("toy-preset")  # its alias goes with it
    assert "toy-old" not in BACKBONE_PRESETS and "toy-old" not in BACKBONE_PRESETS.aliases()


def test_cost_report_summary_and_repr_are_short() -> None:
    report = nas.measure_cost(nas.model_config("nafnet-w32-unetmm"), (256, 256), engine="meta")
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
