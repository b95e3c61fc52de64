"""The documentation holds together: the README stays a front page with the test command CI runs,
every page under docs/ is reachable from it, and every relative link, anchors included, leads
somewhere."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from conftest import ROOT

TEST_COMMAND = ("python3 -m venv .venv && .venv/bin/pip install -q -e '.[test]' "
                "&& .venv/bin/python -m pytest")
README_MAX_LINES = 320

FENCE = re.compile(r"^ {0,3}(```|~~~)")
HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.*?)[ \t]*#*[ \t]*$")
INLINE_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^)\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE_DEFINITION = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+\"[^\"]*\")?\s*$")
CODE_SPAN = re.compile(r"(`+).+?\1")
EXTERNAL = ("http://", "https://", "mailto:")


def pages() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "examples" / "README.md"]


def _prose(text: str) -> list[tuple[int, str]]:
    """The lines outside fenced code blocks, numbered from 1."""
    lines, fence = [], None
    for number, line in enumerate(text.splitlines(), 1):
        opened = FENCE.match(line)
        if fence:
            if opened and opened.group(1) == fence:
                fence = None
            continue
        if opened:
            fence = opened.group(1)
            continue
        lines.append((number, line))
    return lines


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: its text, lower case, punctuation dropped (but `-` and `_`),
    spaces as `-`."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link shows its text
    text = re.sub(r"<[^>]+>", "", text).lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(text: str) -> set[str]:
    found: set[str] = set()
    for _, line in _prose(text):
        match = HEADING.match(line)
        if match:
            base = slug(match.group(2))
            anchor, n = base, 0
            while anchor in found:  # a repeated heading gets -1, -2...
                n += 1
                anchor = f"{base}-{n}"
            found.add(anchor)
    return found


def links(text: str) -> list[tuple[int, str]]:
    """Every link target in the prose (not in code), with its line."""
    found = []
    for number, line in _prose(text):
        code = [m.span() for m in CODE_SPAN.finditer(line)]
        for match in INLINE_LINK.finditer(line):
            if not any(start <= match.start() < end for start, end in code):
                found.append((number, match.group(1)))
        definition = REFERENCE_DEFINITION.match(line)
        if definition:
            found.append((number, definition.group(1)))
    return found


def broken_links(page: Path) -> list[str]:
    """What is wrong with the relative links of a Markdown page: a missing file or folder, or an
    anchor naming no heading of the Markdown file it points into."""
    problems = []
    for number, target in links(page.read_text(encoding="utf-8")):
        if target.lower().startswith(EXTERNAL) or not target:
            continue
        path, _, anchor = target.partition("#")
        dest = (page.parent / path) if path else page
        where = f"{page.name}:{number}: ({target})"
        if not dest.exists():
            problems.append(f"{where} no such file")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest.read_text(encoding="utf-8")):
            problems.append(f"{where} no heading #{anchor} in {dest.name}")
    return problems


# -- the pages ----------------------------------------------------------------------------------


@pytest.mark.parametrize("page", pages(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_and_anchor_resolves(page: Path):
    assert broken_links(page) == []


def test_the_readme_is_a_front_page_with_the_test_command_ci_runs():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= README_MAX_LINES
    assert f"\n{TEST_COMMAND}\n" in readme
    assert TEST_COMMAND in (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "\ndocker compose up -d\n" in readme


def test_the_readme_links_every_page():
    linked = {(ROOT / target.partition("#")[0]).resolve()
              for _, target in links((ROOT / "README.md").read_text(encoding="utf-8"))}
    for page in sorted((ROOT / "docs").glob("*.md")):
        assert page.resolve() in linked, f"README.md does not link {page.relative_to(ROOT)}"


# -- the checker itself -------------------------------------------------------------------------


def test_the_checker_finds_a_missing_file_and_a_missing_anchor(tmp_path: Path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "other.md").write_text(
        "# Other page\n\n## Configuration: `kestra-promote.yml`\n\n## Notes\n\n## Notes\n")
    (tmp_path / "scripts").mkdir()
    page = tmp_path / "README.md"
    page.write_text(
        "# Title\n\n## Sync windows\n\n"
        "[ok](docs/other.md) [ok](docs/other.md#configuration-kestra-promoteyml) "
        "[ok](docs/other.md#notes-1) [ok](#sync-windows) [ok](scripts/) [ok](https://x.example/nope)\n"
        "[gone](docs/missing.md)\n"
        "[no heading](docs/other.md#prune)\n"
        "[no heading here](#drift)\n"
        "`[in code](nowhere.md)`\n"
        "```\n[in a block](nowhere.md)\n```\n"
        "[ref]: docs/also-missing.md\n")
    assert broken_links(page) == [
        "README.md:6: (docs/missing.md) no such file",
        "README.md:7: (docs/other.md#prune) no heading #prune in other.md",
        "README.md:8: (#drift) no heading #drift in README.md",
        "README.md:13: (docs/also-missing.md) no such file",
    ]


def test_anchors_follow_githubs_rule():
    assert slug("Configuration: `kestra-promote.yml`") == "configuration-kestra-promoteyml"
    assert slug("Install into an instance: `bootstrap`") == "install-into-an-instance-bootstrap"
    assert slug("Kestra 1.3 and 2.0") == "kestra-13-and-20"
    assert slug("Walkthrough: dev → Git → review → production") == "walkthrough-dev--git--review--production"
    assert slug("Try it on your own Kestra, read-only") == "try-it-on-your-own-kestra-read-only"
    assert anchors("# A\n```\n# not a heading\n```\n## A\n") == {"a", "a-1"}


def test_every_test_the_docs_name_exists():
    tests = {path.relative_to(ROOT).as_posix(): path.read_text(encoding="utf-8")
             for path in (ROOT / "tests").rglob("test_*.py")}
    defined = {name for text in tests.values() for name in re.findall(r"^def (test_\w+)\(",
                                                                      text, flags=re.M)}
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        text = page.read_text(encoding="utf-8")
        for path in re.findall(r"`(tests/[\w/]+\.py)", text):
            assert path in tests, (page.name, path)
        for name in re.findall(r"::(test_\w+)", text):
            assert name in defined, (page.name, name)
