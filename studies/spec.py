"""``StudySpec``: one search, validated from YAML (``load_spec``) or a shipped preset by name.

Example (``studies/presets/quick.yaml`` is a complete one)::

    name: quick
    storage: null                 # SQLAlchemy URL; null: sqlite:///unetmm.db in the working dir
    target:                       # what the costs are measured on
      backbone: nafnet-w32       # a preset name or a mapping {name: nafnet, width: 32, ...}
      input_size: 256             # or [height, width]
      bits: 8
      cost_engine: meta           # or fvcore (slower, same counting rules)
      tiling: {tile: 64, split: auto}  # the tiled executor's peak (peak_tiled); null: none
    proxy:                        # what accuracy is measured on
      backbone: null              # null: the target's family at width 16, one block a stage
      task: {name: denoise, sigma: 25}
      data: {train: builtin, val: builtin, val_limit: 2}
      budget: {steps: 200, eval_every: 50, batch: 4, crop: 48, val_crop: 64}
    space:
      name: skip_designs          # see search_spaces.SPACES
      bounds: {ratio_log2: [-5, -2], aggregated_log2: [5, 8], iem_depth: [0, 1]}
      references: [full, none, unetmm]   # evaluated first, never stopped early; [] for none
      points: []                  # your own skip designs, e.g. {name: unetmm, ratios: [...]}
    objectives: [psnr, m_sc, macs]
    constraints: ["m_sc <= 4 MiB", "macs <= 18 G"]
    sampler: tpe                  # tpe, nsga2, nsga3, random, gp, nni-evolution, nni-tpe,
                                  # nni-random (the nni extra); or {name: nsga2, ...options};
                                  # prefilter: false keeps designs over an M_sc limit as trials
    n_trials: 8                   # trials added by one run (a re-run adds as many again)
    concurrency: 2                # trials at once
    cpus_per_trial: 1
    gpus_per_trial: 0             # GPUs per trial, fractional (0.25: four trials share one)
    gpu_fallback: false           # true: without a GPU, run on the CPU (with a warning)
    worker_niceness: null         # trials' nice value (0-19); null: the search command's own
    early_stopping: {enabled: true, grace_steps: 100, reduction_factor: 2}
    recovery: {heartbeat_interval: 10, grace_period: 60, max_retry: 2}
    seed: 0
    score_cache: true             # reuse proxy scores trained before (studies.search.score_cache)

Every problem raises ``ConfigError`` with the field's path, e.g. ``n_trials: Input should be
greater than or equal to 1``. A study file is read with ``nas.config.read_yaml`` (size, UTF-8
and alias limits), its top-level keys are checked before anything else, and a YAML bool is
never taken for a number. ``check_inputs`` checks, before a search starts, what the fields
alone cannot tell: that the proxy's data folders exist and hold readable images. A storage URL
is dumped to JSON (the study's ``spec`` attribute) with its password masked.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import json
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    Field,
    FieldSerializationInfo,
    ValidationError,
    field_serializer,
    field_validator,
    model_validator,
)

from nas.config import read_yaml
from nas.cost.memory import BIT_WIDTHS
from nas.errors import ConfigError, UnetmmError
from nas.presets import BACKBONE_PRESETS, backbone_preset
from nas.registry import BACKBONES
from search_spaces import REFERENCE_NAMES, SPACES, SpaceBounds, encode_point, get_space
from search_spaces import reference_points as _reference_points
from studies.constraints import Constraint
from studies.metrics import get_metric, objective_names
from studies.search.samplers import SAMPLERS, make_sampler
from trainers.config import (
    DataConfig,
    ProxyBudget,
    StrictModel,
    TaskConfig,
    format_error,
    training_identity,
)

PRESETS_DIR = "presets"  # package data of ``studies``
BackboneField = str | dict[str, Any]


def resolve_backbone(value: BackboneField, where: str) -> Any:
    """A backbone config from a preset name (``nafnet-w32``) or a mapping with ``name``."""
    if isinstance(value, str):
        if value not in BACKBONE_PRESETS:
            raise ConfigError(
                f"{where}: unknown backbone preset {value!r}; choose one of "
                f"{BACKBONE_PRESETS.names()} or write a mapping like {{name: nafnet, width: 32}}"
            )
        return backbone_preset(value)
    fields = dict(value)
    name = fields.pop("name", None)
    if name not in BACKBONES:
        raise ConfigError(f"{where}.name: {name!r} is not a backbone; choose one of "
                          f"{BACKBONES.names()}")  # fmt: skip
    try:
        return BACKBONES.get(name).from_fields(fields, where)
    except ConfigError as exc:  # nas names its fields "backbone.x"; name them where they are
        text = str(exc)
        raise ConfigError(where + text.removeprefix("backbone") if text.startswith("backbone.")
                          else text) from None  # fmt: skip


class TilingSpec(StrictModel):
    """The tiled executor every trial is also costed under (``nas.tiling``): square tiles of
    ``tile`` input pixels; ``split``: the deepest stage run in tiles, or ``auto`` (the split
    with the least peak). Its peak is the metric ``peak_tiled``, its extra work
    ``recompute_macs``."""

    tile: int = Field(64, ge=1)
    """Side of the square tiles in input pixels (a multiple of the split's stride, at most the input)."""
    split: int | Literal["auto"] = "auto"
    """The deepest stage run in tiles (1..N), or auto: the split with the least peak."""


class TargetSpec(StrictModel):
    """The deployed model the costs describe."""

    backbone: BackboneField = "nafnet-w32"
    """The deployed backbone: a preset name (nafnet-w32, unet, mscan-tiny, ...) or a mapping {name: nafnet, width: 32, ...}."""
    input_size: tuple[int, int] = (256, 256)
    """[height, width] (or one number) the costs are measured at."""
    bits: int = 8
    """Bits per activation for every memory cost: 4, 8, 16 or 32."""
    batch: int = Field(1, ge=1)
    """Images per forward pass for the costs."""
    cost_engine: Literal["meta", "fvcore"] = "meta"
    """meta (shape-only, milliseconds) or fvcore (a real CPU forward; the same counts)."""
    tiling: TilingSpec | None = TilingSpec()
    """The tiled executor every design is also costed under (peak_tiled, recompute_macs); null: none."""

    @field_validator("input_size", mode="before")
    @classmethod
    def _size(cls, v: Any) -> Any:
        return (v, v) if isinstance(v, int) else v

    @field_validator("input_size")
    @classmethod
    def _positive(cls, v: tuple[int, int]) -> tuple[int, int]:
        if min(v) < 1:
            raise ValueError(f"sizes must be >= 1, got {list(v)}")
        return v

    @field_validator("bits")
    @classmethod
    def _bits(cls, v: int) -> int:
        if v not in BIT_WIDTHS:
            raise ValueError(f"{v} is not supported; use one of {list(BIT_WIDTHS)}")
        return v

    @field_validator("backbone")
    @classmethod
    def _backbone(cls, v: BackboneField) -> BackboneField:
        resolve_backbone(v, "target.backbone")
        return v

    def backbone_config(self) -> Any:
        return resolve_backbone(self.backbone, "target.backbone")

    def check_tiling(self) -> None:
        """``ConfigError`` naming ``target.tiling`` when its tile or split cannot run the target
        backbone at this input size (checked on full skips: every design tiles alike)."""
        if self.tiling is None:
            return
        from nas import ArchConfig, FullSkipsConfig
        from nas.tiling import check_tiling

        arch = ArchConfig(self.backbone_config(), FullSkipsConfig())
        try:
            check_tiling(arch, self.input_size, self.tiling.tile, self.tiling.split)
        except ConfigError as exc:
            raise ConfigError(f"target.tiling.{exc}; or tiling: null for no tiled costs") from None


class ProxySpec(StrictModel):
    """The short training run that scores accuracy (see ``trainers.proxy``)."""

    backbone: BackboneField | None = None
    """The proxy's backbone (preset name or mapping); null: the target's family at proxy width, one block a stage."""
    task: TaskConfig = TaskConfig()
    """The synthetic task the proxy learns."""
    data: DataConfig = DataConfig()
    """Where the proxy's images come from."""
    budget: ProxyBudget = ProxyBudget()
    """The proxy run's optimizer, schedule, steps, crops and validations."""

    @field_validator("backbone")
    @classmethod
    def _backbone(cls, v: BackboneField | None) -> BackboneField | None:
        if v is not None:
            resolve_backbone(v, "proxy.backbone")
        return v

    def backbone_config(self, target_backbone: Any) -> Any:
        """The proxy backbone; the target's family at proxy width when not given."""
        from trainers.proxy import default_proxy_backbone

        if self.backbone is None:
            return default_proxy_backbone(target_backbone)
        return resolve_backbone(self.backbone, "proxy.backbone")


class SpaceSpec(StrictModel):
    """Which space, its bounds, and the designs to evaluate first."""

    name: str = "skip_designs"
    """The search space: skip_designs (all families), unetmm (UNet-- knobs only), or their flat twins skip_designs_flat, unetmm_flat."""
    bounds: SpaceBounds = SpaceBounds()
    """The knobs' ranges."""
    references: tuple[str, ...] = REFERENCE_NAMES
    """Reference points judged first, never stopped early: any of full, none, unetmm; [] for none."""
    points: tuple[dict[str, Any], ...] = ()
    """Your own skip designs to judge first, e.g. {name: unetmm, ratios: [...]}."""

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if v not in SPACES:
            raise ValueError(f"unknown space {v!r}; choose one of {SPACES.names()}")
        return v

    @field_validator("bounds")
    @classmethod
    def _no_channels(cls, v: SpaceBounds) -> SpaceBounds:
        if v.stage_channels:
            raise ValueError("stage_channels is set from target.backbone; remove it")
        return v

    @field_validator("references")
    @classmethod
    def _refs(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        bad = [r for r in v if r not in REFERENCE_NAMES]
        if bad:
            raise ValueError(f"unknown {bad}; choose from {list(REFERENCE_NAMES)} or [] for none")
        return v


class SamplerSpec(StrictModel):
    """An Optuna sampler by name, with options passed to its constructor; ``prefilter`` (on by
    default) redraws proposals that break a constraint known from shapes alone (M_sc) before
    they become trials (``studies.search.feasibility``)."""

    name: str = "tpe"
    """tpe, nsga2, nsga3, random, gp, or (the nni extra) nni-evolution, nni-tpe, nni-random."""
    options: dict[str, Any] = Field(default_factory=dict)
    """Options passed to the sampler's constructor (checked against its signature)."""
    prefilter: bool = True
    """Redraw proposals over an M_sc limit before they become trials."""

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        if isinstance(data, str):
            return {"name": data}
        own = ("name", "prefilter")
        if isinstance(data, dict) and "options" not in data:
            return {**{k: data[k] for k in own if k in data},
                    "options": {k: v for k, v in data.items() if k not in own}}  # fmt: skip
        return data

    @field_validator("name")
    @classmethod
    def _known(cls, v: str) -> str:
        if v not in SAMPLERS:
            raise ValueError(f"unknown sampler {v!r}; choose one of {SAMPLERS.names()}")
        return v


class EarlyStoppingSpec(StrictModel):
    """Stopping proxy runs early at rungs of ``grace_steps * reduction_factor**k`` steps
    (``studies.search.early_stopping``): ``rule: pareto`` stops a run only when a run at least
    as cheap on every cost objective was more than ``margin_db`` ahead at the rung; ``rule:
    asha`` keeps the best 1/``reduction_factor`` by PSNR alone. Reference points are never
    stopped unless ``exempt_references`` is false."""

    enabled: bool = True
    """Stop proxy runs early at rungs (false: train every trial fully)."""
    rule: Literal["pareto", "asha"] = "pareto"
    """pareto (stop only when a design at least as cheap was ahead) or asha (PSNR alone)."""
    grace_steps: int = Field(100, ge=1)
    """The first rung, in steps."""
    reduction_factor: float = Field(2.0, gt=1)
    """Rungs at grace_steps * reduction_factor**k steps."""
    margin_db: float = Field(0.5, ge=0)
    """pareto: how far ahead (dB) a cheaper design must be to stop a run."""
    exempt_references: bool = True
    """Never stop the reference points."""

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        return {"enabled": data} if isinstance(data, bool) else data


class RecoverySpec(StrictModel):
    """Finding trials a killed search left RUNNING: each live trial's driver records a heartbeat
    every ``heartbeat_interval`` s; a RUNNING trial whose driver process is gone (same host) or
    whose heartbeat is older than ``grace_period`` s is failed and re-queued (``max_retry``)."""

    heartbeat_interval: int = Field(10, ge=1)
    """Seconds between a running trial's heartbeats."""
    grace_period: int = Field(60, ge=1)
    """A RUNNING trial without a heartbeat for this many seconds is failed and re-queued."""
    max_retry: int = Field(2, ge=0)
    """How often a failed trial is re-queued."""


_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
MAX_NAME = 128  # Optuna's column holds 512; a name is typed and read by people


def name_problem(name: str) -> str | None:
    """What is wrong with ``name`` as a study name (None: nothing)."""
    if not _NAME.match(name):
        return (f"{name!r}: use letters, digits, '_', '.', '-' (no spaces), starting with a "
                "letter or digit")  # fmt: skip
    if len(name) > MAX_NAME:
        return f"is {len(name)} characters long; use at most {MAX_NAME}"
    return None


def check_study_name(name: str, field: str = "name") -> str:
    """``name`` if it is a valid study name (the rule of ``StudySpec.name``), else ConfigError."""
    problem = name_problem(name)
    if problem is not None:
        raise ConfigError(f"{field}: {problem}")
    return name


class StudySpec(StrictModel):
    """A whole study; see the module docstring for the YAML."""

    name: str
    """The study's name in the storage (letters, digits, _ . -)."""
    storage: str | None = None
    """SQLAlchemy URL of the storage; null: sqlite:///unetmm.db in the working folder."""
    target: TargetSpec = TargetSpec()
    """The deployed model the costs describe."""
    proxy: ProxySpec = ProxySpec()
    """The short training run that scores accuracy."""
    space: SpaceSpec = SpaceSpec()
    """What is searched."""
    objectives: tuple[str, ...] = ("psnr", "m_sc", "macs")
    """Metrics the study optimises (studies/metrics.py): psnr, ssim, sad, mse, m_sc, macs, params, peak_memory, peak_tiled, recompute_macs."""
    constraints: tuple[str, ...] = ()
    """Limits with units, e.g. 'm_sc <= 0.25 MiB', 'peak_tiled <= 3 MiB', 'macs <= 18 G', 'psnr >= 28'."""
    sampler: SamplerSpec = SamplerSpec()
    """The Optuna (or NNI) sampler, by name or {name: ..., options}."""
    n_trials: int = Field(20, ge=1)
    """Designs one run judges (trains); infeasible proposals and copies cost none."""
    concurrency: int = Field(2, ge=1)
    """Trials at once."""
    cpus_per_trial: int = Field(1, ge=1)
    """CPUs (threads) per trial."""
    gpus_per_trial: float = Field(0.0, ge=0)
    """GPUs per trial, fractional (0.25: four trials share a GPU)."""
    gpu_fallback: bool = False
    """Without a GPU, run a GPU study on the CPU (with a warning) instead of refusing."""
    worker_niceness: int | None = Field(None, ge=0, le=19)
    """Nice value (0-19) of the trial workers; null: the search command's own."""
    early_stopping: EarlyStoppingSpec = EarlyStoppingSpec()
    """Stopping proxy runs early at rungs."""
    recovery: RecoverySpec = RecoverySpec()
    """Finding trials a killed search left RUNNING."""
    seed: int = Field(0, ge=0, le=2**32 - 1)  # numpy's and Optuna's samplers take 0..2**32-1
    """Seed of the sampler and the proxy (0..2**32-1)."""
    score_cache: bool = True
    """Reuse proxy scores trained before by any study (same design, task, data, budget, seed, code)."""

    @field_validator("name")
    @classmethod
    def _study_name(cls, v: str) -> str:
        problem = name_problem(v)
        if problem is not None:
            raise ValueError(problem)
        return v

    @field_serializer("storage")
    def _storage_masked(self, v: str | None, info: FieldSerializationInfo) -> str | None:
        """In JSON (what the study stores and shows), the URL's password is masked."""
        from studies.storage import shown

        return shown(v) if v is not None and info.mode == "json" else v

    @field_validator("storage")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        if v is not None and "://" not in v:
            raise ValueError(
                f"{v!r} is not a SQLAlchemy URL; write sqlite:///path/to/study.db or "
                "postgresql+psycopg://user@host:5432/db"
            )
        if v is not None:
            from studies.storage import normalize_url

            normalize_url(v, "storage")  # ConfigError: names the field itself
        return v

    @field_validator("objectives")
    @classmethod
    def _objectives(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        known = objective_names()
        bad = [o for o in v if o not in known]
        if bad or not v:
            raise ValueError(f"unknown {bad}; choose from {known}" if bad else
                             f"needs at least one of {known}")  # fmt: skip
        if len(set(v)) != len(v):
            raise ValueError(f"lists an objective twice: {list(v)}")
        return v

    @field_validator("constraints")
    @classmethod
    def _constraints(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        seen: dict[str, int] = {}
        limited: dict[tuple[str, str], int] = {}
        for i, text in enumerate(v):
            c = Constraint.parse(text, f"constraints[{i}]")
            if c.name in seen:
                raise ConfigError(f"constraints[{i}]: {text!r} is constraints[{seen[c.name]}] "
                                  f"again ({c.name!r}); remove one")  # fmt: skip
            c.check(f"constraints[{i}]")
            if (c.metric, c.op) in limited:
                j = limited[c.metric, c.op]
                raise ConfigError(f"constraints[{i}]: {c.metric} is limited by constraints[{j}] "
                                  f"already ({v[j]!r}); keep the one you mean")  # fmt: skip
            seen[c.name], limited[c.metric, c.op] = i, i
        return v

    @model_validator(mode="after")
    def _fits_together(self) -> StudySpec:
        target = self.target.backbone_config()
        self.target.check_tiling()
        bounds = self.bounds  # the space's knobs applied to the target backbone
        for i, point in enumerate(self.space.points):
            encode_point(get_space(self.space.name), point, bounds, f"space.points[{i}]")
        self.proxy.backbone_config(target)
        make_sampler(self.sampler.name, self.seed, self.sampler.options)
        task = self.proxy.task.name
        named = [("objectives", o) for o in self.objectives]
        named += [(f"constraints[{i}]", c.metric) for i, c in enumerate(self.parsed_constraints)]
        for where, name in named:
            if get_metric(name).executor == "tiled" and self.target.tiling is None:
                raise ConfigError(f"{where}: {name} is measured under the tiled executor, and "
                                  "target.tiling is null; set target.tiling: {tile: 64}")  # fmt: skip
            tasks = get_metric(name).tasks
            if tasks is not None and task not in tasks:
                raise ConfigError(f"{where}: {name} is measured by the {' or '.join(tasks)} task "
                                  f"only; this study's proxy.task.name is {task!r}")  # fmt: skip
        budget, grace = self.proxy.budget, self.early_stopping.grace_steps
        if self.early_stopping.enabled and grace >= budget.steps:
            raise ConfigError(
                f"early_stopping.grace_steps: {grace} is not below proxy.budget.steps "
                f"{budget.steps}; lower it or set early_stopping: false"
            )
        if self.early_stopping.enabled and self.last_rung_step < grace:
            raise ConfigError(
                f"early_stopping.grace_steps: no validation (every proxy.budget.eval_every = "
                f"{budget.eval_every} steps) falls in [{grace}, {budget.steps}), so ASHA would "
                "judge final scores; "
                + (f"lower it to {self.last_rung_step} or less" if self.last_rung_step else
                   "lower proxy.budget.eval_every")  # fmt: skip
            )
        return self

    # -- derived -------------------------------------------------------------------------
    @property
    def last_rung_step(self) -> int:
        """The last proxy validation before the final one (0: none): ASHA's rungs stay at or
        below it, so every trial that reaches the final step has passed the top rung already
        and is never stopped on its final score."""
        b = self.proxy.budget
        return (b.steps - 1) // b.eval_every * b.eval_every

    def comparable(self) -> dict[str, Any]:
        """What makes trial results of two runs comparable (``fingerprint`` hashes it): the
        target's costs (resolved backbone, input size, bits, batch) and the proxy's training
        (resolved backbone, task, data but its cache size, budget) and the seed. Everything else
        (n_trials, concurrency, sampler, space, constraints, storage, score_cache, ...) may
        change between runs of one study."""
        target = self.target.backbone_config()
        fields = {
            "target.backbone": target.to_dict(),
            "target.input_size": self.target.input_size,
            "target.bits": self.target.bits,
            "target.batch": self.target.batch,
            "proxy.backbone": self.proxy.backbone_config(target).to_dict(),
            **{f"proxy.{k}": v for k, v in training_identity(
                self.proxy.task, self.proxy.data, self.proxy.budget).items()},
            "seed": self.seed,
        }
        return json.loads(json.dumps(fields))  # plain JSON types, as stored in the study

    @property
    def fingerprint(self) -> str:
        """16 hex digits hashing ``comparable()``."""
        return fingerprint(self.comparable())

    @property
    def bounds(self) -> SpaceBounds:
        """The space bounds with the target backbone's stage channels filled in."""
        channels = self.target.backbone_config().stage_channels
        try:
            return self.space.bounds.for_backbone(channels)
        except ValidationError as exc:
            err = exc.errors(include_url=False)[0]
            loc = "".join(f".{p}" for p in err["loc"])
            msg = err["msg"].removeprefix("Value error, ")
            raise ConfigError(f"space.bounds{loc}: {msg}") from None

    @property
    def parsed_constraints(self) -> tuple[Constraint, ...]:
        return tuple(
            Constraint.parse(c, f"constraints[{i}]") for i, c in enumerate(self.constraints)
        )

    @property
    def directions(self) -> list[str]:
        """Optuna directions, in the order of ``objectives``."""
        return [get_metric(o).direction for o in self.objectives]

    @property
    def objective_keys(self) -> list[str]:
        """The trial user-attribute (and result) key of each objective."""
        return [get_metric(o).key for o in self.objectives]

    @property
    def needs_training(self) -> bool:
        """Whether any objective or constraint needs the proxy's accuracy."""
        wanted = [get_metric(o) for o in self.objectives] + [c.row for c in self.parsed_constraints]
        return any(not m.cost for m in wanted)

    def reference_params(self) -> dict[str, dict[str, Any] | None]:
        """``name -> params`` of each reference point (None where the space cannot express it)."""
        space = get_space(self.space.name)
        return _reference_points(space, self.bounds, self.target.backbone_config(),
                                 self.space.references)  # fmt: skip

    def point_params(self) -> list[dict[str, Any]]:
        space, bounds = get_space(self.space.name), self.bounds
        return [encode_point(space, p, bounds, f"space.points[{i}]")
                for i, p in enumerate(self.space.points)]  # fmt: skip

    def check_inputs(self) -> None:
        """What can go wrong before the first trial beyond the fields themselves: the proxy's
        data folders (when a trial trains) exist and hold images that can be read."""
        if self.needs_training:
            from nas import ArchConfig, FullSkipsConfig
            from nas.cost.fits import check_fits
            from trainers.data import check_data

            b = self.proxy.budget
            proxy = self.proxy.backbone_config(self.target.backbone_config())
            if self.gpus_per_trial == 0:
                check_fits(ArchConfig(proxy, FullSkipsConfig()), b.batch, b.crop,
                           "a proxy trial (full skips)", "proxy.budget.batch/crop")  # fmt: skip
            check_data(self.proxy.data, "proxy.data")

    def with_overrides(self, **changes: Any) -> StudySpec:
        """A validated copy with top-level fields replaced (None values are ignored)."""
        data = self.model_dump(mode="python")
        data.update({k: v for k, v in changes.items() if v is not None})
        return parse_spec(data, "")


# -- loading ---------------------------------------------------------------------------------
def fingerprint(fields: dict[str, Any]) -> str:
    """16 hex digits naming plain-JSON ``fields`` (a study's ``comparable()``, a confirmation's
    fidelity): equal fields, equal fingerprint, in every process."""
    text = json.dumps(fields, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def parse_spec(data: Any, source: str) -> StudySpec:
    """Validate a mapping as a ``StudySpec``; problems raise one-line ``ConfigError``."""
    prefix = f"{source}: " if source else ""
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix}expected a mapping of study fields (name, target, ...)")
    unknown = [str(k) for k in data if k not in StudySpec.model_fields]
    if unknown:  # before validating the rest, however large
        raise ConfigError(f"{prefix}{unknown[0]}: unknown field; check its spelling (fields: "
                          f"{', '.join(StudySpec.model_fields)})")  # fmt: skip
    try:
        return StudySpec.model_validate(data)
    except UnetmmError as exc:
        raise ConfigError(f"{prefix}{exc}") from None
    except ValidationError as exc:
        raise ConfigError(_one_line(exc, prefix)) from None


def _one_line(exc: ValidationError, prefix: str) -> str:
    """The first problem as ``field.path: message`` (a ConfigError raised by a whole-spec check
    already names its field)."""
    err = exc.errors(include_url=False)[0]
    cause = (err.get("ctx") or {}).get("error")
    if isinstance(cause, ConfigError) and not err["loc"]:
        return f"{prefix}{cause}"
    return format_error(exc, prefix)


def _presets() -> Any:
    return importlib.resources.files("studies").joinpath(PRESETS_DIR)


def preset_names() -> list[str]:
    root = _presets()
    return sorted(p.name.rsplit(".", 1)[0] for p in root.iterdir() if p.name.endswith(".yaml"))


def load_spec(source: str | Path) -> StudySpec:
    """A ``StudySpec`` from a YAML file path or a preset name (``quick``, ``nafnet_sidd``)."""
    path = Path(source)
    if path.suffix in (".yaml", ".yml") or path.exists():
        return parse_spec(read_yaml(path, "study file"), str(path))
    name = str(source)
    if name not in preset_names():
        raise ConfigError(
            f"study {name!r}: no such file and no such preset; presets: {preset_names()}"
        )
    with importlib.resources.as_file(_presets().joinpath(f"{name}.yaml")) as preset:
        return parse_spec(read_yaml(preset, "preset"), f"preset {name}")
