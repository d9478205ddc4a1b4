"""The one progress bar of long loops (training steps, benchmark runs): rich, on stderr."""

from __future__ import annotations

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


def progress_bar(label: str, console: Console | None = None, disable: bool = False) -> Progress:
    """``label``, a bar, done/total, elapsed and remaining time, then the task's description
    (what runs now, or the latest numbers)."""
    return Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    TimeRemainingColumn(), TextColumn("{task.description}"),
                    console=console or Console(stderr=True), disable=disable)  # fmt: skip
