"""A run's directory: claimed by one run, and never a file touched that deepgrad did not write.

A run directory is recognized by its files: a ``config.json`` holding a run's options and a
``checkpoints/`` folder (:func:`is_run_directory`). What a run writes there is :data:`RUN_ENTRIES`
(and the ``.tmp-*`` files of a save in progress); anything else in the folder is the user's and is
left where it is, by ``--overwrite`` too.

    directory = RunDirectory.claim("runs/a", overwrite=True)   # the old run moved into runs/a/.previous-run/
    ...                                                         # the new run writes into runs/a/
    directory.settle()          # saved something: the old run goes; nothing: the new files go, the old come back

``--overwrite`` keeps the run it replaces in ``.previous-run/`` until the new one has saved
something, so a new run that fails at once loses nothing; a run killed before it could settle is
settled by the next claim of its directory (:meth:`RunDirectory.recover`).
"""

from __future__ import annotations

import datetime
import json
import os
import shutil
from typing import Any

from .. import io
from ..errors import ConfigError

# Everything a run writes into its directory.
RUN_ENTRIES = frozenset(
    {
        "config.json",
        "metrics.jsonl",
        "steps.jsonl",
        "summary.json",
        "model.safetensors",
        "curves.png",
        "diagnostics.jsonl",
        "tb",
        "checkpoints",
    }
)
# What a run saved that is worth replacing an older run with (a checkpoint counts too), and what it
# recorded that keeps its directory (summary.json does not: it says what became of any run).
SAVED_FILES = ("metrics.jsonl", "model.safetensors")
RECORD_FILES = (*SAVED_FILES, "steps.jsonl", "diagnostics.jsonl")
PREVIOUS = ".previous-run"  # the run an --overwrite replaces, kept until the new one has saved something
TEMPORARY_PREFIX = ".tmp-"  # io.atomic_write's files in the making
EVENT_FILE_PREFIX = "events.out.tfevents."  # TensorBoard's event files (in the run directory itself)
# The options every run's config.json has held since the first version, with their JSON types.
RUN_KEYS: dict[str, type | tuple[type, ...]] = {
    "dataset": str,
    "model": str,
    "optimizer": str,
    "lr": (int, float),
    "epochs": int,
    "batch_size": int,
    "seed": int,
}


def default_directory(config: dict[str, Any], root: str = "runs") -> str:
    """``root/DATASET-MODEL-YYYYMMDD-HHMMSS``: where ``deepgrad train`` puts a run by default."""
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    return os.path.join(root, f"{config['dataset']}-{config['model']}-{stamp}")


def is_run_directory(path: str) -> bool:
    """Whether ``path`` is a folder that ``deepgrad train`` made: a ``checkpoints/`` folder and a
    ``config.json`` holding a run's options (another tool's config.json has none of them)."""
    if not os.path.isdir(os.path.join(path, "checkpoints")):
        return False
    try:
        with open(os.path.join(path, "config.json"), encoding="utf-8") as handle:
            config = json.load(handle)
    except (OSError, ValueError, RecursionError):
        return False
    return isinstance(config, dict) and all(
        isinstance(config.get(key), kind) and not isinstance(config.get(key), bool) for key, kind in RUN_KEYS.items()
    )


def run_entries(path: str) -> list[str]:
    """The names in folder ``path`` that a run writes (its files, folders, TensorBoard event files and
    temporaries), sorted."""
    return sorted(
        name
        for name in os.listdir(path)
        if name in RUN_ENTRIES or name.startswith((TEMPORARY_PREFIX, EVENT_FILE_PREFIX))
    )


def describe_entries(path: str) -> str:
    """What a run wrote into ``path``, for people: its files, folders with a slash, and its
    TensorBoard event files as one entry."""
    names = [name + "/" * os.path.isdir(os.path.join(path, name)) for name in run_entries(path)]
    events = [name for name in names if name.startswith(EVENT_FILE_PREFIX)]
    return ", ".join([name for name in names if name not in events] + (["TensorBoard events"] if events else []))


def has_saved(path: str, files: tuple[str, ...] = SAVED_FILES) -> bool:
    """Whether the run in ``path`` saved what an older run may be replaced by: a checkpoint, an
    epoch's metrics or its model (a config.json, a summary and empty files are not); with
    ``files=RECORD_FILES``, whether it recorded anything at all (a step, a diagnostic)."""
    checkpoints = os.path.join(path, "checkpoints")
    if os.path.isdir(checkpoints) and any(not name.startswith(TEMPORARY_PREFIX) for name in os.listdir(checkpoints)):
        return True
    return any(os.path.isfile(file) and os.path.getsize(file) for file in (os.path.join(path, n) for n in files))


def remove_stale_temporaries(path: str) -> None:
    """Remove the temporary files a run killed while writing left in ``path`` and its checkpoints/."""
    for folder in (path, os.path.join(path, "checkpoints")):
        for name in os.listdir(folder) if os.path.isdir(folder) else ():
            if name.startswith(TEMPORARY_PREFIX):
                os.remove(os.path.join(folder, name))


def write_json(path: str, value: Any) -> None:
    """Write ``value`` as indented JSON, atomically."""
    io.write_text(path, json.dumps(value, indent=2) + "\n")


def check_new_directory(out: str, overwrite: bool) -> None:
    """Refuse ``out`` for a new run before any work: a file, a path through a file, a non-empty folder
    without ``overwrite``, or, with it, a folder that is not a run's (only runs are replaced)."""
    _check_path(out)
    if not os.path.isdir(out) or not os.listdir(out):
        return
    if not overwrite:
        raise ConfigError(f"output directory {out} exists and is not empty; pass --overwrite or another --out")
    if not is_run_directory(out):
        shown = ", ".join(sorted(os.listdir(out))[:5])
        raise ConfigError(
            f"--overwrite replaces only a deepgrad run directory, and {out} is not one (it holds {shown}"
            f"{', ...' if len(os.listdir(out)) > 5 else ''}; no config.json of a run with a "
            "checkpoints/ folder); nothing was changed: pass another --out"
        )


