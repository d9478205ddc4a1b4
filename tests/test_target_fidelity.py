"""benchmarks/target_fidelity.py at a tiny budget: real training runs of a tiny 4-stage NAFNet,
a table with Kendall tau and Spearman rho, and an incremental JSON that a rerun resumes."""

from __future__ import annotations

import dataclasses
import json
import math
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # benchmarks/ is a folder of scripts, not an installed package
    sys.path.insert(0, str(ROOT))

from benchmarks import target_fidelity as tf
from nas import NAFNetConfig
from trainers.config import ProxyBudget, TaskConfig

TINY = NAFNetConfig(8, (1, 1, 1, 1), 1, (1, 1, 1, 1))
TASK = TaskConfig(name="denoise", sigma=25)


def test_rank_correlations_on_known_values() -> None:
    assert tf.spearman([1, 2, 3], [1, 3, 2]) == pytest.approx(0.5)
    assert tf.spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert tf.spearman([1, 2, 2], [3, 2, 1]) == pytest.approx(-math.sqrt(3) / 2)  # tied ranks
    agree = tf.agreements({"a": 30.0, "b": 29.5, "c": 25.0},
                          {"good": {"a": 3, "b": 2, "c": 1}, "half": {"a": 1, "b": 2}})  # fmt: skip
    by = {a.predictor: a for a in agree}
    assert (by["good"].tau, by["good"].rho, by["good"].n_top) == (1.0, 1.0, 2)
    assert by["half"].n == 2 and by["half"].tau == -1.0  # c has no score: left out


def test_goal_needs_tau_and_margin_over_trivial() -> None:
    def agree(proxy: float, msc: float) -> list[tf.Agreement]:
        return [tf.Agreement("proxy 1x", 10, proxy, 0, 3, 0), tf.Agreement("M_sc", 10, msc, 0, 3, 0),
                tf.Agreement("params", 10, math.nan, 0, 3, 0)]  # fmt: skip

    assert tf.goal(agree(0.8, 0.5))[0]
    assert not tf.goal(agree(0.8, 0.7))[0]  # margin 0.1
    assert "can meet" not in tf.goal(agree(0.8, 0.7))[1]  # 1 - 0.7 leaves room for 0.2
    assert tf.goal(agree(0.95, 0.92))[1].endswith("at most 0.080 over M_sc")
    assert not tf.goal(agree(0.55, 0.0))[0]  # tau below 0.6


def test_proxy_reference_budget_matches_todays_default() -> None:
    cols, notes = tf.proxy_reference(tf.PROXY_JSON)
    assert notes == []
    assert set(cols) == {"proxy 1x", "proxy 4x"}
    assert set(tf.ORDER) <= set(cols["proxy 1x"]) and len(cols["proxy 4x"]) == 13


def test_table_and_resume(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    table = tf.designs(TINY, quick=False)
    budget = ProxyBudget(steps=2, eval_every=2, crop=16, batch=2, val_crop=32)
    jobs = tf.plan("target", TINY, table, ["full", "none"], budget=budget)
    jobs += [tf.Job("proxy 1x", n, table[n], budget.model_copy(update={"steps": 1}))
             for n in ("full", "none")]  # fmt: skip
    out = tmp_path / "runs.json"
    records: list[dict] = []
    assert len(tf.run_jobs(jobs, records, TASK, json_path=out)) == 4
    stored = json.loads(out.read_text())["records"]
    assert [(r["run"], r["design"]) for r in stored] == [(j.run, j.design) for j in jobs]
    assert all(math.isfinite(r["psnr"]) and r["seconds"] > 0 for r in stored)

    # a rerun with the same file trains only what is missing and keeps what was there
    more = jobs + tf.plan("target", TINY, table, ["subset{4}"], budget=budget)
    again = tf.load_records([out])
    new = tf.run_jobs(more, again, TASK, json_path=out)
    assert [(r["run"], r["design"]) for r in new] == [("target", "subset{4}")]
    assert json.loads(out.read_text())["records"][:4] == stored
    other_budget = tf.plan("target", TINY, table, ["full"], budget=budget.scaled(2))
    assert not tf.is_done(other_budget[0], again, TASK, 0)

    target, proxies = tf.columns(again, {})
    assert set(target) == {"full", "none", "subset{4}"} and set(proxies) == {"proxy 1x"}
    agree = tf.print_table(target, proxies, table, {})
    text = capsys.readouterr().out
    assert "Kendall tau-b" in text and "Spearman rho" in text and "| subset{4} |" in text
    by = {a.predictor: a for a in agree}
    assert by["proxy 1x"].n == 2 and abs(by["proxy 1x"].tau) == 1.0
    assert by["M_sc"].n == 3 and -1 <= by["M_sc"].tau <= 1 and -1 <= by["M_sc"].rho <= 1


def test_unknown_design_is_one_error_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert tf.main(["--only", "bogus", "--reuse", "x.json"], target=TINY) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [err[0]] and err[0].startswith("error: --only: unknown design 'bogus'")


def test_other_seeds_are_columns_and_averaged() -> None:
    def rec(run: str, design: str, seed: int, psnr: float) -> dict:
        return {"run": run, "design": design, "seed": seed, "psnr": psnr}

    records = [rec("target", "a", 0, 30.0), rec("target", "b", 0, 29.0),
               rec("target", "a", 1, 99.0),  # another seed's target is not the reference
               rec("proxy 1x", "a", 1, 26.0), rec("proxy 1x", "b", 1, 27.0)]  # fmt: skip
    target, proxies = tf.columns(records, {"proxy 1x": {"a": 28.0, "b": 26.0, "c": 25.0}})
    assert target == {"a": 30.0, "b": 29.0}
    assert proxies["proxy 1x seed 1"] == {"a": 26.0, "b": 27.0}
    assert proxies["proxy 1x, 2 seeds"] == {"a": 27.0, "b": 26.5}  # c has one seed only
    assert next(iter(proxies)) == "proxy 1x"


def test_deep_variant_halves_the_targets_depth_at_proxy_width() -> None:
    deep = tf.PROXY_VARIANTS.get("deep").backbone(NAFNetConfig())
    assert (deep.width, deep.enc_blk_nums, deep.middle_blk_num) == (16, (1, 1, 2, 4), 6)
    assert deep.dec_blk_nums == (1, 1, 1, 1)


def test_distill_variant_trains_its_teacher_once_and_moves_the_score() -> None:
    """The distillation candidate: the teacher (full skips, 4x the steps) is trained on the first
    job only, each record carries its seconds, and the teacher's term changes what is learnt."""
    table = tf.designs(TINY, quick=False)
    budget = ProxyBudget(steps=2, eval_every=2, crop=16, batch=2, val_crop=32)
    jobs = [dataclasses.replace(j, budget=budget)
            for j in tf.plan("variant", TINY, table, ["none", "subset{4}"], budget=budget,
                             variant="distill")]  # fmt: skip
    assert {j.run for j in jobs} == {"proxy[distill]"} and jobs[0].trainer is jobs[1].trainer
    records: list[dict] = []
    new = tf.run_jobs(jobs, records, TASK)
    assert all(math.isfinite(r["psnr"]) for r in new)
    assert new[0]["teacher_seconds"] == new[1]["teacher_seconds"] > 0  # trained once
    plain = tf.train_and_eval(jobs[0].arch, TASK, budget, threads=1, seed=0)
    assert plain.psnr != new[0]["psnr"]  # same seed and data: the teacher's term is what differs
