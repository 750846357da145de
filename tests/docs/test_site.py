"""The documentation site builds with ``mkdocs build --strict`` (no broken link or missing reference),
has a page for every guide and public module, works from the file system without a network, and
renders notebooks with the outputs they were executed with, never running them again."""

import json
import re
from pathlib import Path

import pytest
from conftest import ROOT, build_site

import deepgrad

GUIDES = sorted(path.stem for path in (ROOT / "docs" / "guides").glob("*.md"))
# Every package of deepgrad has an API page but ops/ (reached through deepgrad and
# deepgrad.functional), and so have these modules of theirs.
INTERNAL_PACKAGES = {"ops"}
PUBLIC_MODULES = [
    "functional",
    "nn.init",
    "nn.utils",
    "optim.lr_scheduler",
    "train.config",
    "backend",
    "errors",
    "notebooks",
]


def html(site, page):
    return (site / page).read_text()


def test_the_site_builds_strictly_with_every_page(site):
    folder, log, _ = site
    assert "WARNING" not in log and "ERROR" not in log, log
    assert {"index.html", "getting-started.html", "ARCHITECTURE.html", "RELIABILITY.html", "STUDIES.html"} <= {
        path.name for path in folder.iterdir()
    }
    for guide in GUIDES:
        page = html(folder, f"guides/{guide}.html")
        assert '<h1 id="' in page and "md-nav" in page, guide
    assert len(GUIDES) >= 12


def test_the_api_reference_has_a_page_per_public_module_from_docstrings_and_hints(site):
    folder, _, _ = site
    packages = sorted(
        path.parent.name
        for path in Path(deepgrad.__file__).parent.glob("*/__init__.py")
        if path.parent.name not in INTERNAL_PACKAGES
    )
    for module in ["deepgrad", *packages, *PUBLIC_MODULES]:
        page = folder / "api" / f"{module}.html"
        assert page.is_file(), f"no API page for deepgrad.{module}: add docs/api/{module}.md and list it in mkdocs.yml"
    train = html(folder, "api/train.html")
    for name in ("Trainer", "Trainer.fit", "Trainer.train_step", "EarlyStopping", "build_run", "load_run"):
        assert f'id="deepgrad.train.{name}"' in train, name  # what train/__init__ imports is on its page
    assert "train_loader" in train and "resume_from" in train  # the signature, with its type hints
    assert "History" in train
    nn = html(folder, "api/nn.html")
    assert 'id="deepgrad.nn.Linear"' in nn and 'id="deepgrad.nn.BatchNorm1d"' in nn
    assert 'id="deepgrad.nn.init"' not in nn  # a submodule has its own page
    for page in (folder / "api").glob("*.html"):
        assert not re.search(r":(meth|class|func|mod|attr):<", page.read_text()), page.name  # Sphinx roles read as code


def test_the_site_fetches_nothing_and_searches_offline(site):
    folder, _, _ = site
    for page in folder.rglob("*.html"):
        text = page.read_text()
        resources = re.findall(r'<(?:script|img|iframe)[^>]*\ssrc="(https?:[^"]*)"', text)
        resources += re.findall(r'<link[^>]*\shref="(https?:[^"]*)"[^>]*rel="(?:stylesheet|preload)"', text)
        resources += re.findall(r'<link[^>]*rel="(?:stylesheet|preload)"[^>]*\shref="(https?:[^"]*)"', text)
        assert not resources, (page.relative_to(folder), resources)
        if page.name != "404.html":  # a server's page, which file:// never shows
            assert 'href="/' not in text.replace('href="//', ""), page  # links work from the file system
    index = (folder / "search" / "search_index.js").read_text()  # a script, which file:// pages may load
    assert "Trainer" in index and "build_run" in index


def test_the_navigation_lists_the_sections(site):
    folder, _, notebooks = site
    home = html(folder, "index.html")
    for section in ("Getting started", "Guides", "API reference", "Maintainers"):
        assert section in home, section
    if notebooks is not None and any(notebooks.glob("*.ipynb")):
        assert "Notebooks" in home
        for notebook in notebooks.glob("*.ipynb"):
            assert (folder / "notebooks" / f"{notebook.stem}.html").is_file(), notebook.name


def tiny_notebook(path):
    """A notebook whose stored output differs from what its code would print, so that a page
    showing "forty-two (stored)" shows the stored output and was not executed again."""
    source = {
        "cells": [
            {"cell_type": "markdown", "metadata": {}, "source": ["# A tiny notebook\n", "\n", "Its outputs are kept."]},
            {
                "cell_type": "code",
                "execution_count": 1,
                "metadata": {},
                "source": ["print(6 * 7)"],
                "outputs": [{"name": "stdout", "output_type": "stream", "text": ["forty-two (stored)\n"]}],
            },
        ],
        "metadata": {
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    path.write_text(json.dumps(source))


def test_notebooks_are_rendered_with_their_stored_outputs_without_running_them(tmp_path):
    pytest.importorskip("mkdocs_jupyter", reason="needs the docs extra (pip install -e '.[docs]')")
    docs, notebooks = tmp_path / "docs", tmp_path / "executed"
    docs.mkdir()
    notebooks.mkdir()
    (docs / "index.md").write_text("# Home\n\nA [guide](guide.md).\n")
    (docs / "guide.md").write_text("# Guide\n")
    tiny_notebook(notebooks / "tiny.ipynb")
    config = tmp_path / "mkdocs.yml"
    config.write_text(
        f"INHERIT: {ROOT / 'mkdocs.yml'}\ndocs_dir: {docs}\nhooks: [{ROOT / 'docs' / 'hooks.py'}]\n"
        "nav:\n  - Home: index.md\n  - Guides:\n      - guide.md\n"
    )
    built = build_site(config, tmp_path / "site", notebooks)
    assert built.returncode == 0, built.stdout + built.stderr
    page = (tmp_path / "site" / "notebooks" / "tiny.html").read_text()
    article = re.sub(
        r"<(style|script)\b.*?</\1>", "", page[page.index("<article") : page.index("</article>")], flags=re.S
    )
    text = re.sub(r"<[^>]+>", " ", article)
    assert "A tiny notebook" in text and "forty-two (stored)" in text
    assert not re.search(r"\b42\b", text)  # executing it again would have printed 42
    home = (tmp_path / "site" / "index.html").read_text()
    assert home.index("Guides") < home.index("Notebooks") and "notebooks/tiny.html" in home

    empty = tmp_path / "none"
    empty.mkdir()
    assert build_site(config, tmp_path / "site-without", empty).returncode == 0  # no notebook at all is fine
    assert "Notebooks" not in (tmp_path / "site-without" / "index.html").read_text()
