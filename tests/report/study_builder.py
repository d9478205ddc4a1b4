"""A small REAL unetmm study in a SQLite file, for the report, dashboard and export tests.

Each trial samples a skip design for NAFNet-w16, builds its real ``ArchConfig``, measures its real
costs at 64x64 (``nas.measure_cost(engine="meta")``) and writes exactly the attributes of
``studies.schema``. Only the accuracy is fake: a deterministic function of the measured costs
(no training). The study also holds what a real search produces besides clean trials:

- constraints named and valued as the search writes them (``studies.constraints``):
  ``"m_sc <= 40 KiB"`` (hard: checked before training) and ``"psnr >= 22 dB"`` (checked after);
- the three reference points (full skips, no skips, UNet--), evaluated first;
- trials over the M_sc limit, full skips among them (status ``infeasible``, Optuna PRUNED, costs
  only, no PSNR);
- trials that trained but miss the PSNR floor: no skips (M_sc 0) is one, so it is COMPLETE
  with status ``complete`` and still infeasible; a front that ignored constraint values would
  start with it;
- trials the scheduler stopped early (status ``stopped``, Optuna PRUNED); their partial PSNR is
  deliberately made *better* than any complete trial's, so a front that let them in would show;
- designs that do not fit the backbone (Optuna FAIL, status ``failed``).
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from pathlib import Path

import optuna

import nas
from nas.presets import backbone_preset, reference_designs
from studies import schema
from studies.metrics import cost_metrics

INPUT = (64, 64)
BITS = 8
M_SC_LIMIT = 40 * 1024  # bytes: full skips (120 KiB) and big subsets break it
PSNR_FLOOR = 22.0  # dB: no skips (21.4 dB here) breaks it
M_SC_CONSTRAINT = "m_sc <= 40 KiB"
PSNR_CONSTRAINT = "psnr >= 22 dB"


@dataclasses.dataclass(frozen=True)
class BuiltStudy:
    path: Path | str  # the SQLite file, or the URL of another database
    url: str
    name: str
    m_sc_limit: int
    n_trials: int


def design_label(arch: nas.ArchConfig) -> str:
    skip = arch.skip
    if skip.name == "subset":
        return f"subset {list(skip.stages)}"
    if skip.name == "unetmm":
        return (
            f"unetmm t={skip.target_stage or 4} A={skip.aggregated_channels} "
            f"r={[round(1 / r) for r in skip.ratios]} d={skip.iem_depth}"
        )
    return skip.name


def sample_arch(trial: optuna.Trial) -> nas.ArchConfig:
    backbone = backbone_preset("nafnet-w16")
    kind = trial.suggest_categorical("skip", ["subset", "unetmm"])  # "none" is a reference
    if kind == "subset":
        first = trial.suggest_int("subset_first", 1, 4)
        last = trial.suggest_int("subset_last", first, 4)
        return nas.ArchConfig(backbone, nas.SubsetSkipsConfig(tuple(range(first, last + 1))))
    divisor = trial.suggest_categorical("ratio_divisor", [4, 8, 16])
    skip = nas.UNetMMConfig(
        ratios=(1 / divisor,) * 4,
        target_stage=trial.suggest_int("target_stage", 2, 4),
        aggregated_channels=trial.suggest_categorical("aggregated_channels", [16, 64, 256]),
        iem_depth=trial.suggest_int("iem_depth", 0, 2),
    )
    return nas.ArchConfig(backbone, skip)


def fake_psnr(m_sc: int, macs: int, full_macs: int) -> float:
    """Deterministic stand-in for a proxy's PSNR: more skip memory and compute help, saturating."""
    return round(
        20.0 + 9.0 * (1 - math.exp(-m_sc / 12000)) + 2.0 * math.log(macs / full_macs + 1), 4
    )


