"""A small REAL unetmm study in a SQLite file, for the report, dashboard and export tests.

Each trial samples a skip design for NAFNet-w16, builds its real ``ArchConfig``, measures its real
costs at 64x64 (``nas.measure_cost(engine="meta")``) and is written by the search's own writer
(``studies.search.outcome.apply``), so it holds exactly what ``studies.schema`` says (and
``build_legacy_study`` writes the same trials the way older unetmm versions did). Only the accuracy is fake: a deterministic function of the measured costs
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
from pathlib import Path
from typing import BinaryIO

import optuna

import nas
from nas.presets import backbone_preset, reference_designs
from studies import compat, schema
from studies.metrics import cost_metrics, get_metric

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


@dataclasses.dataclass
class Record:
    """One trial as the search would end it: state, objective values, attributes, constraints."""

    params: dict
    distributions: dict
    state: optuna.trial.TrialState
    values: list[float] | None
    attrs: dict
    constraints: dict[str, float]


def _records(n_trials: int, seed: int) -> list[Record]:
    """The trials of the study, sampled in memory (seeded) and scored without training."""
    references = reference_designs(backbone_preset("nafnet-w16"))
    full_macs = nas.measure_cost(references["full"], INPUT, 1, BITS, "meta").macs
    psnr_key, macs_key = get_metric("psnr").key, get_metric("macs").key
    sampler_study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    out: list[Record] = []
    fixed = list(references.items())
    for number in range(n_trials + len(fixed)):
        trial = sampler_study.ask()
        attrs: dict = {}
        if number < len(fixed):
            ref, arch = fixed[number]
            attrs[schema.ATTR_REFERENCE] = ref
        else:
            ref, arch = None, sample_arch(trial)
        attrs.update({schema.ATTR_ARCH: arch.to_dict(), schema.ATTR_PROXY_ARCH: arch.to_dict(),
                      schema.ATTR_ARCH_KEY: arch.key(), schema.ATTR_DESIGN: design_label(arch)})  # fmt: skip
        done = optuna.trial.TrialState.PRUNED
        record = Record(trial.params, trial.distributions, done, None, attrs, {})
        sampler_study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        out.append(record)
        try:
            cost = nas.measure_cost(arch, INPUT, 1, BITS, "meta")
        except nas.ConfigError as exc:
            attrs.update({schema.ATTR_STATUS: schema.STATUS_FAILED, "error": str(exc)})
            record.state = optuna.trial.TrialState.FAIL
            continue
        attrs.update({m.key: m.from_cost(cost) for m in cost_metrics()})
        attrs.update({schema.M_SC_TIMELINE: [list(x) for x in cost.m_sc_timeline], "bits": BITS,
                      "input_size": list(INPUT), "seconds_cost": cost.seconds})  # fmt: skip
        record.constraints[M_SC_CONSTRAINT] = cost.m_sc_bytes / 1024 - M_SC_LIMIT / 1024
        if cost.m_sc_bytes > M_SC_LIMIT:  # a hard constraint: not trained
            attrs.update({schema.ATTR_STATUS: schema.STATUS_INFEASIBLE,
                          schema.ATTR_BROKEN: [M_SC_CONSTRAINT]})  # fmt: skip
            continue
        psnr = fake_psnr(cost.m_sc_bytes, cost.macs, full_macs)
        stopped = ref is None and number % 5 == 4
        if stopped:  # partial score, made better than any complete one (see module docstring)
            psnr += 6.0
        attrs.update({schema.CURVE: [[100, psnr - 2.0], [200, psnr]], "seconds_train": 0.0,
                      "seconds": cost.seconds, psnr_key: psnr, "ssim": round(psnr / 40.0, 4)})  # fmt: skip
        if stopped:
            attrs[schema.ATTR_STATUS] = schema.STATUS_STOPPED
            continue
        record.constraints[PSNR_CONSTRAINT] = PSNR_FLOOR - psnr
        attrs[schema.ATTR_STATUS] = schema.STATUS_COMPLETE
        record.state = optuna.trial.TrialState.COMPLETE
        record.values = [psnr, float(cost.m_sc_bytes), float(cost.macs)]
        assert attrs[macs_key] == cost.macs
    return out


def _study_attrs(study: optuna.Study, name: str) -> None:
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


class _Collected:
    """An artifact store that keeps the bodies it is given (written later in one transaction)."""

    def __init__(self) -> None:
        self.bodies: dict[str, bytes] = {}

    def write(self, artifact_id: str, content_body: BinaryIO) -> None:
        self.bodies[artifact_id] = content_body.read()


def build_study(
    path: Path | str, name: str = "report-test", n_trials: int = 24, seed: int = 3
) -> BuiltStudy:
    """Write a cheap but real unetmm-shaped study into the SQLite file ``path`` (or a storage
    URL), with the search's own writer (``outcome.apply``: short attributes, artifacts, both
    constraint forms, metric names with units).

    The same arguments give the same trials (seeded sampler, deterministic costs and scores)."""
    from studies.artifacts import artifact_store, attach
    from studies.search.outcome import Outcome, apply

    url = path if isinstance(path, str) and "://" in path else f"sqlite:///{path}"
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    records = _records(n_trials, seed)
    # Written in memory (one SQL transaction per attribute is slow), then copied; the artifact
    # bodies go straight to the target database, their metadata travels with the trials.
    target = optuna.storages.RDBStorage(url)
    store = _Collected()
    study = optuna.create_study(study_name=name, directions=["maximize", "minimize", "minimize"])
    _study_attrs(study, name)
    schema.name_metrics(study, ["psnr", "m_sc", "macs"])
    for r in records:
        study.enqueue_trial(r.params)  # the sampled parameters, as a queued trial
        trial = study.ask(r.distributions)
        if r.attrs.get(schema.ATTR_REFERENCE):
            trial.set_user_attr(schema.ATTR_REFERENCE, r.attrs[schema.ATTR_REFERENCE])
        attach(trial, "results.json", schema.split(r.attrs)[1], store)
        apply(study, trial, Outcome(r.state, r.values, r.attrs, r.constraints))
    artifact_store(target).write_many(store.bodies)  # type: ignore[union-attr]
    optuna.copy_study(from_study_name=name, from_storage=compat.study_storage(study),
                      to_storage=target)  # fmt: skip
    target.engine.dispose()
    return BuiltStudy(path, url, name, M_SC_LIMIT, len(records))


LEGACY_NAMES = {"psnr_db": "psnr", "macs_fvcore": "macs", "input_psnr_db": "input_psnr"}


def build_legacy_study(
    path: Path | str, name: str = "legacy", n_trials: int = 24, seed: int = 3
) -> BuiltStudy:
    """The same trials as ``build_study``, stored as unetmm wrote them before attribute names
    carried units: keys ``psnr``/``macs``, every bulky value a user attribute, constraints only
    as Optuna 5's ``constraints:<name>``, no metric names, no ``arch_key``."""
    url = path if isinstance(path, str) and "://" in path else f"sqlite:///{path}"
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    records = _records(n_trials, seed)
    study = optuna.create_study(directions=["maximize", "minimize", "minimize"], study_name=name)
    _study_attrs(study, name)
    for r in records:
        attrs = {LEGACY_NAMES.get(k, k): v for k, v in r.attrs.items() if k != schema.ATTR_ARCH_KEY}
        study.add_trial(optuna.trial.create_trial(
            state=r.state, values=r.values, params=r.params, distributions=r.distributions,
            user_attrs=attrs, system_attrs={f"constraints:{k}": v for k, v in r.constraints.items()},
        ))  # fmt: skip
    optuna.copy_study(from_study_name=name, from_storage=compat.study_storage(study),
                      to_storage=url)  # fmt: skip
    return BuiltStudy(path, url, name, M_SC_LIMIT, len(records))
