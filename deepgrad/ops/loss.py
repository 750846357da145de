"""Losses. Softmax + cross-entropy is one fused op whose backward is
(softmax − target) / N, not a chain of generic ops.

Conventions follow PyTorch: ``reduction`` is "mean", "sum" or "none"; class
weights and label smoothing enter exactly as in ``torch.nn.functional``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .. import backend
from ..backend import Array
from ..tensor import Function, Tensor, TensorLike, is_grad_enabled
from .activation import log_softmax_array, stable_sigmoid
from .arguments import hyperparameter

REDUCTIONS = ("mean", "sum", "none")


def check_reduction(reduction: str, op: str) -> None:
    if reduction not in REDUCTIONS:
        raise ValueError(f"{op}: reduction must be one of {REDUCTIONS}, got {reduction!r}")


def _reduce(per_element, reduction, denominator):
    if reduction == "none":
        return per_element
    total = per_element.sum()
    if reduction == "sum":
        return total
    if (type(denominator) is int or isinstance(denominator, np.generic)) and denominator:  # no bool() of a device array
        return total / denominator
    with np.errstate(invalid="ignore", divide="ignore"):  # all targets ignored: NaN, quietly, as PyTorch
        return total / denominator


class SoftmaxCrossEntropy(Function):
    """loss_i = −Σ_c q_ic log softmax(x_i)_c;  dx_i = softmax(x_i) · Σ_c q_ic − q_i

    ``q`` holds each row's target weights: for class indices
    q_ic = (1−ε)·w_y·[c = y] + ε·w_c/C (zero rows for ignored targets); for
    class probabilities q_ic = w_c·((1−ε)·t_ic + ε/C). Logits arrive as rows
    (M, C): any spatial axes were moved in front of the class axis. Given the
    probabilities' rows as a second input (a target that requires grad) and
    ``dq_dt`` = (1−ε)·w, their gradient dt_ic = −dq_dt_c · log softmax(x_i)_c.
    """

    def __init__(self, target_weights, reduction, denominator, dq_dt=None):
        self.q, self.dq_dt = target_weights, dq_dt
        self.reduction, self.denominator = reduction, denominator

    def forward(self, logits, target_rows=None):
        self.log_probs = log_softmax_array(logits, axis=1)
        per_row = -(self.q * self.log_probs).sum(axis=1)
        return _reduce(per_row, self.reduction, self.denominator)

    def backward(self, grad):
        q = self.q
        dx = np.exp(self.log_probs)
        dx *= q.sum(axis=1, keepdims=True)
        dx -= q
        if self.reduction == "none":
            scale = grad[:, None]
        else:
            scale = grad / self.denominator if self.reduction == "mean" else grad
        dx *= scale
        if len(self.needs_input_grad) == 1:
            return (dx,)
        return dx, (-self.dq_dt * self.log_probs) * scale


class SoftmaxCrossEntropyIndices(Function):
    """The common case of :class:`SoftmaxCrossEntropy`: class indices y, no weights, no smoothing,
    nothing ignored.  loss_i = −log softmax(x_i)_{y_i};  dx_i = softmax(x_i) − onehot(y_i)"""

    def __init__(self, target, reduction):
        self.target, self.reduction = target, reduction

    def forward(self, logits):
        self.rows = backend.get_array_module(logits).arange(len(logits))
        self.log_probs = log_softmax_array(logits, axis=1)
        return _reduce(-self.log_probs[self.rows, self.target], self.reduction, len(logits))

    def backward(self, grad):
        dx = np.exp(self.log_probs)
        dx[self.rows, self.target] -= 1
        if self.reduction == "none":
            dx *= grad[:, None]
        else:
            dx *= grad / len(dx) if self.reduction == "mean" else grad
        return (dx,)


class DeviceSoftmaxCrossEntropyIndices(Function):
    """:class:`SoftmaxCrossEntropyIndices` for targets on a device, where testing their values on the
    host would make it wait for the device every step: targets equal to ``ignore_index`` count zero
    (and not in the mean's denominator), and an out-of-range target makes its row's loss and gradient
    NaN (so the mean's too) instead of raising, as CUDA cannot raise from inside a kernel.
    loss_i = −v_i · log softmax(x_i)_{y_i} with v_i = [y_i ≠ ignore_index] (NaN if y_i is out of range);
    dx_i = v_i · (softmax(x_i) − onehot(y_i)), the mean divided by Σ v_i."""

    def __init__(self, target, ignore_index, reduction):
        self.target, self.ignore_index, self.reduction = target, ignore_index, reduction

    def forward(self, logits):
        m, c = logits.shape
        target = self.target
        keep = target != self.ignore_index
        safe = np.where(keep, target, 0)
        valid = _in_class_range(safe, c)
        self.weight = weight = np.where(valid, keep.astype(logits.dtype), np.nan)
        self.rows, self.safe = backend.get_array_module(logits).arange(m), safe
        self.log_probs = log_softmax_array(logits, axis=1)
        per_row = -self.log_probs[self.rows, safe] * weight
        self.denominator = weight.sum()
        return _reduce(per_row, self.reduction, self.denominator)

    def backward(self, grad):
        dx = np.exp(self.log_probs)
        dx[self.rows, self.safe] -= 1
        dx *= self.weight[:, None]
        if self.reduction == "none":
            dx *= grad[:, None]
        else:
            dx *= grad / self.denominator if self.reduction == "mean" else grad
        return (dx,)


class NLLLoss(Function):
    """loss_i = −w_y · x_{i,y};  dx_{i,y} = −w_y · g_i (zero elsewhere)"""

    def __init__(self, rows, target, row_weights, reduction, denominator):
        self.rows, self.target, self.row_weights = rows, target, row_weights
        self.reduction, self.denominator = reduction, denominator

    def forward(self, x):
        self.x_like = x
        per_row = -self.row_weights * x[self.rows, self.target]
        return _reduce(per_row, self.reduction, self.denominator)

    def backward(self, grad):
        dx = np.zeros_like(self.x_like, dtype=grad.dtype)
        if self.reduction == "mean":
            grad = grad / self.denominator
        dx[self.rows, self.target] = -self.row_weights * grad
        return (dx,)


class MSELoss(Function):
    """loss = mean((a − b)²);  da = 2 (a − b) g / n,  db = −da"""

    def __init__(self, reduction):
        self.reduction = reduction

    def forward(self, a, b):
        self.diff = a - b
        return _reduce(self.diff * self.diff, self.reduction, self.diff.size)

    def backward(self, grad):
        scale = grad * (2 / self.diff.size) if self.reduction == "mean" else 2 * grad
        da = self.diff * scale
        need_a, need_b = self.needs_input_grad
        return (da if need_a else None, -da if need_b else None)


class BinaryCrossEntropy(Function):
    """loss = −w (y log p + (1 − y) log(1 − p)), logs clamped at −100 as PyTorch;
    dp = w (p − y) / max(p (1 − p), 1e-12)

    ``flag_outside``: p and y are on a device, where testing them on the host would wait for it:
    elements with p or y outside [0, 1] (or NaN) give NaN loss and gradient instead of an error."""

    def __init__(self, target, weight, reduction, flag_outside=False):
        self.target, self.weight, self.reduction = target, weight, reduction
        self.flag_outside = flag_outside

    def forward(self, p, target=None):
        y = self.target
        self.p = p
        with np.errstate(divide="ignore", invalid="ignore"):
            loss = -(y * np.maximum(np.log(p), -100) + (1 - y) * np.maximum(np.log1p(-p), -100))
        if self.weight is not None:
            loss = loss * self.weight
        if self.flag_outside:
            self.outside = ~((p >= 0) & (p <= 1) & (y >= 0) & (y <= 1))
            loss = np.where(self.outside, np.nan, loss)
        return _reduce(loss, self.reduction, loss.size)

    def backward(self, grad):
        p, y = self.p, self.target
        dp = (p - y) / np.maximum(p * (1 - p), 1e-12)
        scale = grad / p.size if self.reduction == "mean" else grad
        if self.weight is not None:
            scale = scale * self.weight
        if self.flag_outside:
            scale = np.where(self.outside, np.nan, scale)
        if len(self.needs_input_grad) == 1:
            return (dp * scale,)
        with np.errstate(divide="ignore"):  # p = 0 or 1: an infinite gradient, as PyTorch's
            dy = (np.log1p(-p) - np.log(p)) * scale  # −logit(p), without the forward's clamp (as PyTorch)
        return dp * scale, dy


class BinaryCrossEntropyWithLogits(Function):
    """loss = −w [pw·y log σ(x) + (1 − y) log(1 − σ(x))];  dx = w [σ(x)(pw·y + 1 − y) − pw·y];
    dy = w [log σ(−x) − pw·log σ(x)] (−w·x without pw), for a target that requires grad"""

    def __init__(self, target, weight, pos_weight, reduction):
        self.target, self.weight, self.pos_weight = target, weight, pos_weight
        self.reduction = reduction

    def forward(self, x, target=None):
        y, pw = self.target, self.pos_weight
        self.x = x
        self.neg_log_sigmoid = neg_log_sigmoid(x)
        positive_weight = 1 if pw is None else 1 + (pw - 1) * y
        loss = (1 - y) * x + positive_weight * self.neg_log_sigmoid
        if self.weight is not None:
            loss = loss * self.weight
        return _reduce(loss, self.reduction, loss.size)

    def backward(self, grad):
        x, y, pw = self.x, self.target, self.pos_weight
        sigma = stable_sigmoid(x)
        py = y if pw is None else pw * y
        dx = sigma * (py + 1 - y) - py
        scale = grad / x.size if self.reduction == "mean" else grad
        if self.weight is not None:
            scale = scale * self.weight
        if len(self.needs_input_grad) == 1:
            return (dx * scale,)
        dy = -x if pw is None else pw * self.neg_log_sigmoid - neg_log_sigmoid(-x)
        return dx * scale, dy * scale


def neg_log_sigmoid(x: Array) -> Array:
    """−log σ(x) = log(1 + e^−x) = max(−x, 0) + log1p(e^−|x|), stable for any x."""
    return np.maximum(-x, 0) + np.log1p(np.exp(-np.abs(x)))


# ----------------------------------------------------------------------------
# Public functions


def _classes_last(x: Tensor, op: str) -> tuple[Tensor, Callable[[Tensor], Tensor]]:
    """View logits (N, C, d1, ...) or (C,) as rows (M, C); return rows and a function undoing it."""
    data = x.data
    if data.ndim == 0:
        raise ValueError(f"{op}: expected logits of shape (N, C) or (N, C, d1, ...), got a 0-d tensor")
    if data.ndim == 1:
        return x.reshape(1, -1), lambda t: t.reshape(())
    if data.ndim == 2:
        return x, lambda t: t
    n, c, spatial = data.shape[0], data.shape[1], data.shape[2:]
    rows = x.permute(0, *range(2, data.ndim), 1).reshape(-1, c)
    return rows, lambda t: t.reshape((n,) + spatial)


def _data_on_device_of(value: TensorLike, like: Array) -> Array:
    """The array of ``value`` (a Tensor or array-like) on the device of the array ``like``."""
    data: Any = value.data if isinstance(value, Tensor) else value
    data = data if backend.is_array(data) else np.asarray(data)
    return backend.to_device_of(data, like)


def _float_data(value: TensorLike, like: Array, op: str, what: str) -> Array:
    """``value``'s data in ``like``'s dtype and on its device. A weight that requires grad is refused
    (no loss is differentiable with respect to its weights, as in PyTorch, which raises at backward):
    its gradient would silently stay None."""
    if what != "target" and isinstance(value, Tensor) and value.requires_grad and is_grad_enabled():
        raise TypeError(
            f"{op}: {what} requires grad, but the loss is not differentiable with respect to it; pass it detached"
        )
    data = _data_on_device_of(value, like)
    if data.dtype.kind != "f":
        raise TypeError(f"{op}: {what} must be floating, got dtype {data.dtype}")
    return data.astype(like.dtype, copy=False)


def cross_entropy(
    input: Tensor,
    target: TensorLike,
    weight: TensorLike | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> Tensor:
    """Softmax cross-entropy of logits ``input`` (N, C) or (N, C, d1, ...).

    ``target`` holds class indices (N,) / (N, d1, ...) or class probabilities
    of ``input``'s shape. The mean over class indices divides by the summed
    weights of the targets that are not ``ignore_index``, as PyTorch does.
    """
    op = "cross_entropy"
    check_reduction(reduction, op)
    if input.data.dtype.kind != "f":
        raise TypeError(f"{op}: logits must be floating, got dtype {input.dtype}")
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"{op}: label_smoothing must be in [0, 1], got {label_smoothing}")
    rows, restore = _classes_last(input, op)
    m, c = rows.data.shape
    dtype = input.data.dtype
    w = None if weight is None else _float_data(weight, input.data, op, "weight")
    if w is not None and w.shape != (c,):
        raise ValueError(f"{op}: weight must have shape ({c},) for {c} classes, got {w.shape}")
    target_data = _data_on_device_of(target, input.data)

    if target_data.dtype.kind == "f":
        if target_data.shape != input.data.shape:
            raise ValueError(
                f"{op}: class-probability targets must have the logits' shape {input.shape}, got "
                f"{target_data.shape}; class indices must be integers"
            )
        if ignore_index >= 0:  # a class that could be ignored: PyTorch refuses it too
            raise ValueError(f"{op}: ignore_index={ignore_index} is not supported for class-probability targets")
        probs = _classes_last(Tensor._wrap(target_data.astype(dtype, copy=False)), op)[0].data
        label_smoothing = hyperparameter(label_smoothing)  # a Python float: q in the logits' dtype
        q = (1 - label_smoothing) * probs + label_smoothing / c
        if w is not None:
            q = q * w
        target_rows = [_classes_last(t, op)[0] for t in _differentiable(target, input, op)]
        dq_dt = (1 - label_smoothing) * (1 if w is None else w)
        loss = SoftmaxCrossEntropy(q, reduction, m, dq_dt)(rows, *target_rows)
        return restore(loss) if reduction == "none" else loss
    if w is None and not label_smoothing and not isinstance(target_data, np.ndarray):  # on a device
        _check_index_target(target_data, input.data.shape, op)
        loss = DeviceSoftmaxCrossEntropyIndices(target_data.reshape(-1), ignore_index, reduction)(rows)
        return restore(loss) if reduction == "none" else loss
    if w is None and not label_smoothing and _all_real_classes(target_data, input.data.shape, c, ignore_index, op):
        loss = SoftmaxCrossEntropyIndices(target_data.reshape(-1), reduction)(rows)
        return restore(loss) if reduction == "none" else loss
    q, denominator = _index_target_weights(
        target_data, input.data.shape, m, c, w, ignore_index, hyperparameter(label_smoothing), dtype, op
    )
    loss = SoftmaxCrossEntropy(q, reduction, denominator)(rows)
    return restore(loss) if reduction == "none" else loss


def _differentiable(target: TensorLike, input: Tensor, op: str) -> list[Tensor]:
    """[target] when it is a Tensor that requires grad (its gradient is then computed, as PyTorch
    does), else []. Such a target must have the input's dtype, as PyTorch requires."""
    if not (isinstance(target, Tensor) and target.requires_grad):
        return []
    if target.dtype != input.dtype:
        raise TypeError(
            f"{op}: a target that requires grad must have the input's dtype {input.dtype}, got {target.dtype}"
        )
    return [target]


def _check_index_target(target, input_shape, op):
    if target.dtype.kind not in "iu":
        raise TypeError(f"{op}: class-index targets must be integers, got dtype {target.dtype}")
    expected = (input_shape[0],) + input_shape[2:] if len(input_shape) > 1 else ()
    if target.shape != expected:
        raise ValueError(f"{op}: target shape {target.shape} does not match logits {input_shape}: expected {expected}")


def _all_real_classes(target, input_shape, c, ignore_index, op):
    """Whether every class index is in 0..c−1 and none can be ``ignore_index`` (checks the target)."""
    _check_index_target(target, input_shape, op)
    return target.size > 0 and not 0 <= ignore_index < c and target.min() >= 0 and target.max() < c


def _in_class_range(index, c):
    """0 <= index < c elementwise, as one comparison: a negative int64 read as unsigned is huge."""
    return index.astype(np.int64, copy=False).view(np.uint64) < c


def _index_target_weights(target, input_shape, m, c, w, ignore_index, smoothing, dtype, op):
    """q (M, C), each row's target weights (see SoftmaxCrossEntropy), and their sum. On the host a
    target out of range raises IndexError; on a device, where the test would make the host wait for
    the device, its row's weights are NaN (so are the loss and the gradient) instead."""
    _check_index_target(target, input_shape, op)
    target = target.reshape(-1)
    keep = target != ignore_index
    on_host = isinstance(target, np.ndarray)
    if on_host:
        bad = keep & ((target < 0) | (target >= c))
        if bad.any():
            raise IndexError(
                f"{op}: target class {int(target[bad][0])} is out of range for {c} classes "
                f"(expected 0..{c - 1} or ignore_index={ignore_index})"
            )
    safe_target = np.where(keep, target, 0)
    rows = backend.get_array_module(target).arange(m)
    target_w = np.ones_like(target, dtype=dtype) if w is None else w[safe_target]
    target_w = target_w * keep
    if not on_host:
        target_w = np.where(_in_class_range(safe_target, c), target_w, np.nan)
    q = np.zeros_like(target, dtype=dtype, shape=(m, c))
    q[rows, safe_target] = (1 - smoothing) * target_w
    if smoothing:
        q += (smoothing / c) * (np.ones_like(target, dtype=dtype, shape=(c,)) if w is None else w) * keep[:, None]
    return q, target_w.sum()


def nll_loss(
    input: Tensor,
    target: TensorLike,
    weight: TensorLike | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
) -> Tensor:
    """Negative log-likelihood of log-probabilities ``input`` (N, C) or (N, C, d1, ...) at class
    indices ``target`` (N,) / (N, d1, ...); the mean divides by the summed target weights, as PyTorch."""
    op = "nll_loss"
    check_reduction(reduction, op)
    if input.data.dtype.kind != "f":
        raise TypeError(f"{op}: log-probabilities must be floating, got dtype {input.dtype}")
    rows, restore = _classes_last(input, op)
    m, c = rows.data.shape
    dtype = input.data.dtype
    w = None if weight is None else _float_data(weight, input.data, op, "weight")
    target_data = _data_on_device_of(target, input.data)
    q, denominator = _index_target_weights(target_data, input.data.shape, m, c, w, ignore_index, 0.0, dtype, op)
    target_rows = target_data.reshape(-1)
    safe_target = np.where(target_rows != ignore_index, target_rows, 0)
    row_weights = q.sum(axis=1)  # without smoothing q holds each row's target weight (0 if ignored)
    loss = NLLLoss(backend.get_array_module(target_rows).arange(m), safe_target, row_weights, reduction, denominator)(
        rows
    )
    return restore(loss) if reduction == "none" else loss


def _same_shape(a_shape: tuple[int, ...], b_shape: tuple[int, ...], op: str) -> None:
    if a_shape != b_shape:
        raise ValueError(
            f"{op}: input shape {a_shape} and target shape {b_shape} differ; expected equal shapes "
            "(broadcasting a loss silently is a classic bug)"
        )


def mse_loss(input: Tensor, target: TensorLike, reduction: str = "mean") -> Tensor:
    """Mean squared error (a − b)², averaged (or summed) over all elements."""
    check_reduction(reduction, "mse_loss")
    if not isinstance(target, Tensor):
        target = Tensor._wrap(_data_on_device_of(Tensor(target, dtype=input.dtype), input.data))
    _same_shape(input.shape, target.shape, "mse_loss")
    return MSELoss(reduction)(input, target)


def binary_cross_entropy(
    input: Tensor, target: TensorLike, weight: TensorLike | None = None, reduction: str = "mean"
) -> Tensor:
    """BCE of probabilities ``input`` in [0, 1] against targets of the same shape."""
    op = "binary_cross_entropy"
    check_reduction(reduction, op)
    y = _float_data(target, input.data, op, "target")
    _same_shape(input.shape, y.shape, op)
    p = input.data
    on_host = isinstance(p, np.ndarray)
    if on_host and not ((p >= 0) & (p <= 1)).all():  # NaN fails too
        raise ValueError(f"{op}: input must hold probabilities in [0, 1]; use binary_cross_entropy_with_logits")
    if on_host and not ((y >= 0) & (y <= 1)).all():  # as PyTorch: a target outside [0, 1] (or NaN) makes no sense
        raise ValueError(f"{op}: every target must be in [0, 1], got values from {float(y.min())} to {float(y.max())}")
    w = None if weight is None else _float_data(weight, p, op, "weight")
    # On a device the ranges are not read back (a wait every step): elements outside them give NaN.
    return BinaryCrossEntropy(y, w, reduction, flag_outside=not on_host)(input, *_differentiable(target, input, op))


def binary_cross_entropy_with_logits(
    input: Tensor,
    target: TensorLike,
    weight: TensorLike | None = None,
    reduction: str = "mean",
    pos_weight: TensorLike | None = None,
) -> Tensor:
    """Sigmoid + BCE fused and stable for large logits."""
    op = "binary_cross_entropy_with_logits"
    check_reduction(reduction, op)
    y = _float_data(target, input.data, op, "target")
    _same_shape(input.shape, y.shape, op)
    w = None if weight is None else _float_data(weight, input.data, op, "weight")
    pw = None if pos_weight is None else _float_data(pos_weight, input.data, op, "pos_weight")
    return BinaryCrossEntropyWithLogits(y, w, pw, reduction)(input, *_differentiable(target, input, op))
