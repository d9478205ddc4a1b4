"""Reading a confirmation: which designs to confirm, their confirmed scores, how ranks moved.

``unetmm confirm`` (``studies.search.confirm``) re-trains a study's front at a higher fidelity
and stores each (design, seed) run as a trial of a *linked study* in the same storage,
``<study>.confirm`` by default (the contract: ``studies.schema``, "Confirmation studies").
Why a linked study and not attributes on the original trials: Optuna does not let a finished
trial's attributes change, a job per trial makes "done" a trial state (a killed run resumes
with exactly the jobs that did not finish), and plain Optuna reads it
(``optuna.load_study(study_name="quick.confirm", storage=...)``: ``trial.value`` is the
confirmed PSNR, ``user_attrs["source_trial"]`` the trial it confirms).

``select_designs`` picks what to confirm: the study's complete, feasible designs (one trial per
design) ranked by non-dominated layer over the study's objectives (its Pareto front first), by
proxy PSNR within a layer, the first ``top``; plus every reference point that was trained (one
stopped early enters with its last validation PSNR, marked partial).
``summarize`` turns the linked study into a ``Confirmation``: per design the proxy PSNR, the
confirmed PSNR (mean, sample standard deviation, min and max over seeds), both ranks (1 = best,
over the designs having both scores), and Kendall's tau-b and Spearman's rho between the two
rankings. ``report_section`` draws it for ``unetmm report``; ``with_confirmed_scores`` is what
``unetmm export`` ranks by when a confirmation exists.
"""

from __future__ import annotations

import dataclasses
import html
import math
import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from nas.config import arch_key
from studies import compat, schema
from studies.metrics import SCORE, Metric, get_metric
from studies.results import pareto
from studies.results.pareto import TrialPoint


def job_key(arch: Mapping[str, Any] | None, seed: int) -> str:
    """What makes one confirmation job: the design (``nas.config.arch_key``) and the seed."""
    return f"{arch_key(arch)}:seed{int(seed)}"


def proxy_score(p: TrialPoint, score: str = SCORE) -> tuple[float | None, bool]:
    """``(value, partial)``: the trial's final proxy ``score``, else (stopped early) its last
    validation's PSNR when the score is PSNR (validations measure PSNR only)."""
    if p.status == schema.STATUS_COMPLETE and p.value(score) is not None:
        return p.value(score), False
    curve = p.attrs.get("curve") or []
    return (float(curve[-1][1]), True) if curve and score == SCORE else (None, False)


def _better_first(p: TrialPoint, score: str) -> tuple[float, int]:
    """Sort key: the best ``score`` first (its direction), then the earliest trial."""
    v = p.value(score)
    if v is None:
        return math.inf, p.number
    return (-v if get_metric(score).maximized else v), p.number


def one_per_design(points: Sequence[TrialPoint], score: str = SCORE) -> list[TrialPoint]:
    """The best-``score`` trial of each design (earliest on ties), in trial order."""
    best: dict[str, TrialPoint] = {}
    for p in sorted(points, key=lambda p: _better_first(p, score)):
        best.setdefault(arch_key(p.attrs.get(schema.ATTR_ARCH)), p)
    return sorted(best.values(), key=lambda p: p.number)


def select_designs(
    points: Sequence[TrialPoint], objectives: Sequence[str], top: int, score: str = SCORE
) -> list[TrialPoint]:
    """The ``top`` designs by non-dominated layer then proxy ``score``, then the trained
    reference points not among them (see the module docstring)."""
    objectives = tuple(objectives)
    pool = one_per_design([p for p in points if p.eligible(objectives)
                           and p.attrs.get(schema.ATTR_ARCH)], score)  # fmt: skip
    ranked: list[TrialPoint] = []
    while pool and len(ranked) < top:
        layer = pareto.pareto_front(pool, objectives)
        ranked += sorted(layer, key=lambda p: _better_first(p, score))
        taken = {p.number for p in layer}
        pool = [p for p in pool if p.number not in taken]
    chosen = ranked[:top]
    seen = {arch_key(p.attrs.get(schema.ATTR_ARCH)) for p in chosen}
    for p in points:
        key = arch_key(p.attrs.get(schema.ATTR_ARCH))
        if (p.reference and key not in seen and p.feasible and p.attrs.get(schema.ATTR_ARCH)
                and p.state in ("COMPLETE", "PRUNED") and proxy_score(p, score)[0] is not None):
            chosen.append(p)
            seen.add(key)
    return chosen


