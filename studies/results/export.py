"""Export the best feasible designs of a study: a training config (YAML) and a model card each.

Picking: the pool is the study's *eligible* trials (complete, feasible; see
``studies.results.pareto``) that carry their architecture (``arch``), within the user's budgets
(``--max-m-sc``, ``--max-macs``), one trial per design (``pareto.distinct_designs``: its first
measurement stands for a design measured twice, copies of its result are not listed again).
Rules (``PICK_RULES``):

- ``best``: best score, then lowest M_sc, then lowest trial number;
- ``knee``: the knee of the pool's score vs M_sc front: the front point farthest above the line
  joining the front's two extremes, both axes scaled to [0, 1] (``pareto.knee_ranking``);
  ``--top K`` takes the next ones by that distance (front points only).

The score is the study's (``studies.metrics.study_score``): PSNR, or e.g. SAD (lower is better)
in a matting study that optimises it.

Scores: when a PSNR study was confirmed at a higher fidelity (``unetmm confirm``: a linked
``<study>.confirm`` study, ``studies.results.confirm``), the pool is the confirmed designs and
``psnr`` is their confirmed PSNR (mean over seeds); if no confirmed design fits the budgets, the
proxy scores of all designs are used. A confirmation measures PSNR, so a study ranked by another
score is exported by its proxy scores. The model card says which.

Beside each config, ``<stem>.tiling.yaml`` holds its plan for the tiled executor
(``nas.tiling``): the tile and split the study costed it with (``target.tiling``; 64 pixels and
the best split for a study without one), the halos, the predicted peak on chip, the recomputed
MACs, and the layer-by-layer peak and M_sc beside them; ``unetmm measure --config <stem>.yaml
--image IMG --tile T --split S`` runs that plan on a real image and measures its peak.

The config is a ``trainers.config.TrainConfig``: the trial's target architecture (``arch:`` at
the top, so ``nas.load_config`` reads it too), the study's task and data (less the proxy-only
settings ``PROXY_ONLY_DATA``, which take their full-training defaults), and the paper's recipe
(Adam (0.9, 0.9), lr 1e-3 cosine to 1e-7, 200K iterations, batch 32, 256 crops) unless
overridden.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import optuna
import yaml

from nas.errors import ConfigError
from nas.registry import Registry
from studies import schema
from studies.metrics import METRICS, SCORE, Metric, get_metric, study_score
from studies.results import pareto
from studies.results.confirm import load_confirmation, with_confirmed_scores
from studies.results.pareto import TrialPoint
from studies.results.trust import judge
from trainers.config import TrainConfig, validate

# data settings that size the proxy's short run (a validation subset, an image cache), not a
# full training: dropped from the exported config so they take ``DataConfig``'s defaults
PROXY_ONLY_DATA = ("val_limit", "cache_mb")
# a rule ranks a pool by a score metric: [(trial, knee distance or None)], best first
Ranker = Callable[[Sequence[TrialPoint], Metric], list[tuple[TrialPoint, float | None]]]
PICK_RULES: Registry[Ranker] = Registry("export rule")


def _gain(p: TrialPoint, score: Metric) -> float:
    """``score``'s value with higher = better (a missing one ranks last)."""
    v = p.value(score.name)
    return -math.inf if v is None else (v if score.maximized else -v)


@PICK_RULES.register("best")
def _best(pool: Sequence[TrialPoint], score: Metric) -> list[tuple[TrialPoint, float | None]]:
    ranked = sorted(pool, key=lambda p: (-_gain(p, score), p.value("m_sc") or 0.0, p.number))
    return [(p, None) for p in ranked]


@PICK_RULES.register("knee")
def _knee(pool: Sequence[TrialPoint], score: Metric) -> list[tuple[TrialPoint, float | None]]:
    return list(pareto.knee_ranking(pool, "m_sc", score.name))


@dataclasses.dataclass(frozen=True)
class Pick:
    point: TrialPoint
    rule: str
    rank: int  # 1-based
    knee_score: float | None


