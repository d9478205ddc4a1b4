"""The second bad-input battery (issue: no traceback and no silent acceptance anywhere): each
case runs the real command line in this process and must end in exit 2 with one ``error:``
line naming the field, no traceback, and nothing left behind in the working folder."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from studies.cli import main
from tests.report.conftest import built_study  # noqa: F401  (one small real study a session)

BASE = {"name": "bad", "target": {"input_size": 64}, "objectives": ["m_sc", "macs"],
        "n_trials": 1, "concurrency": 1}  # fmt: skip


def _files(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


@pytest.fixture
def refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
            capsys: pytest.CaptureFixture[str]) -> Callable[..., str]:  # fmt: skip
    """``refused(argv, needle)``: run ``unetmm argv`` in ``tmp_path``; assert the promise and
    that the one line holds ``needle``; return the line."""
    monkeypatch.chdir(tmp_path)

    def run(argv: list[str], needle: str) -> str:
        capsys.readouterr()
        before = _files(tmp_path)
        rc = main([str(a) for a in argv])
        out = capsys.readouterr()
        lines = [line for line in out.err.splitlines() if line.strip()]
        assert rc == 2, (rc, out.err[-2000:], out.out[-2000:])
        assert len(lines) == 1 and lines[0].startswith("error: "), lines
        assert "Traceback" not in out.err
        assert needle in lines[0], lines[0]
        assert _files(tmp_path) == before, "left behind: " + str(_files(tmp_path) - before)
        return lines[0]

    return run


@pytest.fixture
def spec_file(tmp_path: Path) -> Callable[..., Path]:
    """``spec_file(**changes)``: a cost-only study YAML (``BASE`` with ``changes`` merged one
    level deep) outside the working folder."""
    folder = tmp_path.parent / f"{tmp_path.name}-specs"
    folder.mkdir(exist_ok=True)

    def make(**changes: object) -> Path:
        data = {k: (dict(v) if isinstance(v, dict) else v) for k, v in BASE.items()}
        for key, value in changes.items():
            if isinstance(value, dict) and isinstance(data.get(key), dict):
                data[key] = {**data[key], **value}  # type: ignore[dict-item]
            else:
                data[key] = value
        path = folder / f"spec{len(os.listdir(folder))}.yaml"
        path.write_text(yaml.safe_dump(data))
        return path

    return make
