"""An experiment's output folder ``OUT/NAME/``: written under a temporary name and moved into place
whole, with a manifest of its files, and replacing only a previous experiment's output (a folder
holding anything an experiment did not write is refused)."""

from __future__ import annotations

import json
import os
import shutil
import tempfile

from .. import io
from ..errors import ConfigError

MANIFEST = ".deepgrad-experiment.json"  # the files an experiment wrote into its folder


def check_replaceable(final: str) -> None:
    """A ConfigError unless ``final`` is free, an empty folder, or an experiment's output that holds
    nothing but what the experiment wrote (its manifest says what; an output from before manifests:
    report.md, results.json and figures)."""
    if not os.path.exists(final):
        return
    if not os.path.isdir(final):
        raise ConfigError(f"{final} is a file, not an experiment's folder; pass another --out")
    entries = set(os.listdir(final))
    foreign = sorted(entries - written_files(final)) if entries else []
    if foreign:
        shown = ", ".join(foreign[:5]) + (", ..." if len(foreign) > 5 else "")
        raise ConfigError(
            f"{final} holds files that deepgrad experiment did not write ({shown}); it replaces only "
            "its own output: move them or pass another --out"
        )


def written_files(folder: str) -> set[str]:
    """The names in ``folder`` that an experiment wrote there (empty when it is not an experiment's)."""
    try:
        with open(os.path.join(folder, MANIFEST), encoding="utf-8") as handle:
            files = json.load(handle)["files"]
        if isinstance(files, list) and all(isinstance(name, str) for name in files):
            return {MANIFEST, *files}
    except (OSError, ValueError, KeyError, TypeError, RecursionError):
        pass
    names = set(os.listdir(folder))
    if not {"report.md", "results.json"} <= names:
        return set()
    return {
        name
        for name in names
        if name in ("report.md", "results.json")
        or (os.path.splitext(name)[1] in (".png", ".dot") and os.path.isfile(os.path.join(folder, name)))
    }


def write_manifest(folder: str, name: str) -> None:
    """List the files of experiment ``name`` in ``folder`` (all of them: it is written last)."""
    files = sorted(os.listdir(folder))
    io.write_text(os.path.join(folder, MANIFEST), json.dumps({"experiment": name, "files": files}, indent=1) + "\n")


def staging_directory(out: str, name: str) -> str:
    """A new empty folder beside ``out/name`` to write the experiment into; a clear error when
    ``out`` cannot be written."""
    try:
        os.makedirs(out, exist_ok=True)
        return tempfile.mkdtemp(prefix=f".{name}.tmp-", dir=out)
    except OSError as error:
        raise ConfigError(f"cannot write the experiment into --out {out}: {error.strerror or error}") from None


def replace(staging: str, final: str) -> None:
    """Put the finished ``staging`` folder in ``final``'s place; the previous output (checked by
    :func:`check_replaceable`) is removed only then, through a folder of its own."""
    holder = None
    if os.path.exists(final):
        check_replaceable(final)  # again: it may have changed while the experiment ran
        holder = tempfile.mkdtemp(prefix=f".{os.path.basename(final)}.old-", dir=os.path.dirname(final) or ".")
        os.replace(final, os.path.join(holder, "previous"))
    os.replace(staging, final)
    if holder:
        shutil.rmtree(holder, ignore_errors=True)