def _within(p: TrialPoint, budgets: Mapping[str, float]) -> bool:
    return all(
        (p.value(name) is not None and p.value(name) <= limit) for name, limit in budgets.items()
    )  # type: ignore[operator]


DESCRIBED_COSTS = ("m_sc", "macs", "params")
EXPORT_COSTS = ("m_sc", "macs")  # with the score: what a trial must have measured to be picked


def describe_costs(p: TrialPoint, score: Metric | None = None) -> str:
    """``"M_sc 256 KiB, MACs 17.1 G, params 29.9 M, PSNR 26.31 dB"``."""
    score = score or get_metric(SCORE)
    rows = [get_metric(name) for name in DESCRIBED_COSTS]
    parts = [f"{m.short} {m.format(p.attrs[m.key])}" for m in rows if m.key in p.attrs]
    v = p.value(score.name)
    if v is not None:
        parts.append(f"{score.short} " + (f"{v:.2f} dB" if score.unit == "db" else score.format(v)))
    return ", ".join(parts)


def _budget_text(budgets: Mapping[str, float]) -> str:
    shown = [f"{get_metric(k).short} <= {get_metric(k).format(v)}" for k, v in budgets.items()]
    return " and ".join(shown) or "no budget"


def pick_trials(
    points: Sequence[TrialPoint],
    budgets: Mapping[str, float] | None = None,
    rule: str = "best",
    top: int = 1,
    study_name: str = "the study",
    score: str = SCORE,
) -> list[Pick]:
    """Up to ``top`` eligible trials within ``budgets`` (cost metric name -> limit in its key's
    unit, e.g. ``{"m_sc": bytes, "macs": count}``) picked by ``rule`` on ``score``. None fits:
    ``ConfigError`` naming the closest eligible trial, or if none is eligible the closest costed
    one and why it is not eligible."""
    budgets = dict(budgets or {})
    for name in budgets:
        if not get_metric(name, "budget").cost:
            raise ConfigError(f"budget {name!r} is not a cost; budgets limit cost metrics")
    if top < 1:
        raise ConfigError(f"--top: must be >= 1, got {top}")
    ranker, metric = PICK_RULES.get(rule), get_metric(score, "score")
    eligible = _eligible(points, score)
    pool = [p for p in eligible if _within(p, budgets)]
    ranked = ranker(pool, metric)
    if not ranked:
        raise ConfigError(_no_match(points, eligible, budgets, study_name, metric))
    return [Pick(p, rule, i + 1, score) for i, (p, score) in enumerate(ranked[:top])]


def _eligible(points: Sequence[TrialPoint], score: str) -> list[TrialPoint]:
    """One trial per design with its score, costs and architecture: what a pick chooses from."""
    return [row.point for row in pareto.distinct_designs(points, (score, *EXPORT_COSTS))
            if row.point.attrs.get(schema.ATTR_ARCH)]  # fmt: skip


def _no_match(
    points: Sequence[TrialPoint],
    eligible: Sequence[TrialPoint],
    budgets: Mapping[str, float],
    study_name: str,
    score: Metric,
) -> str:
    def excess(p: TrialPoint) -> float:  # how far over the tightest budget, relatively
        return max(
            (
                (p.value(k) or 0.0) / v - 1 if v > 0 else float(p.value(k) or 0.0)
                for k, v in budgets.items()
            ),
            default=0.0,
        )

    if eligible:
        closest = min(eligible, key=lambda p: (excess(p), -_gain(p, score)))
        return (
            f"no complete, feasible trial of {study_name} has {_budget_text(budgets)}; the "
            f"closest is trial {closest.number} ({closest.design}: "
            f"{describe_costs(closest, score)})"
        )
    n_complete = sum(p.state == "COMPLETE" for p in points)
    head = (
        f"{study_name} has no complete, feasible trial to export yet ({len(points)} trials, "
        f"{n_complete} COMPLETE in Optuna)"
    )
    costed = [  # finished with its costs measured: feasible or not, trained or not
        p
        for p in points
        if p.state in ("COMPLETE", "PRUNED")
        and p.attrs.get(schema.ATTR_ARCH)
        and all(p.value(k) is not None for k in ("m_sc", "macs"))
    ]
    if not costed:
        return f"{head}; run more of the search or relax its constraints"
    closest = min(
        costed,
        key=lambda p: (
            max(excess(p), 0.0),  # any trial within the budget is as close as another
            -_gain(p, score),
            p.number,
        ),
    )
    return (
        f"{head}; the closest to {_budget_text(budgets)} is trial {closest.number} "
        f"({closest.design}: {describe_costs(closest, score)}), not eligible: "
        f"{_why_not(closest, score)}; "
        "run more of the search or relax its constraints"
    )


