"""``SpaceBounds``: the knobs a study may turn, and the backbone stages they apply to.

Users write the knobs under ``space.bounds`` in a study YAML; the study adds ``stage_channels``
(C_i of the *target* backbone), so a space knows which designs fit without building anything.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

DesignName = Literal["full", "none", "subset", "unetmm"]
# Sane maxima of the UNet-- knobs: E' of 4096 channels (16x the paper's 256) and eight
# ConvNeXt V2 blocks a header already cost more than the backbone they serve.
MAX_AGGREGATED_LOG2 = 12
MAX_IEM_DEPTH = 8


def _range(value: tuple[int, int]) -> tuple[int, int]:
    lo, hi = value
    if lo > hi:
        raise ValueError(f"low {lo} > high {hi}; write [low, high]")
    return value


class SpaceBounds(BaseModel):
    """Bounds of the skip-design spaces (stages are 1-based, E1 the shallowest).

    - ``designs``: families the ``skip_designs`` space chooses from; ``subset`` includes its
      extremes (every stage: full skips; no stage: no skips), so the default
      ``[subset, unetmm]`` covers all four without spending samples on the single points
      ``full`` and ``none`` (the reference points evaluate those first anyway);
    - ``ratio_log2``: [low, high] of log2 of the per-stage reduction ratio r_i (-4 is 1/16);
    - ``aggregated_log2``: [low, high] of log2 of the aggregated channels A (8 is 256);
    - ``iem_depth``: [low, high] ConvNeXt V2 blocks per IEM header;
    - ``target_stages``: aggregation stages allowed (None: every stage that fits);
    - ``search_stages``: also search which stages take part (else all take part);
    - ``stage_channels``: C_i of the target backbone (filled in by the study).
    """

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False,
                              use_attribute_docstrings=True)

    designs: tuple[DesignName, ...] = ("subset", "unetmm")
    """Families the skip_designs space chooses from: full, none, subset, unetmm."""
    ratio_log2: tuple[int, int] = (-6, -1)
    """[low, high] of log2 of UNet--'s per-stage channel-reduction ratio (-4 is 1/16)."""
    aggregated_log2: tuple[int, int] = (4, 9)
    """[low, high] of log2 of UNet--'s aggregated channels A (8 is 256; at most 12)."""
    iem_depth: tuple[int, int] = (0, 2)
    """[low, high] ConvNeXt V2 blocks per IEM header (at most 8)."""
    target_stages: tuple[int, ...] | None = None
    """Aggregation stages UNet-- may use; null: every stage that fits."""
    search_stages: bool = True
    """Also search which stages take part in UNet-- (else all do)."""
    stage_channels: tuple[int, ...] = Field(default=(), repr=False)
    """Set by the study from target.backbone; leave it out."""

    @field_validator("designs")
    @classmethod
    def _designs(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if not v:
            raise ValueError("needs at least one of full, none, subset, unetmm")
        if len(set(v)) != len(v):
            raise ValueError(f"lists a design twice: {list(v)}")
        return v

    @field_validator("ratio_log2")
    @classmethod
    def _ratio(cls, v: tuple[int, int]) -> tuple[int, int]:
        if v[1] > 0:
            raise ValueError(f"high {v[1]} > 0 would keep more channels than the stage has")
        return _range(v)

    @field_validator("aggregated_log2")
    @classmethod
    def _agg(cls, v: tuple[int, int]) -> tuple[int, int]:
        if v[0] < 0:
            raise ValueError(f"low {v[0]} < 0; A = 2**value channels, so use 0 or more")
        if v[1] > MAX_AGGREGATED_LOG2:
            raise ValueError(f"high {v[1]} > {MAX_AGGREGATED_LOG2}: A = 2**{v[1]} channels held "
                             f"as one map; use at most {MAX_AGGREGATED_LOG2} "
                             f"({2**MAX_AGGREGATED_LOG2} channels)")  # fmt: skip
        return _range(v)

    @field_validator("iem_depth")
    @classmethod
    def _depth(cls, v: tuple[int, int]) -> tuple[int, int]:
        if v[0] < 0:
            raise ValueError(f"low {v[0]} < 0; a header has 0 or more blocks")
        if v[1] > MAX_IEM_DEPTH:
            raise ValueError(f"high {v[1]} > {MAX_IEM_DEPTH} ConvNeXt V2 blocks per IEM header "
                             f"(the paper uses 1); use at most {MAX_IEM_DEPTH}")  # fmt: skip
        return _range(v)

    @model_validator(mode="after")
    def _targets(self) -> SpaceBounds:
        n = self.num_stages
        if n and self.target_stages is not None:
            bad = [t for t in self.target_stages if not 1 <= t <= n]
            if bad:
                raise ValueError(f"target_stages: {bad} out of range; the backbone has 1..{n}")
        if n and "unetmm" in self.designs and not self.allowed_targets():
            raise ValueError(
                f"target_stages: none fits stage channels {list(self.stage_channels)} (a stage "
                "deeper than the target must split into 4**depth pixel-shuffle groups)"
            )
        return self

    @property
    def num_stages(self) -> int:
        return len(self.stage_channels)

    def fits_target(self, t: int) -> bool:
        """Every deeper stage s can keep a multiple of 4**(s-t) channels (at most C_s)."""
        deeper = range(t + 1, self.num_stages + 1)
        return all(self.stage_channels[s - 1] % 4 ** (s - t) == 0 for s in deeper)

    def allowed_targets(self) -> tuple[int, ...]:
        """Aggregation stages the ``unetmm`` knobs choose from (deepest first)."""
        n = self.num_stages
        wanted = self.target_stages if self.target_stages is not None else range(1, n + 1)
        return tuple(sorted((t for t in set(wanted) if self.fits_target(t)), reverse=True))

    def for_backbone(self, stage_channels: tuple[int, ...]) -> SpaceBounds:
        """These bounds applied to a backbone with ``stage_channels`` (validated again)."""
        data = self.model_dump()
        data["stage_channels"] = tuple(stage_channels)
        return SpaceBounds(**data)
