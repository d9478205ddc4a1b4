"""The reference pages of ``docs/`` that code can write: every study YAML field (from the
pydantic models) and every command-line option (from argparse). ``python -m studies.docs``
rewrites ``docs/study-yaml.md`` and ``docs/cli.md``; ``tests/test_docs.py`` checks that the
files equal what this writes, so they cannot go stale.

A field's meaning is its ``Field(description=...)``; every field of a study has one (the test
checks that too).
"""

from __future__ import annotations

import argparse
import json
import sys
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from studies import compat

DOCS = Path(__file__).resolve().parent.parent / "docs"


def _type(annotation: Any) -> str:
    """A short, readable name of a field's type."""
    if annotation is type(None):
        return "null"
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Literal:
        return " \\| ".join(json.dumps(a) for a in args)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        return " \\| ".join(_type(a) for a in args)
    if origin is typing.Annotated:
        return _type(args[0])
    if origin in (tuple, list):
        inner = [_type(a) for a in args if a is not Ellipsis]
        return f"list of {inner[0]}" if len(set(inner)) == 1 else f"[{', '.join(inner)}]"
    if origin is dict:
        return "mapping"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "mapping"
    return getattr(annotation, "__name__", str(annotation))


def _default(field: FieldInfo) -> str:
    if field.default_factory is not None:
        value = field.default_factory()
    elif field.default is PydanticUndefined:
        return "required"
    else:
        value = field.default
    if isinstance(value, BaseModel):
        return "see below"
    if isinstance(value, tuple):
        value = list(value)
    return f"`{json.dumps(value)}`"


def _model_of(annotation: Any) -> type[BaseModel] | None:
    for a in (annotation, *typing.get_args(annotation)):
        if isinstance(a, type) and issubclass(a, BaseModel):
            return a
    return None


def missing_descriptions(model: type[BaseModel], path: str = "") -> list[str]:
    """Fields (paths) under ``model`` that have no description."""
    out = []
    for name, field in model.model_fields.items():
        if not (field.description or "").strip():
            out.append(path + name)
        sub = _model_of(field.annotation)
        if sub is not None:
            out += missing_descriptions(sub, f"{path}{name}.")
    return out


def _rows(model: type[BaseModel], path: str = "") -> list[str]:
    rows, subs = [], []
    for name, field in model.model_fields.items():
        meaning = " ".join((field.description or "").split())
        rows.append(f"| `{path}{name}` | {_type(field.annotation)} | {_default(field)} | "
                    f"{meaning} |")  # fmt: skip
        sub = _model_of(field.annotation)
        if sub is not None:
            subs.append((f"{path}{name}.", sub))
    for prefix, sub in subs:
        rows += _rows(sub, prefix)
    return rows


def study_reference() -> str:
    """Markdown: every field of a study YAML, with type, default and meaning."""
    from studies.spec import StudySpec

    head = ("# Study YAML reference\n\n"
            "Every field of a study file (`unetmm search STUDY.yaml`), generated from the "
            "pydantic models (`python -m studies.docs`; `studies/spec.py` and "
            "`trainers/config.py`). Nested sections are written as a mapping (`target: "
            "{input_size: 256}`); unknown keys are refused. The presets in "
            "`studies/presets/*.yaml` are complete examples.\n\n"
            "| field | type | default | meaning |\n|---|---|---|---|\n")  # fmt: skip
    return head + "\n".join(_rows(StudySpec)) + "\n"


def cli_reference() -> str:
    """Markdown: every ``unetmm`` command with its arguments, from argparse."""
    from studies.cli import COMMANDS, USAGE, _module

    parts = ["# Command-line reference\n",
             "Generated from the argument parsers (`python -m studies.docs`).\n",
             "```\n" + USAGE.rstrip() + "\n```\n"]  # fmt: skip
    for name, text in COMMANDS.items():
        p = argparse.ArgumentParser(prog=f"unetmm {name}", description=text, add_help=False)
        _module(name).add_arguments(p)
        parts.append(f"## unetmm {name}\n\n{text}\n")
        parts.append("| argument | meaning |\n|---|---|")
        for action in compat.parser_actions(p):
            flags = ", ".join(action.option_strings) or action.metavar or action.dest
            meaning = " ".join((action.help or "").split()).replace("|", "\\|")
            if action.choices and not isinstance(action.choices, dict):
                meaning += f" (one of: {', '.join(map(str, action.choices))})"
            parts.append(f"| `{flags}` | {meaning} |")
        parts.append("")
    return "\n".join(parts)


PAGES = {"study-yaml.md": study_reference, "cli.md": cli_reference}


def main(argv: list[str] | None = None) -> int:
    for name, make in PAGES.items():
        (DOCS / name).write_text(make())
        print(f"wrote {DOCS / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
