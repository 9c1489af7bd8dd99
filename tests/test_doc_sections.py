"""benchmarks/_doc_sections.py: several benchmark scripts write docs/benchmarks.md, each
only inside its own marked section; a script that regenerates the page keeps the others'."""

from __future__ import annotations

import importlib.util
from pathlib import Path

_PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "_doc_sections.py"
_spec = importlib.util.spec_from_file_location("_doc_sections", _PATH)
assert _spec is not None and _spec.loader is not None
sections = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(sections)


def test_replace_section_appends_then_replaces_only_its_own_span(tmp_path):
    page = tmp_path / "b.md"
    page.write_text("# Title\n\nhand text\n", encoding="utf-8")
    sections.replace_section(page, "a", "## A\n\nfirst")
    sections.replace_section(page, "b", "## B\n\nbee")
    sections.replace_section(page, "a", "## A\n\nsecond")
    text = page.read_text(encoding="utf-8")
    assert text.startswith("# Title\n\nhand text\n")
    assert "first" not in text and text.count("## A") == 1 and "second" in text
    assert text.index("## A") < text.index("## B")  # replaced in place, not moved
    sections.replace_section(page, "a", "## A\n\nsecond")
    assert page.read_text(encoding="utf-8") == text  # idempotent


def test_replace_section_creates_a_missing_page(tmp_path):
    page = tmp_path / "new.md"
    sections.replace_section(page, "x", "body")
    assert page.read_text(encoding="utf-8") == "<!-- section:x -->\nbody\n<!-- /section:x -->\n"


def test_keep_sections_carries_the_others_into_a_regenerated_page():
    old = (
        "# Old\n\n<!-- section:a -->\nA\n<!-- /section:a -->\n\n"
        "<!-- section:b -->\nB\n<!-- /section:b -->\n"
    )
    new = "# New\n\n<!-- section:a -->\nA2\n<!-- /section:a -->\n"
    out = sections.keep_sections(old, new)
    assert out.startswith(new.rstrip("\n"))
    assert "A2" in out and "\nA\n" not in out and "<!-- section:b -->\nB\n" in out
    assert sections.keep_sections(old, old) == old
