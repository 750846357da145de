"""The default random generator, the one piece of random state deepgrad keeps.

Everything random (initializers, dropout, data shuffling) takes an explicit
``generator=`` and falls back to this one, so ``manual_seed(s)`` makes a run
reproducible bit for bit.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

_default_generator = np.random.default_rng()


def manual_seed(seed: int) -> np.random.Generator:
    """Reseed the default generator; returns it."""
    global _default_generator
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"manual_seed: expected a non-negative integer seed, got {seed!r}")
    _default_generator = np.random.default_rng(int(seed))
    return _default_generator


def default_generator() -> np.random.Generator:
    """The generator used wherever no ``generator=`` is given."""
    return _default_generator


def get_rng_state() -> Mapping[str, Any]:
    """The default generator's state as a JSON-serializable dict."""
    return _default_generator.bit_generator.state


def set_rng_state(state: Mapping[str, Any]) -> None:
    """Restore a state returned by :func:`get_rng_state`."""
    _default_generator.bit_generator.state = state
