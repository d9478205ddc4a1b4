"""``unetmm confirm``: what it picks, how a linked study reads back (ranks, tau, Spearman), how
export and report use it (hand-written studies in real SQLite), and end to end on a real search
(real Ray, real proxy training at tiny budgets): results readable with plain Optuna, resume
after an interruption, a dead driver and a SIGKILL, with trial counts checked."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time

import optuna
import pytest
import torch
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

import nas
from nas.presets import backbone_preset
from studies import schema
from studies.artifacts import trial_data
from studies.cli import main
from studies.metrics import get_metric
from studies.results import confirm
from studies.results.confirm import job_key, select_designs, summarize
from studies.results.export import export_study
from studies.results.pareto import TrialPoint
from studies.results.report import write_report
from studies.search.confirm import ConfirmOptions, job_settings, run_confirm
from studies.search.driver import run_search
from studies.search.outcome import INTERRUPTED
from studies.spec import load_spec, parse_spec
from studies.storage import load_study

PY = sys.executable
MIB = 2**20
W32 = backbone_preset("nafnet-w32")


def arch(skip) -> dict:
    return nas.ArchConfig(W32, skip).to_dict()


FULL = arch(nas.FullSkipsConfig())
NONE = arch(nas.NoSkipsConfig())
S4 = arch(nas.SubsetSkipsConfig(stages=(4,)))
S1 = arch(nas.SubsetSkipsConfig(stages=(1,)))


def point(number, a, psnr, m_sc, *, ref=None, status="complete", state="COMPLETE", curve=None):
    attrs = {"arch": a, "design": f"d{number}", "status": status, "m_sc_bytes": m_sc,
             "macs": 16e9, "curve": curve or []}  # fmt: skip
    if psnr is not None:
        attrs["psnr"] = psnr
    if ref:
        attrs["reference"] = ref
    return TrialPoint(number, state, attrs, {}, {})


def test_select_takes_the_front_first_then_the_trained_references():
    points = [
        point(0, FULL, 30.0, 3.75 * MIB, ref="full"),
        point(1, NONE, None, 0, ref="none", status="stopped", state="PRUNED",
              curve=[[10, 27.0], [20, 27.5]]),
        point(2, S4, 29.0, 0.25 * MIB),  # front
        point(3, S1, 28.0, 1 * MIB),  # dominated by #2: second layer
        point(4, S4, 29.0, 0.25 * MIB),  # a repeat of #2
        point(5, arch(nas.SubsetSkipsConfig(stages=(2,))), 28.5, 0.5 * MIB),  # front
    ]
    picked = select_designs(points, ("psnr", "m_sc"), top=3)
    assert [p.number for p in picked] == [0, 2, 5, 1]  # layer 1 by PSNR, then the stopped ref
    assert [p.number for p in select_designs(points, ("psnr", "m_sc"), top=5)] == [0, 2, 5, 3, 1]
    assert confirm.proxy_score(points[1]) == (27.5, True)  # its last validation, partial
    assert confirm.proxy_score(points[0]) == (30.0, False)


def test_a_job_whose_worker_died_runs_again_in_the_same_run(tmp_path):
    """The job searcher on a real study, without Ray: a trial lost with its worker (Ray's
    error, no final report) is told FAIL and its job is handed out again at once, at most
    ``max_retry`` times; a reported failure (the design raised) is not retried."""
    import io

    from rich.console import Console

    from studies import compat
    from studies.search import protocol
    from studies.search.confirm import Job, JobSearcher
    from studies.search.heartbeat import Heartbeat
    from studies.search.outcome import WORKER_DIED

    url = f"sqlite:///{tmp_path / 'c.db'}"
    study = optuna.create_study(study_name="c", storage=url, direction="maximize")
    jobs = [Job(point(0, FULL, 30.0, 3.75 * MIB), 0), Job(point(1, S4, 29.0, 0.25 * MIB), 0)]
    out = io.StringIO()
    heartbeat = Heartbeat(compat.study_storage(study), 60.0)  # not started: no thread
    searcher = JobSearcher(study, jobs, get_metric("psnr"), heartbeat, Console(file=out, width=200),
                           None, max_retry=1)  # fmt: skip
    first = searcher.suggest("t1")
    assert first[protocol.SEED_KEY] == 0 and nas.ArchConfig.from_json(
        first[protocol.ARCH_KEY]).to_dict() == FULL  # fmt: skip
    searcher.on_trial_complete("t1", {protocol.PHASE: protocol.PHASE_COSTS}, error=True)
    again = searcher.suggest("t2")  # the same job, a new trial
    assert again[protocol.ARCH_KEY] == first[protocol.ARCH_KEY]
    assert again[protocol.NUMBER_KEY] == first[protocol.NUMBER_KEY] + 1
    searcher.on_trial_complete("t2", None, error=True)  # lost again: no retry left
    third = searcher.suggest("t3")
    assert nas.ArchConfig.from_json(third[protocol.ARCH_KEY]).to_dict() == S4
    searcher.on_trial_complete("t3", protocol.final_result(
        {"status": "failed", "error": "ValueError: bad"}), error=False)  # fmt: skip
    assert searcher.suggest("t4") == "FINISHED" and searcher.unfinished_trial_ids() == {}
    # a worker that dies after its final report: the report stands, the job is not re-run
    late = JobSearcher(study, jobs[:1], get_metric("psnr"), heartbeat, Console(file=out), None,
                       max_retry=1)  # fmt: skip
    late.suggest("u1")
    late.on_trial_result("u1", protocol.final_result({"status": "complete", "psnr_db": 27.5}))
    late.on_trial_complete("u1", None, error=True)
    assert late.suggest("u2") == "FINISHED" and late.lost == []
    last = study.get_trials()[-1]
    assert last.state == TrialState.COMPLETE and last.value == 27.5
    trials = study.get_trials()[:3]
    assert [t.state for t in trials] == [TrialState.FAIL] * 3
    assert [t.user_attrs["error"] for t in trials] == [WORKER_DIED, WORKER_DIED, "ValueError: bad"]
    assert searcher.told == [0, 1, 2] and searcher.lost == [0]
    said = out.getvalue().splitlines()
    assert said[0].startswith("[0/2] trial 0: #0 d0 seed 0: failed: the trial's worker")
    assert said[0].endswith("; the job runs again") and "runs again" not in said[1]
    assert said[2].startswith("[2/2] trial 2: #1 d1 seed 0: failed: ValueError: bad")


def test_a_source_study_todays_code_trains_differently_is_refused(tmp_path):
    """A study whose stored fingerprint is not what its spec gives today (e.g. matting searched
    on version-1 composites) is not confirmed: its proxy scores would not compare."""
    url = f"sqlite:///{tmp_path / 'old.db'}"
    spec = parse_spec(TINY, "")
    old = optuna.create_study(study_name="tiny", storage=url,
                              directions=["maximize", "minimize", "minimize"])  # fmt: skip
    old.set_user_attr("objectives", list(spec.objectives))
    old.set_user_attr("spec", spec.model_dump(mode="json"))
    old.set_user_attr("fingerprint", "0123456789abcdef")
    old.set_user_attr("comparable", {**spec.comparable(), "proxy.mattes": 1})
    with pytest.raises(nas.ConfigError, match=r"^--study: 'tiny' was searched with settings "
                       r"that today's unetmm trains differently \(proxy.mattes 1 -> null\)"):
        run_confirm(url, "tiny", ConfirmOptions(top=1, steps=2, seeds=1))


def _source_and_linked(url: str) -> tuple[optuna.Study, optuna.Study]:
    """A source study (4 designs) and its linked study: full, subset[1], subset[4] confirmed,
    none not; subset[1]'s second seed failed. Proxy order full > s1 > s4, confirmed s4 > full >
    s1: tau-b -1/3, Spearman -0.5."""
    source = optuna.create_study(study_name="src", storage=url,
                                 directions=["maximize", "minimize", "minimize"])  # fmt: skip
    source.set_user_attr(schema.STUDY_ATTR_OBJECTIVES, ["psnr", "m_sc", "macs"])
    dist = {"x": FloatDistribution(0, 1)}
    for number, (a, psnr, m_sc, ref) in enumerate(
        [(FULL, 30.0, 3.75 * MIB, "full"), (NONE, 27.0, 0, "none"),
         (S1, 29.5, 0.125 * MIB, None), (S4, 29.0, 0.25 * MIB, None)]):  # fmt: skip
        attrs = {"arch": a, "design": f"d{number}", "status": "complete", "psnr": psnr,
                 "m_sc_bytes": int(m_sc), "macs": 16_000_000_000}  # fmt: skip
        if ref:
            attrs["reference"] = ref
        source.add_trial(create_trial(values=[psnr, m_sc, 16e9], params={"x": 0.1 * number},
                                      distributions=dist, user_attrs=attrs))  # fmt: skip
    linked = optuna.create_study(study_name="src.confirm", storage=url, direction="maximize")
    linked.set_user_attr(schema.STUDY_ATTR_CONFIRM_OF, "src")
    linked.set_user_attr(schema.STUDY_ATTR_FIDELITY, {"backbone": "proxy", "budget": {"steps": 80}})
    runs = [(0, FULL, 30.0, 0, 30.5), (0, FULL, 30.0, 1, 30.7), (2, S1, 29.5, 0, 28.5),
            (2, S1, 29.5, 1, None), (3, S4, 29.0, 0, 30.9), (3, S4, 29.0, 1, 31.1)]  # fmt: skip
    for source_trial, a, proxy, seed, value in runs:
        attrs = {schema.ATTR_SOURCE_TRIAL: source_trial, schema.ATTR_JOB: job_key(a, seed),
                 schema.ATTR_SEED: seed, schema.ATTR_ARCH: a,
                 schema.ATTR_DESIGN: f"d{source_trial}",
                 schema.ATTR_PROXY_PSNR: proxy, "m_sc_bytes": 1}  # fmt: skip
        state = TrialState.COMPLETE if value is not None else TrialState.FAIL
        linked.add_trial(create_trial(state=state, value=value, user_attrs=attrs))
    return source, linked


def test_summary_ranks_spread_and_rank_correlations(tmp_path):
    _, linked = _source_and_linked(f"sqlite:///{tmp_path / 's.db'}")
    conf = summarize(linked)
    assert [d.source_trial for d in conf.designs] == [0, 2, 3]  # in proxy-rank order
    full, s1, s4 = conf.designs
    assert (full.proxy_rank, s1.proxy_rank, s4.proxy_rank) == (1, 2, 3)
    assert (full.confirmed_rank, s1.confirmed_rank, s4.confirmed_rank) == (2, 3, 1)
    assert full.mean == pytest.approx(30.6) and full.std == pytest.approx(0.1414, abs=1e-4)
    assert s1.runs == {0: 28.5} and s1.std == 0.0 and conf.failed == 1
    assert conf.kendall_tau == pytest.approx(-1 / 3) and conf.spearman == pytest.approx(-0.5)
    rows = confirm.table_rows(conf)
    assert rows[2]["rank change"] == "+2" and rows[0]["rank change"] == "-1"
    stored = conf.to_json()
    assert stored["designs"][0]["confirmed"] == {"0": 30.5, "1": 30.7}


def test_export_ranks_by_confirmed_scores_and_falls_back_to_proxy(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 's.db'}"
    source, _ = _source_and_linked(url)
    assert load_study(str(tmp_path / "s.db")).study_name == "src"  # the linked one is no choice
    # by proxy PSNR, M_sc <= 0.25 MiB would pick subset[1] (29.5); confirmed: subset[4] (31.0)
    (picked,) = export_study(source, tmp_path / "a", budgets={"m_sc": 0.25 * MIB})
    assert picked.scores == "confirmed" and picked.pick.point.number == 3
    assert picked.pick.point.value("psnr") == pytest.approx(31.0)
    card = picked.card.read_text()
    assert "Confirmed scores (ranked by these)" in card and "ranked by confirmed PSNR" in card
    assert "31.000 dB mean" in card and "- PSNR: 29.000 dB" in card  # proxy PSNR kept below
    # no confirmed design fits 0.1 MiB: proxy scores, and the card says so
    (fallback,) = export_study(source, tmp_path / "b", budgets={"m_sc": 0.1 * MIB})
    assert fallback.scores == "proxy" and fallback.pick.point.number == 1
    assert "no confirmed design fits the budgets" in fallback.card.read_text()
    assert main(["export", str(tmp_path / "s.db"), "--max-m-sc", "0.25MiB", "--out",
                 str(tmp_path / "c")]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert out.startswith("ranked by confirmed PSNR (unetmm confirm)\n#1 trial 3 ")


def test_report_shows_the_confirmed_section(tmp_path):
    source, _ = _source_and_linked(f"sqlite:///{tmp_path / 's.db'}")
    report = write_report(source, tmp_path / "report")
    page = report.html.read_text()
    assert 'id="confirmed-table"' in page and 'id="confirmed"' in page
    assert "Kendall tau-b -0.333, Spearman -0.500" in page
    assert report.pngs["confirmed"].stat().st_size > 10_000


def test_user_mistakes_are_one_line(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 's.db'}"
    _source_and_linked(url)
    for args, message in (
        (["--top", "0"], "error: --top: must be >= 1, got 0"),
        (["--seeds", "0"], "error: --seeds: must be >= 1"),
        (["--steps", "0"], "error: --steps: must be >= 1"),
        (["--scale", "-2"], "error: --scale: must be > 0"),
        (["--study", "nope"], "error: --study: no study 'nope'"),
        (["--study", "src"], "error: --study: 'src' has no usable stored spec"),
    ):  # fmt: skip
        assert main(["confirm", str(tmp_path / "s.db"), *args]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith(message) and len(err.splitlines()) == 1, err
    assert main(["confirm", str(tmp_path / "s.db"), "--gpus-per-trial", "-1"]) == 2
    assert capsys.readouterr().err.startswith("error: --gpus-per-trial: must be >= 0")
    assert main(["confirm", str(tmp_path / "missing.db")]) == 2
    assert "no such file" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["confirm", str(tmp_path / "s.db"), "--steps", "5", "--scale", "2"])
    assert exc.value.code == 2 and "not allowed with" in capsys.readouterr().err


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU answer")
def test_a_gpu_study_without_a_gpu_is_refused_before_ray(tmp_path, capsys):
    source, _ = _source_and_linked(f"sqlite:///{tmp_path / 's.db'}")
    spec = parse_spec({**TINY, "gpus_per_trial": 0.5}, "")
    source.set_user_attr(schema.STUDY_ATTR_SPEC, spec.model_dump(mode="json"))
    assert main(["confirm", str(tmp_path / "s.db")]) == 2
    assert capsys.readouterr().err.startswith("error: gpus_per_trial: 0.5 asks for a GPU share")
    settings = job_settings(spec, ConfirmOptions(gpus_per_trial=0).check().for_study(spec))
    assert settings.device == "cpu" and settings.budget.steps == 4 * 20


# -- end to end -------------------------------------------------------------------------------

TINY = {
    "name": "tiny",
    "proxy": {"data": {"val_limit": 1},
              "budget": {"steps": 20, "eval_every": 10, "batch": 2, "crop": 16, "val_crop": 32}},
    "early_stopping": False,
    "n_trials": 3,  # the three reference points
    "concurrency": 1,
    "seed": 0,
}  # fmt: skip


def _jobs_done(url: str, name: str = "tiny.confirm") -> list[str]:
    study = optuna.load_study(study_name=name, storage=url)
    return [t.user_attrs["job"] for t in study.get_trials(states=(TrialState.COMPLETE,))]


@pytest.mark.slow
def test_confirm_end_to_end_interrupted_resumed_then_reported_and_exported(tmp_path, local_ray):
    url = f"sqlite:///{tmp_path / 'study.db'}"
    source = run_search(parse_spec(TINY, ""), url)
    assert source.statuses == {"complete": 3}
    options = ConfirmOptions(top=1, steps=30, seeds=2)

    starts = []

    def interrupt_second(event, trial):  # Ctrl-C as the second job starts
        if event == "start":
            starts.append(trial.number)
            if len(starts) == 2:
                os.kill(os.getpid(), signal.SIGINT)

    stopped = run_confirm(url, "tiny", options, listener=interrupt_second)
    assert stopped.ran == [starts[0]] and stopped.interrupted == [starts[1]]
    linked = optuna.load_study(study_name="tiny.confirm", storage=url)  # plain Optuna reads it
    first, second = linked.get_trials()
    assert first.state == TrialState.COMPLETE and second.state == TrialState.FAIL
    assert second.user_attrs["error"] == INTERRUPTED

    # a driver that died with a trial RUNNING: its job is failed and runs again
    dead = subprocess.Popen(["true"])
    dead.wait()
    ghost = linked.ask()
    job3 = linked.get_trials()[0].user_attrs  # same design as trial 0, seed 1 (not done yet)
    for key in ("source_trial", "arch", "design"):
        ghost.set_user_attr(key, job3[key])
    ghost.set_user_attr("job", job_key(job3["arch"], 1))
    ghost.set_user_attr("driver", f"{os.uname().nodename}:{dead.pid}:0")

    again = run_confirm(url, "tiny", options)
    assert (again.jobs, again.done_before, len(again.ran)) == (6, 1, 5)  # 3 designs x 2 seeds
    assert again.recovered == [ghost.number] and again.interrupted == []
    trials = optuna.load_study(study_name="tiny.confirm", storage=url).get_trials()
    assert len(trials) == 8 and sum(t.state == TrialState.FAIL for t in trials) == 2
    done = _jobs_done(url)
    assert len(done) == len(set(done)) == 6  # every job once: nothing trained twice

    conf = again.confirmation
    assert {d.reference for d in conf.designs} == {"full", "none", "unetmm"}
    assert all(set(d.runs) == {0, 1} for d in conf.designs)
    for t in trials:
        if t.state == TrialState.COMPLETE:
            a = t.user_attrs
            assert t.value == a["psnr_db"] and a["steps"] == 30 and a["seed"] in (0, 1)
            linked = optuna.load_study(study_name="tiny.confirm", storage=url)
            data = trial_data(linked, t)  # the run's proxy arch: an artifact of the trial
            assert data["proxy_arch"]["backbone"]["width"] == 16 and "m_sc_bytes" in a
            source = optuna.load_study(study_name="tiny", storage=url)
            src = trial_data(source, source.trials[a["source_trial"]])
            assert a["arch"] == src["arch"] and a["proxy_score"] == src["psnr_db"]
    summary = optuna.load_study(study_name="tiny.confirm", storage=url).user_attrs["summary"]
    assert summary["kendall_tau"] == conf.kendall_tau and len(summary["designs"]) == 3
    assert summary["fidelity"]["budget"]["steps"] == 30

    # nothing left: a re-run trains nothing; a third seed adds only its jobs
    assert run_confirm(url, "tiny", options).ran == []
    more = run_confirm(url, "tiny", ConfirmOptions(top=1, steps=30, seeds=3))
    assert (more.done_before, len(more.ran)) == (6, 3) and len(_jobs_done(url)) == 9
    # another fidelity into the same linked study is refused, naming the flag
    with pytest.raises(nas.ConfigError, match=r"^--steps/--scale: 'tiny.confirm' was confirmed"):
        run_confirm(url, "tiny", ConfirmOptions(top=1, steps=40, seeds=2))

    study = load_study(str(tmp_path / "study.db"), "tiny")
    report = write_report(study, tmp_path / "report")
    assert 'id="confirmed-table"' in report.html.read_text() and "confirmed" in report.pngs
    (exported,) = export_study(study, tmp_path / "exported")
    best = max(conf.designs, key=lambda d: d.mean)
    assert exported.scores == "confirmed" and exported.pick.point.number == best.source_trial


@pytest.mark.slow
def test_killed_confirm_resumes_through_an_existing_ray_head(tmp_path, ray_head, subprocess_env,
                                                             local_ray):  # fmt: skip
    """The CLI's driver is killed (SIGKILL) while a job trains; the same command fails that
    trial, skips the finished jobs and runs the rest."""
    url = f"sqlite:///{tmp_path / 'study.db'}"
    run_search(parse_spec(TINY, ""), url)
    args = [PY, "-m", "studies.cli", "confirm", str(tmp_path / "study.db"), "--top", "1",
            "--steps", "200", "--seeds", "1", "--ray-address", ray_head.address]  # fmt: skip
    env = {**subprocess_env, **ray_head.env, "TMPDIR": str(tmp_path)}
    log = open(tmp_path / "driver.log", "w")
    driver = subprocess.Popen(args, cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT,
                              start_new_session=True)  # fmt: skip
    try:
        deadline = time.time() + 300
        while time.time() < deadline:  # until one job is done and the next one trains
            time.sleep(0.5)
            if driver.poll() is not None:
                pytest.fail(f"driver ended early: {(tmp_path / 'driver.log').read_text()[-3000:]}")
            try:
                states = [t.state for t in optuna.load_study(study_name="tiny.confirm",
                                                             storage=url).get_trials()]  # fmt: skip
            except KeyError:
                continue
            if states.count(TrialState.COMPLETE) == 1 and TrialState.RUNNING in states:
                break
        else:
            pytest.fail("no job finished")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(driver.pid, signal.SIGKILL)
        driver.wait(timeout=60)
        log.close()
    again = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True,
                           timeout=600, check=False)  # fmt: skip
    assert again.returncode == 0, again.stderr[-3000:]
    assert "failed 1 trial(s) a stopped confirmation left running" in again.stdout
    assert "1 done before, 2 to run" in again.stdout and "Kendall tau-b" in again.stdout
    trials = optuna.load_study(study_name="tiny.confirm", storage=url).get_trials()
    assert [t.state for t in trials].count(TrialState.FAIL) == 1 and len(trials) == 4
    assert len(set(_jobs_done(url))) == len(_jobs_done(url)) == 3


@pytest.mark.slow
def test_a_sad_study_is_confirmed_and_exported_by_sad(tmp_path, local_ray):
    """A matting study optimising SAD (lower is better) is confirmed by SAD: the linked study
    minimises it, each trial's value is the run's SAD, ranks follow SAD, and export ranks by the
    confirmed SAD."""
    data = load_spec("matting_mscan").model_dump(mode="json")
    data.update(name="tinysad", objectives=["sad", "m_sc", "macs"], n_trials=3,
                concurrency=1, early_stopping=False)  # fmt: skip
    data["proxy"]["data"]["val_limit"] = 1
    data["proxy"]["budget"].update(steps=10, eval_every=5, batch=2, crop=32, val_crop=64)
    url = f"sqlite:///{tmp_path / 'study.db'}"
    assert run_search(parse_spec(data, ""), url).statuses == {"complete": 3}
    result = run_confirm(url, "tinysad", ConfirmOptions(top=1, steps=15, seeds=1))
    linked = optuna.load_study(study_name="tinysad.confirm", storage=url)
    assert linked.direction == optuna.study.StudyDirection.MINIMIZE
    assert linked.metric_names == [get_metric("sad").optuna_name]
    assert linked.user_attrs[schema.STUDY_ATTR_SCORE] == "sad"
    assert linked.user_attrs[schema.STUDY_ATTR_FIDELITY]["score"] == "sad"
    source = optuna.load_study(study_name="tinysad", storage=url)
    for t in linked.get_trials(states=(TrialState.COMPLETE,)):
        a = t.user_attrs
        assert t.value == a["sad_thousands"] and a["steps"] == 15  # SAD, not PSNR
        assert a["proxy_score"] == source.trials[a["source_trial"]].user_attrs["sad_thousands"]
    conf = result.confirmation
    assert conf.score == "sad" and len(conf.ranked) == 3
    best = min(conf.ranked, key=lambda d: d.mean)
    assert best.confirmed_rank == 1  # the lowest SAD ranks first
    assert [r for r in confirm.table_rows(conf)][0].keys() >= {"proxy SAD", "confirmed SAD"}
    study = load_study(str(tmp_path / "study.db"), "tinysad")
    (exported,) = export_study(study, tmp_path / "exported")
    assert exported.scores == "confirmed" and exported.pick.point.number == best.source_trial
    assert "confirmed SAD:" in exported.card.read_text()
