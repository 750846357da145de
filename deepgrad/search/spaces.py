"""Search spaces: where each hyperparameter is drawn from, and how its range narrows around the
best values found — the course notes' procedure: sample on a log scale (lr 1e-6…1e-2, weight
decay 1e-8…1e-4), train briefly, narrow the ranges around the best, repeat.

    space = {"lr": LogUniform(1e-6, 1e-2), "weight_decay": LogUniform(1e-8, 1e-4), "hidden": Choice([[64], [128]])}
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Mapping
from typing import Any, TypeAlias

import numpy as np

from ..errors import ConfigError

# A narrowed range reaches beyond the values it spans by MARGIN of their span on each side, and at least
# by MIN_MARGIN of the original range: the best trials rarely bracket the optimum, and a tight cluster
# must not shrink the range to nothing.
MARGIN = 0.25
MIN_MARGIN = 0.05


class Uniform:
    """A float drawn uniformly from [lo, hi]."""

    log = False
    number: type = numbers.Real

    def __init__(self, lo: float, hi: float, *, bounds: tuple[float, float] | None = None):
        name = type(self).__name__
        for value in (lo, hi):
            if isinstance(value, bool) or not isinstance(value, self.number) or not math.isfinite(value):
                kind = "integers" if self.number is numbers.Integral else "numbers"
                raise ConfigError(f"{name}: bounds must be finite {kind}, got lo={lo!r}, hi={hi!r}")
        if lo > hi or (lo == hi and bounds is None):  # a narrowed integer range may hold one value
            raise ConfigError(f"{name}: lo must be below hi, got lo={lo!r}, hi={hi!r}")
        if self.log and lo <= 0:
            raise ConfigError(f"{name}: a log-scale range needs positive bounds, got lo={lo!r}")
        self.lo, self.hi = self.cast(lo), self.cast(hi)
        self.bounds = bounds or (self.lo, self.hi)  # the original range: narrowing never leaves it

    def cast(self, value: float) -> float:
        return float(value)

    def to_scale(self, value: float) -> float:
        return math.log(value) if self.log else value

    def from_scale(self, value: float) -> float:
        return math.exp(value) if self.log else value

    def sample(self, rng: np.random.Generator) -> float:
        return self.cast(self.from_scale(rng.uniform(self.to_scale(self.lo), self.to_scale(self.hi))))

    def narrowed(self, values: Iterable[float]) -> Uniform:
        """The range spanned by ``values`` (on this space's scale), widened on each side by MARGIN of
        that span and at least MIN_MARGIN of the original range, clipped to the original range."""
        scaled = [self.to_scale(v) for v in values]
        low, high = min(scaled), max(scaled)
        original = self.to_scale(self.bounds[1]) - self.to_scale(self.bounds[0])
        margin = max(MARGIN * (high - low), MIN_MARGIN * original)
        lo = max(self.bounds[0], self.from_scale(low - margin))
        hi = min(self.bounds[1], self.from_scale(high + margin))
        return type(self)(*self.outward(lo, hi), bounds=self.bounds)

    def outward(self, lo: float, hi: float) -> tuple[float, float]:
        """A narrowed range's ends as this space's values, rounded outwards."""
        return lo, hi

    def __eq__(self, other: object) -> bool:
        return (
            type(self) is type(other)
            and isinstance(other, Uniform)
            and (self.lo, self.hi, self.bounds) == (other.lo, other.hi, other.bounds)
        )

    def __hash__(self) -> int:
        return hash((type(self), self.lo, self.hi, self.bounds))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.lo!r}, {self.hi!r})"


class LogUniform(Uniform):
    """A positive float whose logarithm is uniform on [log lo, log hi]: each decade equally likely."""

    log = True


class IntUniform(Uniform):
    """An integer drawn uniformly from lo…hi (both included)."""

    number = numbers.Integral

    def cast(self, value: float) -> int:
        return int(value)

    def sample(self, rng: np.random.Generator) -> int:
        lo, hi = int(self.lo), int(self.hi)  # whole numbers (cast)
        if self.log:  # log-uniform on [lo, hi + 1), rounded down
            value = math.exp(rng.uniform(math.log(lo), math.log(hi + 1)))
            return min(hi, max(lo, int(math.floor(value))))
        return int(rng.integers(lo, hi + 1))

    def outward(self, lo: float, hi: float) -> tuple[float, float]:
        return int(math.floor(lo)), int(math.ceil(hi))


class IntLogUniform(IntUniform):
    """A positive integer lo…hi whose logarithm is about uniform (as many 1–10 as 10–100)."""

    log = True


class Choice:
    """One of ``options`` (any JSON values: strings, numbers, lists), each equally likely. ``options``
    is a list or another ordered collection of them: a string is one value, never its letters, so
    ``Choice("abc")`` is an error (``Choice(["abc"])`` the one option)."""

    def __init__(self, options: Iterable[Any]):
        if isinstance(options, (str, bytes, Mapping, set, frozenset)) or not isinstance(options, Iterable):
            raise ConfigError(
                f"Choice: options must be a list of values, e.g. Choice(['relu', 'tanh']), got {options!r}"
            )
        options = list(options)
        if not options:
            raise ConfigError("Choice: needs at least one option")
        self.options = options

    def sample(self, rng: np.random.Generator) -> Any:
        return self.options[int(rng.integers(len(self.options)))]

    def narrowed(self, values: Iterable[Any]) -> Choice:
        """The options among ``values``, in their original order."""
        values = list(values)
        return Choice([option for option in self.options if option in values])

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Choice) and type(self) is type(other) and self.options == other.options

    def __repr__(self) -> str:
        return f"Choice({self.options!r})"


# What a search space maps each name to (LogUniform, IntUniform and IntLogUniform are Uniforms).
Dimension: TypeAlias = "Uniform | Choice"
SPACES = (Uniform, LogUniform, IntUniform, IntLogUniform, Choice)


def check_space(space: Mapping[str, Dimension]) -> dict[str, Dimension]:
    """``space`` as a dict of name -> space, or a ConfigError saying what is wrong."""
    if not isinstance(space, dict) or not space:
        raise ConfigError(f"search space: expected a non-empty dict of name -> space, got {space!r}")
    wrong = {name: value for name, value in space.items() if not isinstance(value, SPACES)}
    if wrong:
        raise ConfigError(
            f"search space: {sorted(wrong)} are not spaces (expected one of "
            f"{', '.join(s.__name__ for s in SPACES)}), got {wrong!r}"
        )
    return dict(space)


def sample(space: Mapping[str, Dimension], rng: np.random.Generator) -> dict[str, Any]:
    """One value from each space, in the order of the dict."""
    return {name: dimension.sample(rng) for name, dimension in space.items()}