def build_study(
    path: Path | str, name: str = "report-test", n_trials: int = 24, seed: int = 3
) -> BuiltStudy:
    """Run a cheap but real unetmm-shaped study into the SQLite file ``path`` (or a storage URL).

    The same arguments give the same trials (seeded sampler, deterministic costs and scores)."""
    url = path if isinstance(path, str) and "://" in path else f"sqlite:///{path}"
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    references = reference_designs(backbone_preset("nafnet-w16"))
    full_macs = nas.measure_cost(references["full"], INPUT, 1, BITS, "meta").macs
    study = optuna.create_study(  # run in memory, then copy: one SQL transaction per trial
        study_name=name,
        directions=["maximize", "minimize", "minimize"],
        sampler=optuna.samplers.RandomSampler(seed=seed),
    )
    study.set_user_attr("objectives", ["psnr", "m_sc", "macs"])
    spec = {
        "name": name,
        "proxy": {  # proxy-only data settings, which export must not carry over
            "task": {"name": "denoise", "sigma": 30},
            "data": {"val_limit": 1, "cache_mb": 64},
        },
        "constraints": [M_SC_CONSTRAINT, PSNR_CONSTRAINT],
    }
    study.set_user_attr("spec", spec)  # a part of the StudySpec the search stores
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names(["psnr", "m_sc", "macs"])
    fixed: dict[int, tuple[str, nas.ArchConfig]] = {}

    def objective(trial: optuna.Trial) -> tuple[float, float, float]:
        if trial.number in fixed:
            ref, arch = fixed[trial.number]
            trial.set_user_attr(schema.ATTR_REFERENCE, ref)
        else:
            ref, arch = None, sample_arch(trial)
        trial.set_user_attr(schema.ATTR_ARCH, arch.to_dict())
        trial.set_user_attr(schema.ATTR_PROXY_ARCH, arch.to_dict())
        trial.set_user_attr(schema.ATTR_DESIGN, design_label(arch))
        try:
            cost = nas.measure_cost(arch, INPUT, 1, BITS, "meta")
        except nas.ConfigError as exc:
            trial.set_user_attr(schema.ATTR_STATUS, schema.STATUS_FAILED)
            trial.set_user_attr("error", str(exc))
            raise
        for m in cost_metrics():
            trial.set_user_attr(m.key, m.from_cost(cost))
        trial.set_user_attr("m_sc_timeline", [list(x) for x in cost.m_sc_timeline])
        trial.set_user_attr("bits", BITS)
        trial.set_user_attr("input_size", list(INPUT))
        trial.set_user_attr("seconds_cost", cost.seconds)
        trial.set_constraint(M_SC_CONSTRAINT, cost.m_sc_bytes / 1024 - M_SC_LIMIT / 1024)
        if cost.m_sc_bytes > M_SC_LIMIT:  # a hard constraint: not trained
            trial.set_user_attr(schema.ATTR_STATUS, schema.STATUS_INFEASIBLE)
            trial.set_user_attr("broken", [M_SC_CONSTRAINT])
            raise optuna.TrialPruned()
        psnr = fake_psnr(cost.m_sc_bytes, cost.macs, full_macs)
        stopped = ref is None and trial.number % 5 == 4
        if stopped:  # partial score, made better than any complete one (see module docstring)
            psnr += 6.0
        trial.set_user_attr("psnr", psnr)
        trial.set_user_attr("ssim", round(psnr / 40.0, 4))
        trial.set_user_attr("curve", [[100, psnr - 2.0], [200, psnr]])
        trial.set_user_attr("seconds_train", 0.0)
        trial.set_user_attr("seconds", cost.seconds)
        if stopped:
            trial.set_user_attr(schema.ATTR_STATUS, schema.STATUS_STOPPED)
            raise optuna.TrialPruned()
        trial.set_constraint(PSNR_CONSTRAINT, PSNR_FLOOR - psnr)
        trial.set_user_attr(schema.ATTR_STATUS, schema.STATUS_COMPLETE)
        return psnr, float(cost.m_sc_bytes), float(cost.macs)

    for i, (ref, arch) in enumerate(references.items()):
        fixed[i] = (ref, arch)
    study.optimize(objective, n_trials=n_trials + len(fixed), catch=(nas.ConfigError,))
    optuna.copy_study(from_study_name=name, from_storage=study._storage, to_storage=url)
    return BuiltStudy(path, url, name, M_SC_LIMIT, n_trials + len(fixed))
