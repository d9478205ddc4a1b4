"""How far a study's ranking can be trusted under its budget: the check of its proxy.

A proxy ranks designs quickly; whether it ranks them as a better-trained network would is a
measurement, of one of two kinds (``reference``):

- ``target``: designs of one budget trained as the deployed network, two seeds each, against
  the proxy (``benchmarks/target_fidelity.py --budget-set``, ``benchmarks/noise_floor.py``);
- ``longer``: the same designs trained by the proxy itself at several times the study's steps
  (``benchmarks/task_fidelity.py --trust``): a weaker check, run where the target is out of a
  CPU's reach (matting, deblurring, super-resolution presets).

The results are package data (``studies/presets/trust.yaml``), one entry per proxy setting,
matched to a study by what makes results comparable (``StudySpec.comparable()`` but the seed).
An entry states:

- ``floor_db``: the reference's seed noise (1.96 x the pooled seed standard deviation x
  sqrt(2): two single runs of two designs closer than this are not told apart);
- ``proxy_floor_db``: the same for the proxy's own scores (two proxy seeds), when measured;
- ``tau``: Kendall's tau of the proxy's ranking (one run a design at the study's seed, as a
  study trains it) against the reference's (seed means) over the designs; ``tau_seeds``: the
  same for each proxy seed measured. Below 0.6 on any of them the proxy does not rank them;
- ``contenders``, ``tau_contenders``, ``pick_loss_db``: the same over the designs within
  ``CONTENDERS_DB`` of the reference's best (where a user's choice is made), and how far below
  that best the proxy's first-ranked design is;
- what was measured: the budget, designs, seeds, target training, and the result file.

``tie_group`` is the front's top: every eligible design whose proxy score lies within the
proxy's floor of the best (``Trust.tie_floor_db``: the target's floor where the proxy's was not
measured). When it holds more than one design, the report and ``unetmm export`` say so, name
the simplest of them (fewest MACs, then parameters) beside the proxy's winner, and recommend
``unetmm confirm``.
"""

from __future__ import annotations

import dataclasses
import importlib.resources
from collections.abc import Mapping, Sequence
from typing import Any

import yaml

from studies.metrics import Metric
from studies.results.pareto import TrialPoint

TRUST_FILE = "trust.yaml"  # package data of ``studies`` (in ``presets/``)
IGNORED = ("seed",)  # comparable fields that do not change what a check says
TAU_RANKS = 0.6  # below it the proxy's order under the budget is not trusted
CONTENDERS_DB = 2.0  # designs this close to the reference's best are where a user's choice is made


@dataclasses.dataclass(frozen=True)
class Trust:
    """One check of a proxy (see the module docstring)."""

    preset: str
    comparable: dict[str, Any]
    budget: str
    designs: int
    seeds: int
    target: str
    floor_db: float | None  # None: the reference was trained at one seed
    spread_db: float
    tau: float
    source: str
    proxy_floor_db: float | None = None
    contenders: int | None = None  # designs within CONTENDERS_DB of the reference's best
    tau_contenders: float | None = None
    pick_loss_db: float | None = None  # the reference's best minus the proxy's pick, there
    reference: str = "target"  # what the proxy is checked against: "target" or "longer"
    tau_seeds: list[float] | None = None  # tau of one proxy run a design, per proxy seed

    @property
    def ranks(self) -> bool:
        """tau at least ``TAU_RANKS``, on every proxy seed measured (a NaN tau does not rank)."""
        return all(t >= TAU_RANKS for t in [self.tau, *(self.tau_seeds or [])])

    def _tau_text(self) -> str:
        if not self.tau_seeds or len(self.tau_seeds) < 2:
            return f"{self.tau:.2f}"
        each = ", ".join(f"{t:.2f}" for t in self.tau_seeds)
        return f"{self.tau:.2f} ({each} with {len(self.tau_seeds)} proxy seeds)"

    @property
    def tie_floor_db(self) -> float:
        """How close two proxy scores may be and still be noise (0: neither floor measured)."""
        if self.proxy_floor_db is not None:
            return self.proxy_floor_db
        return 0.0 if self.floor_db is None else self.floor_db


    def summary(self) -> str:
        """One paragraph for a report or a model card."""
        proxy = ("" if self.proxy_floor_db is None else
                 f" at the target and {self.proxy_floor_db:.2f} dB in the proxy's own scores")
        verdict = ("ranks them" if self.ranks else
                   f"does not rank them (tau below {TAU_RANKS}"
                   + (" with a seed)" if self.tau >= TAU_RANKS else ")"))  # fmt: skip
        top = ""
        best = "the longer runs' best" if self.reference == "longer" else "the target's best"
        if self.contenders is not None and self.tau_contenders is not None:
            top = (f" Over the {self.contenders} designs within {CONTENDERS_DB:g} dB of "
                   f"{best}, where the choice is made, tau is {self.tau_contenders:.2f}")
            if self.pick_loss_db is not None:
                top += (f", and the design the proxy ranks first is {self.pick_loss_db:.2f} dB "
                        f"below {best}")
            top += "."
        if self.reference == "longer":
            short = len(self.tau_seeds or [self.tau])
            own = self.proxy_floor_db
            if self.floor_db is None:
                floor = "the longer runs' seed-to-seed noise floor is not measured (one seed)"
                floor += "" if own is None else f"; the study's own runs' floor is {own:.2f} dB"
            else:
                floor = (f"the seed-to-seed noise floor is {self.floor_db:.2f} dB in the longer "
                         "runs" + ("" if own is None else f" and {own:.2f} dB in the study's "
                                   "own runs"))  # fmt: skip
            return (f"Budget check of this proxy (study preset {self.preset}; no target-scale "
                    f"check exists for it): {self.designs} designs with {self.budget}, each "
                    f"trained by the proxy at the study's budget, {_seeds(short)}, and at "
                    f"{self.target}, {_seeds(self.seeds)}; each seed of the study's runs is "
                    f"compared with the longer runs of the other seeds. The longer runs' PSNRs "
                    f"span {self.spread_db:.2f} dB; {floor}. The "
                    f"study's ranking agrees with the longer runs' "
                    f"at Kendall tau {self._tau_text()}: it {verdict}.{top} "
                    f"Source: {self.source}.")  # fmt: skip
        return (f"Target-scale check of this proxy (study preset {self.preset}): "
                f"{self.designs} designs with {self.budget}, each trained as the target "
                f"({self.target}) with {self.seeds} seeds. Their target PSNRs span "
                f"{self.spread_db:.2f} dB; the seed-to-seed noise floor is {self.floor_db:.2f} "
                f"dB{proxy}. The proxy's ranking agrees with the target's at Kendall tau "
                f"{self._tau_text()}: it {verdict}.{top} Source: {self.source}.")  # fmt: skip


