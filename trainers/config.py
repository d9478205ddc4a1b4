"""Validated configs of the trainers: the task, the data, the proxy budget, a full training run.

Pydantic v2 models, frozen (hashable: they key the validation-data cache) and strict about
unknown keys (``extra="forbid"``). YAML stays at the edge: ``load_train_config`` reads a file and
turns every YAML or validation problem into one ``nas.errors.ConfigError`` line naming the field,
e.g. ``recipe.lr: Input should be greater than 0``.

A training config (what ``unetmm export`` writes and ``unetmm train`` reads)::

    arch:                      # what nas.ArchConfig.from_dict reads
      backbone: {name: nafnet, width: 32, enc_blk_nums: [2, 2, 4, 8], middle_blk_num: 12,
                 dec_blk_nums: [2, 2, 2, 2]}
      skip: {name: unetmm, ratios: [0.0625, 0.0625, 0.0625, 0.125]}
    task: {name: denoise, sigma: 25}
    data: {train: builtin, val: builtin}     # or folders; paired: true for input/target pairs
    recipe: {iterations: 200000, batch: 32, crop: 256, lr: 0.001}
    out_dir: runs/nafnet-unetmm

Crop sizes live in the budget/recipe (they set the cost of a step); ``DataConfig`` only says
where images come from and how they are laid out.
"""

from __future__ import annotations

import json
import types
import typing
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    SerializerFunctionWrapHandler,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_serializer,
)
from pydantic.functional_validators import BeforeValidator

from nas.config import ArchConfig, read_yaml
from nas.errors import ConfigError, UnknownNameError

BUILTIN = "builtin"


class StrictModel(BaseModel):
    """A frozen model that refuses unknown keys: every YAML section of a config or study. A
    YAML ``true``/``false`` where a number belongs (pydantic would take it as 1 or 0) is
    refused too, in its fields and in the plain pydantic models inside them."""

    # allow_inf_nan: .inf passes ``gt=0`` (an infinite lr trains a NaN model and the search
    # ends "complete"); NaN is refused by no bound at all
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False,
                              use_attribute_docstrings=True)  # a field's docstring: its meaning

    @field_validator("*", mode="before")
    @classmethod
    def _no_bool_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        field = cls.model_fields.get(info.field_name or "")
        found = _bool_for_number(field.annotation, value) if field is not None else None
        if found is not None:
            where, wanted, got = found
            if where.startswith("."):  # inside a plain model: name the field there
                raise ConfigError(f"{where[1:]}: must be {wanted}, got {got}")
            raise ValueError(f"must be {wanted}, got {got}" + (f" at {where}" if where else ""))
        return value


