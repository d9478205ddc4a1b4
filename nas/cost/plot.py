"""The paper's Fig. 1b: skip memory held at every stage boundary, one step line per design."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from nas.cost.report import MIB, CostReport


def plot_skip_timelines(reports: Mapping[str, CostReport], path: str | Path) -> Path:
    """Draw each report's M_sc timeline (MiB at its bit width) into a PNG at ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.2), dpi=120)
    labels: list[str] = []
    for name, report in reports.items():
        labels = [label for label, _ in report.m_sc_timeline]
        values = [b / MIB for _, b in report.m_sc_timeline]
        ax.step(range(len(values)), values, where="mid", marker="o", label=f"{name} "
                f"(peak {report.m_sc_bytes / MIB:.3g} MiB)")  # fmt: skip
    ax.set_xticks(range(len(labels)), labels)
    ax.set_xlabel("end of stage (encoder E1..EN, middle M, decoder DN..D1)")
    first = next(iter(reports.values()), None)
    bits = first.bits if first else 8
    ax.set_ylabel(f"skip memory M_sc (MiB at {bits} bit)")
    ax.set_title("Memory held by skip connections through one forward pass (cf. paper Fig. 1b)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path)
    plt.close(fig)
    return path