# -- a confirmation as read back -------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class DesignScores:
    """One confirmed design: its proxy score and its confirmed runs (one per seed), both of
    the confirmation's score (``Confirmation.score``)."""

    source_trial: int
    design: str
    reference: str | None
    arch: Mapping[str, Any]
    m_sc_bytes: float | None
    macs: float | None
    proxy_score: float | None
    proxy_partial: bool
    runs: Mapping[int, float]  # seed -> confirmed score (complete runs only)
    proxy_rank: int | None = None
    confirmed_rank: int | None = None

    @property
    def mean(self) -> float | None:
        return statistics.fmean(self.runs.values()) if self.runs else None

    @property
    def std(self) -> float | None:
        """Sample standard deviation over seeds (0 for one seed)."""
        if not self.runs:
            return None
        return statistics.stdev(self.runs.values()) if len(self.runs) > 1 else 0.0

    @property
    def label(self) -> str:
        name = pareto.REFERENCE_LABELS.get(self.reference or "", self.reference)
        return f"{name}: {self.design}" if name else self.design

    def to_json(self) -> dict[str, Any]:
        return {
            "source_trial": self.source_trial, "design": self.design, "reference": self.reference,
            "m_sc_bytes": self.m_sc_bytes, "macs": self.macs, "proxy_score": self.proxy_score,
            "proxy_partial": self.proxy_partial, "proxy_rank": self.proxy_rank,
            "confirmed": {str(s): v for s, v in sorted(self.runs.items())},
            "confirmed_mean": self.mean, "confirmed_std": self.std,
            "confirmed_min": min(self.runs.values(), default=None),
            "confirmed_max": max(self.runs.values(), default=None),
            "confirmed_rank": self.confirmed_rank,
        }  # fmt: skip


@dataclasses.dataclass(frozen=True)
class Confirmation:
    """A linked study read back: designs in proxy-rank order (unranked ones last)."""

    study_name: str
    source_study: str
    fidelity: Mapping[str, Any]
    designs: tuple[DesignScores, ...]
    kendall_tau: float | None
    spearman: float | None
    failed: int  # jobs whose last run failed and that have no complete run
    score: str = SCORE  # the metric confirmed: the source study's score

    @property
    def metric(self) -> Metric:
        return get_metric(self.score)

    @property
    def ranked(self) -> list[DesignScores]:
        return [d for d in self.designs if d.confirmed_rank is not None]

    def by_trial(self) -> dict[int, DesignScores]:
        return {d.source_trial: d for d in self.designs}

    def describe_fidelity(self) -> str:
        """``"proxy backbone, 800 steps, seeds [0, 1]"``."""
        f = self.fidelity
        seeds = sorted({s for d in self.designs for s in d.runs})
        return (f"{f.get('backbone', '?')} backbone, {(f.get('budget') or {}).get('steps', '?')} "
                f"steps, seeds {seeds}")  # fmt: skip

    def to_json(self) -> dict[str, Any]:
        return {
            "source_study": self.source_study, "fidelity": dict(self.fidelity),
            "score": self.score,
            "kendall_tau": self.kendall_tau, "spearman": self.spearman,
            "designs": [d.to_json() for d in self.designs], "failed": self.failed,
        }  # fmt: skip


def _ranks(values: Sequence[float], maximized: bool = True) -> list[int]:
    """1 for the best value, the highest if ``maximized`` (ties: the earlier one first)."""
    order = sorted(range(len(values)), key=lambda i: (-values[i] if maximized else values[i], i))
    ranks = [0] * len(values)
    for rank, i in enumerate(order, start=1):
        ranks[i] = rank
    return ranks


def rank_correlations(a: Sequence[float], b: Sequence[float]) -> tuple[float | None, float | None]:
    """Kendall's tau-b and Spearman's rho of two score lists (None below two items or when
    either list is constant)."""
    from scipy import stats

    if len(a) < 2:
        return None, None
    tau, rho = stats.kendalltau(a, b).statistic, stats.spearmanr(a, b).statistic
    as_float = lambda v: float(v) if v is not None and math.isfinite(v) else None  # noqa: E731
    return as_float(tau), as_float(rho)


