"""benchmarks/task_fidelity.py at one step: real runs of the sr_x4 preset's proxy on the built-in
images, a table with tau, and a JSON that a rerun resumes design by design."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # benchmarks/ is a folder of scripts, not an installed package
    sys.path.insert(0, str(ROOT))

from benchmarks import task_fidelity as tk


def test_budgets_are_the_presets_own() -> None:
    b = tk.budgets("matting", None, 4)
    assert (b["short"].steps, b["short"].batch, b["short"].crop) == (600, 4, 64)
    assert (b["long"].steps, b["long"].eval_every) == (2400, 2400)
    assert tk.budgets("deblur", None, 4)["short"].steps == 1200  # the deblur preset's own
    assert tk.budgets("deblur", 300, 4)["long"].steps == 1200  # --steps replaces the preset's
    assert tk.budgets("matting", 50, 2)["long"].steps == 100


def test_runs_and_resumes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "t.json"
    assert tk.main(["--task", "sr4", "--steps", "1", "--factor", "1", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "Kendall tau-b (8 designs, 1 vs 1 steps)" in text and "| unet--(paper) |" in text
    (first,) = json.loads(out.read_text())
    assert len(first["rows"]) == 8 and all(math.isfinite(r["short"]) for r in first["rows"])
    assert first["tau"] == pytest.approx(1.0)  # same budget, same seed: the same ranking

    # drop one design: the rerun trains only that one and keeps the rest as stored
    first["rows"] = [r for r in first["rows"] if r["design"] != "none"]
    out.write_text(json.dumps([first]))
    assert tk.main(["--task", "sr4", "--steps", "1", "--factor", "1", "--json", str(out)]) == 0
    (again,) = json.loads(out.read_text())
    assert [r["design"] for r in again["rows"]] == list(tk.designs(None))
    kept = {r["design"]: r for r in first["rows"]}
    assert all(r == kept[r["design"]] for r in again["rows"] if r["design"] != "none")


def test_one_budget_and_some_designs_per_process_then_merged(tmp_path: Path) -> None:
    """``--budget`` and ``--designs`` split one run over processes with a file each; ``--merge``
    joins their rows by design into one entry (both budgets, both provenances); a rerun fills
    in only what a stored row lacks."""
    one = ["--task", "sr4", "--steps", "1", "--factor", "1"]
    a, b, m = (tmp_path / f for f in ("a.json", "b.json", "m.json"))
    assert tk.main([*one, "--budget", "short", "--designs", "full", "none", "--json", str(a)]) == 0
    assert tk.main([*one, "--budget", "long", "--designs", "none", "full", "--json", str(b)]) == 0
    (short,) = json.loads(a.read_text())
    assert [set(r) & {"short", "long"} for r in short["rows"]] == [{"short"}, {"short"}]
    assert math.isnan(short["tau"])  # no design has both budgets yet
    assert tk.main([*one, "--json", str(m), "--merge", str(a), str(b)]) == 0
    (joined,) = json.loads(m.read_text())
    assert [r["design"] for r in joined["rows"]] == ["full", "none"]  # the designs' order
    assert all(r["short"] == r["long"] and len(r["provenance"]) == 2 for r in joined["rows"])
    assert joined["tau"] == 1.0  # one step at one seed, twice: the same ranking
    # merging again (the output read back, the same files once more) changes nothing
    assert tk.main([*one, "--json", str(m), "--merge", str(a), str(b)]) == 0
    assert json.loads(m.read_text()) == [joined]
    assert tk.main([*one, "--json", str(m), "--merge", str(tmp_path / "typo.json")]) == 2
    assert json.loads(m.read_text()) == [joined]  # a file that is not there loses nothing
    # resuming the joined entry with both budgets trains the other 6 designs only
    before = {r["design"]: r for r in joined["rows"]}
    assert tk.main([*one, "--json", str(m)]) == 0
    (full,) = json.loads(m.read_text())
    assert len(full["rows"]) == 8 and all(before[r["design"]] == r for r in full["rows"]
                                          if r["design"] in before)  # fmt: skip


def test_a_candidate_proxy_is_its_own_result() -> None:
    """``--set`` changes the short budget (the long one follows) and the data; a result stored
    for other settings (or before candidates existed: the preset's data) is not reused."""
    changes = tk.settings(["budget.lr=0.005", "budget.val_crop=128", "data.val_limit=null"])
    assert changes == {"budget": {"lr": 0.005, "val_crop": 128}, "data": {"val_limit": None}}
    b = tk.budgets("matting", None, 4, changes["budget"])
    assert (b["short"].lr, b["long"].lr, b["long"].steps) == (0.005, 0.005, 2400)
    assert b["long"].val_crop == 128
    with pytest.raises(SystemExit, match="--set"):
        tk.settings(["lr=0.005"])
    for typo, said in ((["budget.lrr=0.1"], "budget.lrr: unknown field"),
                       (["budget.lr"], "is not budget.FIELD=VALUE"),
                       (["budget.lr=-1"], "budget.lr: Input should be greater than 0")):  # fmt: skip
        with pytest.raises(SystemExit, match=said):  # never a run that silently is the preset's
            tk.settings(typo)
    assert tk.budgets("matting", None, 4, tk.settings(["budget.lr=1e-3"])["budget"])[
        "short"].lr == 0.001  # YAML reads 1e-3 as a string; the budget takes it as a number


def test_seeds_and_candidates_are_entries_of_one_file(tmp_path: Path) -> None:
    out = tmp_path / "t.json"
    base = ["--task", "sr4", "--steps", "1", "--factor", "1", "--json", str(out)]
    assert tk.main(base) == 0 and tk.main([*base, "--seed", "1"]) == 0
    assert tk.main([*base, "--set", "budget.lr=0.001"]) == 0
    stored = json.loads(out.read_text())
    assert [(r["seed"], r["budget"]["lr"]) for r in stored] == [(0, 0.002), (1, 0.002), (0, 0.001)]
    assert tk.main(base) == 0  # nothing new: its entry is resumed, the others kept as they were
    again = json.loads(out.read_text())
    assert len(again) == 3 and all(r in again for r in stored)


def _preset_fields(label: str) -> dict:
    """What an entry stores of the preset it ran (``run_task``)."""
    spec = tk.load_spec(tk.TASKS[label])
    return {"preset": spec.name, "task_config": spec.proxy.task.model_dump(mode="json"),
            "proxy_backbone": spec.proxy.backbone_config(spec.target.backbone_config()).to_dict()}


def test_an_entry_of_an_older_compositing_is_not_resumed() -> None:
    """Matting entries written before compositing versions were trained on version 1: a run on
    today's composited data (version 2) does not take their rows."""
    budget = tk.budgets("matting", None, 4)
    old = {"task": "matting", "seed": 0, "budget": budget["short"].model_dump(mode="json"),
           "long_steps": budget["long"].steps, "rows": [], **_preset_fields("matting")}  # fmt: skip
    assert tk.stored_mattes(old) == 1 and not tk.same_run(old, "matting", None, 4, 0, {})
    assert tk.same_run({**old, "mattes": 2}, "matting", None, 4, 0, {})
    assert tk.stored_mattes({"task": "sr4", "data": {}}) is None
    other = {**old, "mattes": 2, "proxy_backbone": {"name": "mscan", "embed_dims": [8]}}
    assert not tk.same_run(other, "matting", None, 4, 0, {})  # another proxy: not this run


def test_trust_entry_of_a_preset_from_two_seeds() -> None:
    """The budget check a preset ships: the longer runs' seed floor and spread, the study's own
    floor, and tau of the study's seed against the longer runs' means; none from one seed."""
    budget = tk.budgets("matting", None, 4)

    def entry(seed: int, rows: list[tuple[str, float, float]]) -> dict:
        return {"task": "matting", "seed": seed, "mattes": 2, **_preset_fields("matting"),
                "budget": budget["short"].model_dump(mode="json"),
                "long_steps": budget["long"].steps,
                "rows": [{"design": d, "short": s, "long": lg} for d, s, lg in rows]}  # fmt: skip

    first = entry(0, [("a", 10.0, 12.0), ("b", 9.0, 11.0), ("c", 9.5, 10.0)])
    second = entry(1, [("a", 10.4, 12.2), ("b", 9.2, 11.2), ("c", 9.1, 10.2)])
    assert tk.trust_entry([first], "matting") is None  # one seed: no floor
    e = tk.trust_entry([first, second], "matting", source="x.json")
    assert (e["preset"], e["designs"], e["seeds"], e["reference"]) == ("matting_mscan", 3, 2, "longer")
    assert e["tau"] == pytest.approx(1 / 3, abs=1e-3)  # seed 0: a > c > b; longer: a > b > c
    assert e["floor_db"] == pytest.approx(1.96 * math.sqrt(2) * math.sqrt(0.02), abs=1e-3)
    assert e["spread_db"] == pytest.approx(2.0) and e["target"] == "2400 steps (4x)"
    assert "seed" not in e["comparable"] and e["comparable"]["proxy.mattes"] == 2
    # a seed is checked against the other seeds' long runs only: seed 0's own long run, with
    # its wide gaps, would pull the mean its way and make the check look perfect
    third = [entry(0, [("a", 3.0, 30.0), ("b", 2.0, 20.0), ("c", 1.0, 10.0)]),
             entry(1, [("a", 1.0, 10.0), ("b", 2.0, 11.0), ("c", 3.0, 12.0)]),
             entry(2, [("a", 1.0, 10.0), ("b", 2.0, 11.0), ("c", 3.0, 12.0)])]  # fmt: skip
    assert tk.trust_entry(third, "matting")["tau_seeds"][0] == -1.0  # with its own: +1
    # short runs at seeds 0 and 2, the long ones at seed 1 only (``--budget``): each short seed
    # against the other seed's long runs; no floor of the long runs from one seed
    crossed = [entry(0, [("a", 3.0, math.nan), ("b", 2.0, math.nan), ("c", 1.0, math.nan)]),
               entry(1, [("a", math.nan, 12.0), ("b", math.nan, 11.0), ("c", math.nan, 10.0)]),
               entry(2, [("a", 1.0, math.nan), ("b", 3.0, math.nan), ("c", 2.0, math.nan)])]
    e = tk.trust_entry(crossed, "matting")
    assert e["tau_seeds"] == pytest.approx([1.0, -1 / 3], abs=1e-3) and e["seeds"] == 1
    assert e["floor_db"] is None and e["proxy_floor_db"] > 0
    # contenders: within 2 dB of the long runs' best (a, b; c is 2.0 dB below: in too)
    assert (e["contenders"], e["tau_contenders"], e["pick_loss_db"]) == (3, 1.0, 0.0)
    assert tk.trust_entry(crossed[1:], "matting") is None  # the study's seed 0: no short run
    # long runs only at the study's own seed: nothing to hold it against
    own = [entry(0, [("a", 3.0, 12.0), ("b", 2.0, 11.0)]), entry(1, [("a", 1.0, math.nan),
                                                                     ("b", 2.0, math.nan)])]
    assert tk.trust_entry(own, "matting") is None
    # one contender (the others far below): no tau over it
    far = [entry(0, [("a", 3.0, math.nan), ("b", 2.0, math.nan), ("c", 1.0, math.nan)]),
           entry(1, [("a", math.nan, 30.0), ("b", math.nan, 20.0), ("c", math.nan, 10.0)])]
    e = tk.trust_entry(far, "matting")
    assert (e["contenders"], e["tau_contenders"], e["pick_loss_db"]) == (1, None, 0.0)


def test_single_runs_combine_into_the_entries_of_a_budget_of_n_seeds() -> None:
    """Stored runs at seeds 0-3 make the entries of ``seeds: 2`` at seeds 0 (runs 0, 1) and
    1 (runs 2, 3): scores and metrics averaged, seconds summed, a design missing from a run
    left out; seed 4 alone makes nothing."""
    budget = tk.budgets("sr4", None, 4)["short"].model_dump(mode="json")

    def entry(seed: int, rows: list[tuple[str, float, float]]) -> dict:
        return {"task": "sr4", "seed": seed, "budget": budget, "long_steps": 4800, "tau": 0.0,
                "rows": [{"design": d, "short": s, "long": lg, "short_s": 1.0, "long_s": 4.0,
                          "short_metrics": {"psnr": s}} for d, s, lg in rows]}  # fmt: skip

    runs = [entry(0, [("a", 20.0, 22.0), ("b", 19.0, 21.0)]),
            entry(1, [("a", 20.4, 22.2), ("b", 19.4, 21.4)]),
            entry(2, [("a", 21.0, 23.0), ("b", 18.0, math.nan)]),
            entry(3, [("a", 21.0, 23.0), ("b", 18.0, 20.0)]),
            entry(4, [("a", 21.0, 23.0), ("b", 18.0, 20.0)])]  # fmt: skip
    first, second = tk.combine_seeds(runs, 2)
    assert (first["seed"], first["derived_from"], second["derived_from"]) == (0, [0, 1], [2, 3])
    assert first["budget"] == {**budget, "seeds": 2} and "seeds" not in budget
    a, b = first["rows"]
    assert (a["short"], a["long"], b["short"]) == pytest.approx((20.2, 22.1, 19.2))
    assert a["short_s"] == 2.0 and a["long_s"] == 8.0 and a["short_metrics"]["psnr"] == 20.2
    assert [r["design"] for r in second["rows"]] == ["a"]  # b diverged in run 2's long run
    assert first["tau"] == 1.0
    assert tk.combine_seeds(runs, 1) == [] and tk.combine_seeds(first and [first], 2) == []


def test_each_preset_budget_is_what_its_yaml_comment_and_the_benchmark_say() -> None:
    """A shipped budget check is recomputed from its committed result file and describes the
    preset as shipped (same comparable fields); the preset's YAML comment states its steps, tau
    per seed of the study's runs, and the verdict. The restoration presets' 1200 steps are the
    long side of their measured 300-vs-1200 check."""
    from importlib.resources import files

    from studies.results import trust

    results = ROOT / "benchmarks" / "results"
    shipped = [c for c in trust.load_checks() if c.reference == "longer"]
    assert {c.preset for c in shipped} == {"matting_mscan", "deblur_gopro"}
    for check in shipped:
        label = next(k for k, v in tk.TASKS.items() if v == check.preset)
        stored = tk.load(str(results / check.source))
        assert trust.Trust(**tk.trust_entry(stored, label, 4.0, check.source)) == check
        spec = tk.load_spec(check.preset)
        assert trust.trust_for(spec.comparable()) == check and check.designs >= 8
        comment = files("studies").joinpath("presets", f"{check.preset}.yaml").read_text()
        steps = spec.proxy.budget.steps
        assert f"{steps}-step" in comment and f"{4 * steps}-step runs" in comment
        seeds = sorted({e["seed"] for e in stored if tk.same_run(e, label, None, 4.0, e["seed"], {})
                        and any("short" in r for r in e["rows"])})  # fmt: skip
        assert len(seeds) == len(check.tau_seeds) >= 2  # the study's budget at two seeds or more
        said = " and ".join(f"{t:.2f} with seed {s}" for s, t in zip(seeds, check.tau_seeds))
        assert said in comment.replace("\n# ", " ")
        assert ("does NOT rank" in comment) == (not check.ranks)
    for label in ("deblur", "sr2", "sr4"):
        entries = tk.load(str(results / f"task_fidelity_{label}.json"))
        steps = tk.load_spec(tk.TASKS[label]).proxy.budget.steps
        assert steps == 1200 and any(e["long_steps"] == steps for e in entries)
