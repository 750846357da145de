"""The project's own documentation stays true: docs/ARCHITECTURE.md names files and definitions
that exist, README links it, and neither points outside the repository; README stays a two-minute
read that keeps the two set-up commands CI and the tests depend on. (The site built from docs/ is
checked in tests/docs/.)"""

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ARCHITECTURE = ROOT / "docs" / "ARCHITECTURE.md"
SET_UP = (
    'python3 -m venv .venv && . .venv/bin/activate && pip install -e ".[train]" && deepgrad train',
    'python3 -m venv .venv && . .venv/bin/activate && pip install -e ".[test]" && python -m pytest',
)


def defined_names(path):
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(target.id for target in node.targets if isinstance(target, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return names


def resolve(reference):
    """A `path.py` of the docs: under the repository (tests/...), the package, or ops/ (the ops table)."""
    for base in (ROOT, ROOT / "deepgrad", ROOT / "deepgrad" / "ops"):
        if (base / reference).is_file():
            return base / reference
    return None


def test_architecture_names_files_and_definitions_that_exist():
    text = ARCHITECTURE.read_text()
    references = set(re.findall(r"`([\w/]+\.py)(?::(\w+))?`", text))
    assert len(references) > 40
    for path, name in references:
        found = resolve(path)
        assert found is not None, f"docs/ARCHITECTURE.md names {path}, which does not exist"
        if name:
            assert name in defined_names(found), f"docs/ARCHITECTURE.md names {path}:{name}, not defined there"


def test_readme_links_the_architecture_and_nothing_outside_the_repository():
    readme = (ROOT / "README.md").read_text()
    assert "(docs/ARCHITECTURE.md)" in readme
    for document in (readme, ARCHITECTURE.read_text()):
        assert "../" not in document and "/work/" not in document


def test_reliability_names_tests_that_exist():
    text = (ROOT / "docs" / "RELIABILITY.md").read_text()
    references = set(re.findall(r"`(tests/[\w/]+\.py)(?:::(\w+))?`", text))
    assert len(references) > 15
    for path, name in references:
        assert (ROOT / path).is_file(), path
        if name:
            assert name in defined_names(ROOT / path), f"docs/RELIABILITY.md names {path}::{name}, not defined there"
    assert "../" not in text and "/work/" not in text


def test_readme_is_short_and_keeps_the_two_set_up_commands_and_links_that_resolve():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 120
    lines = readme.splitlines()
    for command in SET_UP:
        assert command in lines, command  # a line of its own, exactly as CI and the tests run it
    for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", readme):
        if not target.startswith("https://"):
            assert (ROOT / target).is_file(), f"README links {target}, which does not exist"
    assert "docs/getting-started.md" in readme and "mkdocs serve" in readme
