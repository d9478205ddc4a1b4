"""The paper's Fig. 1b: skip memory held at every stage boundary, one step line per design."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from nas.cost.report import MIB, CostReport


def plot_skip_timelines(reports: Mapping[str, CostReport], path: str | Path) -> Path:
    """Draw each report's M_sc timeline (MiB at its bit width) into a PNG at ``path``.

    Each design is drawn against its own boundaries (``E1..EN, M, DN..D1``); designs of different
    depths get one panel per depth, stacked, with a shared y-axis.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by_labels: dict[tuple[str, ...], dict[str, CostReport]] = {}
    for name, report in reports.items():
        labels = tuple(label for label, _ in report.m_sc_timeline)
        by_labels.setdefault(labels, {})[name] = report
    panels = len(by_labels) or 1
    fig, axes = plt.subplots(panels, 1, figsize=(8, 1 + 3.2 * panels), dpi=120, sharey=True,
                             squeeze=False)  # fmt: skip
    bits = next(iter(reports.values())).bits if reports else 8
    for ax, (labels, group) in zip(axes[:, 0], by_labels.items()):
        for name, report in group.items():
            values = [b / MIB for _, b in report.m_sc_timeline]
            ax.step(range(len(values)), values, where="mid", marker="o", label=f"{name} "
                    f"(peak {report.m_sc_bytes / MIB:.3g} MiB)")  # fmt: skip
        ax.set_xticks(range(len(labels)), labels)
        ax.set_ylabel(f"M_sc (MiB at {bits} bit)")
        ax.grid(alpha=0.3)
        ax.legend()
    axes[-1, 0].set_xlabel("end of stage (encoder E1..EN, middle M, decoder DN..D1)")
    axes[0, 0].set_title("Memory held by skip connections through one forward pass "
                         "(cf. paper Fig. 1b)")  # fmt: skip
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path)
    plt.close(fig)
    return path