def _bool_for_number(annotation: Any, value: Any) -> tuple[str, str, str] | None:
    """``(where, wanted, got)`` if ``value`` holds a bool where ``annotation`` wants an int
    or a float (``where``: ``""``, ``"[i]"`` or ``".field"`` below it); None otherwise."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is Annotated:
        return _bool_for_number(args[0], value)
    if origin in (Union, types.UnionType):
        options = [a for a in args if a is not type(None)]
        if len(options) == 1 or isinstance(value, bool):
            leaves = {a for a in options if isinstance(a, type)}
            if isinstance(value, bool) and (bool in leaves or not leaves & {int, float}):
                return None
            return _bool_for_number(options[0], value) if len(options) == 1 else (
                "", _wanted(leaves), json.dumps(value))  # fmt: skip
        return None
    if isinstance(value, bool):
        if annotation in (int, float):
            return "", _wanted({annotation}), json.dumps(value)
        return None
    if origin in (tuple, list) and isinstance(value, list | tuple):
        for i, item in enumerate(value):
            item_type = args[0] if len(args) != len(value) or args[-1:] == (...,) else args[i]
            found = _bool_for_number(item_type, item) if args else None
            if found is not None:
                return f"[{i}]{found[0]}", found[1], found[2]
        return None
    is_plain_model = (isinstance(annotation, type) and issubclass(annotation, BaseModel)
                      and not issubclass(annotation, StrictModel))  # fmt: skip
    if is_plain_model and isinstance(value, dict):
        for key, field in annotation.model_fields.items():
            found = _bool_for_number(field.annotation, value.get(key)) if key in value else None
            if found is not None:
                return f".{key}{found[0]}", found[1], found[2]
    return None


def _wanted(types_: set[Any]) -> str:
    return "an integer" if types_ == {int} else "a number"


class TaskConfig(StrictModel):
    """The synthetic degradation the model learns to undo.

    - ``denoise``: additive Gaussian noise of ``sigma`` on the 0-255 scale (not clipped);
    - ``deblur``: a ``blur`` kernel of ``kernel_size`` (odd): ``gaussian`` with ``blur_sigma``
      pixels, or ``motion``, a line of ``motion_length`` pixels at ``motion_angle`` degrees;
    - ``sr``: bicubic downscale by ``scale`` then bicubic upscale back to the input size (the
      UNet-- paper trains super-resolution "with the exact same network" as denoising, whose
      output has its input's size: so the low-resolution input is upsampled first);
    - ``matting``: predict a 1-channel alpha matte from an RGB image (L1 loss; scored by PSNR of
      the alpha and SAD/MSE, see ``trainers.metrics``); unpaired or built-in images are
      composited with procedural mattes (``trainers.mattes``), paired folders hold real ones.
      The other fields do not apply.
    """

    name: str = "denoise"
    """The task: denoise, deblur, sr (super-resolution), matting, or one a plugin registered."""
    sigma: float = Field(25.0, ge=0, le=255)
    """denoise: standard deviation of the Gaussian noise, on the 0-255 scale."""
    blur: Literal["gaussian", "motion"] = "gaussian"
    """deblur: the kernel, gaussian or motion."""
    kernel_size: int = Field(15, ge=3, le=63)
    """deblur: kernel side in pixels (odd)."""
    blur_sigma: float = Field(2.0, gt=0)
    """deblur, gaussian: the kernel's standard deviation in pixels."""
    motion_length: int = Field(9, ge=2)
    """deblur, motion: length of the motion line in pixels (at most kernel_size)."""
    motion_angle: float = 0.0
    """deblur, motion: angle of the motion line in degrees."""
    scale: Literal[2, 4] = 2
    """sr: the downscale factor, 2 or 4."""

    @field_validator("name")
    @classmethod
    def _known(cls, v: str) -> str:
        from trainers.tasks import TASKS  # the registry of tasks (plugins add theirs)

        if v not in TASKS:
            raise ValueError(f"unknown task {v!r}; choose one of {TASKS.names()}")
        return v

    @field_validator("kernel_size")
    @classmethod
    def _odd(cls, v: int) -> int:
        if v % 2 == 0:
            raise ValueError(f"must be odd (the kernel needs a centre pixel), got {v}")
        return v

    @field_validator("motion_length")
    @classmethod
    def _motion_fits(cls, v: int, info: ValidationInfo) -> int:
        size = info.data.get("kernel_size")
        if size is not None and v > size:
            raise ValueError(f"{v} does not fit kernel_size {size}; raise kernel_size")
        return v


class DataConfig(StrictModel):
    """Where the images come from.

    ``train``/``val``: ``"builtin"`` (the scikit-image photographs; the train/validation lists
    are in ``trainers.data``) or a folder, searched recursively for png/jpg/jpeg/tif/tiff/bmp
    files. Unpaired folders hold clean images and get the task's synthetic degradation. With
    ``paired: true`` each folder holds (degraded, clean) pairs and the task's degradation is not
    applied; pairs are matched one of two ways:

    - by folder (default): degraded images under ``input_dir``, clean ones under ``target_dir``
      with the same relative path (``val/input/x.png`` <-> ``val/target/x.png``), also below
      per-scene folders. GoPro: ``input_dir: blur, target_dir: sharp``; Restormer's SIDD crops:
      ``input_crops``/``target_crops``; NAFNet's SIDD crops (``scripts/data_preparation/sidd.py``,
      before its LMDB step): ``input_dir: input_crops, target_dir: gt_crops``;
    - by name, when ``input_pattern`` is set: in every folder, a file whose name contains
      ``input_pattern`` pairs with the file next to it whose name has ``target_pattern`` in its
      place (first occurrence). SIDD as downloaded (``<scene>/0001_NOISY_SRGB_010.PNG`` next to
      ``0001_GT_SRGB_010.PNG``): ``input_pattern: NOISY, target_pattern: GT``.

    Matting (``task: {name: matting}``): unpaired folders (and ``builtin``) are photographs that
    are composited in pairs with procedural mattes; with ``paired: true`` each folder holds a
    real matting set: images under ``input_dir`` and alpha mattes under ``target_dir`` with the
    same relative path up to the extension (P3M-10K: ``input_dir: blurred_image, target_dir:
    mask``; RWP-636 and AM-2K style sets: ``image``/``alpha``), and optional trimaps (0 / 128 /
    255) the same way under a sibling ``trimap`` folder: the unknown region of the SAD/MSE scores.

    ``val_limit`` keeps the first N validation images (sorted).
    """

    train: str = BUILTIN
    """Training images: builtin (scikit-image photographs) or a folder."""
    val: str = BUILTIN
    """Validation images: builtin or a folder."""
    paired: bool = False
    """true: the folders hold (degraded, clean) pairs; the task's degradation is not applied."""
    input_dir: str = "input"
    """paired: the subfolder of degraded images."""
    target_dir: str = "target"
    """paired: the subfolder of clean images (or alpha mattes)."""
    input_pattern: str | None = Field(None, min_length=1)
    """paired by name: the part of a degraded file's name (SIDD: NOISY)."""
    target_pattern: str | None = Field(None, min_length=1, validate_default=True)
    """paired by name: what replaces it in the clean file's name (SIDD: GT)."""
    val_limit: int | None = Field(None, ge=1)
    """Keep only the first N validation images (sorted); null: all."""
    cache_mb: int = Field(1024, ge=0, description="Megabytes of decoded training images kept in "
                          "memory.")  # fmt: skip

    @field_validator("paired")
    @classmethod
    def _paired_needs_folders(cls, v: bool, info: ValidationInfo) -> bool:
        if v and BUILTIN in (info.data.get("train"), info.data.get("val")):
            raise ValueError("true needs folders for train and val, not 'builtin'")
        return v

    @field_validator("input_pattern")
    @classmethod
    def _pattern_needs_paired(cls, v: str | None, info: ValidationInfo) -> str | None:
        if v is not None and not info.data.get("paired"):
            raise ValueError("pairs files by name; it needs paired: true")
        return v

    @field_validator("target_pattern")
    @classmethod
    def _patterns_together(cls, v: str | None, info: ValidationInfo) -> str | None:
        inp = info.data.get("input_pattern")
        if (v is None) != (inp is None) and "input_pattern" in info.data:
            raise ValueError("set input_pattern and target_pattern together (SIDD: NOISY and GT)")
        if v is not None and v == inp:
            raise ValueError(f"must differ from input_pattern ({inp!r})")
        return v


class _Optim(StrictModel):
    """What the proxy budget and the full recipe share: optimizer, cosine schedule, crops."""

    optimizer: Literal["adam", "adamw"] = "adamw"
    """adam or adamw."""
    lr: float = Field(1e-3, gt=0)
    """Peak learning rate."""
    lr_min: float = Field(1e-7, ge=0)
    """Learning rate at the end of the cosine schedule."""
    betas: tuple[float, float] = (0.9, 0.9)
    """Adam's beta1 and beta2."""
    weight_decay: float = Field(0.0, ge=0)
    """Weight decay (AdamW's decoupled one)."""
    schedule: Literal["cosine", "constant"] = "cosine"
    """cosine (from lr to lr_min) or constant."""
    batch: int = Field(8, ge=1)
    """Crops per step."""
    crop: int = Field(64, ge=8)
    """Side of the square training crops in pixels."""
    val_crop: int | None = Field(None, ge=8)
    """Side of the centre crop of each validation image; null: whole images."""

    @field_validator("betas")
    @classmethod
    def _betas(cls, v: tuple[float, float]) -> tuple[float, float]:
        if not all(0 <= b < 1 for b in v):
            raise ValueError(f"each beta must be in [0, 1), got {list(v)}")
        return v

    @field_validator("lr_min")
    @classmethod
    def _lr_order(cls, v: float, info: ValidationInfo) -> float:
        lr = info.data.get("lr")
        if lr is not None and v > lr:
            raise ValueError(f"{v} is above lr {lr}")
        return v


class ProxyBudget(_Optim):
    """The short scored run of one candidate (its fidelity: benchmarks/proxy_fidelity.py).

    ``eval_every`` steps (and at the end) the model is scored on the validation images,
    centre-cropped to ``val_crop`` (None: whole images). ``lr`` is 2e-3, twice the paper's:
    at 1e-3 the 300-step ranking agreed with the 1200-step one at Kendall tau 0.513, at 2e-3 (both
    budgets) 0.769, above the 0.6 target (13 designs, ``benchmarks/results/proxy_fidelity.json``).
    """

    lr: float = Field(2e-3, gt=0)
    """Peak learning rate (2e-3: twice the paper's, see the class docstring)."""
    steps: int = Field(300, ge=1)
    """Training steps of one proxy run."""
    batch: int = Field(8, ge=1)
    """Crops per step."""
    crop: int = Field(64, ge=8)
    """Side of the square training crops in pixels."""
    eval_every: int = Field(100, ge=1)
    """Validate every N steps (and at the end): the rungs early stopping judges."""
    val_crop: int | None = Field(128, ge=8)
    """Side of the centre crop of each validation image; null: whole images."""
    seeds: int = Field(1, ge=1, le=8)
    """Runs averaged into one score (every score and curve point is their mean), each from
    its own seed: a trial at seed s trains seeds s*n .. s*n+n-1. n times the cost for about
    1/sqrt(n) of one run's seed noise."""

    @model_serializer(mode="wrap")
    def _without_default_seeds(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """Dumps leave ``seeds`` out at 1: a study's identity, the score cache's keys and the
        stored benchmark budgets from before the field stay as they were."""
        out = handler(self)
        if self.seeds == 1:
            out.pop("seeds", None)
        return out

    def scaled(self, factor: float) -> ProxyBudget:
        """The same budget with ``factor`` times the steps (and evaluation interval)."""
        return self.model_copy(
            update={
                "steps": max(1, round(self.steps * factor)),
                "eval_every": max(1, round(self.eval_every * factor)),
            }
        )


def training_identity(task: TaskConfig, data: DataConfig, budget: ProxyBudget) -> dict[str, Any]:
    """What a proxy run's score depends on besides the model and the seed, as plain JSON: the
    task, the data (all but its cache size, which changes speed only) and the budget. The one
    definition of "trained alike": a study's fingerprint (``StudySpec.comparable``), the score
    cache's key and a confirmation's fidelity each contain it. Matting on composited images
    adds ``mattes``, the version of the compositing code (``trainers.mattes.VERSION``). The
    budget's ``seeds`` appears only above 1 (``ProxyBudget`` dumps leave it out at 1)."""
    fields = {"task": task.model_dump(mode="json"),
              "data": data.model_dump(mode="json", exclude={"cache_mb"}),
              "budget": budget.model_dump(mode="json")}  # fmt: skip
    if task.name == "matting" and not data.paired:
        from trainers.mattes import VERSION

        fields["mattes"] = VERSION
    return json.loads(json.dumps(fields))


class ProxyRuntime(StrictModel):
    """How a proxy run executes, not what it computes: none of these fields changes a score
    beyond float rounding, so none belongs in a study's fingerprint (``ProxyBudget`` does).

    - ``device``: ``auto`` (CUDA when available, else CPU), ``cpu`` or ``cuda``
      (``trainers.runtime.resolve_device``);
    - ``channels_last``: NHWC tensors (oneDNN's depthwise convolutions run ~2.5x faster on CPU);
    - ``fused_norm``: NAFNet's channel LayerNorm as one ``layer_norm`` kernel (instead of eight
      element-wise ones) during training; fast together with ``channels_last`` only;
    - ``fused_optimizer``: Adam(W)'s single-kernel implementation;
    - ``compile``: ``torch.compile`` (inductor) the training forward; validation stays eager. On
      CPU each new architecture costs a long compile (``benchmarks/proxy_speed.py``);
    - ``autocast``: ``bf16`` mixed precision in the training forward (a GPU option: CPUs without
      native bf16 run it many times slower).

    The defaults are the fastest CPU combination whose PSNR matched eager float32 within 0.1 dB
    in ``benchmarks/proxy_speed.py``.
    """

    device: Literal["auto", "cpu", "cuda"] = "auto"
    channels_last: bool = True
    fused_norm: bool = True
    fused_optimizer: bool = True
    compile: bool = False
    autocast: Literal["off", "bf16"] = "off"


EAGER = ProxyRuntime(channels_last=False, fused_norm=False, fused_optimizer=False)
"""Today's proxy before ``ProxyRuntime``: eager float32, NCHW, unfused (the speed baseline)."""


class Recipe(_Optim):
    """A full training run; defaults are the paper's SIDD recipe (Sec. 4.1): Adam
    (0.9, 0.9), no weight decay, lr 1e-3 -> 1e-7 cosine, 200K iterations, batch 32, 256 crops,
    PSNR loss. ``device``: ``auto`` (default: CUDA when torch sees a GPU, else the CPU), ``cpu``
    or ``cuda`` (the first GPU; data is prepared on the CPU either way; a resume on CUDA continues
    correctly but is not bit-exact). ``workers``: DataLoader processes making the batches (None:
    ``min(4, usable CPUs)``; 0: in the training process); the batches are the same either way
    (``trainers.loader``)."""

    optimizer: Literal["adam", "adamw"] = "adam"
    iterations: int = Field(200_000, ge=1)
    batch: int = Field(32, ge=1)
    crop: int = Field(256, ge=8)
    checkpoint_every: int = Field(1000, ge=1)
    keep_checkpoints: int = Field(2, ge=1)
    eval_every: int = Field(5000, ge=1)
    log_every: int = Field(100, ge=1)
    seed: int = 0
    threads: int | None = Field(None, ge=1)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    workers: int | None = Field(None, ge=0)


def _arch_in(value: Any) -> ArchConfig:
    if isinstance(value, ArchConfig):
        return value
    try:
        return ArchConfig.from_dict(value)  # raises ConfigError (a ValueError) naming the field
    except UnknownNameError as exc:  # a KeyError: pydantic would not catch it
        raise ConfigError(f"arch: {exc}") from None


ArchField = Annotated[
    ArchConfig,
    BeforeValidator(_arch_in),
    PlainSerializer(lambda a: a.to_dict(), return_type=dict),
]


class TrainConfig(StrictModel):
    """``unetmm train``: the architecture, the task, the data, the recipe, where to write.

    ``arch`` accepts an ``ArchConfig`` or the mapping ``ArchConfig.from_dict`` reads and is stored
    as an ``ArchConfig``; ``model_dump(mode="json")`` writes the mapping back. ``init``: a
    checkpoint a fresh run starts from (an official NAFNet/KBNet ``.pth`` or a unetmm
    ``model.pt``; the tensors it does not hold, e.g. a UNet-- design's skips, keep their
    initialisation; see ``nas.checkpoints``); a resumed run continues from its own checkpoint.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True,
                              allow_inf_nan=False)  # fmt: skip

    arch: ArchField
    task: TaskConfig = TaskConfig()
    data: DataConfig = DataConfig()
    recipe: Recipe = Recipe()
    out_dir: str = "runs/train"
    init: str | None = Field(None, min_length=1)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)


def format_error(exc: ValidationError, prefix: str = "") -> str:
    """The first validation problem as one line: ``field.path: message``."""
    err = exc.errors(include_url=False)[0]
    cause = (err.get("ctx") or {}).get("error")
    loc = ".".join(str(p) for p in err["loc"]) or "config"
    if isinstance(cause, ConfigError):  # nas names the field below arch (backbone.width: ...)
        text = str(cause)
        return f"{prefix}{text}" if text.startswith(loc) else f"{prefix}{loc}.{text}"
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        msg = "unknown field; check its spelling"
    more = len(exc.errors()) - 1
    return f"{prefix}{loc}: {msg}" + (f" (and {more} more problem(s))" if more else "")


def validate(model: type[StrictModel], data: Any, prefix: str = "") -> Any:
    """``model.model_validate(data)`` with errors as ``ConfigError(field: message)``."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_error(exc, prefix)) from None


def load_train_config(path: str | Path) -> TrainConfig:
    """Read and validate a training config (YAML or JSON); problems raise ``ConfigError``."""
    path = Path(path)
    data = read_yaml(path)
    if not isinstance(data, dict):
        raise ConfigError(f"config file {str(path)!r}: expected a mapping with an 'arch:' section")
    if "arch" not in data:
        raise ConfigError(f"arch: missing in {str(path)!r}; add the architecture to train")
    return validate(TrainConfig, data)
