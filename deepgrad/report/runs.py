"""Reading a run directory (what :func:`deepgrad.train.run.build_run` and ``deepgrad train`` write)
into a :class:`RunRecord`, tolerating what a run still writing or a crashed one leaves: a torn last
line of a JSON-lines file, no ``summary.json`` yet.

    record = read_run("runs/five")
    record.epochs[-1]["val_accuracy"], record.summary, record.notes
"""

import json
import os
from dataclasses import dataclass, field

from ..diagnostics.monitors import DIAGNOSTICS_FILE
from ..errors import ConfigError

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.jsonl"
SUMMARY_FILE = "summary.json"


@dataclass
class RunRecord:
    """What a run directory holds: its ``config``, one dict per finished epoch (``epochs``), the
    ``summary`` (None until the run finished), the monitors' records (``diagnostics``, empty without
    ``--monitor``), and ``notes``: sentences saying what is incomplete."""

    directory: str
    name: str
    config: dict
    epochs: list
    summary: dict | None = None
    diagnostics: list = field(default_factory=list)
    notes: list = field(default_factory=list)


def read_runs(directories):
    """The :class:`RunRecord` of each directory, named by their directory names (their paths where
    two share a name)."""
    directories = [os.fspath(directory) for directory in directories]
    if not directories:
        raise ConfigError("report: no run directories given; name at least one")
    names = [os.path.basename(os.path.normpath(directory)) for directory in directories]
    names = [directory if names.count(name) > 1 else name for name, directory in zip(names, directories)]
    return [read_run(directory, name) for directory, name in zip(directories, names)]


def read_run(directory, name=None):
    """The :class:`RunRecord` of ``directory``; ConfigError naming it when it is not a run directory
    (no config.json or metrics.jsonl) or a file in it is not what a run writes."""
    directory = os.fspath(directory)
    if not os.path.exists(directory):
        raise ConfigError(f"report: no such run directory: {directory}")
    if not os.path.isdir(directory):
        raise ConfigError(f"report: {directory} is a file; expected a run directory (deepgrad train --out)")
    missing = [file for file in (CONFIG_FILE, METRICS_FILE) if not os.path.isfile(os.path.join(directory, file))]
    if missing:
        raise ConfigError(
            f"report: {directory} is not a run directory: it has no {' and no '.join(missing)} "
            "(deepgrad train --out writes both)"
        )
    notes = []
    config = _read_json_object(os.path.join(directory, CONFIG_FILE))
    epochs, torn = read_json_lines(os.path.join(directory, METRICS_FILE), epoch_problem)
    if torn:
        notes.append(
            f"the last line of {METRICS_FILE} is incomplete (the run is still writing it, or stopped while "
            f"it did): showing the {len(epochs)} epochs before it"
        )
    elif not epochs:
        notes.append(f"{METRICS_FILE} has no epoch yet: the run has not finished its first epoch")
    summary = None
    if os.path.isfile(os.path.join(directory, SUMMARY_FILE)):
        summary = _read_json_object(os.path.join(directory, SUMMARY_FILE))
    else:
        notes.append(
            f"no {SUMMARY_FILE}: the run is still training or stopped before the end (no test "
            "results); its curves show the epochs it logged"
        )
    diagnostics = []
    if os.path.isfile(os.path.join(directory, DIAGNOSTICS_FILE)):
        diagnostics, torn = read_json_lines(os.path.join(directory, DIAGNOSTICS_FILE), sample_problem)
        if torn:
            notes.append(
                f"the last line of {DIAGNOSTICS_FILE} is incomplete: showing the {len(diagnostics)} samples before it"
            )
    return RunRecord(
        directory, name or os.path.basename(os.path.normpath(directory)), config, epochs, summary, diagnostics, notes
    )


def read_json_lines(path, problem=None):
    """(records, torn) of a JSON-lines file of objects: ``torn`` when its last line is not JSON (a
    line being written), which is left out. Any other bad line — or one for which ``problem(record)``
    names what is wrong — is a ConfigError naming the line."""
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            lines = [(number, line) for number, line in enumerate(handle, 1) if line.strip()]
    except OSError as error:
        raise ConfigError(f"report: cannot read {path}: {error.strerror or error}") from None
    records = []
    for number, line in lines:
        try:
            record = json.loads(line)
        except (ValueError, RecursionError):  # not JSON, a number too long, nesting too deep
            if number == lines[-1][0]:
                return records, True
            raise ConfigError(f"report: {path} line {number} is not JSON: {line.strip()[:80]!r}") from None
        if not isinstance(record, dict):
            raise ConfigError(f"report: {path} line {number} is not a JSON object: {line.strip()[:80]!r}")
        wrong = problem(record) if problem is not None else None
        if wrong:
            raise ConfigError(f"report: {path} line {number} is not what a run writes: {wrong}")
        records.append(record)
    return records, False


def _read_json_object(path):
    try:
        with open(path, encoding="utf-8") as handle:
            value = json.load(handle)
    except (ValueError, RecursionError) as error:  # not JSON, not UTF-8, a number too long, nesting too deep
        raise ConfigError(f"report: {path} is not valid JSON ({str(error)[:200] or type(error).__name__})") from None
    except OSError as error:
        raise ConfigError(f"report: cannot read {path}: {error.strerror or error}") from None
    if not isinstance(value, dict):
        raise ConfigError(f"report: {path} holds a JSON {type(value).__name__}; expected an object")
    return value


def _number(value):
    return value is None or (isinstance(value, (int, float)) and not isinstance(value, bool))


def epoch_problem(record):
    """What is wrong with a line of metrics.jsonl (None: nothing): an int epoch, numbers for the rest."""
    if not isinstance(record.get("epoch"), int) or isinstance(record["epoch"], bool):
        return "no whole epoch number"
    wrong = [key for key, value in record.items() if not _number(value)]
    return f"{wrong[0]} is not a number" if wrong else None


def sample_problem(record):
    """What is wrong with a line of diagnostics.jsonl (None: nothing): a monitor's kind and step, and
    per-layer values of the shape that kind records."""
    kind, step = record.get("kind"), record.get("step")
    if kind not in ("gradients", "activations") or not isinstance(step, int) or isinstance(step, bool):
        return "no monitor kind and step"
    keys = ("layers", "update_ratios") if kind == "gradients" else ("layers",)
    for key in keys:
        values = record.get(key)
        if not isinstance(values, dict):
            return f"{key} is not an object"
        if kind == "gradients" and not all(_number(value) for value in values.values()):
            return f"{key} holds a value that is not a number"
        if kind == "activations" and not all(isinstance(value, dict) for value in values.values()):
            return f"{key} holds a layer that is not an object"
    return None
