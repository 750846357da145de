"""A search over training options as one call, what ``deepgrad search`` runs: the study in
``OUT/study.jsonl`` (resumed when it is there), what made it in ``OUT/search.json``,
``OUT/search.png``, ``OUT/best.toml`` and, on request, the trials' TensorBoard runs in ``OUT/tb/``.

A study is consistent with what produced it. ``search.json`` records the base options, the space
and the search's settings; running the search again with other ones is a ConfigError naming each
difference (``new=True`` starts a new study instead, after moving the old one's files into
``OUT/previous-N/``). The study is claimed for the search (:mod:`deepgrad.search.lock`), so a second
search of the same ``OUT`` at the same time is refused. A search refused, failed or interrupted
before any trial was recorded leaves ``OUT`` as it found it (no empty folder it made, an old study
moved aside by ``new`` put back). When no trial ends with a score, :class:`SearchFailed` says why.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Callable, Mapping
from typing import Any

from ..errors import ConfigError, DeepgradError
from ..train import config as options
from ..train.directory import make_folders, remove_empty_folders
from .asha import ASHA
from .files import default_space, space_table, toml_text, toml_value, write_best
from .lock import claim
from .objective import TrainingObjective
from .runner import Executor, check_settings, check_study, make_executor, random_search
from .spaces import Choice, Dimension
from .study import Study, Trial

STUDY_FILE, RECORD_FILE, FIGURE_FILE, BEST_FILE, TENSORBOARD_DIR = (
    "study.jsonl",
    "search.json",
    "search.png",
    "best.toml",
    "tb",
)
STUDY_ENTRIES = (STUDY_FILE, RECORD_FILE, BEST_FILE, FIGURE_FILE, TENSORBOARD_DIR)  # what a search writes in OUT
PREVIOUS = "previous"  # OUT/previous-N/: a study that new=True moved aside
RECORD_FORMAT = "deepgrad-search"
# Base options that say where or how fast the trials run, or what a run records besides its scores:
# a study goes on under other values of these (any other difference is refused).
SEARCH_FREE = (
    "log_every",
    "device",
    "threads",
    "data_dir",
    "download",
    "checkpoint_every",
    "monitor",
    "monitor_every",
    "tensorboard",
)


class SearchFailed(DeepgradError, RuntimeError):
    """No trial of a search ended with a score (every one failed): there is no best to train."""


def search_training(
    base: Mapping[str, Any] | None,
    out: str,
    space: Mapping[str, Dimension] | None = None,
    trials: int = 20,
    rounds: int = 2,
    keep: float = 0.2,
    scheduler: str | None = None,
    executor: str | Executor = "local",
    n_jobs: int | None = None,
    progress: bool = False,
    ray_address: str | None = None,
    cpus_per_trial: int = 1,
    tensorboard: bool = False,
    new: bool = False,
    note: Callable[[str], object] | None = None,
) -> Study:
    """Search the training options ``space`` (default: lr and weight decay on log scales for the
    base config's optimizer) around the training config ``base``, scoring each trial's validation
    accuracy; the seed of ``base`` seeds the search. ``executor``: "local", "serial", "ray" (a local
    Ray, or the cluster at ``ray_address``, ``cpus_per_trial`` CPUs each) or an executor object.
    ``tensorboard`` (or the base option): each trial writes its params (as hparams) and metrics to
    ``OUT/tb/trial-NNNN/`` for TensorBoard's HParams tab (``tensorboard --logdir OUT/tb``).

    An ``OUT`` holding a study resumes it when the base options, space, trials, keep fraction and
    scheduler are the study's (``rounds`` may grow); otherwise a ConfigError names each difference,
    unless ``new``: then the old study's files are moved into ``OUT/previous-N/`` and a new study
    starts. ``note`` is called with each thing the user should hear as it happens (the old study
    moved aside, a torn last line dropped, an old study adopted). Everything is checked before the
    first trial. Returns the Study (``study.interrupted`` after Ctrl-C); raises :class:`SearchFailed`
    when no trial has a score, naming the first failures' errors."""
    tell = note if note is not None else (lambda line: None)
    base = dict(base or {})
    config = options.resolve(base)
    tensorboard = tensorboard or config["tensorboard"]
    objective = TrainingObjective(base, tensorboard_dir=os.path.join(out, TENSORBOARD_DIR) if tensorboard else None)
    space = objective.check_space(space or default_space(config["optimizer"]))
    check_settings(trials, rounds, keep)
    if scheduler not in (None, "none", "asha"):
        raise ConfigError(f"unknown scheduler {scheduler!r}; valid: asha, none")
    asha = ASHA(max_epochs=config["epochs"]) if scheduler == "asha" and "epochs" not in space else None
    runner = make_executor(executor, n_jobs, ray_address, cpus_per_trial)
    _check_toml(config, space)
    record = search_record(config, space, trials, rounds, keep, scheduler or "none")
    study_path = os.path.join(out, STUDY_FILE)
    created = make_folders(out, "the search's --out")
    study = Study()
    recorded: list[Trial] = []  # the trials this call ran
    bar: TrialProgress | None = None

    def step(trial: Trial) -> None:
        recorded.append(trial)
        if bar is not None:
            bar.step(trial)

    try:
        with claim(study_path):
            undo: list[Callable[[], None]] = []
            try:
                if new:  # before the old study is read: a damaged one goes aside too
                    moved = _move_aside(out)
                    if moved is not None:
                        destination, names = moved
                        undo.append(lambda: _move_back(out, destination, names))
                        tell(f"--new: the previous study ({', '.join(names)}) was moved to {destination}/")
                study = _open_study(study_path)  # read under the claim: a torn last line is repaired
                for line in study.notes:
                    tell(line)
                if len(study) and read_record(os.path.join(out, RECORD_FILE)) is None:
                    check_study(study, space, trials, rounds)  # an older study of another search: refused, no note
                _settle_record(out, record, study, undo, tell)
                tb = os.path.join(out, TENSORBOARD_DIR)
                if tensorboard and not os.path.exists(tb):
                    undo.append(lambda: shutil.rmtree(tb, ignore_errors=True))
                bar = TrialProgress(trials * rounds, len(study)) if progress else None
                try:
                    random_search(
                        objective, space, trials, rounds, keep, config["seed"], runner, asha, study, progress=step
                    )
                finally:
                    if bar is not None:
                        bar.close()
                if study.interrupted and not recorded:
                    _undo(undo)
                elif study.best is not None:
                    write_best(os.path.join(out, BEST_FILE), {**config, **study.best.params})
                    _draw(study, os.path.join(out, FIGURE_FILE), config, tell)
            except BaseException:
                if not recorded:  # refused before any trial: OUT as it was
                    _undo(undo)
                raise
    except BaseException:
        remove_empty_folders(created)
        raise
    if study.interrupted:
        if not recorded:
            remove_empty_folders(created)
        return study
    if study.best is None:
        raise SearchFailed(failure_message(study, study_path))
    return study


def summary_lines(study: Study, out: str, tensorboard: bool = False, shown: int = 10) -> list[str]:
    """What ``deepgrad search`` prints when it is done: the ``shown`` best trials as a table (rank,
    trial, round, score, status, each searched value), where the files are, and how to train the best."""
    names = list(study.spaces[0]) if study.spaces else []
    lines = [
        "",
        f"{'rank':>4} {'trial':>5} {'round':>5} {'val acc':>8} {'status':<8} "
        + " ".join(f"{name:>12}" for name in names),
    ]
    for rank, trial in enumerate(study.ranked()[:shown], 1):
        values = " ".join(
            f"{trial.params[name]:>12.4g}"
            if isinstance(trial.params[name], float)
            else f"{str(trial.params[name]):>12}"
            for name in names
        )
        lines.append(
            f"{rank:>4} {trial.number + 1:>5} {trial.round + 1:>5} {trial.score:>8.4f} {trial.status:<8} {values}"
        )
    failed = sum(trial.status == "failed" for trial in study.trials.values())
    files = f"{STUDY_FILE}, {RECORD_FILE}, {FIGURE_FILE}, {BEST_FILE}{', tb/' if tensorboard else ''}"
    lines += [
        "",
        f"{len(study)} trials ({failed} failed) in {out}/ ({files})"
        + (
            f"; train the best with: deepgrad train --config {os.path.join(out, BEST_FILE)}"
            if study.best is not None
            else ""
        ),
    ]
    if tensorboard:
        lines.append(
            f"compare the trials in TensorBoard's HParams tab: tensorboard --logdir "
            f"{os.path.join(out, TENSORBOARD_DIR)}"
        )
    return lines


def search_record(
    config: Mapping[str, Any], space: Mapping[str, Dimension], trials: int, rounds: int, keep: float, scheduler: str
) -> dict[str, Any]:
    """What ``search.json`` records of a search: its base options, space and settings (as JSON)."""
    return json.loads(
        json.dumps(
            {
                "format": RECORD_FORMAT,
                "version": 1,
                "base": dict(config),
                "space": space_table(space),
                "trials": trials,
                "rounds": rounds,
                "keep": keep,
                "scheduler": scheduler,
                "metric": "val_accuracy",
            }
        )
    )


def record_differences(study: Mapping[str, Any], search: Mapping[str, Any]) -> list[str]:
    """Each way the search ``search`` differs from the one that made the study ``study`` (both
    :func:`search_record`\\ s), as the flag and value of the search, then the study's."""
    differences = []
    searched = set(study["space"]) | set(search["space"])
    for name, option in options.OPTIONS.items():
        if name in SEARCH_FREE or name in searched:
            continue
        old, now = study["base"].get(name, option.default), search["base"].get(name, option.default)
        if old != now:
            differences.append(f"--{options.flag(name)} {_show(now)} (the study has {_show(old)})")
    for name in search["space"]:
        if name not in study["space"]:
            differences.append(f"space [{name}] {_range(search['space'][name])} (the study does not search {name})")
        elif study["space"][name] != search["space"][name]:
            differences.append(
                f"space [{name}] {_range(search['space'][name])} (the study has {_range(study['space'][name])})"
            )
    for name in study["space"]:
        if name not in search["space"]:
            differences.append(f"a space without [{name}] (the study searches it: {_range(study['space'][name])})")
    for key, flag in (("trials", "--trials"), ("keep", "--keep-fraction"), ("scheduler", "--scheduler")):
        if study[key] != search[key]:
            differences.append(f"{flag} {search[key]} (the study has {study[key]})")
    if search["rounds"] < study["rounds"]:  # more rounds go on from the study's
        differences.append(f"--rounds {search['rounds']} (the study has {study['rounds']})")
    return differences


def _show(value: Any) -> str:
    return "unset" if value is None else options.show(value)


def _range(table: Mapping[str, Any]) -> str:
    kind, value = next(iter(table.items()))
    return f"{kind} {json.dumps(value)}"


def _open_study(path: str) -> Study:
    try:
        return Study(path)
    except ConfigError as error:
        raise ConfigError(f"{error}; pass --new to move it aside and start a new study, or use another --out") from None


def _settle_record(
    out: str, record: dict[str, Any], study: Study, undo: list[Callable[[], None]], tell: Callable[[str], object]
) -> None:
    """Make ``OUT/search.json`` say ``record``: a ConfigError when OUT's study was made by another
    search; ``undo`` gets what puts OUT back."""
    path = os.path.join(out, RECORD_FILE)
    previous = read_record(path)
    if previous is not None and len(study):
        differences = record_differences(previous, record)
        if differences:
            raise ConfigError(
                f"{out} holds a study made with other options: {'; '.join(differences)}. Give the "
                "study's options to resume it, pass --new to start a new study there (the old one is "
                f"moved to {out}/{PREVIOUS}-N/), or use another --out"
            )
        if previous == record:
            return
    elif len(study):
        tell(
            f"{out}/{STUDY_FILE} has no {RECORD_FILE} (a study of an older deepgrad): its trials are checked "
            "against this search's space and seed, its base options cannot be; they are recorded as this "
            "command's"
        )
    _write_json(path, record)
    if previous is None:
        undo.append(lambda: _remove_file(path))
    else:
        undo.append(lambda: _write_json(path, previous))


def read_record(path: str) -> dict[str, Any] | None:
    """The search record at ``path`` (None when there is none); a ConfigError when the file is not
    one, naming it."""
    try:
        with open(path, encoding="utf-8") as handle:
            record = json.load(handle)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, RecursionError) as error:
        raise ConfigError(
            f"{path} is not a deepgrad search record ({type(error).__name__}: {str(error)[:200]}); "
            "pass --new to move it aside with the study, or use another --out"
        ) from None
    shape: dict[str, type | tuple[type, ...]] = {
        "base": dict,
        "space": dict,
        "trials": int,
        "rounds": int,
        "keep": (int, float),
        "scheduler": str,
    }
    if (
        not isinstance(record, dict)
        or record.get("format") != RECORD_FORMAT
        or not all(isinstance(record.get(key), kind) for key, kind in shape.items())
        or not all(isinstance(table, dict) and len(table) == 1 for table in record["space"].values())
    ):
        raise ConfigError(
            f"{path} is not a deepgrad search record; pass --new to move it aside with the study, or use another --out"
        )
    return record