def summarize(confirm_study: optuna.Study) -> Confirmation:
    """The ``Confirmation`` of a linked study (complete runs only; see the module docstring)."""
    trials = confirm_study.get_trials(deepcopy=False)
    info: dict[int, dict[str, Any]] = {}
    runs: dict[int, dict[int, float]] = {}
    done, failed_jobs = set(), set()
    for t in trials:
        a = t.user_attrs
        if schema.ATTR_SOURCE_TRIAL not in a:
            continue
        source = int(a[schema.ATTR_SOURCE_TRIAL])
        info.setdefault(source, a)
        runs.setdefault(source, {})
        if t.state == TrialState.COMPLETE and t.value is not None:
            runs[source][int(a[schema.ATTR_SEED])] = float(t.value)
            done.add(a.get(schema.ATTR_JOB))
        elif t.state == TrialState.FAIL:
            failed_jobs.add(a.get(schema.ATTR_JOB))
    attrs = confirm_study.user_attrs
    score = get_metric(str(attrs.get(schema.STUDY_ATTR_SCORE, SCORE)))
    designs = [
        DesignScores(
            source_trial=source, design=str(a.get(schema.ATTR_DESIGN) or f"trial {source}"),
            reference=a.get(schema.ATTR_REFERENCE), arch=a.get(schema.ATTR_ARCH) or {},
            m_sc_bytes=a.get(get_metric("m_sc").key), macs=a.get(get_metric("macs").key),
            proxy_score=a.get(schema.ATTR_PROXY_SCORE, a.get(schema.ATTR_PROXY_PSNR)),
            proxy_partial=bool(a.get(schema.ATTR_PROXY_PARTIAL)), runs=runs[source],
        )
        for source, a in info.items()
    ]  # fmt: skip
    both = [d for d in designs if d.proxy_score is not None and d.mean is not None]
    proxy_ranks = _ranks([d.proxy_score for d in both], score.maximized)  # type: ignore[misc]
    confirmed_ranks = _ranks([d.mean for d in both], score.maximized)  # type: ignore[misc]
    ranked = {d.source_trial: dataclasses.replace(d, proxy_rank=pr, confirmed_rank=cr)
              for d, pr, cr in zip(both, proxy_ranks, confirmed_ranks)}  # fmt: skip
    designs = [ranked.get(d.source_trial, d) for d in designs]
    designs.sort(key=lambda d: (d.proxy_rank is None, d.proxy_rank or 0, d.source_trial))
    tau, rho = rank_correlations([d.proxy_score for d in both],  # type: ignore[misc]
                                 [d.mean for d in both])  # type: ignore[misc]
    return Confirmation(
        study_name=confirm_study.study_name,
        source_study=str(attrs.get(schema.STUDY_ATTR_CONFIRM_OF, "")),
        fidelity=attrs.get(schema.STUDY_ATTR_FIDELITY) or {},
        designs=tuple(designs), kendall_tau=tau, spearman=rho,
        failed=len(failed_jobs - done), score=score.name,
    )  # fmt: skip


def find_confirm_study(study: optuna.Study, name: str | None = None) -> optuna.Study | None:
    """The linked study confirming ``study`` in its storage: ``name`` if given, else
    ``<study>.confirm``, else the newest one that names ``study`` as its source; None if none."""
    storage = compat.study_storage(study)
    linked = [s for s in storage.get_all_studies()
              if s.user_attrs.get(schema.STUDY_ATTR_CONFIRM_OF) == study.study_name]  # fmt: skip
    if not linked:
        return None
    wanted = name or study.study_name + schema.CONFIRM_SUFFIX
    chosen = next((s for s in linked if s.study_name == wanted), None)
    if chosen is None and name is None:
        chosen = linked[-1]  # storages list studies in creation order
    if chosen is None:
        return None
    return optuna.load_study(study_name=chosen.study_name, storage=storage)


def load_confirmation(study: optuna.Study) -> Confirmation | None:
    """``summarize`` of the study's linked confirmation study, or None if it has none."""
    linked = find_confirm_study(study)
    return summarize(linked) if linked is not None else None


# -- printing, reporting, exporting ----------------------------------------------------------


def _fmt(v: float | None, spec: str = ".2f") -> str:
    return "n/a" if v is None else format(v, spec)


def _move(d: DesignScores) -> str:
    if d.proxy_rank is None or d.confirmed_rank is None:
        return "n/a"
    delta = d.proxy_rank - d.confirmed_rank
    return f"{delta:+d}" if delta else "0"


