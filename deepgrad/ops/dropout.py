"""Dropout: zero each element with probability p.

Inverted dropout (PyTorch's): training multiplies kept elements by 1/(1−p),
evaluation is the identity. The classic variant (``scale_at_test=True``, as in
the original paper and the seed notes) keeps elements unscaled in training and
multiplies by (1−p) at test time; both have the same expected output.

Where masks are drawn:

* On the CPU, from a NumPy generator (``generator``, else the default one).
* On a GPU, by default on the device (cuRAND through CuPy), from a seed that each
  call draws from the default generator: no host draw of the whole mask and no
  copy of it, and still one run per ``dg.manual_seed`` (a checkpoint that keeps
  the default generator's state resumes with the same masks). These masks differ
  from the CPU's.
* Identical masks on every device, bit for bit: draw them on the host and move
  them, by passing a NumPy ``generator=`` (to ``F.dropout`` or ``nn.Dropout``),
  or for every dropout at once with :class:`host_masks` (``with host_masks(): ...``,
  or ``host_masks(True)`` from then on), which takes the default generator.
"""

from __future__ import annotations

import numbers
from typing import Literal

import numpy as np

from .. import backend
from ..random import default_generator
from ..tensor import Function, Tensor


class Dropout(Function):
    """out = x · m with m = keep/(1−p) (or keep);  dx = g · m"""

    def __init__(self, mask):
        self.mask = mask

    def forward(self, x):
        return x * self.mask

    def backward(self, grad):
        return (grad * self.mask,)


class _MaskMode:
    host = False  # draw masks on the host for tensors on every device (host_masks)


class host_masks:
    """Draw dropout masks on the host for tensors on every device, from the default generator (where
    no ``generator`` is given), and move them there: a seed then gives the same masks on a GPU as on
    the CPU, at the cost of drawing the whole mask on the host and copying it each time. As a call,
    from then on (``host_masks(False)`` goes back to device masks); as a ``with`` block, inside it."""

    def __init__(self, enabled: bool = True) -> None:
        self._previous = _MaskMode.host
        _MaskMode.host = bool(enabled)

    def __enter__(self) -> host_masks:
        return self

    def __exit__(self, *exc: object) -> Literal[False]:
        _MaskMode.host = self._previous
        return False


def host_masks_enabled() -> bool:
    """Whether dropout draws its masks on the host for tensors on every device (:class:`host_masks`)."""
    return _MaskMode.host


def check_probability(p: float, op: str) -> None:
    if isinstance(p, bool) or not isinstance(p, numbers.Real) or not 0.0 <= p <= 1.0:
        raise ValueError(f"{op}: dropout probability must be in [0, 1], got {p!r}")


_SEED_BOUND = 2**63  # the device generator's seed: one non-negative int64 drawn from the default generator


def dropout(
    x: Tensor,
    p: float = 0.5,
    training: bool = True,
    scale_at_test: bool = False,
    generator: np.random.Generator | None = None,
) -> Tensor:
    """Zero elements with probability ``p``. The mask comes from ``generator`` (a NumPy generator:
    drawn on the host, the same on every device) or, without one, from the default generator on the
    CPU and from a device generator seeded by it on a GPU (see the module, and :class:`host_masks`)."""
    check_probability(p, "dropout")
    p = float(p)  # a Python float meets the arrays: computed in x's dtype on every device
    if not training:
        return x * (1.0 - p) if scale_at_test and p else x
    if p == 0:
        return x
    data = x.data
    dtype = data.dtype
    if p == 1:
        return Dropout(np.zeros_like(data))(x)
    draw_dtype = dtype if dtype.kind == "f" else np.float64
    scale = 1.0 if scale_at_test else 1.0 / (1.0 - p)
    if not isinstance(data, np.ndarray) and generator is None and not _MaskMode.host:
        uniform = backend.device_of(data).uniform
        if uniform is not None:  # drawn on the device, from a seed the default generator gives
            seed = int(default_generator().integers(_SEED_BOUND))
            return Dropout((uniform(seed, data.shape, draw_dtype) >= p) * dtype.type(scale))(x)
    rng = generator or default_generator()
    keep = rng.random(x.shape, dtype=draw_dtype) >= p
    mask = keep * np.asarray(scale, dtype=dtype)
    return Dropout(backend.to_device_of(mask, data))(x)
