"""A study: every trial of a search — its parameters, score, per-epoch scores, wall time, status,
round and error — kept in memory and, with a path, in a JSON-lines file, one finished trial per
line, appended (and flushed to disk) the moment the trial ends. Opening a study on an existing file
resumes it: the trials it holds are not run again; a torn last line (a crash while writing it) is
reported and dropped. Any other line that is not a trial (not JSON, or fields of the wrong type) is
a ConfigError naming the file and the line.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field
from typing import Any

from .. import io
from ..errors import ConfigError, WriteError
from .lock import is_claimed

STATUSES = ("finished", "pruned", "failed")


@dataclass
class Trial:
    """One sample of the space: ``number`` orders the whole study (round by round) from 0, and
    people see it from 1 (:attr:`trial`, as tables, ``trial-0001`` and the study file's ``trial``
    field count); ``status`` is "finished", "pruned" (stopped early by the scheduler, scored at its
    last epoch) or "failed" (None while it has not run)."""

    number: int
    round: int
    params: dict[str, Any]
    status: str | None = None
    score: float | None = None
    scores: list[list[float]] = field(default_factory=list)  # [epoch, score] pairs the objective reported
    seconds: float | None = None
    error: str | None = None

    @property
    def trial(self) -> int:
        """The trial's number as people count it, from 1."""
        return self.number + 1

    def to_record(self) -> dict[str, Any]:
        """The study file's line of the trial: its fields, with ``trial`` (from 1) first."""
        return {"trial": self.trial, **asdict(self)}

    @property
    def scored(self) -> bool:
        return self.status in ("finished", "pruned") and self.score is not None and math.isfinite(self.score)

    @classmethod
    def from_record(cls, record: Any) -> Trial:
        """The trial a study file's line holds (``record``: the line's JSON); a ValueError saying
        which field is wrong. ``trial`` (the number from 1, written since trials are shown from 1)
        is optional: a study written before it is read the same; when present it must be
        ``number`` + 1 (``number`` may then be left out)."""
        if not isinstance(record, dict):
            raise ValueError(f"expected a JSON object, got {type(record).__name__}")
        record = dict(record)
        if "trial" in record:
            trial = record.pop("trial")
            if not _is_int(trial) or trial < 1:
                raise ValueError(f"trial must be a whole number >= 1, got {trial!r}")
            record.setdefault("number", trial - 1)
            if record["number"] != trial - 1:
                raise ValueError(f"trial {trial} and number {record['number']!r} disagree (trial is number + 1)")
        names = set(cls.__dataclass_fields__)
        unknown, missing = sorted(set(record) - names), sorted({"number", "round", "params"} - set(record))
        if unknown or missing:
            raise ValueError(f"unknown fields {unknown}" if unknown else f"missing fields {missing}")
        number, round_, params = record["number"], record["round"], record["params"]
        for name, value in (("number", number), ("round", round_)):
            if not _is_int(value) or value < 0:
                raise ValueError(f"{name} must be a whole number >= 0, got {value!r}")
        if not isinstance(params, dict):
            raise ValueError(f"params must be an object of option -> value, got {params!r}")
        status = record.get("status")
        if status not in STATUSES:
            raise ValueError(f"status must be one of {', '.join(STATUSES)}, got {status!r}")
        score = _number_or_none(record.get("score"), "score")
        seconds = _number_or_none(record.get("seconds"), "seconds")
        scores = record.get("scores", [])
        if not isinstance(scores, list) or not all(
            isinstance(pair, list) and len(pair) == 2 and _is_int(pair[0]) and _is_number(pair[1]) for pair in scores
        ):
            raise ValueError(f"scores must be a list of [epoch, score] pairs, got {scores!r}")
        error = record.get("error")
        if error is not None and not isinstance(error, str):
            raise ValueError(f"error must be a string, got {error!r}")
        return cls(number, round_, params, status, score, [[int(e), float(s)] for e, s in scores], seconds, error)


def _score(trial: Trial) -> float:
    assert trial.score is not None
    return trial.score


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _number_or_none(value: Any, name: str) -> float | None:
    if value is None:
        return None
    if not _is_number(value):
        raise ValueError(f"{name} must be a number, got {value!r}")
    return float(value)


