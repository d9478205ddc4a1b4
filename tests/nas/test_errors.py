"""Bad configurations fail early with one clear line naming the field."""

from __future__ import annotations

import pytest

from nas import (
    ArchConfig,
    ConfigError,
    NAFNetConfig,
    UNetConfig,
    UNetMMConfig,
    UnknownNameError,
    build_model,
    load_config,
    measure_cost,
    save_config,
)


def test_unknown_backbone_lists_known_names() -> None:
    with pytest.raises(UnknownNameError, match=r"unknown backbone 'resnet'.*nafnet, unet"):
        ArchConfig.from_dict({"backbone": {"name": "resnet"}, "skip": {"name": "full"}})


def test_unknown_skip_and_field() -> None:
    with pytest.raises(UnknownNameError, match="unknown skip design 'dense'.*unetmm"):
        ArchConfig.from_dict({"backbone": {"name": "unet"}, "skip": {"name": "dense"}})
    with pytest.raises(ConfigError, match=r"arch.backbone.widht: unknown field"):
        ArchConfig.from_dict({"backbone": {"name": "unet", "widht": 3}})


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: NAFNetConfig(width=0), "backbone.width"),
        (lambda: NAFNetConfig(dec_blk_nums=(1, 1)), "backbone.dec_blk_nums: needs 4 entries"),
        (lambda: UNetConfig(depth=7), "backbone.depth"),
        (lambda: UNetMMConfig(ratios=(0.5, 2.0, 0.5, 0.5)), r"skip.ratios: each ratio"),
        (lambda: UNetMMConfig(iem_depth=-1), "skip.iem_depth"),
        (lambda: UNetMMConfig(sep_kernel=4), "skip.sep_kernel"),
    ],
)
def test_field_validation(make, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        make()


def test_shuffle_divisibility_is_checked_before_any_forward() -> None:
    # Fig. 3c with the paper's ratios: E3 keeps 8 channels, which cannot pixel-shuffle x4.
    arch = ArchConfig(NAFNetConfig(), UNetMMConfig(target_stage=1))
    with pytest.raises(ConfigError, match=r"stage 3 keeps 8 channels.*multiple of 16"):
        build_model(arch)
    with pytest.raises(ConfigError, match="aggregated_channels"):
        build_model(ArchConfig(NAFNetConfig(), UNetMMConfig(aggregated_channels=100)))
    with pytest.raises(ConfigError, match=r"skip.ratios: needs 3 entries"):
        build_model(ArchConfig(UNetConfig(depth=3), UNetMMConfig()))


def test_unpadded_unet_rejects_indivisible_size_before_compute() -> None:
    arch = ArchConfig(UNetConfig(width=4, depth=3, pad_input=False), UNetMMConfig.paper(3))
    model = build_model(arch)
    with pytest.raises(ConfigError, match=r"50x64 is not divisible by 8"):
        model.check_input((1, 3, 50, 64))
    with pytest.raises(ConfigError, match="not divisible by 8"):
        measure_cost(arch, (50, 64), engine="meta")
    with pytest.raises(ConfigError, match=r"bits: 12"):
        measure_cost(arch, (64, 64), bits=12)


def test_config_files(tmp_path) -> None:
    arch = ArchConfig(UNetConfig(width=8, depth=3), UNetMMConfig.paper(3))
    path = save_config(arch, tmp_path / "a.yaml")
    assert load_config(path) == arch
    (tmp_path / "train.yaml").write_text("arch:\n" + "".join(
        "  " + line + "\n" for line in path.read_text().splitlines()))  # fmt: skip
    assert load_config(tmp_path / "train.yaml") == arch
    with pytest.raises(ConfigError, match="cannot be read"):
        load_config(tmp_path / "missing.yaml")
    (tmp_path / "bad.yaml").write_text("arch: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(tmp_path / "bad.yaml")
