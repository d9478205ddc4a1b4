"""``FeasibleFirst``: on the nafnet_sidd preset (NAFNet-w32 at 256x256, 8 bit, ``m_sc <= 0.25 MiB``)
every sampler's proposals keep to the skip-memory limit, while the same sampler unwrapped
proposes mostly designs over it; draws are redrawn, not told; queued parameters win; runs repeat
for a seed; the analytic M_sc is the costs' M_sc."""

from __future__ import annotations

import warnings

import optuna
import pytest

from nas.config import ArchConfig
from nas.skips import FullSkipsConfig, SubsetSkipsConfig, UNetMMConfig
from search_spaces import get_space
from studies.search.feasibility import ANALYTIC, AnalyticCheck, FeasibleFirst, feasible_first
from studies.search.protocol import TrialSettings
from studies.search.samplers import make_sampler
from studies.search.worker import cost_attrs
from studies.spec import load_spec

optuna.logging.set_verbosity(optuna.logging.ERROR)
SPEC = load_spec("nafnet_sidd")
SETTINGS = TrialSettings.from_spec(SPEC)
BACKBONE = SPEC.target.backbone_config()
LIMIT = 0.25 * 2**20


def m_sc(skip) -> int:
    return ANALYTIC["m_sc"](ArchConfig(BACKBONE, skip), (256, 256), 1, 8)


def propose(sampler, n: int, tmp_path, name: str = "s") -> list:
    """``n`` proposals of the nafnet_sidd space through ``sampler``, told a stand-in score
    (more PSNR for more M_sc) and their M_sc as the constraint, as the searcher would."""
    study = optuna.create_study(storage=f"sqlite:///{tmp_path}/{name}.db", sampler=sampler,
                                directions=["maximize", "minimize"])  # fmt: skip
    space, skips = get_space(SPEC.space.name), []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(n):
            trial = study.ask()
            skip = space.suggest(trial, SPEC.bounds).skip
            memory = m_sc(skip)
            trial.set_constraint("m_sc <= 0.25 MiB", (memory - LIMIT) / 2**20)
            study.tell(trial, [20.0 + memory / 2**18 if memory <= LIMIT else -1e9, memory])
            skips.append(skip)
    return skips


@pytest.mark.parametrize("name", ["random", "tpe", "nsga2"])
def test_wrapped_samplers_propose_only_designs_within_the_skip_memory_limit(name, tmp_path):
    plain = propose(make_sampler(name, 0, {}, 40), 30, tmp_path, "plain")
    sampler = feasible_first(make_sampler(name, 0, {}, 40), SPEC, SETTINGS)
    assert isinstance(sampler, FeasibleFirst)
    wrapped = propose(sampler, 30, tmp_path, "wrapped")
    over = sum(m_sc(s) > LIMIT for s in plain)
    assert over >= 12  # unwrapped: 40% or more of the proposals break the limit
    assert all(m_sc(s) <= LIMIT for s in wrapped)
    assert sampler.redrawn >= over // 2 and sampler.kept_infeasible == 0
    assert len({s for s in wrapped}) >= 10  # it still explores: not one safe design


def test_the_filter_reads_the_costs_m_sc():
    for skip in (FullSkipsConfig(), SubsetSkipsConfig(stages=(1, 3)), UNetMMConfig.paper(4)):
        arch = ArchConfig(BACKBONE, skip)
        assert m_sc(skip) == cost_attrs(arch, SETTINGS)["m_sc_bytes"]
    assert m_sc(FullSkipsConfig()) == 3_932_160  # 15/8 x E1 at 8 bit (the paper's Fig. 1b)
    check = AnalyticCheck(SETTINGS.hard_constraints, (256, 256), 1, 8)
    assert [c.name for c in check.constraints] == ["m_sc <= 0.25 MiB"]  # MACs: not analytic
    assert check(ArchConfig(BACKBONE, UNetMMConfig.paper(4)))
    assert not check(ArchConfig(BACKBONE, FullSkipsConfig()))


def test_when_every_draw_breaks_the_check_the_last_is_kept(tmp_path):
    tries = 3
    sampler = FeasibleFirst(optuna.samplers.RandomSampler(seed=1), SPEC.space.name, SPEC.bounds,
                            BACKBONE, check=lambda arch: False, tries=tries)  # fmt: skip
    skips = propose(sampler, 5, tmp_path)
    assert len(skips) == 5 and sampler.kept_infeasible == 5
    assert sampler.redrawn == 5 * (tries - 1)