def _why_not(p: TrialPoint, score: Metric) -> str:
    """Why a finished trial is not eligible for export, in a few words."""
    broken = [name for name, v in p.constraints.items() if v > 0]
    if broken:
        return "breaks " + ", ".join(f"'{name}'" for name in broken)
    if p.status == schema.STATUS_INFEASIBLE:
        return "marked infeasible by the search"
    if p.status == schema.STATUS_STOPPED:
        return "stopped early by the scheduler (partial score)"
    if p.value(score.name) is None:
        return f"no {score.short} (not trained: a cost-only study?)"
    return f"status {p.status!r}, Optuna state {p.state}"


# -- what gets written ----------------------------------------------------------------------


def training_config(
    p: TrialPoint, spec: Mapping[str, Any], out_dir: str, recipe: Mapping[str, Any] | None = None
) -> Any:
    """The ``TrainConfig`` of trial ``p``: its target arch, the study's task and data (without
    ``PROXY_ONLY_DATA``), the paper's recipe with ``recipe`` overrides. Validation errors raise
    ``ConfigError``."""
    proxy = spec.get("proxy") or {}
    data = {
        "arch": p.attrs[schema.ATTR_ARCH],
        "task": proxy.get("task") or {},
        "data": {k: v for k, v in (proxy.get("data") or {}).items() if k not in PROXY_ONLY_DATA},
        "recipe": dict(recipe or {}),
        "out_dir": out_dir,
    }
    return validate(TrainConfig, data, "exported config: ")


DEFAULT_TILING = {"tile": 64, "split": "auto"}


def tiling_plan(p: TrialPoint, spec: Mapping[str, Any]) -> dict[str, Any] | None:
    """The trial's plan for the tiled executor with its predicted costs (None: the design
    cannot be tiled at its input size with the study's tile, or its arch is unreadable)."""
    from nas import ArchConfig, measure_cost
    from nas.tiling import plan_tiling

    tiling = p.attrs.get("tiling") or ((spec.get("target") or {}).get("tiling")) or DEFAULT_TILING
    size, bits = p.attrs.get("input_size"), int(p.attrs.get("bits", 8))
    try:
        arch = ArchConfig.from_dict(p.attrs[schema.ATTR_ARCH])
        size = tuple(size)  # type: ignore[arg-type]
        r = measure_cost(arch, size, 1, bits, "meta", tile=tiling["tile"], split=tiling["split"])  # type: ignore[arg-type]
        plan = plan_tiling(arch, size, r.tile, r.split).to_dict()  # type: ignore[arg-type]
    except (ConfigError, KeyError, TypeError, ValueError):
        return None
    return {**plan, "bits": bits, "predicted_peak_bytes": r.peak_tiled_bytes,
            "peak_at": r.peak_tiled_stage, "recompute_macs": r.recompute_macs,
            "layer_peak_bytes": r.peak_activation_bytes, "m_sc_bytes": r.m_sc_bytes}  # fmt: skip