def table_rows(conf: Confirmation) -> list[dict[str, str]]:
    """One row of display strings per design (printed by the CLI, shown in the report)."""
    m_sc, short = get_metric("m_sc"), conf.metric.short
    rows = []
    for d in conf.designs:
        spread = (f" ± {d.std:.2f} [{min(d.runs.values()):.2f}, {max(d.runs.values()):.2f}]"
                  if d.runs and len(d.runs) > 1 else "")  # fmt: skip
        rows.append({
            "trial": str(d.source_trial),
            "design": d.label,
            "M_sc": m_sc.format(d.m_sc_bytes) if d.m_sc_bytes is not None else "n/a",
            f"proxy {short}": _fmt(d.proxy_score) + (" (stopped)" if d.proxy_partial else ""),
            "proxy rank": _fmt(d.proxy_rank, "d"),
            f"confirmed {short}": _fmt(d.mean) + spread + f" (n={len(d.runs)})",
            "confirmed rank": _fmt(d.confirmed_rank, "d"),
            "rank change": _move(d),
        })  # fmt: skip
    return rows


def agreement_text(conf: Confirmation) -> str:
    """``"Kendall tau-b 0.733, Spearman 0.867 over 6 designs"``."""
    n = len(conf.ranked)
    if conf.kendall_tau is None:
        return f"rank agreement: n/a ({n} design(s) with both scores)"
    return (f"Kendall tau-b {conf.kendall_tau:.3f}, Spearman {conf.spearman:.3f} between the "
            f"proxy and the confirmed ranking over {n} designs")  # fmt: skip


def with_confirmed_scores(points: Sequence[TrialPoint], conf: Confirmation) -> list[TrialPoint]:
    """The trials of confirmed designs only, their score (the confirmation's: PSNR, or e.g.
    SAD) replaced by the confirmed mean (the proxy's kept as ``proxy_score``, the confirmation
    under ``confirmed``): what export ranks."""
    key = conf.metric.key
    by_design = {arch_key(d.arch): d for d in conf.designs if d.mean is not None}
    out = []
    for p in points:
        d = by_design.get(arch_key(p.attrs.get(schema.ATTR_ARCH)))
        if d is None:
            continue
        extra = {
            schema.ATTR_PROXY_SCORE: p.attrs.get(key),
            key: d.mean,
            "confirmed": {"study": conf.study_name, "fidelity": conf.describe_fidelity(),
                          "score": conf.score,
                          "mean": d.mean, "std": d.std, "runs": dict(d.runs),
                          "proxy_rank": d.proxy_rank, "confirmed_rank": d.confirmed_rank,
                          "agreement": agreement_text(conf)},
        }  # fmt: skip
        out.append(dataclasses.replace(p, attrs={**p.attrs, **extra}))
    return out


def report_section(study: optuna.Study, out_dir: Path) -> tuple[str, Path | None]:
    """The report's "Confirmed at higher fidelity" section (HTML) and its PNG
    (``confirmed.png`` in ``out_dir``); a one-line hint and no PNG when the study has none."""
    from studies.results.plots import confirmed as figure

    conf = load_confirmation(study)
    if conf is None or not conf.designs:
        hint = ("<h2>Confirmed at higher fidelity</h2>\n<p class=\"note\">Not confirmed yet: "
                "<code>unetmm confirm STORAGE --study "
                f"{html.escape(study.study_name)}</code> re-trains the front at a higher "
                "fidelity.</p>")  # fmt: skip
        return hint, None
    png = figure.confirmed_png(conf, Path(out_dir) / "confirmed.png")
    div = figure.confirmed_plotly(conf).to_html(full_html=False, include_plotlyjs=False,
                                                div_id="confirmed")  # fmt: skip
    rows = table_rows(conf)
    head = "".join(f"<th>{html.escape(k)}</th>" for k in rows[0])
    body = "".join("<tr>" + "".join(f"<td>{html.escape(v)}</td>" for v in r.values()) + "</tr>"
                   for r in rows)  # fmt: skip
    failed = f" {conf.failed} run(s) failed." if conf.failed else ""
    text = (f"<h2>Confirmed at higher fidelity</h2>\n<p class=\"note\">Study "
            f"<code>{html.escape(conf.study_name)}</code>: {html.escape(conf.describe_fidelity())}"
            f". {html.escape(agreement_text(conf))}. Rank change: positive = the design moved up "
            f"when confirmed.{failed}</p>\n"
            f'<table id="confirmed-table"><thead><tr>{head}</tr></thead><tbody>{body}</tbody>'
            f"</table>\n{div}")  # fmt: skip
    return text, png
