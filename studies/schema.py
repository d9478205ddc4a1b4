"""What a unetmm trial stores in Optuna (the contract between search, report and export).

Objective values are in the order of ``StudySpec.objectives`` (study.directions match), and
``study.metric_names`` names them with their units (``Metric.optuna_name``: ``"PSNR [dB]"``,
``"skip memory M_sc [bytes]"``), so optuna-dashboard's axes read right. The study's user
attributes hold ``objectives`` (metric names), ``spec`` (the StudySpec it was created with, as
JSON-able data), ``fingerprint`` (``StudySpec.fingerprint``) and ``comparable`` (what it hashes:
a run whose spec differs there is refused, see ``studies.search.driver.prepare_study``).

A trial's data has two parts. **User attributes** (``trial.user_attrs``: what ``optuna trials``
and optuna-dashboard list) hold short values only, each key with its unit where it could be
mistaken, set as soon as they are known (a RUNNING trial already shows its design):

- ``ATTR_DESIGN``: a short human label of the design (``"unetmm t=4 A=256 c=[2,4,8,32] d=1"``:
  aggregation stage t, aggregated channels A, channels c_i each stage keeps (``-``: no skip),
  IEM depth d); ``ATTR_ARCH_KEY``: 16 hex digits naming the exact ``ArchConfig``
  (``ArchConfig.key()``: equal keys, equal designs);
- ``ATTR_REFERENCE``: name of the reference point ("full", "none", "unetmm", "point0", ...) or
  absent; ``ATTR_DRIVER``: "host:pid:start" of the search process that ran it (crash
  recovery); ``ATTR_NODE``: the Ray node id its worker ran on (which machine lost a trial);
  ``ATTR_FINGERPRINT``: the study's fingerprint when the trial ran (only trials with the same
  one are compared or copied); ``ATTR_RETRY_OF``: number of the failed trial this one
  re-runs; ``ATTR_COPY_OF``: number of the earlier trial whose results it copied (a design
  already trained, or infeasible, is not evaluated again); ``ATTR_PRESCREEN``: the rank a
  one-shot supernet gave the design when ``--prescreen oneshot`` queued it;
- cost keys (target model at the study's input size and bit width): the key of every cost
  metric of ``studies.metrics`` (``m_sc_bytes``, ``macs_fvcore``, ``macs_paper``, ``params``,
  ``peak_activation_bytes`` (layer by layer), and with the study's ``target.tiling`` set
  ``peak_tiled_bytes`` and ``recompute_macs``), and ``bits``, ``input_size`` ([h, w] pixels),
  ``cost_engine``, ``tiling`` (``{tile, split}``: the split ``auto`` chose; absent without
  tiling, and in studies written before it);
- score keys: the key of every score metric (``psnr_db``, ``ssim``: final proxy validation
  scores; absent if not trained), ``input_psnr_db`` (the degraded validation inputs' own PSNR,
  the do-nothing baseline), ``steps`` (proxy steps trained), ``val_step`` and ``val_psnr_db``
  (the last validation: where a stopped trial stood);
- time keys: ``seconds_cost``, ``seconds_train``, ``seconds`` (whole trial, in the worker),
  ``cpu_seconds`` (CPU time of the worker process, all threads), ``t_start_unix``,
  ``t_end_unix`` (seconds since the epoch, in the worker: trials that overlap ran in parallel);
- ``ATTR_STATUS``: one of ``STATUS_*`` below; ``ATTR_ERROR``: the reason of a failed trial;
  ``ATTR_BROKEN``: names of the hard constraints an infeasible trial broke;
  ``ATTR_SCORE_CACHED``: true when the scores came from the persistent score cache
  (``studies.search.score_cache``: the same design, proxy, task, data, budget, seed and code
  trained before, in any study) instead of a training run; absent when trained;
  ``ATTR_WARNINGS``: the worker's warnings (e.g. an unreadable image it skipped), each said
  once on the search's own output too.

**Bulky data** (``BULKY_KEYS``: the target ``arch`` as a dict (``ArchConfig.from_dict``), the
``proxy_arch`` trained, the ``m_sc_timeline`` ([label, bytes] at each stage boundary) and the
validation ``curve`` ([step, psnr_db] pairs)) is stored as Optuna artifacts of the trial, JSON
files kept in the study's own database (``studies.artifacts``): ``arch.json`` when the trial
starts, ``results.json`` when it ends. ``studies.artifacts.trial_data`` reads both parts back
as one dict of current keys.

Constraints are stored twice, so that every tool reads them: ``Trial.set_constraint(name,
value)`` (Optuna 5's ``constraints:<name>`` system attributes) and Optuna's older ``constraints``
list of the same values in name order (what optuna-dashboard 0.21 reads, and what samplers
write for ``constraints_func``). Feasible when every value is <= 0; ``value = measured - limit``
in the constraint's unit (``limit - measured`` for >=). ``trial_constraints`` reads them by name.
Cost constraints are hard (checked before training); accuracy constraints (psnr, ssim) are
checked after training, so a trained trial can be COMPLETE and still infeasible.

Optuna states (``studies.search.outcome``): ``complete`` -> COMPLETE (values = objectives);
``infeasible`` -> COMPLETE with the measured costs, the worst scores and a positive constraint
(so samplers learn the feasible region; never a scored design); ``stopped`` -> PRUNED;
``failed`` -> FAIL.

Studies written before these names (keys ``psnr``, ``macs``, ``input_psnr``, ``t_start``,
``t_end``; bulky data as user attributes; constraints only as ``constraints:<name>``) are read
through ``current``: ``LEGACY_KEYS`` maps the old keys to the new ones.

Confirmation studies (``unetmm confirm``, ``studies.search.confirm``): a study's front re-trained
at a higher fidelity is a *linked study* in the same storage, ``<study>.confirm`` by default, one
trial per (design, seed), value = the confirmed score: the source study's
(``studies.metrics.study_score``: PSNR, maximised, or e.g. SAD, minimised). Its user attributes:
``STUDY_ATTR_CONFIRM_OF`` (the source study's name), ``STUDY_ATTR_SCORE`` (the metric confirmed;
absent: PSNR), ``STUDY_ATTR_FIDELITY`` (what was trained:
``backbone`` proxy/target, the trained backbone config, task, data, budget, the source study's
fingerprint), ``STUDY_ATTR_FINGERPRINT`` (a hash of the fidelity: a re-run at another fidelity is
refused) and ``STUDY_ATTR_CONFIRM_SUMMARY`` (per design: proxy and confirmed PSNR, ranks; Kendall
tau and Spearman; ``studies.results.confirm.Confirmation.to_json``). Each trial stores
``ATTR_SOURCE_TRIAL`` (the number of the source study's trial it confirms), ``ATTR_JOB`` (design
hash and seed: what makes a job done), ``ATTR_SEED``, ``ATTR_PROXY_SCORE`` (the source trial's
proxy score; ``ATTR_PROXY_PARTIAL`` true when the source was stopped early and this is its last
validation's PSNR; older studies: ``ATTR_PROXY_PSNR``), ``ATTR_ARCH``, ``ATTR_DESIGN``,
``ATTR_REFERENCE``, the source's cost keys, the trained run's score keys as above
(``ATTR_PROXY_ARCH`` = the architecture trained), ``status``, ``error``, ``driver`` and
``score_cached``.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import optuna
from optuna.trial import FrozenTrial

ATTR_ARCH = "arch"
ATTR_ARCH_KEY = "arch_key"
ATTR_PROXY_ARCH = "proxy_arch"
ATTR_STATUS = "status"
ATTR_REFERENCE = "reference"
ATTR_DESIGN = "design"
ATTR_DRIVER = "driver"
ATTR_NODE = "node"
ATTR_ERROR = "error"
ATTR_BROKEN = "broken"
ATTR_COPY_OF = "copy_of"
ATTR_PRESCREEN = "prescreen"  # rank of a design queued by ``unetmm search --prescreen oneshot``
ATTR_FINGERPRINT = "fingerprint"
ATTR_RETRY_OF = "retry_of"
ATTR_SCORE_CACHED = "score_cached"
STUDY_ATTR_OBJECTIVES = "objectives"
STUDY_ATTR_SPEC = "spec"
STUDY_ATTR_FINGERPRINT = "fingerprint"
STUDY_ATTR_COMPARABLE = "comparable"

# confirmation studies (see the module docstring)
CONFIRM_SUFFIX = ".confirm"
STUDY_ATTR_CONFIRM_OF = "confirm_of"
STUDY_ATTR_FIDELITY = "fidelity"
STUDY_ATTR_CONFIRM_SUMMARY = "summary"
ATTR_SOURCE_TRIAL = "source_trial"
ATTR_JOB = "job"
ATTR_SEED = "seed"
ATTR_PROXY_PSNR = "proxy_psnr"  # written by releases before 0.2: read as ATTR_PROXY_SCORE
ATTR_PROXY_SCORE = "proxy_score"
STUDY_ATTR_SCORE = "score"
ATTR_PROXY_PARTIAL = "proxy_partial"

M_SC_TIMELINE = "m_sc_timeline"
CURVE = "curve"
INPUT_PSNR = "input_psnr_db"
VAL_STEP = "val_step"
VAL_PSNR = "val_psnr_db"
T_START = "t_start_unix"
T_END = "t_end_unix"

# Attribute keys besides the metrics' own (``studies.metrics``: ``m_sc_bytes``, ``psnr_db``, ...).
ATTR_TILING = "tiling"  # {tile, split} the tiled costs were measured with
ATTR_WARNINGS = "warnings"  # what the worker warned about (unreadable images it skipped)
COST_EXTRA_KEYS = (M_SC_TIMELINE, "bits", "input_size", "cost_engine", ATTR_TILING, ATTR_NODE)
METRIC_EXTRA_KEYS = (INPUT_PSNR, "steps", CURVE, VAL_STEP, VAL_PSNR)
TIME_KEYS = ("seconds_cost", "seconds_train", "seconds", "cpu_seconds", T_START, T_END)
BULKY_KEYS = (ATTR_ARCH, ATTR_PROXY_ARCH, M_SC_TIMELINE, CURVE)  # artifacts, not user attributes

STATUS_COMPLETE = "complete"  # trained for the full proxy budget
STATUS_STOPPED = "stopped"  # stopped early by the scheduler: partial score, never in the front
STATUS_INFEASIBLE = "infeasible"  # broke a hard constraint: costs only, not trained
STATUS_FAILED = "failed"  # raised or diverged (NaN loss); the reason is in ``error``

# old key -> current key (studies written before units were part of the names)
LEGACY_KEYS = {
    "psnr": "psnr_db",
    "macs": "macs_fvcore",
    "input_psnr": INPUT_PSNR,
    "t_start": T_START,
    "t_end": T_END,
}
CONSTRAINT_PREFIX = "constraints:"  # Optuna 5's system attribute of one named constraint
CONSTRAINT_LIST = "constraints"  # Optuna's older list of values (optuna-dashboard reads it)


def split(attrs: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(user attributes, bulky data)``: what goes to ``set_user_attr`` and what to artifacts;
    a curve also leaves its last point among the user attributes (``last_validation``); epoch
    times are kept to the millisecond, durations to 4 significant digits."""
    compact = {k: _short_time(k, v) for k, v in attrs.items() if k not in BULKY_KEYS}
    compact.update(last_validation(attrs.get(CURVE)))
    return compact, {k: v for k, v in attrs.items() if k in BULKY_KEYS}


