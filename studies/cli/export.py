"""``unetmm export [STORAGE] [--study NAME] --max-m-sc 0.25MiB [--rule RULE] [--top K] --out DIR``.

Writes a training config (YAML), its tiling plan (``.tiling.yaml``) and a model card (Markdown)
per picked trial. Budgets: ``--max-<metric>`` for every cost metric of ``studies.metrics``
(``--max-m-sc``, ``--max-macs``, ``--max-peak-tiled``, ...).
"""

from __future__ import annotations

import argparse

from studies.cli.common import add_storage_argument, output_folder, storage_of


def budget_metrics() -> list:  # type: ignore[type-arg]
    """The cost metrics an export budget may bound (bytes and counts)."""
    from studies.metrics import cost_metrics

    return [m for m in cost_metrics() if m.unit in ("bytes", "count")]


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_storage_argument(p)
    for m in budget_metrics():
        example = "0.25MiB, 256KiB, 262144" if m.unit == "bytes" else "18G, 29.2M"
        p.add_argument(f"--max-{m.name.replace('_', '-')}", metavar=m.unit.upper(),
                       help=f"budget on {m.label}, e.g. {example}")  # fmt: skip
    p.add_argument(
        "--rule",
        default="best",
        help="best: highest PSNR in budget (default); "
        "knee: knee of the PSNR vs M_sc front in budget",
    )
    p.add_argument(
        "--top", type=int, default=1, metavar="K", help="export the K first picks (default 1)"
    )
    p.add_argument(
        "--out", metavar="DIR", required=True, help="folder for the YAML configs and model cards"
    )
    p.add_argument(
        "--runs",
        default="runs",
        metavar="DIR",
        help="where the exported configs tell `unetmm train` to write (default runs/)",
    )
    p.add_argument(
        "--iterations", type=int, metavar="N", help="override the paper's 200,000 iterations"
    )
    p.add_argument("--batch", type=int, metavar="N", help="override the paper's batch of 32")
    p.add_argument("--crop", type=int, metavar="PX", help="override the paper's 256-pixel crops")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"),
                   help="recipe.device of the configs (default auto: cuda where there is a GPU)")


def run(args: argparse.Namespace) -> int:
    from studies.results.export import export_study
    from studies.storage import load_study, shown, storage_url
    from studies.units import parse_bytes, parse_count

    budgets: dict[str, float] = {}
    for m in budget_metrics():
        text = getattr(args, f"max_{m.name}")
        if text is not None:
            parse = parse_bytes if m.unit == "bytes" else parse_count
            budgets[m.name] = parse(text, f"--max-{m.name.replace('_', '-')}")
    recipe = {
        k: getattr(args, k) for k in ("iterations", "batch", "crop", "device") if getattr(args, k) is not None
    }
    storage = storage_of(args)
    study = load_study(storage, args.study)
    with output_folder(args.out, "--out") as out:
        written = export_study(
            study,
            out,
            budgets=budgets,
            rule=args.rule,
            top=args.top,
            recipe=recipe,
            storage_label=shown(storage_url(storage)),
            train_out_root=args.runs,
        )
    from studies.metrics import study_score
    from studies.results.export import describe_costs
    from studies.results.pareto import study_objectives

    score = study_score(study_objectives(study))
    if written:
        print(f"ranked by {written[0].scores} {score.short}"
              + (" (unetmm confirm)" if written[0].scores == "confirmed" else ""))
    for item in written:
        p = item.pick.point
        print(f"#{item.pick.rank} trial {p.number} ({p.design}): {describe_costs(p, score)}")
        tiling = f", {item.tiling}" if item.tiling else ""
        print(f"   wrote {item.config}{tiling} and {item.card}")
    if written and len(written[0].ties) > 1:
        from studies.results.trust import simplest

        ties, simple = written[0].ties, simplest(written[0].ties)
        print(f"the proxy cannot tell its top {len(ties)} designs apart (trials "
              f"{', '.join(str(p.number) for p in ties)}: within the check's noise floor); "
              f"the simplest of them is trial {simple.number} ({simple.design}); run `unetmm "
              f"confirm` before choosing")  # fmt: skip
    if len(written) < args.top:
        print(
            f"only {len(written)} trial(s) fit rule {args.rule!r} and the budget "
            f"(asked for {args.top})"
        )
    return 0