def _write_json(path: str, value: Any) -> None:
    from .. import io

    io.write_text(path, json.dumps(value, indent=1) + "\n")


def _remove_file(path: str) -> None:
    try:
        os.remove(path)
    except FileNotFoundError:
        pass


def _move_aside(out: str) -> tuple[str, list[str]] | None:
    """Move the study's files in ``out`` into a new ``out/previous-N/``: (that folder, the names
    moved), or None when there is no study there."""
    names = [name for name in STUDY_ENTRIES if os.path.lexists(os.path.join(out, name))]
    if not names:
        return None
    for number in range(1, 10_000):
        destination = os.path.join(out, f"{PREVIOUS}-{number}")
        try:
            os.mkdir(destination)
            break
        except FileExistsError:
            continue
        except OSError as error:
            raise ConfigError(
                f"cannot move the previous study aside into {destination}: {error.strerror or error}"
            ) from None
    else:
        raise ConfigError(f"no free {PREVIOUS}-N folder in {out} to move the previous study into")
    for name in names:
        os.replace(os.path.join(out, name), os.path.join(destination, name))
    return destination, names


def _move_back(out: str, destination: str, names: list[str]) -> None:
    for name in names:
        if not os.path.lexists(os.path.join(out, name)):
            os.replace(os.path.join(destination, name), os.path.join(out, name))
    try:
        os.rmdir(destination)
    except OSError:
        pass


