"""One-shot pre-screening (the ``nni`` extra): does a weight-sharing supernet rank skip designs
like their stand-alone proxy runs do?

The 13 designs of ``proxy_fidelity.py`` (full, none, subsets, UNet-- variations of NAFNet-w32,
moved onto the width-16 proxy) become one supernet (``search_spaces.nni_supernet``: shared
backbone, NNI's ``PathSamplingLayer`` over the designs). It trains SPOS-style on the proxy task
(denoise, sigma 25, the proxy budget of ``--reference``), one design drawn uniformly at random
per step, for ``--steps`` steps; then every design is scored with the inherited weights (its
path selected, nothing retrained). Kendall's tau-b against the stand-alone scores of
``--reference`` (``proxy_fidelity.py``'s JSON: the default budget and the 4x one, measured
there) says whether the supernet could stand in for them; the baseline, from the same JSON, is
the default proxy's own tau against the 4x runs. ``--prescreen`` is offered only if tau >= 0.5.

    PYTHONPATH=. python benchmarks/oneshot_prescreen.py                 # 1200 steps, ~10 min
    PYTHONPATH=. python benchmarks/oneshot_prescreen.py --steps 300 --json /tmp/o.json

The JSON carries the run's provenance (``benchmarks/provenance.py``).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

from benchmarks import provenance
from benchmarks.proxy_fidelity import designs, kendall_tau, ranks
from nas.presets import backbone_preset
from search_spaces.nni_supernet import one_shot
from trainers.config import ProxyBudget, TaskConfig
from trainers.loop import compute_settings
from trainers.oneshot import score_designs, train_supernet
from trainers.proxy import default_proxy_backbone, proxy_arch

RESULTS = Path(__file__).resolve().parent / "results"
GOAL = 0.5  # tau that would make the pre-screen worth offering


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--reference", type=Path, default=RESULTS / "proxy_fidelity.json")
    p.add_argument("--steps", type=int, default=1200, help="supernet training steps")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", type=Path, default=RESULTS / "oneshot_prescreen.json")
    args = p.parse_args(argv)
    prov = provenance.started(["benchmarks/oneshot_prescreen.py",
                               *(sys.argv[1:] if argv is None else argv)])  # fmt: skip

    ref = json.loads(args.reference.read_text())
    budget = ProxyBudget.model_validate(ref["budget"])
    stand_alone = {r["design"]: r for r in ref["rows"]}
    target = backbone_preset("nafnet-w32")
    backbone = default_proxy_backbone(target).replace(width=ref["width"])
    table = {n: proxy_arch(a, backbone) for n, a in designs(target, False).items()
             if n in stand_alone}  # fmt: skip
    task = TaskConfig(name="denoise", sigma=25)
    t0 = time.perf_counter()
    with compute_settings(args.threads):
        net = one_shot(table, args.seed)
        drawn = train_supernet(net, task, budget, args.steps, seed=args.seed)
        t_train = time.perf_counter() - t0
        scores = {n: s["psnr"] for n, s in score_designs(net, task, budget, args.steps).items()}
    names = [n for n in net.names if all(math.isfinite(stand_alone[n][k])
                                         for k in ("default", "long"))]  # fmt: skip
    one = [scores[n] for n in names]
    short = [stand_alone[n]["default"] for n in names]
    long = [stand_alone[n]["long"] for n in names]
    taus = {"supernet_vs_default": kendall_tau(one, short),
            "supernet_vs_long": kendall_tau(one, long),
            "default_vs_long (baseline)": kendall_tau(short, long)}  # fmt: skip
    n, m = budget.steps, ref["long_steps"]
    print(f"supernet: {len(names)} designs, {args.steps} steps in {t_train:.0f} s "
          f"(stand-alone screening: {len(names)} x {n} = {len(names) * n} steps)")
    print(f"| design | supernet | rank | {n} steps | rank | {m} steps | rank | drawn |")
    print("|---|---|---|---|---|---|---|---|")
    for row in zip(names, one, ranks(one), short, ranks(short), long, ranks(long)):
        print("| {} | {:.2f} | {} | {:.2f} | {} | {:.2f} | {} |".format(*row)
              + f" {drawn[row[0]]} |")
    for label, tau in taus.items():
        print(f"Kendall tau-b {label}: {tau:.3f}")
    offer = taus["supernet_vs_default"] >= GOAL
    print(f"pre-screen {'worth offering' if offer else 'not offered'} "
          f"(tau vs the stand-alone proxy {taus['supernet_vs_default']:.3f}, goal >= {GOAL})")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    provenance.write_result(args.json, {
        "reference": args.reference.name, "budget": budget.model_dump(mode="json"),
        "steps": args.steps, "seed": args.seed, "seconds_train": t_train, "drawn": drawn,
        "scores": scores, "taus": taus, "offered": offer}, prov)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
