"""Samplers compared on a surrogate (issue 29): anytime curves, trials to the optimum's band,
and a one-sided Mann-Whitney test against random.

A run is the list of its judged designs in trial order, each ``[psnr, m_sc bytes, macs]``
(``sampler_feasibility.run``'s ``judged``; all met the study's constraints, or they would not
have been judged). After k judged designs a run has:

- ``best``: the best PSNR so far among designs with M_sc <= the memory limit (NaN before one);
- ``hv``: the hypervolume so far over (PSNR up, M_sc down, MACs down) against the reference
  (``HV_REF_PSNR`` dB, the memory limit, the MACs limit), in dB x MiB x GMACs.

``trials_to_band``: the first k whose best is within ``BAND_DB`` of the surrogate's optimum
(None: never within the run). A run that never gets there counts as ``n + 1`` trials in the test
and in the median (censored).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from scipy.stats import mannwhitneyu

from studies.results.pareto import hypervolume

MIB = 2**20
BAND_DB = 0.2
HV_REF_PSNR = 20.0  # about the noisy input's PSNR (sigma 25: 20.3 dB)
ALPHA = 0.1
BASELINE = "random"
Judged = Sequence[Sequence[float]]  # [[psnr, m_sc bytes, macs], ...] in trial order


def anytime(judged: Judged, m_sc_limit: float, macs_limit: float
            ) -> tuple[list[float], list[float]]:  # fmt: skip
    """(best PSNR within ``m_sc_limit``, HV) after each judged design (see module doc)."""
    ref = (-HV_REF_PSNR, m_sc_limit / MIB, macs_limit / 1e9)
    best, hv, pool, top = [], [], [], math.nan
    for psnr, m_sc, macs in judged:
        if m_sc <= m_sc_limit and not psnr <= top:  # NaN top: the first one
            top = psnr
        best.append(top)
        pool.append((-psnr, m_sc / MIB, macs / 1e9))
        hv.append(hypervolume(pool, ref))
    return best, hv


def trials_to_band(best: Sequence[float], optimum: float, band: float = BAND_DB) -> int | None:
    """The first k (1-based) whose best is within ``band`` dB of ``optimum``; None: never."""
    return next((k for k, b in enumerate(best, 1) if b >= optimum - band), None)


def _at(curve: Sequence[float], k: int) -> float:
    return curve[min(k, len(curve)) - 1] if curve else math.nan


def mean_se(values: Sequence[float]) -> tuple[float, float]:
    """Mean and standard error (NaN values left out; se NaN below two values)."""
    v = [x for x in values if not math.isnan(x)]
    if not v:
        return math.nan, math.nan
    se = statistics.stdev(v) / math.sqrt(len(v)) if len(v) > 1 else math.nan
    return statistics.fmean(v), se


def summarize(runs: Sequence[dict[str, Any]], optimum: float, m_sc_limit: float,
              macs_limit: float, ks: Sequence[int]) -> dict[str, dict[str, Any]]:  # fmt: skip
    """Per sampler: seeds; best and HV at each k (mean, se); trials to the band (each run's,
    censored as n + 1; median; how many reached it); the Mann-Whitney p-value of "needs fewer
    trials than random" and of "higher best at k" against random."""
    by: dict[str, list[dict[str, Any]]] = {}
    for r in runs:
        by.setdefault(r["sampler"], []).append(r)
    out: dict[str, dict[str, Any]] = {}
    for sampler, mine in by.items():
        n = max(len(r["judged"]) for r in mine)
        curves = [anytime(r["judged"], m_sc_limit, macs_limit) for r in mine]
        needed = [trials_to_band(b, optimum) for b, _ in curves]
        row: dict[str, Any] = {
            "seeds": len(mine), "trials": n,
            "needed": [n + 1 if k is None else k for k in needed],
            "reached": sum(k is not None for k in needed),
        }
        row["median_needed"] = statistics.median(row["needed"])
        for k in ks:
            row[f"best@{k}"] = mean_se([_at(b, k) for b, _ in curves])
            row[f"hv@{k}"] = mean_se([_at(h, k) for _, h in curves])
            row[f"_best@{k}"] = [_at(b, k) for b, _ in curves]
        out[sampler] = row
    base = out.get(BASELINE)
    for sampler, row in out.items():
        if base is None or sampler == BASELINE:
            continue
        row["p_fewer_trials"] = float(mannwhitneyu(row["needed"], base["needed"],
                                                   alternative="less").pvalue)  # fmt: skip
        for k in ks:
            a = [v for v in row[f"_best@{k}"] if not math.isnan(v)]
            b = [v for v in base[f"_best@{k}"] if not math.isnan(v)]
            row[f"p_best@{k}"] = float(mannwhitneyu(a, b, alternative="greater").pvalue)
        row["needed_vs_random"] = row["median_needed"] / base["median_needed"]
    for row in out.values():
        for k in ks:
            row.pop(f"_best@{k}")
    return out