def _short_time(key: str, value: Any) -> Any:
    if key not in TIME_KEYS or not isinstance(value, float):
        return value
    return round(value, 3) if key in (T_START, T_END) else float(f"{value:.4g}")


def last_validation(curve: list[list[Any]] | None) -> dict[str, Any]:
    """``{VAL_STEP, VAL_PSNR}`` of the curve's last point (empty without one)."""
    if not curve:
        return {}
    step, psnr = curve[-1]
    return {VAL_STEP: int(step), VAL_PSNR: float(psnr)}


def current(attrs: Mapping[str, Any]) -> dict[str, Any]:
    """``attrs`` under today's keys: legacy keys renamed (``LEGACY_KEYS``), ``arch_key`` and the
    last validation derived where an old trial stored only the arch and the curve."""
    out = {LEGACY_KEYS.get(k, k): v for k, v in attrs.items()}
    if ATTR_ARCH_KEY not in out and isinstance(out.get(ATTR_ARCH), dict):
        from nas.config import ArchConfig

        with contextlib.suppress(Exception):  # an arch this version cannot read: no key
            out[ATTR_ARCH_KEY] = ArchConfig.from_dict(out[ATTR_ARCH]).key()
    if VAL_STEP not in out:
        out.update(last_validation(out.get(CURVE)))
    return out