def _tiling_section(plan: Mapping[str, Any] | None, name: str | None, config_name: str) -> str:
    if plan is None or name is None:
        return ""
    peak, layer = plan["predicted_peak_bytes"], plan["layer_peak_bytes"]
    fmt = get_metric("m_sc").format
    return f"""## Memory on a device

The peak of live activations depends on how the model is executed. Layer by layer (PyTorch,
ONNX Runtime) it is **{fmt(layer)}** ({layer:,} bytes), whatever the skip design. Run tile by
tile up to stage {plan["split"]} in {plan["tile"]}x{plan["tile"]}-pixel tiles, as a streaming
device would, it is **{fmt(peak)}** ({peak:,} bytes, at {plan["peak_at"]}), of which the skips
hold up to M_sc = {fmt(plan["m_sc_bytes"])}; tiling recomputes {plan["recompute_macs"] / 1e9:.1f}
GMACs (halo overlaps and passes gathering whole-map statistics). Plan: [`{name}`]({name}).
Check it on a real image:

```
unetmm measure --config {config_name} --image photo.png --size {plan["input_size"][0]}x{plan["input_size"][1]} \
  --tile {plan["tile"]} --split {plan["split"]}
```
"""


def model_card(
    pick: Pick,
    study_name: str,
    storage_label: str,
    config_name: str,
    full_m_sc: int | None,
    config: TrainConfig,
    budgets: Mapping[str, float],
    scores_note: str = "",
    score: Metric | None = None,
    tiling: tuple[Mapping[str, Any] | None, str | None] = (None, None),
    trust: str = "",
) -> str:
    """A Markdown page: where the design comes from, its measured costs, its confirmed scores
    (when ranked by them) and its proxy scores. ``scores_note``: why proxy scores were used."""
    p, a = pick.point, pick.point.attrs
    m_sc = int(a.get("m_sc_bytes", 0))
    size = a.get("input_size") or ["?", "?"]
    bits = a.get("bits", 8)
    saved = (
        f" ({1 - a['m_sc_bytes'] / full_m_sc:.1%} less than full skips, {full_m_sc:,} bytes)"
        if full_m_sc
        else ""
    )
    score = score or get_metric(SCORE)
    by = f"{'confirmed' if a.get('confirmed') else 'proxy'} {score.short}"
    if pick.rule == "best":
        rule = f"{'highest' if score.maximized else 'lowest'} {by}"
    elif pick.knee_score:
        rule = (f"knee of the {score.short} vs M_sc front: {pick.knee_score:.3f} above the chord, "
                "axes in [0, 1]")  # fmt: skip
    else:
        rule = (f"the {score.short} vs M_sc front has no knee (no point above the chord), so by "
                f"{score.short}")  # fmt: skip
    timeline = "\n".join(f"| {lb} | {b:,} |" for lb, b in a.get(schema.M_SC_TIMELINE) or [])
    curve = ", ".join(f"{step}: {v:.2f}" for step, v in (a.get(schema.CURVE) or [])[-5:])
    rec = config.recipe

    def opt(key: str, fmt: str = "{}") -> str:  # a metric's name or an attribute key
        key = get_metric(key).key if key in METRICS else key
        return fmt.format(a[key]) if a.get(key) is not None else "n/a"

    constraints = (
        "\n".join(f"- `{k}`: {v:+.4g} (feasible: <= 0)" for k, v in p.constraints.items())
        or "- none"
    )
    confirmed = a.get("confirmed")  # the pick's score is the confirmed one; the proxy's aside
    proxy_value = a.get(schema.ATTR_PROXY_SCORE) if confirmed else p.value(score.name)
    proxy_psnr = proxy_value if score.name == SCORE else p.value(SCORE)
    scores_section = _scores_section(confirmed, scores_note)
    score_line = ("" if score.name == SCORE or proxy_value is None else
                  f"- {score.short} (the study's score): {score.format(proxy_value)}\n")
    return f"""# {p.design}

Trial **{p.number}** of study `{study_name}` (storage `{storage_label}`), picked as rank
{pick.rank} by rule `{pick.rule}` ({rule}) among complete, feasible trials with
{_budget_text(budgets)}, ranked by {by}.

Training config: [`{config_name}`]({config_name})

## Architecture

```yaml
{yaml.safe_dump({"arch": a[schema.ATTR_ARCH]}, sort_keys=False, default_flow_style=None).rstrip()}
```

## Measured costs (target model, {size[0]}x{size[1]} input, batch 1, {bits}-bit activations)

| cost | value |
|---|---|
| skip memory M_sc (peak) | {m_sc:,} bytes = {get_metric("m_sc").format(m_sc)}{saved} |
| peak activation memory, layer by layer | {opt("peak_memory", "{:,}")} bytes |
| peak memory, tiled executor ({_tiling_text(a)}) | {opt("peak_tiled", "{:,}")} bytes |
| recomputed MACs, tiled executor | {opt("recompute_macs", "{:,}")} |
| MACs (fvcore: one multiply-add = 1) | {opt("macs", "{:,}")} |
| MACs (paper / ptflops convention) | {opt("macs_paper", "{:,}")} |
| parameters | {opt("params", "{:,}")} |

M_sc held at the end of each stage (Fig. 1b):

| stage | bytes |
|---|---|
{timeline}

{_tiling_section(tiling[0], tiling[1], config_name)}
{scores_section}
{_trust_section(trust)}## Proxy scores

Scored by a short proxy training run (narrow backbone, same skip design), which ranks designs;
it does not predict the scores of full training.

{score_line}- PSNR: {"n/a" if proxy_psnr is None else f"{proxy_psnr:.3f} dB"}, SSIM: {opt("ssim", "{:.4f}")}
- PSNR of the degraded input (the do-nothing baseline): {opt(schema.INPUT_PSNR, "{:.3f} dB")}
- proxy steps: {opt("steps")}; last evaluations (step: PSNR): {curve or "n/a"}
- proxy architecture: `{json.dumps(a.get(schema.ATTR_PROXY_ARCH))}`

Constraints of the study:
{constraints}

## Train it

```
unetmm train {config_name}          # add --onnx to export the trained model to ONNX
```

Recipe: {rec.optimizer} (betas {list(rec.betas)}, weight decay {rec.weight_decay}), lr {rec.lr:g}
{rec.schedule} to {rec.lr_min:g}, {rec.iterations:,} iterations, batch {rec.batch},
{rec.crop}x{rec.crop} crops; task `{config.task.name}`; data train=`{config.data.train}`,
val=`{config.data.val}` (point them at your dataset, e.g. SIDD, before a real run). From Python:

```python
import nas
model = nas.build_model(nas.load_config("{config_name}"))
```
"""


