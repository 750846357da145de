"""Reading run directories (what :func:`deepgrad.train.run.build_run` and ``deepgrad train`` write)
into :class:`RunRecord`\\ s, tolerating what a run still writing or a crashed one leaves: a torn last
line of a JSON-lines file, no ``metrics.jsonl`` (a run that diverged in its first epoch), no
``summary.json`` (a run of an older deepgrad); and finding the runs and searches below a folder, as
``tensorboard --logdir`` does.

    record = read_run("runs/five")
    record.epochs[-1]["val_accuracy"], record.steps[-1]["loss"], record.state.label, record.notes
    runs, searches = find_sources(["runs"], filter="adam")
"""

import json
import math
import os
import re
import socket
from collections.abc import Sequence
from dataclasses import dataclass, field

from ..diagnostics.monitors import DIAGNOSTICS_FILE
from ..errors import ConfigError

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.jsonl"
STEPS_FILE = "steps.jsonl"
SUMMARY_FILE = "summary.json"
RECORD_FILES = (METRICS_FILE, STEPS_FILE, SUMMARY_FILE)  # a run directory has config.json and one of these
SEARCH_FILES = ("study.jsonl", "search.json")  # what `deepgrad search --out` writes (deepgrad.search.training)
FINISHED = ("finished", "stopped_early")  # states whose summary holds the kept weights' results


@dataclass
class RunState:
    """What became of a run: ``kind`` (``running``, ``gone`` — its summary says running but its
    process is not alive —, ``finished``, ``stopped_early``, ``interrupted``, ``diverged``,
    ``failed``, ``unknown``), a short ``label`` for tables and a ``detail`` sentence."""

    kind: str
    label: str
    detail: str


@dataclass
class RunRecord:
    """What a run directory holds: its ``config``, one dict per finished epoch (``epochs``), the
    sampled steps (``steps``, from steps.jsonl), the ``summary`` (None when there is none), the
    monitors' records (``diagnostics``, empty without ``--monitor``), and ``notes``: sentences saying
    what is incomplete."""

    directory: str
    name: str
    config: dict
    epochs: list
    summary: dict | None = None
    diagnostics: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    steps: list = field(default_factory=list)

    @property
    def state(self):
        """The run's :class:`RunState` (a running one's process is looked up now)."""
        return run_state(self)

    @property
    def finished(self):
        """Whether its summary holds the results of a finished run (test loss and accuracy...)."""
        return self.summary is not None and self.summary.get("state", "finished") in FINISHED


def read_runs(directories, names=None):
    """The :class:`RunRecord` of each directory, named by ``names`` or by their directory names (their
    paths where two share a name)."""
    directories = [os.fspath(directory) for directory in directories]
    if not directories:
        raise ConfigError("report: no run directories given; name at least one")
    if names is None:
        names = [os.path.basename(os.path.normpath(directory)) for directory in directories]
        names = [directory if names.count(name) > 1 else name for name, directory in zip(names, directories)]
    return [read_run(directory, name) for directory, name in zip(directories, names)]


def is_run(directory):
    """Whether ``directory`` is a run directory: a config.json and a metrics.jsonl, steps.jsonl or
    summary.json."""
    return os.path.isfile(os.path.join(directory, CONFIG_FILE)) and any(
        os.path.isfile(os.path.join(directory, file)) for file in RECORD_FILES
    )


def is_search(directory):
    """Whether ``directory`` holds a search (``deepgrad search --out``): a study.jsonl or search.json."""
    return any(os.path.isfile(os.path.join(directory, file)) for file in SEARCH_FILES)