def constraint_list(values: Mapping[str, float]) -> list[float]:
    """The older list form of named constraint ``values`` (in name order)."""
    return [float(values[name]) for name in sorted(values)]


def trial_constraints(trial: FrozenTrial) -> dict[str, float]:
    """A trial's constraint values by name: the ``constraints:<name>`` attributes; a trial that
    has only the older list (written by a sampler's ``constraints_func``) gets names "0", "1".
    ``FrozenTrial.constraints`` would list a value stored both ways twice."""
    attrs = trial.system_attrs
    named = {k[len(CONSTRAINT_PREFIX) :]: float(v) for k, v in attrs.items()
             if k.startswith(CONSTRAINT_PREFIX)}  # fmt: skip
    if named:
        return named
    return {str(i): float(v) for i, v in enumerate(attrs.get(CONSTRAINT_LIST) or ())}


def name_metrics(study: optuna.Study, objectives: Sequence[str]) -> None:
    """Name the study's objective values with their units (``Metric.optuna_name``: ``"PSNR
    [dB]"``), which optuna-dashboard and ``study.trials_dataframe`` show."""
    from studies.metrics import get_metric

    names = [get_metric(o).optuna_name for o in objectives]
    if study.metric_names != names:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names(names)


# what each study attribute the search writes must hold (``check_study_attrs``)
STUDY_ATTR_TYPES: dict[str, tuple[type, str]] = {
    STUDY_ATTR_OBJECTIVES: (list, "a list of metric names"),
    STUDY_ATTR_SPEC: (dict, "the study spec, a mapping"),
    STUDY_ATTR_FINGERPRINT: (str, "16 hex digits"),
    STUDY_ATTR_COMPARABLE: (dict, "a mapping of settings"),
}