def test_a_seed_repeats_its_proposals_and_queued_params_win(tmp_path):
    runs = [propose(feasible_first(make_sampler("tpe", 3, {}, 40), SPEC, SETTINGS), 15,
                    tmp_path, f"run{i}") for i in range(2)]  # fmt: skip
    assert runs[0] == runs[1]

    sampler = feasible_first(make_sampler("random", 0, {}, 40), SPEC, SETTINGS)
    study = optuna.create_study(sampler=sampler, directions=["maximize", "minimize"])
    study.enqueue_trial({"design": "subset", "subset.s1": True, "subset.s2": True})
    trial = study.ask()
    skip = get_space(SPEC.space.name).suggest(trial, SPEC.bounds).skip
    assert set(skip.skip_stages(4)) >= {1, 2} and m_sc(skip) > LIMIT  # given, so kept as is


def test_prefilter_off_in_the_spec_leaves_the_sampler_as_it_is():
    spec = load_spec("nafnet_sidd").model_copy(deep=True)
    from studies.spec import parse_spec

    data = spec.model_dump(mode="json") | {"sampler": {"name": "tpe", "prefilter": False,
                                                       "n_ei_candidates": 32}}  # fmt: skip
    off = parse_spec(data, "")
    assert off.sampler.options == {"n_ei_candidates": 32} and off.sampler.prefilter is False
    base = make_sampler("tpe", 0, off.sampler.options, 40)
    assert feasible_first(base, off, TrialSettings.from_spec(off)) is base
    free = parse_spec(data | {"constraints": ["macs <= 18 G"], "sampler": "tpe"}, "")
    assert free.sampler.prefilter is True  # on by default; nothing analytic to check, so it
    wrapped = feasible_first(base, free, TrialSettings.from_spec(free))  # redraws known only
    assert isinstance(wrapped, FeasibleFirst) and wrapped._check(ArchConfig(BACKBONE,
                                                                            FullSkipsConfig()))


def test_designs_judged_before_are_redrawn(tmp_path):
    """With ``known`` (here: every design proposed so far), 30 TPE proposals are 30 designs;
    without it TPE repeats itself."""
    judged: set[str] = set()

    def known(study):
        return set(judged)

    plain = propose(make_sampler("tpe", 0, {}, 40), 30, tmp_path, "plain")
    sampler = feasible_first(make_sampler("tpe", 0, {}, 40), SPEC, SETTINGS, known=known)
    study = optuna.create_study(storage=f"sqlite:///{tmp_path}/k.db", sampler=sampler,
                                directions=["maximize", "minimize"])  # fmt: skip
    space, keys = get_space(SPEC.space.name), []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(30):
            trial = study.ask()
            skip = space.suggest(trial, SPEC.bounds).skip
            keys.append(ArchConfig(BACKBONE, skip).key())
            judged.add(keys[-1])
            study.tell(trial, [20.0 + m_sc(skip) / 2**18, m_sc(skip)])
    assert (len(set(keys)), sampler.kept_known, sampler.kept_infeasible) == (30, 0, 0)
    assert len({ArchConfig(BACKBONE, s).key() for s in plain}) < 30  # TPE alone repeats itself


def test_a_search_on_nafnet_sidd_proposes_no_design_over_the_limit(tmp_path):
    """``StudySearcher`` (the search's code, without Ray) on the preset, 12 designs judged with
    a stand-in score: after the queued references (``full`` breaks the limit and is told
    infeasible, as every queued design is) no proposal is infeasible, and the summary's count
    of redrawn draws is the wrapper's."""
    from studies.search.driver import enqueue_references, prepare_study
    from studies.search.heartbeat import Heartbeat
    from studies.search.protocol import ARCH_KEY
    from studies.search.searcher import StudySearcher
    from studies.storage import open_storage

    spec = SPEC.with_overrides(n_trials=12)
    storage = open_storage(f"sqlite:///{tmp_path}/s.db")
    study = prepare_study(spec, spec.name, storage)
    enqueue_references(study, spec)
    heartbeat = Heartbeat(storage, 60).start()
    searcher = StudySearcher(spec, spec.name, storage, make_sampler("tpe", 0, {}, 12), heartbeat)
    try:
        for i in range(12):
            config = searcher.suggest(f"r{i}")
            arch = ArchConfig.from_json(config[ARCH_KEY])
            psnr = 21.0 + sum(arch.skip.skip_stages(4)) / 4
            searcher.on_trial_complete(f"r{i}", {"phase": "final", "status": "complete",
                                                 "psnr_db": psnr, "ssim": 0.5})  # fmt: skip
    finally:
        heartbeat.stop()
    trials = searcher.study.get_trials(deepcopy=False)
    infeasible = [t.number for t in trials if t.user_attrs.get("status") == "infeasible"]
    assert infeasible == [0]  # the queued full-skip reference, told with its constraint
    assert trials[0].constraints["m_sc <= 0.25 MiB"] > 0 and len(searcher.judged_numbers()) == 12
    assert searcher.sampler.redrawn > 0 and searcher.proposals["infeasible"] == 1