def plot(runs: Sequence[dict[str, Any]], optimum: float, m_sc_limit: float, macs_limit: float,
         path: str | Path, title: str) -> Path:  # fmt: skip
    """Anytime curves (mean +- se over seeds) of the best PSNR within the memory limit and of
    HV, one line per sampler, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    by: dict[str, list[tuple[list[float], list[float]]]] = {}
    for r in runs:
        by.setdefault(r["sampler"], []).append(anytime(r["judged"], m_sc_limit, macs_limit))
    for sampler, curves in sorted(by.items()):
        n = max(len(b) for b, _ in curves)
        ks = list(range(1, n + 1))
        for ax, which in zip(axes, (0, 1)):
            stats = [mean_se([_at(c[which], k) for c in curves]) for k in ks]
            mean = [m for m, _ in stats]
            se = [0.0 if math.isnan(s) else s for _, s in stats]
            line, = ax.plot(ks, mean, label=f"{sampler} ({len(curves)} seeds)")
            ax.fill_between(ks, [m - s for m, s in zip(mean, se)],
                            [m + s for m, s in zip(mean, se)], color=line.get_color(), alpha=0.2)
    axes[0].axhline(optimum, color="k", lw=0.8, ls="--", label="surrogate optimum")
    axes[0].axhline(optimum - BAND_DB, color="k", lw=0.8, ls=":", label=f"optimum - {BAND_DB} dB")
    axes[0].set(xlabel="designs judged", ylabel="best PSNR (dB)",
                title=f"best design with M_sc <= {m_sc_limit / MIB:g} MiB")
    axes[1].set(xlabel="designs judged", ylabel="hypervolume (dB x MiB x GMACs)",
                title="front's hypervolume")
    axes[0].legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def plot_against_table(random_curve: Sequence[float], searches: Sequence[dict[str, Any]],
                       best: float, thresholds: dict[str, float], path: str | Path,
                       title: str) -> Path:  # fmt: skip
    """Random search's expected best PSNR from the measured table against the number of judged
    designs, each real search's best so far (``best_curve``), the table's best and the bands'
    thresholds, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    ks = range(1, len(random_curve) + 1)
    ax.plot(ks, random_curve, color="k", lw=2, label="random, expected (from the table)")
    styles = {}
    for r in searches:
        color = styles.setdefault(r["sampler"], f"C{len(styles)}")
        curve = r["best_curve"]
        ax.step(range(1, len(curve) + 1), curve, where="post", color=color, alpha=0.8,
                ls=("-", "--", ":", "-.")[r["seed"] % 4],
                label=f"{r['sampler']} seed {r['seed']} (real)")  # fmt: skip
    ax.axhline(best, color="grey", lw=0.8, label=f"best measured {best:.2f} dB")
    for name, t in thresholds.items():
        ax.axhline(t, color="grey", lw=0.8, ls=":")
        ax.annotate(f"-{name} dB", (len(random_curve), t), fontsize=7, va="bottom", ha="right")
    ax.set(xlabel="designs judged", ylabel="best PSNR within the memory limit (dB)",
           title=title)
    ax.set_ylim(bottom=min(random_curve[min(4, len(random_curve) - 1)], best - 3))
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)