class Study:
    """The trials of a search (``trials``: number -> Trial) and the best one; ``mode`` "max" when a
    higher score is better (accuracy), "min" otherwise. ``notes``: what opening the file found (a
    torn last line). A torn last line is removed from the file only while this process holds the
    study's claim (:func:`deepgrad.search.lock.claim`, as a search does): a reader never cuts the
    line a running search is writing."""

    def __init__(self, path: str | None = None, mode: str = "max"):
        if mode not in ("max", "min"):
            raise ConfigError(f"Study: mode must be 'max' or 'min', got {mode!r}")
        self.path, self.mode = path, mode
        self.trials: dict[int, Trial] = {}
        self.notes: list[str] = []
        self.interrupted = False
        self.spaces: list[dict[str, Any]] = []  # each round's space, set by random_search
        self._loaded: tuple[Any, ...] | None = None  # what the file was when read, and whether under claim
        if path:
            self.reload()

    def reload(self) -> None:
        """Read the study file again if it changed since it was read (or was read without the claim
        that this process now holds), repairing a torn last line under the claim."""
        if not self.path:
            return
        claimed = is_claimed(self.path)
        state = self._file_state(claimed)
        if state is None:
            self.trials, self._loaded = {}, None
        elif state != self._loaded:
            self._load(repair=claimed)
            self._loaded = self._file_state(claimed)

    def _file_state(self, claimed: bool) -> tuple[Any, ...] | None:
        """What tells whether the file changed (None: there is no file)."""
        assert self.path is not None
        try:
            stat = os.stat(self.path)
        except FileNotFoundError:
            return None
        except OSError as error:
            raise ConfigError(f"cannot read the study file {self.path}: {error.strerror or error}") from None
        return (stat.st_ino, stat.st_size, stat.st_mtime_ns, claimed)

    def _load(self, repair: bool) -> None:
        assert self.path is not None
        try:
            with open(self.path, encoding="utf-8", newline="") as handle:
                lines = handle.read().split("\n")
        except UnicodeDecodeError as error:
            raise ConfigError(f"study file {self.path} is not a text file of JSON lines ({error})") from None
        except OSError as error:
            raise ConfigError(f"cannot read the study file {self.path}: {error.strerror or error}") from None
        if lines and lines[-1] == "":
            lines.pop()  # the end of the last line, not a line
        trials, kept = {}, []
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue  # a blank line holds no trial (and is dropped by a repair)
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                if number < len(lines):
                    raise ConfigError(
                        f"study file {self.path}: line {number} is not a trial ({error}); "
                        "only the last line may be torn"
                    ) from None
                note = (
                    f"study file {self.path}: its last line was torn (a crash while writing it); "
                    "that trial is run again"
                )
                if note not in self.notes:
                    self.notes.append(note)
                continue
            except (ValueError, RecursionError) as error:  # a huge integer, absurd nesting
                raise ConfigError(
                    f"study file {self.path}: line {number} is not a trial ({type(error).__name__}: {str(error)[:200]})"
                ) from None
            try:
                trial = Trial.from_record(record)
            except ValueError as error:
                raise ConfigError(f"study file {self.path}: line {number} is not a trial: {error}"[:500]) from None
            trials[trial.number] = trial
            kept.append(line + "\n")
        self.trials = trials
        if repair and "".join(kept) != "".join(line + "\n" for line in lines):
            io.write_text(self.path, "".join(kept))

    def record(self, trial: Trial) -> None:
        """Keep ``trial`` and append it to the study file at once (a WriteError when it cannot be)."""
        self.trials[trial.number] = trial
        if self.path:
            try:
                with open(self.path, "a", encoding="utf-8") as handle:
                    handle.write(json.dumps(trial.to_record()) + "\n")
                    handle.flush()
                    os.fsync(handle.fileno())
            except OSError as error:
                raise WriteError(f"cannot write the study file {self.path}: {error.strerror or error}") from None
            if is_claimed(self.path):  # nobody else appends: what is in memory is the file
                self._loaded = self._file_state(True)

    def ranked(self, through_round: int | None = None) -> list[Trial]:
        """The scored trials (of rounds up to ``through_round``, if given), best first."""
        scored = [t for t in self.trials.values() if t.scored and (through_round is None or t.round <= through_round)]
        return sorted(scored, key=_score, reverse=self.mode == "max")

    @property
    def best(self) -> Trial | None:
        ranked = self.ranked()
        return ranked[0] if ranked else None

    def records(self) -> list[dict[str, Any]]:
        """Every trial as a flat dict (``trial``: its number from 1; its params as ``param_NAME``), in
        trial order."""
        rows = []
        for trial in sorted(self.trials.values(), key=lambda t: t.number):
            row = {k: v for k, v in trial.to_record().items() if k != "params"}
            row.update({f"param_{name}": value for name, value in trial.params.items()})
            rows.append(row)
        return rows

    def to_dataframe(self) -> Any:
        """:meth:`records` as a pandas DataFrame when pandas is installed, else the records themselves."""
        try:
            import pandas
        except ImportError:
            return self.records()
        return pandas.DataFrame(self.records())

    def __len__(self) -> int:
        return len(self.trials)

    def __repr__(self) -> str:
        best = self.best
        return f"Study({len(self)} trials, best={None if best is None else (best.score, best.params)})"

    def _repr_html_(self) -> str:
        """The study in a notebook: its trials counted, the best ones as a table, and its figure."""
        from .display import study_html

        return study_html(self)
