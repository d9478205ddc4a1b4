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


@pytest.mark.parametrize(
    ("skip", "backbone", "message"),
    [
        ({"name": "unetmm", "target_stage": "2"}, {},
         "skip.target_stage: must be an integer, got '2'"),
        ({"name": "unetmm", "aggregated_channels": 256.0}, {},
         "skip.aggregated_channels: must be an integer, got 256.0"),
        ({"name": "unetmm", "iem_depth": 1.5}, {}, "skip.iem_depth: must be an integer, got 1.5"),
        ({"name": "unetmm", "ratios": ["1/16"] * 4}, {},
         "skip.ratios: must be a list of numbers, got '1/16'"),
        ({"name": "unetmm", "identity_init": "yes"}, {},
         "skip.identity_init: must be true or false, got 'yes'"),
        ({"name": "subset", "stages": [1.5]}, {},
         "skip.stages: must be a list of integers, got 1.5"),
        ({"name": "full"}, {"width": 32.0}, "backbone.width: must be an integer, got 32.0"),
        ({"name": "full"}, {"width": True}, "backbone.width: must be an integer, got True"),
        ({"name": "full"}, {"enc_blk_nums": 2},
         "backbone.enc_blk_nums: must be a list of integers"),
    ],
)  # fmt: skip
def test_wrong_types_name_the_field(skip: dict, backbone: dict, message: str) -> None:
    data = {"backbone": {"name": "nafnet", **backbone}, "skip": skip}
    with pytest.raises(ConfigError) as info:
        ArchConfig.from_dict(data)
    assert str(info.value).startswith(message)


def test_unet_types_and_python_construction() -> None:
    with pytest.raises(ConfigError, match=r"^backbone.depth: must be an integer, got 4.0$"):
        UNetConfig(depth=4.0)
    with pytest.raises(ConfigError, match="^backbone.pad_input: must be true or false"):
        UNetConfig(pad_input=1)
    skip = UNetMMConfig(ratios=[0.5] * 3, stages=[3, 1])  # lists are frozen to (sorted) tuples
    assert skip.ratios == (0.5,) * 3 and skip.stages == (1, 3) and hash(skip)


def test_measure_with_a_mistyped_config_file_is_one_error_line(tmp_path, capsys) -> None:
    from studies.cli import main

    for text, needle in [
        ("backbone: {name: nafnet}\nskip: {name: unetmm, target_stage: '2'}\n",
         "skip.target_stage: must be an integer, got '2'"),
        ("backbone: {name: unet, width: 8.5}\nskip: {name: full}\n",
         "backbone.width: must be an integer, got 8.5"),
        ("backbone: {name: nafnet}\nskip: {name: subset, stages: [1.5]}\n",
         "skip.stages: must be a list of integers, got 1.5"),
    ]:  # fmt: skip
        path = tmp_path / "bad.yaml"
        path.write_text(text)
        assert main(["measure", "--engine", "meta", "--config", str(path)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: ") and needle in err[0], err
