"""The documentation site, built once per session with ``mkdocs build --strict`` into a temporary
folder, with the notebooks' executed copies when the session has them."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def build_site(config, site, notebooks=None):
    """``mkdocs build --strict`` of ``config`` into ``site``, run from the repository (as CI and
    people run it), the notebooks from the folder ``notebooks`` when given; returns the
    CompletedProcess (its output: MkDocs' log)."""
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    if notebooks is not None:
        env["DEEPGRAD_NOTEBOOKS"] = str(notebooks)
    command = [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(config), "-d", str(site)]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def executed_notebooks_folder(request, folder):
    """A folder of the notebooks' executed copies (the ``executed_notebooks`` fixture's, when the
    session has it and it does not skip), or None: then the site shows notebooks/ as it is in git."""
    try:
        executed = request.getfixturevalue("executed_notebooks")
    except (pytest.FixtureLookupError, pytest.skip.Exception):  # no such fixture, or no notebooks extra
        return None
    paths = [Path(executed)] if isinstance(executed, (str, os.PathLike)) else [Path(path) for path in executed]
    folder.mkdir()
    for path in paths:
        for notebook in sorted(path.glob("*.ipynb")) if path.is_dir() else [path]:
            shutil.copy(notebook, folder / notebook.name)
    return folder


@pytest.fixture(scope="session")
def site(request, tmp_path_factory):
    """(the built site's folder, MkDocs' log, the notebooks folder or None)."""
    pytest.importorskip("mkdocs", reason="needs the docs extra (pip install -e '.[docs]')")
    root = tmp_path_factory.mktemp("docs-site")
    notebooks = executed_notebooks_folder(request, root / "notebooks")
    built = build_site(ROOT / "mkdocs.yml", root / "site", notebooks)
    assert built.returncode == 0, built.stdout + built.stderr
    return root / "site", built.stdout + built.stderr, notebooks
