"""Every ```python block of the site's guides runs, so the docs cannot drift from the code.

Each page's blocks run in order in one fresh namespace (a later block uses what an earlier one
made), in a temporary working directory. A block that must not run is preceded by the line
``<!-- docs-test: skip REASON -->``; such exceptions are rare and say why.
"""

import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[2] / "docs"
PAGES = [DOCS / "index.md", DOCS / "getting-started.md", *sorted((DOCS / "guides").glob("*.md"))]
SKIP = re.compile(r"<!-- docs-test: skip (?P<reason>.+?) -->")
MOST_SKIPPED = 3


def python_blocks(text):
    """(line number, code, skip reason or None) of each ```python block of a Markdown text."""
    blocks, lines, index = [], text.splitlines(), 0
    while index < len(lines):
        if lines[index].startswith("```python"):
            end = lines.index("```", index + 1)
            skip = SKIP.fullmatch(lines[index - 1].strip()) if index else None
            code = "".join(line + "\n" for line in lines[index + 1 : end])
            blocks.append((index + 1, code, skip["reason"] if skip else None))
            index = end
        index += 1
    return blocks


def test_blocks_are_found_and_a_skip_needs_its_marker_on_the_line_before():
    text = "intro\n```python\na = 1\n```\n<!-- docs-test: skip needs a GPU -->\n```python\nb = 2\n```\n"
    assert python_blocks(text) == [(2, "a = 1\n", None), (6, "b = 2\n", "needs a GPU")]


def test_the_guides_have_code_and_skipping_a_block_stays_rare():
    blocks = [block for page in PAGES for block in python_blocks(page.read_text())]
    assert len(blocks) > 20
    skipped = [block for block in blocks if block[2] is not None]
    assert len(skipped) <= MOST_SKIPPED, skipped


@pytest.mark.parametrize("page", PAGES, ids=[str(page.relative_to(DOCS)) for page in PAGES])
def test_every_python_block_of_the_page_runs(page, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "__docs__"}
    for line, code, skip in python_blocks(page.read_text()):
        if skip is None:
            try:
                exec(compile(code, f"{page.relative_to(DOCS)}:{line}", "exec"), namespace)
            except Exception as error:
                raise AssertionError(f"the block at {page.relative_to(DOCS)}:{line} fails") from error


def test_code_lines_fit_the_page_without_scrolling():
    """Material shows about 90 characters of a code line at full width; the set-up commands are 93."""
    for page in PAGES:
        inside = False
        for number, line in enumerate(page.read_text().splitlines(), 1):
            if line.startswith("```"):
                inside = not inside
            elif inside:
                assert len(line) <= 96, f"{page.relative_to(DOCS)}:{number} is {len(line)} characters long"
