"""The README's quickstart and the CI script stay in step."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _quickstart_commands() -> list[str]:
    block = re.search(r"## Quickstart.*?```bash\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    assert block, "README has no quickstart block"
    return [ln for ln in block.group(1).splitlines() if ln and not ln.startswith("#")]


def test_readme_has_exactly_two_quickstart_commands() -> None:
    search, tests = _quickstart_commands()
    assert search.endswith("unetmm search quick")
    assert tests.endswith("python -m pytest")


def test_ci_runs_the_readme_test_command() -> None:
    _, tests = _quickstart_commands()
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert tests in ci


def test_quick_preset_named_in_readme_ships_with_the_package() -> None:
    from studies.spec import load_spec

    assert load_spec("quick").name == "quick"