def check_study_attrs(name: str, attrs: dict[str, Any]) -> None:
    """``ConfigError`` naming the first study attribute unetmm writes that holds something else
    (changed outside unetmm, or written by another program), and saying what to do."""
    from nas.errors import ConfigError
    from studies.metrics import METRICS

    for key, (kind, what) in STUDY_ATTR_TYPES.items():
        value = attrs.get(key)
        bad = value is not None and not isinstance(value, kind)
        if key == STUDY_ATTR_OBJECTIVES and isinstance(value, list):
            bad = not value or not all(isinstance(n, str) and n in METRICS for n in value)
        if bad:
            shown = repr(value)[:60]
            raise ConfigError(f"--study: study {name!r} has a user attribute {key!r} holding "
                              f"{shown}, not {what} as `unetmm search` writes it; it was changed "
                              "outside unetmm: restore it (optuna.load_study(...)."
                              "set_user_attr) or search into a new study")  # fmt: skip


def is_unetmm_study(attrs: dict[str, Any]) -> bool:
    """Whether a study's attributes are those of a study unetmm wrote (search or confirm)."""
    keys = (STUDY_ATTR_OBJECTIVES, STUDY_ATTR_SPEC, STUDY_ATTR_FINGERPRINT, STUDY_ATTR_CONFIRM_OF)
    return any(k in attrs for k in keys)
