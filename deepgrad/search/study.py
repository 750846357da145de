"""A study: every trial of a search — its parameters, score, per-epoch scores, wall time, status,
round and error — kept in memory and, with a path, in a JSON-lines file, one finished trial per
line, appended (and flushed to disk) the moment the trial ends. Opening a study on an existing file
resumes it: the trials it holds are not run again; a torn last line (a crash while writing it) is
reported and dropped.
"""

import json
import math
import os
from dataclasses import asdict, dataclass, field

from .. import io
from ..errors import ConfigError


@dataclass
class Trial:
    """One sample of the space: ``number`` orders the whole study (round by round); ``status`` is
    "finished", "pruned" (stopped early by the scheduler, scored at its last epoch) or "failed"."""

    number: int
    round: int
    params: dict
    status: str = None
    score: float = None
    scores: list = field(default_factory=list)   # [epoch, score] pairs the objective reported
    seconds: float = None
    error: str = None

    @property
    def scored(self):
        return self.status in ("finished", "pruned") and self.score is not None and math.isfinite(self.score)


class Study:
    """The trials of a search (``trials``: number -> Trial) and the best one; ``mode`` "max" when a
    higher score is better (accuracy), "min" otherwise."""

    def __init__(self, path=None, mode="max"):
        if mode not in ("max", "min"):
            raise ConfigError(f"Study: mode must be 'max' or 'min', got {mode!r}")
        self.path, self.mode = path, mode
        self.trials = {}
        self.notes = []          # what resuming found (a torn line)
        self.interrupted = False
        if path and os.path.exists(path):
            self._load()

    def _load(self):
        with open(self.path) as handle:
            lines = handle.readlines()
        kept = []
        for number, line in enumerate(lines, 1):
            try:
                trial = Trial(**json.loads(line))
            except (json.JSONDecodeError, TypeError) as error:
                if number < len(lines):
                    raise ConfigError(f"study file {self.path}: line {number} is not a trial ({error}); "
                                     "only the last line may be torn") from None
                self.notes.append(f"study file {self.path}: its last line was torn (a crash while writing it); "
                                  "that trial is run again")
                continue
            self.trials[trial.number] = trial
            kept.append(line if line.endswith("\n") else line + "\n")
        if len(kept) < len(lines):
            io.write_text(self.path, "".join(kept))

    def record(self, trial):
        """Keep ``trial`` and append it to the study file at once."""
        self.trials[trial.number] = trial
        if self.path:
            with open(self.path, "a") as handle:
                handle.write(json.dumps(asdict(trial)) + "\n")
                handle.flush()
                os.fsync(handle.fileno())

    def ranked(self, through_round=None):
        """The scored trials (of rounds up to ``through_round``, if given), best first."""
        scored = [t for t in self.trials.values() if t.scored and (through_round is None or t.round <= through_round)]
        return sorted(scored, key=lambda t: t.score, reverse=self.mode == "max")

    @property
    def best(self):
        ranked = self.ranked()
        return ranked[0] if ranked else None

    def records(self):
        """Every trial as a flat dict (its params as ``param_NAME``), in trial order."""
        rows = []
        for trial in sorted(self.trials.values(), key=lambda t: t.number):
            row = {k: v for k, v in asdict(trial).items() if k != "params"}
            row.update({f"param_{name}": value for name, value in trial.params.items()})
            rows.append(row)
        return rows

    def to_dataframe(self):
        """:meth:`records` as a pandas DataFrame when pandas is installed, else the records themselves."""
        try:
            import pandas
        except ImportError:
            return self.records()
        return pandas.DataFrame(self.records())

    def __len__(self):
        return len(self.trials)

    def __repr__(self):
        best = self.best
        return f"Study({len(self)} trials, best={None if best is None else (best.score, best.params)})"