def _undo(undo: list[Callable[[], None]]) -> None:
    for step in reversed(undo):
        step()
    undo.clear()


def _check_toml(config: Mapping[str, Any], space: Mapping[str, Dimension]) -> None:
    """A ConfigError now, before any trial, when best.toml could not hold the config or a choice."""
    toml_text(config)
    for name, dimension in space.items():
        if isinstance(dimension, Choice):
            for value in dimension.options:
                try:
                    toml_value(value)
                except ValueError as error:
                    raise ConfigError(f"best.toml cannot hold {name} = {value!r}: {error}") from None


def _draw(study: Study, path: str, config: Mapping[str, Any], tell: Callable[[str], object]) -> None:
    try:
        from ..viz.search import search_scores
    except ImportError:
        tell(f"{path} not drawn: matplotlib is not installed (pip install 'deepgrad[viz]')")
        return
    try:
        search_scores(study, path, title=f"{config['model']} on {config['dataset']}: validation accuracy of each trial")
    except ImportError:  # matplotlib's own imports
        tell(f"{path} not drawn: matplotlib is not installed (pip install 'deepgrad[viz]')")


def failure_message(study: Study, path: str, shown: int = 3) -> str:
    """Why a search has no best trial, in one line: the first ``shown`` distinct errors, with the
    trials (numbered from 1) that ended with each."""
    trials = sorted(study.trials.values(), key=lambda t: t.number)
    failed = [t for t in trials if t.status == "failed"]
    head = (
        f"all {len(trials)} trials failed"
        if len(failed) == len(trials)
        else f"no trial of {len(trials)} has a finite validation score ({len(failed)} failed)"
    )
    errors: dict[str, list[int]] = {}
    for trial in failed:
        error = " ".join((trial.error or "no error recorded").split())[:300]
        errors.setdefault(error, []).append(trial.number + 1)
    parts = []
    for error, numbers in list(errors.items())[:shown]:
        listed = ", ".join(map(str, numbers[:5])) + (", ..." if len(numbers) > 5 else "")
        parts.append(f"{error} (trial{'s' if len(numbers) > 1 else ''} {listed})")
    more = f"; {len(errors) - shown} other errors" if len(errors) > shown else ""
    causes = f": {'; '.join(parts)}{more}" if parts else ""
    return (
        f"{head}, so there is no best.toml{causes}. The trials are in {path}; fix the cause and pass --new "
        "to run them again"
    )


class TrialProgress:
    """A tqdm bar of trials done, with the best score so far."""

    def __init__(self, total: int, done: int = 0):
        from ..progress import tqdm

        self.bar = tqdm(total=total, initial=done, desc="trials", file=sys.stderr)
        self.best: float | None = None

    def step(self, trial: Trial) -> None:
        score = trial.score if trial.scored else None
        if score is not None and (self.best is None or score > self.best):
            self.best = score
        self.bar.update(1)
        if self.best is not None:
            self.bar.set_postfix(best=f"{self.best:.4f}")

    def close(self) -> None:
        self.bar.close()