def _trust_section(text: str) -> str:
    return f"## How far the ranking can be trusted\n\n{text}\n\n" if text else ""


def _tiling_text(attrs: Mapping[str, Any]) -> str:
    t = attrs.get("tiling")
    return f"tile {t['tile']}, split {t['split']}" if t else "not costed by this study"


def _scores_section(confirmed: Mapping[str, Any] | None, note: str) -> str:
    """The card's "Confirmed scores" section (what the pick was ranked by), or ``note``."""
    if not confirmed:
        return f"{note}\n" if note else ""
    m = get_metric(confirmed.get("score", SCORE))
    runs = ", ".join(f"seed {s}: {v:.3f}" for s, v in sorted(confirmed["runs"].items()))
    return f"""## Confirmed scores (ranked by these)

Re-trained at a higher fidelity by `unetmm confirm` (study `{confirmed["study"]}`:
{confirmed["fidelity"]}).

- confirmed {m.short}: {m.format(confirmed["mean"])} mean, {m.format(confirmed["std"])}
  standard deviation over seeds ({runs})
- rank among the confirmed designs: {confirmed["confirmed_rank"]} (by proxy {m.short}:
  {confirmed["proxy_rank"]})
- {confirmed["agreement"]}
"""


@dataclasses.dataclass(frozen=True)
class Exported:
    pick: Pick
    config: Path
    card: Path
    scores: str = "proxy"  # what the pick was ranked by: "confirmed" or "proxy"
    tiling: Path | None = None  # the tiled executor's plan (None: the design cannot be tiled)
    trust: str = ""  # what the check of its proxy says about its top designs
    ties: tuple[TrialPoint, ...] = ()  # the designs within its noise floor of the proxy's best