def _seeds(n: int) -> str:
    return f"{n} seed{'s' * (n != 1)}"


def load_checks() -> list[Trust]:
    """Every check shipped with unetmm."""
    path = importlib.resources.files("studies").joinpath("presets", TRUST_FILE)
    data = yaml.safe_load(path.read_text()) or []
    return [Trust(**entry) for entry in data]


def _key(comparable: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in comparable.items() if k not in IGNORED}


def trust_for(comparable: Mapping[str, Any] | None,
              checks: Sequence[Trust] | None = None) -> Trust | None:  # fmt: skip
    """The check that speaks for a study with these comparable fields (None: none does)."""
    if not isinstance(comparable, Mapping) or not comparable:
        return None
    want = _key(comparable)
    return next((c for c in (load_checks() if checks is None else checks)
                 if _key(c.comparable) == want), None)  # fmt: skip


def tie_group(points: Sequence[TrialPoint], score: Metric, floor_db: float) -> list[TrialPoint]:
    """The designs whose ``score`` is within ``floor_db`` of the best among ``points`` (best
    first; one point per design is expected). Scores in dB only: others give the best alone."""
    scored = [p for p in points if p.value(score.name) is not None]
    if not scored:
        return []
    sign = 1.0 if score.maximized else -1.0
    scored.sort(key=lambda p: (-sign * p.value(score.name), p.number))  # type: ignore[operator]
    best = scored[0].value(score.name)
    if score.unit != "db":
        return scored[:1]
    return [p for p in scored if abs(best - p.value(score.name)) <= floor_db]  # type: ignore[operator]


def simplest(group: Sequence[TrialPoint]) -> TrialPoint:
    """The design of ``group`` with the fewest MACs, then parameters, then the lowest number."""
    def cost(p: TrialPoint) -> tuple[float, float, int]:
        return (p.value("macs") or float("inf"), p.value("params") or float("inf"), p.number)

    return min(group, key=cost)


def judge(comparable: Mapping[str, Any] | None, pool: Sequence[TrialPoint], score: Metric
          ) -> tuple[str, list[TrialPoint]]:  # fmt: skip
    """``verdict`` on the top of ``pool`` (one eligible trial per design) for a study with
    these comparable fields, and that top (``tie_group``)."""
    check = trust_for(comparable)
    group = tie_group(pool, score, check.tie_floor_db if check else 0.0)
    return verdict(check, group, score), group


def verdict(trust: Trust | None, group: Sequence[TrialPoint], score: Metric) -> str:
    """What to say about the front's top: the check (or that there is none), the designs within
    its floor, the simplest of them, and ``unetmm confirm``. Empty for no scored design."""
    if not group:
        return ""
    if trust is None:
        return ("No shipped check speaks for this study's proxy (none has its target, task and "
                "budget): how well it ranks designs of equal memory is not known. "
                "`unetmm confirm` re-trains the front at a higher fidelity.")  # fmt: skip
    text = trust.summary()
    best = group[0]
    if len(group) > 1:
        simple = simplest(group)
        others = ", ".join(f"#{p.number}" for p in group[1:])
        text += (f" The proxy's top {len(group)} designs lie within {trust.tie_floor_db:.2f} dB of "
                 f"each other "
                 f"(#{best.number}, {others}): it cannot tell them apart. The proxy's winner is "
                 f"#{best.number} ({best.design}); the simplest of them is #{simple.number} "
                 f"({simple.design}: fewest MACs, then parameters).")  # fmt: skip
    else:
        text += (f" The proxy's winner #{best.number} ({best.design}) leads the next design by "
                 f"more than {trust.tie_floor_db:.2f} dB.")  # fmt: skip
    if len(group) > 1 or not trust.ranks:
        text += " Confirm before you choose: `unetmm confirm` re-trains these designs longer."
    return text