def check_resumable(out: str) -> None:
    """Refuse to resume ``out`` unless it holds a run's last checkpoint (settling an interrupted
    --overwrite first, removing the temporary files of a killed save)."""
    _check_path(out)
    if os.path.isdir(out):
        RunDirectory(out).recover()
        remove_stale_temporaries(out)
    config = os.path.join(out, "config.json")
    if not os.path.exists(config):
        raise ConfigError(f"{config} not found: is this a run directory written by 'deepgrad train'?")
    if not os.path.exists(os.path.join(out, "checkpoints", "last.safetensors")):
        raise ConfigError(f"--resume: {out} has no checkpoints/last.safetensors to resume from")


def _check_path(out: str) -> None:
    """A ConfigError when ``out`` is a file or lies under one (``--out notes.txt/run``)."""
    path = os.path.abspath(out)
    while True:
        if os.path.exists(path) and not os.path.isdir(path):
            what = "is a file" if path == os.path.abspath(out) else f"lies under {path}, which is a file"
            raise ConfigError(f"run directory {out} {what}, not a directory")
        parent = os.path.dirname(path)
        if parent == path:
            return
        path = parent


class RunDirectory:
    """The directory ``path`` of one run. ``created``: the folders this run made (the top one first),
    which a run that saved nothing removes again; folders the user made stay."""

    def __init__(self, path: str, created: tuple[str, ...] = ()):
        self.path, self.created = path, created

    def join(self, *parts: str) -> str:
        return os.path.join(self.path, *parts)

    @classmethod
    def claim(cls, out: str, overwrite: bool = False, unique: bool = False) -> RunDirectory:
        """Make ``out`` the directory of a new run, exclusively: its ``checkpoints/`` folder is made
        with a plain mkdir, which only one process can win, so two runs never share a directory. An
        automatic name (``unique``) takes the next free suffix (-2, -3, ...); an explicit one claimed
        meanwhile is an error. With ``overwrite``, a run already in ``out`` is moved into
        ``out/.previous-run/`` (see :meth:`settle`)."""
        for attempt in range(1, 1000):
            candidate = out if attempt == 1 else f"{out}-{attempt}"
            if unique and os.path.exists(candidate):
                continue
            _check_path(candidate)
            directory = cls(candidate, make_folders(candidate, "the run directory"))
            if overwrite and not unique:
                directory.recover()
                directory._set_previous_aside()
            try:
                os.mkdir(directory.join("checkpoints"))
                return directory
            except FileExistsError:
                if not unique:
                    raise ConfigError(
                        f"run directory {out} was claimed by another run started at the same time; pass another --out"
                    ) from None
        raise ConfigError(f"no free run directory name from {out} to {out}-999")

    def _set_previous_aside(self) -> None:
        """Move the run in this directory (its files only) into ``.previous-run/``."""
        entries = run_entries(self.path)
        if not entries:
            return
        try:
            os.mkdir(self.join(PREVIOUS))
        except FileExistsError:
            raise ConfigError(
                f"run directory {self.path} is being replaced by another run started at the same "
                "time; pass another --out"
            ) from None
        for name in entries:
            os.replace(self.join(name), self.join(PREVIOUS, name))

    def recover(self) -> None:
        """Settle a replacement that a killed run left half done: the replacing run's files when it
        saved something, else the previous run's, stay (a no-op without ``.previous-run/``)."""
        if os.path.isdir(self.join(PREVIOUS)):
            self.settle()

    def settle(self) -> None:
        """After a run ends (finished, failed, interrupted): when it saved something (a checkpoint,
        an epoch), the run it replaced is deleted; when it did not, its own files go (and the folders
        it made) and the run it replaced comes back as it was — or, replacing none, its files stay
        when it recorded anything (a step, a diagnostic), with summary.json saying how it ended."""
        remove_stale_temporaries(self.path)
        previous = self.join(PREVIOUS)
        if has_saved(self.path) or (not os.path.isdir(previous) and has_saved(self.path, RECORD_FILES)):
            shutil.rmtree(previous, ignore_errors=True)
            return
        for name in run_entries(self.path):
            _remove(self.join(name))
        if os.path.isdir(previous):
            for name in os.listdir(previous):
                os.replace(os.path.join(previous, name), self.join(name))
            os.rmdir(previous)
        remove_empty_folders(self.created)


def make_folders(path: str, what: str) -> tuple[str, ...]:
    """Make the folder ``path`` and its missing parents; returns the folders made, deepest first (for
    :func:`remove_empty_folders`). A ConfigError names ``what`` the folder is when it cannot be made."""
    missing = []
    folder = os.path.abspath(path)
    while not os.path.lexists(folder):
        missing.append(folder)
        parent = os.path.dirname(folder)
        if parent == folder:
            break
        folder = parent
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as error:
        raise ConfigError(f"cannot make {what} {path}: {error.strerror or error}") from None
    if not os.path.isdir(path):
        raise ConfigError(f"cannot make {what} {path}: it is not a folder")
    return tuple(missing)


def remove_empty_folders(created: tuple[str, ...] | list[str]) -> None:
    """Remove the folders ``make_folders`` made, deepest first, while they are empty (one that holds
    something stays, and so do its parents)."""
    for folder in created:
        try:
            os.rmdir(folder)
        except OSError:
            return


def _remove(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    else:
        os.remove(path)