def export_study(
    study: optuna.Study,
    out_dir: str | Path,
    *,
    budgets: Mapping[str, float] | None = None,
    rule: str = "best",
    top: int = 1,
    recipe: Mapping[str, Any] | None = None,
    storage_label: str = "",
    train_out_root: str = "runs",
) -> list[Exported]:
    """Pick trials (see ``pick_trials``); write ``<study>-trial<N>.yaml`` and ``.md`` for each."""
    from studies.results.report import FullSkipMemory

    points = pareto.load_points(study)
    score = study_score(pareto.study_objectives(study))
    picks, scores, note = None, "confirmed", ""
    picks = _confirmed_picks(study, points, budgets, rule, top, score)
    if picks is None:
        picks = pick_trials(points, budgets, rule, top, f"study {study.study_name!r}",
                            score.name)  # fmt: skip
        scores, note = "proxy", _proxy_note(study, score)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    spec = study.user_attrs.get("spec") or {}
    full_m_sc = FullSkipMemory()
    pool = [p for p in _eligible(points, score.name) if _within(p, budgets or {})]
    trust, ties = judge(study.user_attrs.get("comparable"), pool, score) if scores == "proxy" \
        else ("", [])
    written = []
    for pick in picks:
        stem = f"{study.study_name}-trial{pick.point.number}"
        config = training_config(pick.point, spec, f"{train_out_root}/{stem}", recipe)
        config_path = out / f"{stem}.yaml"
        header = (
            f"# unetmm export: trial {pick.point.number} of study {study.study_name}, "
            f"rule {rule} (rank {pick.rank}); model card: {stem}.md\n"
        )
        config_path.write_text(header + config.to_yaml())
        plan = tiling_plan(pick.point, spec)
        plan_path = out / f"{stem}.tiling.yaml" if plan is not None else None
        if plan_path is not None:
            plan_path.write_text(f"# unetmm export: the tiled executor's plan for {stem}.yaml "
                                 "(nas.tiling; bytes at 'bits' per activation)\n"
                                 + yaml.safe_dump(plan, sort_keys=False))  # fmt: skip
        card = model_card(
            pick,
            study.study_name,
            storage_label,
            config_path.name,
            full_m_sc(pick.point),
            config,
            dict(budgets or {}),
            note,
            score,
            (plan, plan_path.name if plan_path else None),
            trust,
        )
        card_path = out / f"{stem}.md"
        card_path.write_text(card)
        written.append(Exported(pick, config_path, card_path, scores, plan_path, trust,
                                tuple(ties)))  # fmt: skip
    return written


def _confirmed_picks(
    study: optuna.Study, points: Sequence[TrialPoint], budgets: Mapping[str, float] | None,
    rule: str, top: int, score: Metric,
) -> list[Pick] | None:  # fmt: skip
    """Picks among the confirmed designs, by their confirmed ``score``; None without a
    confirmation of that score or when no confirmed design fits the budgets."""
    conf = load_confirmation(study)
    if conf is None or conf.score != score.name:
        return None
    try:
        return pick_trials(with_confirmed_scores(points, conf), budgets, rule, top,
                           score=score.name)
    except ConfigError:
        return None


def _proxy_note(study: optuna.Study, score: Metric) -> str:
    """Why a card shows proxy scores only."""
    conf = load_confirmation(study)
    if conf is not None and conf.score != score.name:
        return (f"Ranked by the proxy's {score.short}, the study's score: its confirmation "
                f"`{conf.study_name}` measured {conf.metric.short} (an older release's), so it "
                f"does not rank this study; `unetmm confirm --name NEW` confirms {score.short}.\n")
    if conf is None:
        return (f"Not confirmed at a higher fidelity: `unetmm confirm STORAGE --study "
                f"{study.study_name}` re-trains the front (more steps, seeds, or the target "
                "backbone) and export then ranks by its scores.\n")  # fmt: skip
    return ("The study was confirmed at a higher fidelity, but no confirmed design fits the "
            f"budgets: this pick is ranked by proxy {score.short}.\n")
