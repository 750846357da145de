"""A claim of the course notes as data: the sentence, where the notes say it, the number that decides
it (one value per seed), the comparison it is judged by, and a verdict computed from the values.

    claim = Claim.judge("lr-decay/settles", "002 §5.2",
                        "A decaying learning rate settles where a constant one keeps wandering.",
                        "last-epoch training loss, constant ÷ linear decay", [3.1, 2.7, 4.0], above(1.5))
    claim.verdict      # "reproduced": every seed's value is above 1.5

The verdict: ``reproduced`` when the comparison holds for every seed, ``partly`` when it holds for
the mean of the seeds or for at least half of them, ``not reproduced`` otherwise. A NaN (a number
that could not be measured) never satisfies a comparison; an infinite value does when it lies on
the comparison's side (a run that diverged is infinitely worse). Nothing here is written by hand: a
claim that does not reproduce says so, with its numbers.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

VERDICTS = ("reproduced", "partly", "not reproduced")
OPERATORS = {">": lambda a, b: a > b, ">=": lambda a, b: a >= b, "<": lambda a, b: a < b, "<=": lambda a, b: a <= b}


@dataclass(frozen=True)
class Comparison:
    """``value OP threshold``: what a claim's values must satisfy."""

    op: str
    threshold: float

    def __post_init__(self) -> None:
        if self.op not in OPERATORS:
            raise ValueError(f"Comparison: op must be one of {', '.join(OPERATORS)}, got {self.op!r}")

    def holds(self, value: float) -> bool:
        return not math.isnan(value) and OPERATORS[self.op](value, self.threshold)

    def __str__(self) -> str:
        return f"{self.op} {self.threshold:g}"


def above(threshold: float) -> Comparison:
    return Comparison(">", threshold)


def below(threshold: float) -> Comparison:
    return Comparison("<", threshold)


def at_least(threshold: float) -> Comparison:
    return Comparison(">=", threshold)


def at_most(threshold: float) -> Comparison:
    return Comparison("<=", threshold)


def verdict(values: Sequence[float], comparison: Comparison) -> str:
    """The verdict of ``values`` (one per seed) under ``comparison`` (see the module's docstring)."""
    if not values:
        return "not reproduced"
    holding = sum(comparison.holds(value) for value in values)
    if holding == len(values):
        return "reproduced"
    if comparison.holds(mean_of(values)) or 2 * holding >= len(values):
        return "partly"
    return "not reproduced"


def mean_of(values: Sequence[float]) -> float:
    """The mean of ``values`` (NaN when one is NaN, infinite when one diverged to infinity)."""
    return math.fsum(values) / len(values) if values else math.nan


def spread_of(values: Sequence[float]) -> float:
    """The sample standard deviation of ``values`` (0 for one value)."""
    finite = [value for value in values if math.isfinite(value)]
    return statistics.stdev(finite) if len(finite) > 1 else 0.0


@dataclass(frozen=True)
class Claim:
    """One claim of the notes, measured. ``id``: "study/name"; ``note``: the seed note and section
    ("002 §5.2"); ``claim``: one English sentence; ``measure``: what number decides it; ``values``:
    one per seed; ``comparison``: what each value must satisfy; ``mean``, ``spread`` (standard
    deviation over the seeds), ``low``/``high`` and ``verdict`` follow from them."""

    id: str
    note: str
    claim: str
    measure: str
    values: tuple[float, ...]
    comparison: Comparison
    mean: float
    spread: float
    low: float
    high: float
    verdict: str

    @classmethod
    def judge(
        cls, id: str, note: str, claim: str, measure: str, values: Sequence[float], comparison: Comparison
    ) -> Claim:
        """The claim with its statistics and verdict computed from ``values``."""
        values = tuple(float(value) for value in values)
        if not values:
            raise ValueError(f"claim {id}: no values to judge")
        return cls(
            id,
            note,
            claim,
            measure,
            values,
            comparison,
            mean_of(values),
            spread_of(values),
            min(values),
            max(values),
            verdict(values, comparison),
        )

    def to_dict(self) -> dict[str, Any]:
        """The claim as JSON: its fields, the comparison as text, non-finite numbers as strings."""
        record = asdict(self)
        record["comparison"] = str(self.comparison)
        record["values"] = [_json_number(value) for value in self.values]
        for key in ("mean", "spread", "low", "high"):
            record[key] = _json_number(record[key])
        return record

    @classmethod
    def from_dict(cls, record: dict[str, Any]) -> Claim:
        """The claim a :meth:`to_dict` record holds (its verdict recomputed from its values)."""
        op, _, threshold = str(record["comparison"]).partition(" ")
        values = [float(value) for value in record["values"]]
        return cls.judge(
            record["id"], record["note"], record["claim"], record["measure"], values, Comparison(op, float(threshold))
        )

    def _repr_html_(self) -> str:
        """The claim in a notebook: a one-row table of its values and verdict."""
        from .display import claims_html

        return claims_html([self])

    def summary(self, digits: int = 3) -> str:
        """The key number as it is shown: the mean ± the spread over the seeds (the value alone for
        one); values that are not finite are counted ("inf in 3/3 seeds", "2.1 ± 0.3, inf in 1/3")."""
        if len(self.values) == 1:
            return format_number(self.mean, digits)
        finite = [value for value in self.values if math.isfinite(value)]
        unusual = sorted({str(value) for value in self.values if not math.isfinite(value)})
        counted = ", ".join(
            f"{kind} in {sum(str(v) == kind for v in self.values)}/{len(self.values)} seeds" for kind in unusual
        )
        if not finite:
            return counted
        centre = mean_of(finite)
        shown = f"{format_number(centre, digits)} ± {format_number(self.spread, digits)}"
        return f"{shown}, {counted}" if counted else shown


def _json_number(value: float) -> float | str:
    return value if math.isfinite(value) else str(value)


def format_number(value: float, digits: int = 3) -> str:
    """``value`` with ``digits`` significant digits, scientific when tiny or huge."""
    if not math.isfinite(value):
        return str(value)
    if value and (abs(value) < 1e-3 or abs(value) >= 1e5):
        return f"{value:.{digits - 1}e}"
    return f"{value:.{digits}g}"
