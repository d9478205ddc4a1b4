"""docs/optuna.md's example of a search space in a plain Optuna study runs as written."""

from __future__ import annotations

import re
from pathlib import Path

import optuna
import pytest

from nas.errors import ConfigError
from search_spaces import SpaceBounds, get_space

PAGE = Path(__file__).resolve().parents[2] / "docs" / "optuna.md"


def _example() -> str:
    block = re.search(r"## The search space from plain Optuna.*?```python\n(.*?)```",
                      PAGE.read_text(), re.DOTALL)  # fmt: skip
    assert block, "docs/optuna.md lost its plain-Optuna example"
    return block.group(1)


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
def test_the_docs_example_runs(capsys) -> None:
    code = _example()
    assert "n_trials=20" in code
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    scope: dict = {}
    exec(compile(code.replace("n_trials=20", "n_trials=4"), "docs/optuna.md example", "exec"), scope)  # noqa: S102
    study = scope["study"]
    assert len(study.trials) == 4 and all(t.state.name == "COMPLETE" for t in study.trials)
    assert study.metric_names == ["M_sc [bytes]", "MACs"]
    printed = capsys.readouterr().out
    assert printed.startswith("[") and all(t.user_attrs["design"] for t in study.trials)


def test_bounds_without_a_backbone_say_what_to_do() -> None:
    study = optuna.create_study()
    trial = study.ask()
    with pytest.raises(ConfigError) as info:
        get_space("skip_designs").suggest(trial, SpaceBounds())
    assert str(info.value) == (
        "bounds: no stage_channels; apply the bounds to your backbone first: "
        "SpaceBounds().for_backbone(backbone.stage_channels)"
    )
