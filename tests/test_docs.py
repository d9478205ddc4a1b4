"""docs/ stays true: the generated references equal what the code writes today, every study
field has a meaning, the README stays short, and every page it links exists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from studies import docs
from studies.spec import StudySpec

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", sorted(docs.PAGES))
def test_generated_pages_are_current(name) -> None:
    written = (ROOT / "docs" / name).read_text()
    assert written == docs.PAGES[name](), f"docs/{name} is stale: run python -m studies.docs"


def test_every_study_field_says_what_it_means() -> None:
    assert docs.missing_descriptions(StudySpec) == []


def test_the_readme_is_short_and_its_links_resolve() -> None:
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 250
    for link in re.findall(r"\]\(([^)#]+)\)", text):
        assert (ROOT / link).exists(), link


def test_every_cited_benchmark_result_exists() -> None:
    """Docs, READMEs and the trust checks cite result files by name; history stays in git, so a
    file removed from benchmarks/results/ must not be cited any more."""
    pages = [*(ROOT / "docs").glob("*.md"), ROOT / "README.md", ROOT / "benchmarks" / "README.md",
             ROOT / "studies" / "presets" / "trust.yaml"]
    cited_file = re.compile(r"results/([\w.-]+\.(?:jsonl|json|txt|png))(?!\w)")
    cited = {m for page in pages for m in cited_file.findall(page.read_text())}
    trust = (ROOT / "studies/presets/trust.yaml").read_text().splitlines()
    cited |= {name.strip() for line in trust if line.strip().startswith("source:")
              for name in line.split(":", 1)[1].split(",")}
    assert cited, "no citation found: the pattern is stale"
    missing = sorted(n for n in cited if not (ROOT / "benchmarks" / "results" / n).exists())
    assert missing == []
