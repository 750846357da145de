"""Gradient checking: backprop's Jacobian against central differences.

    ∂f_j/∂x_i ≈ (f_j(x + ε e_i) − f_j(x − ε e_i)) / 2ε

computed in float64 for every element of every input that requires grad.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from . import backend
from .tensor import Tensor, no_grad


class GradcheckError(AssertionError):
    """Backprop and numerical differentiation disagree."""


def gradcheck(
    fn: Callable[..., Tensor], inputs: Tensor | Sequence[Any], eps: float = 1e-4, atol: float = 1e-5, rtol: float = 1e-3
) -> bool:
    """Check ``fn(*inputs)``'s full Jacobian with respect to each input that requires grad.

    ``inputs`` is a Tensor or a sequence of Tensors and constants. Floating
    tensors are replaced by float64 copies (the caller's tensors are not
    touched). Returns True, or raises :class:`GradcheckError` naming the input,
    the worst element and both derivatives.
    """
    if isinstance(inputs, Tensor):
        inputs = (inputs,)
    inputs = [_float64_copy(x) for x in inputs]
    checked = [i for i, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no input requires grad; nothing to check")

    output = fn(*inputs)
    if not isinstance(output, Tensor):
        raise TypeError(f"gradcheck: fn must return a Tensor, got {type(output).__name__}")
    with no_grad():
        reference = backend.to_host(fn(*inputs).data).astype(np.float64)
    if not np.array_equal(reference, backend.to_host(output.data), equal_nan=True):
        raise GradcheckError("gradcheck: fn is not deterministic (two calls gave different outputs)")

    for i in checked:
        analytic = _analytic_jacobian(output, inputs[i])
        numerical = _numerical_jacobian(fn, inputs, i, output.size, eps)
        _compare(analytic, numerical, i, inputs[i].shape, output.shape, atol, rtol)
    return True


def _float64_copy(x):
    if isinstance(x, Tensor) and x.dtype.kind == "f":
        copy = Tensor(x.data.astype(np.float64))
        copy.requires_grad = x.requires_grad
        return copy
    return x


def _analytic_jacobian(output, x):
    """Rows: output elements; columns: elements of x (one backward per output element)."""
    jacobian = np.zeros((output.size, x.size))
    if not output.requires_grad:
        return jacobian
    seed = np.zeros(output.size)
    for j in range(output.size):
        seed[j] = 1.0
        x.grad = None
        output.backward(seed.reshape(output.shape), retain_graph=True)
        seed[j] = 0.0
        if x.grad is not None:
            jacobian[j] = backend.to_host(x.grad).ravel()
    x.grad = None
    return jacobian


def _numerical_jacobian(fn, inputs, index, output_size, eps):
    x = inputs[index].data
    jacobian = np.zeros((output_size, x.size))
    with no_grad():
        # x's elements in row-major order, as .ravel() lays out the gradients, whatever x's memory layout
        for k, position in enumerate(np.ndindex(x.shape)):
            original = x[position]
            # np.array copies: fn may return a view of the input being perturbed.
            x[position] = original + eps
            plus = np.array(backend.to_host(fn(*inputs).data), dtype=np.float64).ravel()
            x[position] = original - eps
            minus = np.array(backend.to_host(fn(*inputs).data), dtype=np.float64).ravel()
            x[position] = original
            jacobian[:, k] = (plus - minus) / (2 * eps)
    return jacobian


def _compare(analytic, numerical, index, input_shape, output_shape, atol, rtol):
    excess = np.abs(analytic - numerical) - (atol + rtol * np.abs(numerical))
    excess = np.where(np.isnan(analytic) != np.isnan(numerical), np.inf, np.nan_to_num(excess))
    if not (excess > 0).any():
        return
    j, k = np.unravel_index(np.argmax(excess), excess.shape)
    out_at = np.unravel_index(j, output_shape) if output_shape else ()
    in_at = np.unravel_index(k, input_shape) if input_shape else ()
    raise GradcheckError(
        f"gradcheck: input {index} (shape {tuple(input_shape)}): d out{_index(out_at)} / d in{_index(in_at)} "
        f"is {analytic[j, k]:.8g} by backprop but {numerical[j, k]:.8g} numerically "
        f"({int((excess > 0).sum())} of {excess.size} Jacobian entries differ beyond atol + rtol·|numerical|)"
    )


def _index(at):
    return "[" + ", ".join(str(int(i)) for i in at) + "]"