def find_sources(
    paths: Sequence[str | os.PathLike[str]], filter: str | None = None
) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(runs, searches): the run directories and search directories of ``paths``, each a list of
    (directory, name). A path that is a run or a search is itself; any other folder is searched
    below, as ``tensorboard --logdir`` does: every directory in it that is a run (not looked into
    further) or a search, named by its path relative to the folder. ``filter``: a regular
    expression; only the runs and searches whose name (or path) it finds are kept. ConfigError for
    a path that does not exist or is a file, a folder with neither runs nor a search, a bad
    ``filter`` or one that keeps nothing."""
    paths = [os.fspath(path) for path in paths]
    if not paths:
        raise ConfigError("report: no run directories given; name at least one")
    pattern = None
    if filter is not None:
        try:
            pattern = re.compile(filter)
        except re.error as error:
            raise ConfigError(f"report: --filter {filter!r} is not a regular expression: {error}") from None
    runs, searches = [], []
    for path in paths:
        found_runs, found_searches = _sources_of(path)
        runs += found_runs
        searches += found_searches
    if pattern is not None:
        every = runs + searches
        runs = [(d, n) for d, n in runs if pattern.search(n) or pattern.search(d)]
        searches = [(d, n) for d, n in searches if pattern.search(n) or pattern.search(d)]
        if not runs and not searches:
            shown = ", ".join(name for _, name in every[:8]) + (", ..." if len(every) > 8 else "")
            raise ConfigError(f"report: --filter {filter!r} matches none of the {len(every)} found: {shown}")
    return _unique_names(runs), _unique_names(searches)


def _sources_of(path):
    if not os.path.exists(path):
        raise ConfigError(f"report: no such run directory: {path}")
    if not os.path.isdir(path):
        raise ConfigError(
            f"report: {path} is a file; expected a run directory (deepgrad train --out) or a folder of runs"
        )
    name = os.path.basename(os.path.normpath(path)) or path
    if is_run(path):
        return [(path, name)], []
    runs, searches = [], []
    if is_search(path):
        searches.append((path, name))
    for directory, subdirectories, _ in os.walk(path):
        subdirectories[:] = sorted(d for d in subdirectories if not d.startswith("."))
        if directory == path:
            continue
        relative = os.path.relpath(directory, path)
        if is_run(directory):
            runs.append((directory, relative))
            subdirectories[:] = []  # its checkpoints/ and tb/ are the run's
        elif is_search(directory):
            searches.append((directory, relative))
    if not runs and not searches:
        if os.path.isfile(os.path.join(path, CONFIG_FILE)):
            raise ConfigError(
                f"report: {path} is not a run directory: it has a {CONFIG_FILE} but no "
                f"{', '.join(RECORD_FILES[:-1])} or {RECORD_FILES[-1]} (deepgrad train --out writes them)"
            )
        raise ConfigError(
            f"report: {path} is not a run directory and holds none: no folder in it has a {CONFIG_FILE} with a "
            f"{', '.join(RECORD_FILES[:-1])} or {RECORD_FILES[-1]} (deepgrad train --out), nor a "
            f"{SEARCH_FILES[0]} (deepgrad search --out)"
        )
    return runs, searches


def _unique_names(sources):
    """The (directory, name) pairs with a name shared by two directories replaced by their paths,
    and a directory listed twice kept once."""
    seen, kept = set(), []
    for directory, name in sources:
        key = os.path.realpath(directory)
        if key not in seen:
            seen.add(key)
            kept.append((directory, name))
    names = [name for _, name in kept]
    return [(directory, directory if names.count(name) > 1 else name) for directory, name in kept]


def _read_records(directory, file, problem, unit, notes):
    """The records of the JSON-lines ``file`` of ``directory`` (none when it is absent); a torn last
    line is left out and said in ``notes``."""
    path = os.path.join(directory, file)
    if not os.path.isfile(path):
        return []
    records, torn = read_json_lines(path, problem)
    if torn:
        notes.append(
            f"the last line of {file} is incomplete (the run is still writing it, or stopped while it did): "
            f"showing the {len(records)} {unit} before it"
        )
    return records


def read_run(directory: str, name: str | None = None) -> RunRecord:
    """The :class:`RunRecord` of ``directory``; ConfigError naming it when it is not a run directory
    (no config.json, or none of metrics.jsonl, steps.jsonl, summary.json) or a file in it is not what
    a run writes."""
    directory = os.fspath(directory)
    if not os.path.exists(directory):
        raise ConfigError(f"report: no such run directory: {directory}")
    if not os.path.isdir(directory):
        raise ConfigError(f"report: {directory} is a file; expected a run directory (deepgrad train --out)")
    if not is_run(directory):
        has = [file for file in (CONFIG_FILE, *RECORD_FILES) if os.path.isfile(os.path.join(directory, file))]
        what = f"a {CONFIG_FILE} but no" if has else f"no {CONFIG_FILE} and no"
        raise ConfigError(
            f"report: {directory} is not a run directory: it has {what} {', '.join(RECORD_FILES[:-1])} or "
            f"{RECORD_FILES[-1]} (deepgrad train --out writes them)"
        )
    notes: list[str] = []
    config = _read_json_object(os.path.join(directory, CONFIG_FILE))
    epochs = _read_records(directory, METRICS_FILE, epoch_problem, "epochs", notes)
    steps = _read_records(directory, STEPS_FILE, step_problem, "steps", notes)
    summary = None
    if os.path.isfile(os.path.join(directory, SUMMARY_FILE)):
        summary = _read_json_object(os.path.join(directory, SUMMARY_FILE))
    else:
        notes.append(
            f"no {SUMMARY_FILE}: the run is still training or stopped before the end (no test "
            "results); its curves show what it logged"
        )
    diagnostics = []
    if os.path.isfile(os.path.join(directory, DIAGNOSTICS_FILE)):
        diagnostics, torn = read_json_lines(os.path.join(directory, DIAGNOSTICS_FILE), sample_problem)
        if torn:
            notes.append(
                f"the last line of {DIAGNOSTICS_FILE} is incomplete: showing the {len(diagnostics)} samples before it"
            )
    return RunRecord(
        directory,
        name or os.path.basename(os.path.normpath(directory)),
        config,
        epochs,
        summary,
        diagnostics,
        notes,
        steps,
    )


def run_state(run):
    """The :class:`RunState` of ``run`` (a RunRecord), from its summary's ``state``: a run whose
    summary says ``running`` while its process (``pid`` on ``host``, this machine) is gone is
    ``gone``: it stopped without a word (killed, or the machine went down)."""
    summary = run.summary
    if summary is None:
        return RunState(
            "unknown", "no summary", f"no {SUMMARY_FILE}: still training, or stopped before the end (an older deepgrad)"
        )
    state = summary.get("state", "finished")  # summaries written before run states were of finished runs
    epochs, step = len(run.epochs), summary.get("steps_done")
    at = f" at step {step}" if _is_int(step) else ""
    if state == "running":
        pid, host = summary.get("pid"), summary.get("host")
        where = f"process {pid} on {host}" if _is_int(pid) and isinstance(host, str) else "its process"
        alive = process_alive(pid, host)
        progress = f"{epochs} epoch{'s' if epochs != 1 else ''} logged" + (
            f", step {run.steps[-1].get('step')}" if run.steps else ""
        )
        if alive is False:
            return RunState(
                "gone",
                "stopped without a word",
                f"stopped without a word — its process is gone ({where}; {SUMMARY_FILE} still says running, "
                f"{progress}): it was killed, or its machine went down; continue it with "
                f"deepgrad train --out {run.directory} --resume",
            )
        if alive is None:
            return RunState("running", f"running on {host}", f"running ({where}; {progress}); not checked from here")
        return RunState("running", "running", f"running ({where}; {progress})")
    if state == "finished":
        return RunState("finished", "finished", f"finished its {summary.get('epochs', epochs)} epochs")
    if state == "stopped_early":
        planned = run.config.get("epochs")
        of = f" of {planned}" if _is_int(planned) else ""
        return RunState(
            "stopped_early",
            "stopped early",
            f"stopped early after {summary.get('epochs', epochs)}{of} epochs (early stopping)",
        )
    if state == "interrupted":
        done = summary.get("epochs_done")
        within = f" (in epoch {done + 1}, after {done} finished)" if _is_int(done) else ""
        return RunState(
            "interrupted",
            f"interrupted{at}",
            f"interrupted (Ctrl-C){at}{within}; continue it with deepgrad train --out {run.directory} --resume",
        )
    if state == "diverged":
        where = summary.get("diverged_at", step)
        at = f" at step {where}" if _is_int(where) else ""
        loss, last = loss_text(summary.get("loss")), loss_text(summary.get("last_finite_loss"))
        cause = summary.get("cause")
        return RunState(
            "diverged",
            f"diverged{at}",
            f"diverged{at}: loss {loss}, last finite loss {last}" + (f" — {cause}" if isinstance(cause, str) else ""),
        )
    if state == "failed":
        error = summary.get("error")
        return RunState("failed", "failed", f"failed{at}: {error}" if error else f"failed{at}")
    return RunState("unknown", str(state), f"{SUMMARY_FILE} says state {state!r}")


def loss_text(value):
    """A loss of a summary as text: 4 significant digits, or as written (``nan``, ``inf``)."""
    if isinstance(value, bool) or value is None:
        return "–"
    if isinstance(value, (int, float)):
        return f"{value:.4g}"
    return str(value)


def process_alive(pid, host):
    """Whether process ``pid`` is alive: True, False, or None when it cannot be told (another host,
    no pid)."""
    if not _is_int(pid) or pid <= 0 or not isinstance(host, str):
        return None
    if host != socket.gethostname():
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    except OSError:
        return None
    return True


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


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value):
    return value is None or (isinstance(value, (int, float)) and not isinstance(value, bool))


def epoch_problem(record):
    """What is wrong with a line of metrics.jsonl (None: nothing): an int epoch, numbers for the rest."""
    if not _is_int(record.get("epoch")):
        return "no whole epoch number"
    wrong = [key for key, value in record.items() if not _number(value)]
    return f"{wrong[0]} is not a number" if wrong else None


def step_problem(record):
    """What is wrong with a line of steps.jsonl (None: nothing): an int step, numbers for the rest
    (NaN and infinities included: a diverged step's loss)."""
    if not _is_int(record.get("step")):
        return "no whole step number"
    wrong = [key for key, value in record.items() if not _number(value)]
    return f"{wrong[0]} is not a number" if wrong else None


def sample_problem(record):
    """What is wrong with a line of diagnostics.jsonl (None: nothing): a monitor's kind and step, and
    per-layer values of the shape that kind records."""
    kind, step = record.get("kind"), record.get("step")
    if kind not in ("gradients", "activations") or not _is_int(step):
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


def finite(value, scale=1):
    """``value`` times ``scale`` as a float, or None when it is not a finite number."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value) * scale
