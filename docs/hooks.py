"""MkDocs hooks of the documentation site (mkdocs.yml: ``hooks``).

- The notebooks become pages under ``notebooks/``, in a "Notebooks" section of the navigation after
  the guides: the executed copies in the folder ``$DEEPGRAD_NOTEBOOKS`` names when it is set (the
  test suite's, so that the site shows their outputs without running them again), else the
  repository's ``notebooks/*.ipynb`` as they are (outputs stripped in git). mkdocs-jupyter renders
  them with ``execute: false``; none at all is fine.
- Docstrings are written with Sphinx's roles (:class:`Trainer`); in the API reference a role's name
  is dropped and its target reads as code.
- ``PublicReexports``, a Griffe extension (mkdocs.yml: mkdocstrings' ``extensions``): the names a
  package's ``__init__`` imports are its API and shown on its page.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import griffe
from mkdocs.plugins import event_priority
from mkdocs.structure.files import File, Files
from mkdocs.structure.pages import Page

NOTEBOOKS_VARIABLE = "DEEPGRAD_NOTEBOOKS"
SECTION = "Notebooks"
AFTER_SECTION = "Guides"
# :meth:`~deepgrad.train.Trainer.fit` as mkdocstrings renders it: the role, then a <code> element
ROLE = re.compile(r":(?:mod|class|meth|func|attr|data|obj|exc|const):<code>(~(?:\w+\.)*)?")


def notebooks_folder(config) -> Path:
    folder = os.environ.get(NOTEBOOKS_VARIABLE)
    if folder:
        return Path(folder)
    return Path(config.config_file_path).resolve().parent / "notebooks"


def titles_of(nav: list) -> list:
    return [next(iter(item)) if isinstance(item, dict) else None for item in nav]


# Before mkdocs-jupyter's on_files (priority 0), which turns the .ipynb files it is given into pages.
@event_priority(50)
def on_files(files: Files, config) -> Files:
    """Each notebook as a file of the site, and a "Notebooks" section of them after the guides."""
    notebooks = sorted(notebooks_folder(config).glob("*.ipynb"))
    for notebook in notebooks:
        files.append(File.generated(config, f"notebooks/{notebook.name}", abs_src_path=str(notebook)))
    if notebooks and config.nav is not None and SECTION not in titles_of(config.nav):
        titles = titles_of(config.nav)
        at = titles.index(AFTER_SECTION) + 1 if AFTER_SECTION in titles else len(config.nav)
        config.nav.insert(at, {SECTION: [f"notebooks/{notebook.name}" for notebook in notebooks]})
    return files


def on_nav(nav, config, files: Files):
    """mkdocs-jupyter wraps each notebook's File in one of its own, which reads ``abs_src_path``
    from ``src_dir`` (None for a file from outside docs/): give the wrapper the real path."""
    for file in files:
        wrapped = getattr(file, "file", None)
        if file.src_uri.startswith("notebooks/") and isinstance(wrapped, File):
            file.__dict__["abs_src_path"] = wrapped.abs_src_path
    return nav


def on_page_content(html: str, page: Page, config, files: Files) -> str:
    if page.file.src_uri.startswith("api/"):
        return ROLE.sub("<code>", html)
    return html


class PublicReexports(griffe.Extension):
    """What a package's ``__init__`` imports from deepgrad (``from .trainer import Trainer``) is its
    public API: mkdocstrings shows those names on the package's page, as it would names in an
    ``__all__`` (a package that has one keeps it). Submodules stay on their own pages."""

    def on_package(self, *, pkg: griffe.Module, **kwargs) -> None:
        packages = [pkg]
        while packages:
            package = packages.pop()
            packages.extend(module for module in package.modules.values() if module.is_init_module)
            if package.exports:
                continue
            for name, member in package.members.items():
                if isinstance(member, griffe.Alias) and not name.startswith("_"):
                    if member.target_path.startswith(f"{pkg.name}."):
                        member.public = not self._is_module(member)

    @staticmethod
    def _is_module(alias: griffe.Alias) -> bool:
        try:
            return alias.is_module
        except griffe.AliasResolutionError:
            return False
