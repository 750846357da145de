"""Every op on a device gives the CPU's results, and keeps them on the device.

Approach. ``CATALOGUE`` maps a case name to ``(fn, inputs)``: ``fn`` takes tensors and
returns one tensor; each input is an :class:`In`, a maker of a float64 (or int/bool)
array drawn away from the op's kinks as in test_gradcheck_ops. Each case runs twice on
the same arrays, once on the CPU and once on the device under test (the ``device``
fixture of conftest.py), and is backpropagated with the same upstream gradient. Then:

1. the device output lives on the device (``backend.device_of``), its array being the
   device's array type;
2. the forward values and every input's ``.grad`` equal the CPU's: bit for bit on the
   strict "fake" device (tests/fake_device.py runs NumPy's own code), to rounding on
   "cuda" (rtol 1e-10, atol 1e-12);
3. the gradients live on the device too.

:func:`same` checks all three for one array. Host constants used inside a case's ``fn``
(Python and NumPy scalars, NumPy arrays: index arrays, targets, class weights) are the
same objects in both runs; on the device they must be moved there automatically, and
the fake device raises TypeError wherever one is mixed into a device computation
instead. Int and bool inputs become tensors on the device (targets, indices, masks).

Further tests cover what the catalogue cannot: batch norm's running statistics, dropout
under a seed (host masks equal to the CPU's; device masks, the default there), ``dg.gradcheck``
on device tensors, tensors of two devices meeting, the tensor basics (creation, ``.to``,
conversions, repr, errors), raw device arrays where NumPy would convert them (CuPy refuses
``np.asarray``), losses that check their targets on the device (NaN, not an error, and no
read back), and NumPy hyperparameters computing in the data's dtype. The stand-in itself
(what it refuses, wraps and records, like CuPy) is pinned in test_device_stand_in.py.
"""

import numpy as np
import pytest
from helpers import (
    away_from_bounds,
    away_from_zero,
    class_targets,
    class_weights,
    distinct,
    positive,
    probability_targets,
    randn,
    rng,
    untied_pair,
)

import deepgrad as dg
import deepgrad.functional as F
from deepgrad import backend
from deepgrad.ops.dropout import host_masks

pytestmark = pytest.mark.usefixtures("numpy_paths_on_the_cpu")


def same(a_cpu, b_dev, device):
    """``b_dev`` lives on ``device`` and equals the host array ``a_cpu``: exactly on the fake
    device (and for integer and bool results), to rounding on CUDA."""
    target = backend.get_device(device)
    assert backend.device_of(b_dev) is target, f"on {backend.device_of(b_dev)}, expected {device}"
    assert isinstance(b_dev, target.array_type), type(b_dev)
    assert type(a_cpu) is np.ndarray, f"the CPU reference is a {type(a_cpu)}, not a host array"
    b = backend.to_host(b_dev)
    assert type(b) is np.ndarray
    assert (b.shape, b.dtype) == (a_cpu.shape, a_cpu.dtype), ((b.shape, b.dtype), (a_cpu.shape, a_cpu.dtype))
    if device == "fake" or a_cpu.dtype.kind not in "fc":
        np.testing.assert_array_equal(b, a_cpu)
    else:
        np.testing.assert_allclose(b, a_cpu, rtol=1e-10, atol=1e-12)


# ----------------------------------------------------------------------------
# Inputs


class In:
    """One input of a case: ``make(seed, shape)`` gives its array; floating inputs
    require grad unless ``grad=False`` (targets, class weights)."""

    def __init__(self, make, shape, grad=True):
        self.make, self.shape, self.grad = make, shape, grad

    def array(self, seed):
        return np.asarray(self.make(seed, self.shape))


def R(*shape):
    return In(randn, shape)


def P(*shape):
    """Positive: for log, sqrt, fractional powers, bases of a tensor power."""
    return In(positive, shape)


def Z(*shape):
    """Away from zero: for abs, divisors, negative powers."""
    return In(away_from_zero, shape)


def D(*shape):
    """Distinct values: no ties for max/min/argmax and max pooling."""
    return In(distinct, shape)


def B(*shape):
    """Away from clamp's bounds ±0.5."""
    return In(away_from_bounds, shape)


def ties(*shape):
    """Small integers as floats: many ties, where max/min share the gradient."""
    return In(lambda seed, s: rng(seed).integers(-2, 3, s).astype(np.float64), shape)


def wide(*shape):
    """Normal values times 4: some beyond softplus's threshold (β·x > 20 for β = 10)."""
    return In(lambda seed, s: 4 * randn(seed, s), shape)


def probabilities(*shape):
    """Inputs of binary cross-entropy, inside (0.05, 0.95)."""
    return In(lambda seed, s: rng(seed).uniform(0.05, 0.95, s), shape)


def soft_labels(*shape):
    return In(lambda seed, s: rng(seed).uniform(0.0, 1.0, s), shape, grad=False)


def pair(k, shape_a, shape_b):
    """Operand ``k`` of two arrays whose broadcast elements never tie (maximum, minimum)."""
    return In(lambda seed, s: untied_pair(3, shape_a, shape_b)[k], (shape_a, shape_b)[k])


def mask(*shape):
    return In(lambda seed, s: rng(seed).random(s) < 0.5, shape)


def index(size, *shape):
    """Integer indices into an axis of ``size`` (negative ones too, repeats likely)."""
    return In(lambda seed, s: rng(seed).integers(-size, size, s), shape)


def targets(*logits_shape, ignore_index=None):
    """Class indices for logits of ``logits_shape`` (an int tensor on the device)."""
    return In(lambda seed, s: class_targets(seed, s, ignore_index), logits_shape)


def probs(*logits_shape):
    """Class-probability targets of the logits' shape (no gradient)."""
    return In(probability_targets, logits_shape, grad=False)


def weights(*logits_shape):
    """Positive per-class weights (no gradient)."""
    return In(class_weights, logits_shape, grad=False)


# Host NumPy constants mixed into device computations: the ops must move them to the device.
HOST_23 = randn(101, (2, 3))
HOST_3 = randn(102, (3,))
HOST_3_NONZERO = away_from_zero(103, (3,))
HOST_3_POSITIVE = positive(104, (3,))
HOST_34 = randn(105, (3, 4))
HOST_42 = randn(106, (4, 2))
HOST_MASK_23 = rng(107).random((2, 3)) < 0.5
HOST_ROW_MASK = np.array([True, False, True, True])
HOST_ROWS = np.array([1, 0, -1, 1])  # repeats: the gradients must add up
HOST_COLS = np.array([[0], [2]])  # broadcasts against HOST_ROWS
HOST_TARGETS = class_targets(108, (4, 3))
HOST_TARGETS_IGNORED = class_targets(109, (6, 3), ignore_index=-100)
HOST_SPATIAL_TARGETS = class_targets(110, (2, 3, 2, 2))
HOST_WEIGHTS = class_weights(111, (4, 3))
HOST_PROBS = probability_targets(112, (4, 3))
HOST_LABELS = rng(113).uniform(0.0, 1.0, (2, 3))
HOST_POS_WEIGHT = positive(114, (3,))


# ----------------------------------------------------------------------------
# The catalogue: name -> (fn, inputs)

CATALOGUE = {
    # -- binary arithmetic, broadcasting
    "a + b": (lambda a, b: a + b, [R(3, 1), R(4)]),
    "a - b": (lambda a, b: a - b, [R(2, 3), R(3)]),
    "a * b": (lambda a, b: a * b, [R(2, 3, 1), R(1, 4)]),
    "a / b": (lambda a, b: a / b, [R(3, 1), Z(4)]),
    "a ** b": (lambda a, b: a**b, [P(2, 1), R(3)]),
    "a.pow(b)": (lambda a, b: a.pow(b), [P(3), R(2, 3)]),
    "dg.add": (dg.add, [R(2, 3), R(2, 3)]),
    "dg.sub": (dg.sub, [R(), R(2, 3)]),
    "dg.mul": (dg.mul, [R(4, 1), R(3)]),
    "dg.div": (dg.div, [R(2, 3), Z(2, 1)]),
    "dg.pow": (dg.pow, [P(2, 3), R(1, 3)]),
    "dg.maximum": (dg.maximum, [pair(0, (3, 1), (4,)), pair(1, (3, 1), (4,))]),
    "dg.minimum": (dg.minimum, [pair(0, (2, 3), (3,)), pair(1, (2, 3), (3,))]),
    "a.maximum(b)": (lambda a, b: a.maximum(b), [pair(0, (3,), (2, 3)), pair(1, (3,), (2, 3))]),
    "a.minimum(b)": (lambda a, b: a.minimum(b), [pair(0, (4,), (4,)), pair(1, (4,), (4,))]),
    "dg.maximum ties": (dg.maximum, [ties(3, 4), ties(4)]),
    "dg.minimum ties": (dg.minimum, [ties(3, 4), ties(3, 1)]),
    "a @ b": (lambda a, b: a @ b, [R(2, 3), R(3, 4)]),
    "a @ b batched": (lambda a, b: a @ b, [R(2, 1, 3, 4), R(5, 4, 2)]),
    "vector @ vector": (lambda a, b: a @ b, [R(4), R(4)]),
    "vector @ matrix": (lambda a, b: a @ b, [R(3), R(3, 2)]),
    "matrix @ vector": (lambda a, b: a @ b, [R(2, 3), R(3)]),
    "batch @ vector": (lambda a, b: a @ b, [R(4, 2, 3), R(3)]),
    "dg.matmul": (
        dg.matmul,
        [
            R(
                3,
            ),
            R(2, 3, 2),
        ],
    ),
    "a.matmul(b)": (lambda a, b: a.matmul(b), [R(2, 3), R(3, 3)]),
    # -- where
    "dg.where device mask": (lambda c, a, b: dg.where(c, a, b), [mask(2, 3), R(2, 1), R(3)]),
    "dg.where host mask": (lambda a, b: dg.where(HOST_MASK_23, a, b), [R(2, 3), R(3)]),
    "dg.where scalar b": (lambda c, a: dg.where(c, a, 0.0), [mask(2, 3), R(2, 3)]),
    "dg.where scalar a": (lambda c, b: dg.where(c, 1.5, b), [mask(3), R(2, 3)]),
    "dg.where host a": (lambda b: dg.where(HOST_MASK_23, HOST_3, b), [R(2, 1)]),
    # -- powers with constant exponents and bases
    "x ** 2": (lambda x: x**2, [R(2, 3)]),
    "x ** 3": (lambda x: x**3, [R(2, 3)]),
    "x ** 0": (lambda x: x**0, [R(2, 3)]),
    "x ** -1": (lambda x: x**-1, [Z(2, 3)]),
    "x ** -2": (lambda x: x**-2, [Z(2, 3)]),
    "x ** 0.5": (lambda x: x**0.5, [P(2, 3)]),
    "x ** -2.5": (lambda x: x**-2.5, [P(2, 3)]),
    "x ** np.float64": (lambda x: x ** np.float64(1.5), [P(2, 3)]),
    "x ** 0-d array": (lambda x: x ** np.array(2.5), [P(2, 3)]),
    "dg.pow(x, 1.5)": (lambda x: dg.pow(x, 1.5), [P(3)]),
    "x.pow(3)": (lambda x: x.pow(3), [R(3)]),
    "2.0 ** x": (lambda x: 2.0**x, [R(2, 3)]),
    "e ** x": (lambda x: np.e**x, [R(2, 3)]),
    "3 ** x": (lambda x: 3**x, [R(2, 3)]),
    "host ** x": (lambda x: HOST_3_POSITIVE**x, [R(2, 3)]),
    "x ** host": (lambda x: x**HOST_3, [P(2, 3)]),
    # -- Python scalars, NumPy scalars and host NumPy arrays on either side
    "2.0 * x": (lambda x: 2.0 * x, [R(2, 3)]),
    "x * 2.0": (lambda x: x * 2.0, [R(2, 3)]),
    "3 + x": (lambda x: 3 + x, [R(2, 3)]),
    "1 - x": (lambda x: 1 - x, [R(2, 3)]),
    "x - 1": (lambda x: x - 1, [R(2, 3)]),
    "2.0 / x": (lambda x: 2.0 / x, [Z(2, 3)]),
    "x / 4": (lambda x: x / 4, [R(2, 3)]),
    "np.float64 * x": (lambda x: np.float64(0.5) * x, [R(2, 3)]),
    "x * np.float32": (lambda x: x * np.float32(3.0), [R(2, 3)]),
    "x + np.int64": (lambda x: x + np.int64(2), [R(2, 3)]),
    "x * 0-d array": (lambda x: x * np.array(0.5), [R(2, 3)]),
    "x - host": (lambda x: x - HOST_3, [R(2, 3)]),
    "host - x": (lambda x: HOST_3 - x, [R(2, 3)]),
    "host * x": (lambda x: HOST_23 * x, [R(3)]),
    "x + host": (lambda x: x + HOST_23, [R(2, 1)]),
    "host + x": (lambda x: HOST_3 + x, [R(4, 1)]),
    "host / x": (lambda x: HOST_3 / x, [Z(2, 3)]),
    "x / host": (lambda x: x / HOST_3_NONZERO, [R(2, 3)]),
    "x @ host": (lambda x: x @ HOST_34, [R(2, 3)]),
    "host @ x": (lambda x: HOST_42 @ x, [R(2, 3)]),
    "dg.add(host, x)": (lambda x: dg.add(HOST_3, x), [R(2, 3)]),
    "dg.mul(x, 2.0)": (lambda x: dg.mul(x, 2.0), [R(2, 3)]),
    "dg.maximum(x, 0.25)": (lambda x: dg.maximum(x, 0.25), [Z(2, 3)]),
    "dg.minimum(0.25, x)": (lambda x: dg.minimum(0.25, x), [Z(2, 3)]),
    "dg.maximum(x, host)": (lambda x: dg.maximum(x, HOST_3 + 0.05), [ties(2, 3)]),
    # -- unary
    "exp": (lambda x: x.exp(), [R(2, 3)]),
    "dg.exp": (dg.exp, [R(3)]),
    "log": (lambda x: x.log(), [P(2, 3)]),
    "dg.log": (dg.log, [P(3)]),
    "sqrt": (lambda x: x.sqrt(), [P(2, 3)]),
    "dg.sqrt": (dg.sqrt, [P(3)]),
    "abs": (lambda x: x.abs(), [Z(2, 3)]),
    "abs()": (abs, [Z(2, 3)]),
    "dg.abs": (dg.abs, [Z(3)]),
    "-x": (lambda x: -x, [R(2, 3)]),
    "dg.neg": (dg.neg, [R(3)]),
    "clamp": (lambda x: x.clamp(-0.5, 0.5), [B(3, 4)]),
    "clamp min": (lambda x: x.clamp(min=-0.5), [B(3, 4)]),
    "clamp max": (lambda x: dg.clamp(x, max=0.5), [B(3, 4)]),
    "clamp np.float64 bounds": (lambda x: x.clamp(np.float64(-0.5), np.float64(0.5)), [B(3, 4)]),
    "clamp Tensor bounds": (lambda x, low, high: x.clamp(low, high), [B(3, 4), R(4), R(3, 1)]),
    "dg.clip": (lambda x: dg.clip(x, -0.5, 0.5), [B(3, 4)]),
    "clip": (lambda x: x.clip(-0.5, 0.5), [B(3, 4)]),
    # -- reductions
    "sum": (lambda x: x.sum(), [R(2, 3, 4)]),
    "sum dim": (lambda x: x.sum(dim=1), [R(2, 3, 4)]),
    "sum dims keepdim": (lambda x: x.sum(dim=(0, 2), keepdim=True), [R(2, 3, 4)]),
    "dg.sum axis keepdims": (lambda x: dg.sum(x, axis=-1, keepdims=True), [R(2, 3, 4)]),
    "sum of 0-d": (lambda x: x.sum(), [R()]),
    "mean": (lambda x: x.mean(), [R(2, 3, 4)]),
    "mean dim": (lambda x: x.mean(dim=-1), [R(2, 3, 4)]),
    "dg.mean dims keepdim": (lambda x: dg.mean(x, (0, 1), True), [R(2, 3, 4)]),
    "max": (lambda x: x.max(), [D(2, 3, 4)]),
    "max dim": (lambda x: x.max(dim=1), [D(2, 3, 4)]),
    "dg.max axis keepdims": (lambda x: dg.max(x, axis=(0, 2), keepdims=True), [D(2, 3, 4)]),
    "min": (lambda x: x.min(), [D(2, 3)]),
    "min dim keepdim": (lambda x: x.min(dim=-1, keepdim=True), [D(2, 3, 4)]),
    "dg.min": (lambda x: dg.min(x, 0), [D(3, 2)]),
    "max ties": (lambda x: x.max(dim=0), [ties(5, 4)]),
    "min ties": (lambda x: x.min(), [ties(3, 4)]),
    "var": (lambda x: x.var(), [D(2, 3, 4)]),
    "var dim correction=0": (lambda x: x.var(dim=1, correction=0), [D(2, 3, 4)]),
    "var correction=2 keepdim": (lambda x: x.var(dim=(0, 2), keepdim=True, correction=2), [D(2, 3, 4)]),
    "dg.var unbiased=False": (lambda x: dg.var(x, -1, unbiased=False), [D(2, 3, 4)]),
    "std": (lambda x: x.std(), [D(2, 3, 4)]),
    "std dim": (lambda x: x.std(dim=0), [D(3, 4)]),
    "dg.std correction=0 axis": (lambda x: dg.std(x, axis=1, keepdims=True, correction=0), [D(2, 3, 4)]),
    # -- not differentiable
    "argmax": (lambda x: x.argmax(), [D(2, 3, 4)]),
    "argmax dim keepdim": (lambda x: x.argmax(dim=1, keepdim=True), [D(2, 3, 4)]),
    "argmin dim": (lambda x: x.argmin(dim=-1), [D(2, 3, 4)]),
    "dg.argmax": (lambda x: dg.argmax(x, 0), [D(4, 3)]),
    "dg.argmin": (lambda x: dg.argmin(x), [D(4, 3)]),
    "a < b": (lambda a, b: a < b, [R(2, 3), R(3)]),
    "a <= b": (lambda a, b: a <= b, [ties(2, 3), ties(2, 3)]),
    "a > b": (lambda a, b: a > b, [R(3, 1), R(4)]),
    "a >= b": (lambda a, b: a >= b, [ties(2, 3), ties(3)]),
    "a == b": (lambda a, b: a == b, [ties(2, 3), ties(2, 3)]),
    "a != b": (lambda a, b: a != b, [ties(2, 3), ties(2, 3)]),
    "x > 0.0": (lambda x: x > 0.0, [R(2, 3)]),
    "x == np.float64": (lambda x: x == np.float64(1.0), [ties(2, 3)]),
    "x < host": (lambda x: x < HOST_3, [R(2, 3)]),
    "x == host": (lambda x: x == np.round(HOST_23), [ties(2, 3)]),
    "host >= x": (lambda x: HOST_23 >= x, [R(2, 3)]),
    "F.hardmax": (lambda x: F.hardmax(x), [D(3, 4)]),
    "F.hardmax dim 0": (lambda x: F.hardmax(x, dim=0), [D(3, 4)]),
    "F.hardmax 0-d": (lambda x: F.hardmax(x), [R()]),
    # -- shapes
    "reshape": (lambda x: x.reshape(3, 2), [R(2, 3)]),
    "reshape -1": (lambda x: x.reshape((-1, 4)), [R(2, 3, 4)]),
    "view": (lambda x: x.view(6), [R(2, 3)]),
    "dg.reshape": (lambda x: dg.reshape(x, (2, 1, 3)), [R(6)]),
    "permute": (lambda x: x.permute(2, 0, 1), [R(2, 3, 4)]),
    "dg.permute": (lambda x: dg.permute(x, (1, 0, 2)), [R(2, 3, 4)]),
    "transpose": (lambda x: x.transpose(0, -1), [R(2, 3, 4)]),
    "dg.transpose": (lambda x: dg.transpose(x, 0, 1), [R(2, 3)]),
    ".T": (lambda x: x.T, [R(2, 3, 4)]),
    "flatten": (lambda x: x.flatten(), [R(2, 3, 4)]),
    "flatten(1)": (lambda x: x.flatten(1), [R(2, 3, 4)]),
    "dg.flatten(0, 1)": (lambda x: dg.flatten(x, start_dim=0, end_dim=1), [R(2, 3, 4)]),
    "expand": (lambda x: x.expand(2, 3, 4), [R(3, 1)]),
    "expand -1": (lambda x: x.expand(-1, 4), [R(3, 1)]),
    "dg.expand": (lambda x: dg.expand(x, (2, 3)), [R(3)]),
    "broadcast_to": (lambda x: x.broadcast_to((2, 3, 4)), [R(1, 4)]),
    "dg.broadcast_to": (lambda x: dg.broadcast_to(x, (3, 2)), [R()]),
    "squeeze": (lambda x: x.squeeze(), [R(1, 3, 1, 2)]),
    "squeeze dim": (lambda x: x.squeeze(2), [R(1, 3, 1, 2)]),
    "dg.squeeze dims": (lambda x: dg.squeeze(x, (0, 2)), [R(1, 3, 1, 2)]),
    "unsqueeze": (lambda x: x.unsqueeze(1), [R(2, 3)]),
    "dg.unsqueeze -1": (lambda x: dg.unsqueeze(x, -1), [R(2, 3)]),
    # -- getitem
    "x[1:, ::-1]": (lambda x: x[1:, ::-1], [R(3, 4)]),
    "x[0]": (lambda x: x[0], [R(3, 4)]),
    "x[-1, 1:3]": (lambda x: x[-1, 1:3], [R(3, 4)]),
    "x[..., None, 1]": (lambda x: x[..., None, 1], [R(2, 3, 4)]),
    "x[::2, None]": (lambda x: x[::2, None], [R(4, 3)]),
    "x[np.int64]": (lambda x: x[np.int64(1)], [R(3, 4)]),
    "x[host int array]": (lambda x: x[HOST_ROWS], [R(3, 4)]),
    "x[host int array, 1:]": (lambda x: x[HOST_ROWS, 1:], [R(3, 4)]),
    "x[host rows, host cols]": (lambda x: x[HOST_ROWS, HOST_COLS], [R(3, 4)]),
    "x[list]": (lambda x: x[[0, 0, -1]], [R(3, 4)]),
    "x[:, list]": (lambda x: x[:, [0, 0, -1]], [R(3, 4)]),
    "x[host mask]": (lambda x: x[HOST_MASK_23], [R(2, 3)]),
    "x[host row mask]": (lambda x: x[HOST_ROW_MASK], [R(4, 3)]),
    "x[host row mask, ...] * 2": (lambda x: x[HOST_ROW_MASK, ...] * 2, [R(4, 3)]),
    "x[host 0-d int array]": (lambda x: x[np.array(1)], [R(3, 4)]),
    "x[device int tensor]": (lambda x, i: x[i], [R(3, 4), index(3, 5)]),
    "x[device int tensor, ...]": (lambda x, i: x[i, ...], [R(3, 4), index(3, 2, 2)]),
    "x[device rows, device cols]": (lambda x, i, j: x[i, j], [R(3, 4), index(3, 2, 3), index(4, 1, 3)]),
    "x[:, device int tensor]": (lambda x, j: x[:, j], [R(3, 4), index(4, 5)]),
    "x[device mask]": (lambda x, m: x[m], [R(2, 3), mask(2, 3)]),
    "x[device row mask]": (lambda x, m: x[m], [R(5, 3), mask(5)]),
    "x[device 0-d int tensor]": (lambda x, i: x[i], [R(3, 4), index(3)]),
    # -- joining, padding
    "dg.concatenate": (lambda a, b: dg.concatenate([a, b], dim=1), [R(2, 3), R(2, 1)]),
    "dg.cat axis": (lambda a, b, c: dg.cat((a, b, c), axis=0), [R(1, 3), R(2, 3), R(1, 3)]),
    "dg.concatenate reuse": (lambda a: dg.concatenate([a, a * 2, a], dim=-1), [R(2, 3)]),
    "dg.stack": (lambda a, b: dg.stack([a, b]), [R(2, 3), R(2, 3)]),
    "dg.stack dim -1": (lambda a, b: dg.stack((a, b), dim=-1), [R(2, 3), R(2, 3)]),
    "dg.pad": (lambda x: dg.pad(x, 1), [R(2, 3)]),
    "dg.pad per axis value": (lambda x: dg.pad(x, ((0, 1), (2, 0)), value=0.5), [R(2, 3)]),
    "F.pad": (lambda x: F.pad(x, (1, 2, 0, 1), value=-1.0), [R(2, 2, 3)]),
    "F.pad reflect": (lambda x: F.pad(x, (1, 2, 2, 0), mode="reflect"), [R(2, 3, 4)]),
    "F.pad replicate": (lambda x: F.pad(x, (2, 1), mode="replicate"), [R(2, 2, 3)]),
    "F.pad circular": (lambda x: F.pad(x, (0, 3, 1, 1), mode="circular"), [R(2, 3, 4)]),
    # -- dtypes and devices
    ".to(float32).to(float64)": (lambda x: x.to(dg.float32).to(dg.float64) * 3, [R(2, 3)]),
    ".float().double()": (lambda x: x.float().double().exp(), [R(2, 3)]),
    "dg.cast and astype": (lambda x: dg.cast(x, np.float32).astype("float64"), [R(2, 3)]),
    ".to(own device) no-op": (lambda x: x.to(x.device) * x.to(dtype=dg.float64), [R(2, 3)]),
    # -- activations
    "F.relu": (F.relu, [R(3, 4)]),
    "relu method": (lambda x: x.relu(), [R(3, 4)]),
    "dg.relu": (dg.relu, [R(3, 4)]),
    "F.relu 4x64 (fast path)": (F.relu, [R(4, 64)]),
    "F.relu 3x40 (row path)": (F.relu, [R(3, 40)]),
    "F.leaky_relu": (lambda x: F.leaky_relu(x, 0.1), [R(3, 4)]),
    "F.elu": (lambda x: F.elu(x, alpha=0.7), [R(3, 4)]),
    "F.elu 2x64": (F.elu, [R(2, 64)]),
    "F.sigmoid": (F.sigmoid, [wide(3, 4)]),
    "sigmoid method": (lambda x: x.sigmoid(), [R(3, 4)]),
    "dg.sigmoid 2x64": (dg.sigmoid, [wide(2, 64)]),
    "F.tanh": (F.tanh, [R(3, 4)]),
    "dg.tanh": (dg.tanh, [R(3, 4)]),
    "tanh method": (lambda x: x.tanh(), [R(3, 4)]),
    "F.gelu": (F.gelu, [R(3, 4)]),
    "F.gelu tanh": (lambda x: F.gelu(x, approximate="tanh"), [R(3, 4)]),
    "F.softplus": (F.softplus, [R(3, 4)]),
    "F.softplus beta threshold": (lambda x: F.softplus(x, beta=10.0, threshold=20.0), [wide(3, 4)]),
    "F.softmax": (F.softmax, [R(3, 4)]),
    "F.softmax dim 0": (lambda x: F.softmax(x, dim=0), [R(3, 4)]),
    "softmax method": (lambda x: x.softmax(1), [R(2, 3, 4)]),
    "dg.softmax": (dg.softmax, [R(4)]),
    "F.log_softmax": (F.log_softmax, [R(3, 4)]),
    "log_softmax method dim 0": (lambda x: x.log_softmax(0), [R(3, 4)]),
    # -- linear, convolution, pooling
    "F.linear": (F.linear, [R(2, 3), R(4, 3), R(4)]),
    "F.linear no bias": (F.linear, [R(2, 3), R(4, 3)]),
    "F.linear 3-d input": (F.linear, [R(2, 5, 3), R(4, 3), R(4)]),
    "F.conv2d": (F.conv2d, [R(2, 3, 5, 5), R(4, 3, 3, 3), R(4)]),
    "F.conv2d padding 1": (lambda x, w, b: F.conv2d(x, w, b, padding=1), [R(2, 3, 5, 5), R(4, 3, 3, 3), R(4)]),
    "F.conv2d stride 2 padding 1": (
        lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=1),
        [R(2, 3, 5, 5), R(4, 3, 3, 3), R(4)],
    ),
    "F.conv2d dilation 2 padding 2 no bias": (
        lambda x, w: F.conv2d(x, w, padding=2, dilation=2),
        [R(1, 2, 6, 5), R(3, 2, 3, 3)],
    ),
    "F.conv2d stride (2, 1) padding (0, 1) dilation (1, 2)": (
        lambda x, w, b: F.conv2d(x, w, b, stride=(2, 1), padding=(0, 1), dilation=(1, 2)),
        [R(2, 2, 6, 6), R(3, 2, 2, 3), R(3)],
    ),
    "F.conv2d groups 2": (lambda x, w, b: F.conv2d(x, w, b, padding=1, groups=2), [R(2, 4, 5, 5), R(6, 2, 3, 3), R(6)]),
    "F.conv2d depthwise": (
        lambda x, w, b: F.conv2d(x, w, b, padding=1, groups=3),
        [R(2, 3, 6, 5), R(3, 1, 3, 3), R(3)],
    ),
    "F.conv2d depthwise stride 2": (lambda x, w: F.conv2d(x, w, stride=2, groups=3), [R(2, 3, 6, 6), R(3, 1, 3, 3)]),
    "F.conv_transpose2d": (lambda x, w, b: F.conv_transpose2d(x, w, b), [R(2, 3, 4, 4), R(3, 2, 3, 3), R(2)]),
    "F.conv_transpose2d stride 2 groups 2": (
        lambda x, w: F.conv_transpose2d(x, w, stride=2, padding=1, output_padding=1, groups=2),
        [R(2, 4, 3, 3), R(4, 3, 3, 3)],
    ),
    "F.conv2d 1x1 padding 1": (lambda x, w, b: F.conv2d(x, w, b, padding=1), [R(2, 3, 3, 3), R(2, 3, 1, 1), R(2)]),
    "F.max_pool2d": (lambda x: F.max_pool2d(x, 2), [D(2, 3, 4, 4)]),
    "F.max_pool2d k3 s2 p1": (lambda x: F.max_pool2d(x, 3, stride=2, padding=1), [D(2, 2, 5, 5)]),
    "F.max_pool2d k2 s1 dilation 2": (lambda x: F.max_pool2d(x, 2, stride=1, dilation=2), [D(1, 2, 5, 5)]),
    "F.max_pool2d (2, 3) stride (1, 2)": (lambda x: F.max_pool2d(x, (2, 3), stride=(1, 2)), [D(2, 2, 4, 7)]),
    "F.max_pool2d ties": (lambda x: F.max_pool2d(x, 2, stride=1), [ties(1, 2, 4, 4)]),
    "F.avg_pool2d": (lambda x: F.avg_pool2d(x, 2), [R(2, 3, 4, 4)]),
    "F.avg_pool2d k3 s2 p1": (lambda x: F.avg_pool2d(x, 3, stride=2, padding=1), [R(2, 2, 5, 5)]),
    "F.avg_pool2d (2, 3) stride 1 padding (1, 0)": (
        lambda x: F.avg_pool2d(x, (2, 3), stride=1, padding=(1, 0)),
        [R(1, 2, 4, 5)],
    ),
    "F.adaptive_avg_pool2d 1": (lambda x: F.adaptive_avg_pool2d(x, 1), [R(2, 3, 4, 4)]),
    "F.adaptive_avg_pool2d 2": (lambda x: F.adaptive_avg_pool2d(x, (2, 3)), [R(2, 3, 4, 6)]),
    "F.adaptive_avg_pool2d uneven": (lambda x: F.adaptive_avg_pool2d(x, (3, 4)), [R(2, 2, 5, 7)]),
    "F.max_pool2d ceil_mode": (lambda x: F.max_pool2d(x, 3, stride=2, padding=1, ceil_mode=True), [D(2, 2, 6, 6)]),
    "F.avg_pool2d ceil_mode, padding not counted": (
        lambda x: F.avg_pool2d(x, 3, stride=2, padding=1, ceil_mode=True, count_include_pad=False),
        [R(2, 2, 6, 6)],
    ),
    "F.avg_pool2d divisor_override": (lambda x: F.avg_pool2d(x, 2, divisor_override=3), [R(1, 2, 4, 4)]),
    "F.max_unpool2d of max_pool2d's indices": (
        lambda x: F.max_unpool2d(*F.max_pool2d(x, 3, stride=2, padding=1, return_indices=True), 3, 2, 1) * 2,
        [D(2, 2, 5, 5)],
    ),
    "F.max_unpool2d of host indices": (
        lambda x: F.max_unpool2d(x, np.array([[[[0, 3], [9, 14]]]]), 2, output_size=(4, 4)),
        [R(1, 1, 2, 2)],
    ),
    "F.embedding": (lambda w: F.embedding(np.array([[0, 3, 3], [1, 0, 4]]), w), [R(5, 3)]),
    "F.embedding padding, by frequency": (
        lambda w: F.embedding(np.array([[0, 3, 3], [1, 0, 4]]), w, padding_idx=0, scale_grad_by_freq=True),
        [R(5, 3)],
    ),
    # -- normalization (batch norm with running statistics: see its own tests)
    "F.batch_norm batch stats affine": (
        lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True),
        [R(4, 3, 2, 2), P(3), R(3)],
    ),
    "F.batch_norm batch stats affine, ReLU fused": (
        lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True, fuse_relu=True),
        [R(4, 3, 2, 2), P(3), R(3)],
    ),
    "F.batch_norm batch stats": (lambda x: F.batch_norm(x, None, None, training=True, eps=1e-3), [R(5, 3)]),
    "F.batch_norm batch stats weight only": (
        lambda x, w: F.batch_norm(x, None, None, w, training=True),
        [R(4, 3, 2), P(3)],
    ),
    "F.layer_norm": (lambda x, w, b: F.layer_norm(x, (4,), w, b), [R(2, 3, 4), P(4), R(4)]),
    "F.layer_norm 2 axes no affine": (lambda x: F.layer_norm(x, (3, 4)), [R(2, 3, 4)]),
    "F.layer_norm bias only": (lambda x, b: F.layer_norm(x, 4, bias=b), [R(3, 4), R(4)]),
    "F.group_norm": (lambda x, w, b: F.group_norm(x, 2, w, b), [R(2, 4, 3), P(4), R(4)]),
    "F.group_norm no affine": (lambda x: F.group_norm(x, 3, eps=1e-3), [R(2, 6, 2, 2)]),
    # -- losses: targets as device tensors (inputs) or host NumPy arrays (constants)
    "F.cross_entropy": (lambda x, t: F.cross_entropy(x, t), [R(4, 3), targets(4, 3)]),
    "F.cross_entropy host target": (lambda x: F.cross_entropy(x, HOST_TARGETS), [R(4, 3)]),
    "F.cross_entropy sum": (lambda x, t: F.cross_entropy(x, t, reduction="sum"), [R(4, 3), targets(4, 3)]),
    "F.cross_entropy none": (lambda x, t: F.cross_entropy(x, t, reduction="none"), [R(4, 3), targets(4, 3)]),
    "F.cross_entropy weight": (
        lambda x, t, w: F.cross_entropy(x, t, weight=w),
        [R(4, 3), targets(4, 3), weights(4, 3)],
    ),
    "F.cross_entropy host weight": (lambda x, t: F.cross_entropy(x, t, weight=HOST_WEIGHTS), [R(4, 3), targets(4, 3)]),
    "F.cross_entropy label_smoothing": (
        lambda x, t: F.cross_entropy(x, t, label_smoothing=0.2),
        [R(4, 3), targets(4, 3)],
    ),
    "F.cross_entropy ignore_index": (
        lambda x, t: F.cross_entropy(x, t, ignore_index=1),
        [R(6, 3), targets(6, 3, ignore_index=1)],
    ),
    "F.cross_entropy ignore -100 host target": (lambda x: F.cross_entropy(x, HOST_TARGETS_IGNORED), [R(6, 3)]),
    "F.cross_entropy weight smoothing ignore none": (
        lambda x, t, w: F.cross_entropy(x, t, weight=w, ignore_index=0, label_smoothing=0.1, reduction="none"),
        [R(6, 3), targets(6, 3, ignore_index=0), weights(6, 3)],
    ),
    "F.cross_entropy probabilities": (lambda x, p: F.cross_entropy(x, p), [R(4, 3), probs(4, 3)]),
    "F.cross_entropy host probabilities weight smoothing": (
        lambda x: F.cross_entropy(x, HOST_PROBS, weight=HOST_WEIGHTS, label_smoothing=0.1),
        [R(4, 3)],
    ),
    "F.cross_entropy probabilities none": (
        lambda x, p: F.cross_entropy(x, p, reduction="none"),
        [R(2, 3, 2), probs(2, 3, 2)],
    ),
    "F.cross_entropy spatial": (lambda x, t: F.cross_entropy(x, t), [R(2, 3, 2, 2), targets(2, 3, 2, 2)]),
    "F.cross_entropy spatial host target none": (
        lambda x: F.cross_entropy(x, HOST_SPATIAL_TARGETS, reduction="none"),
        [R(2, 3, 2, 2)],
    ),
    "F.cross_entropy 1-d logits": (lambda x, t: F.cross_entropy(x, t), [R(3), targets(3)]),
    "F.nll_loss": (lambda x, t: F.nll_loss(F.log_softmax(x, dim=1), t), [R(4, 3), targets(4, 3)]),
    "F.nll_loss raw input": (lambda x, t: F.nll_loss(x, t), [R(4, 3), targets(4, 3)]),
    "F.nll_loss host target sum": (lambda x: F.nll_loss(x, HOST_TARGETS, reduction="sum"), [R(4, 3)]),
    "F.nll_loss weight": (lambda x, t, w: F.nll_loss(x, t, weight=w), [R(4, 3), targets(4, 3), weights(4, 3)]),
    "F.nll_loss host weight ignore_index": (
        lambda x, t: F.nll_loss(x, t, weight=HOST_WEIGHTS, ignore_index=2),
        [R(6, 3), targets(6, 3, ignore_index=2)],
    ),
    "F.nll_loss ignore -100 host target": (lambda x: F.nll_loss(x, HOST_TARGETS_IGNORED), [R(6, 3)]),
    "F.nll_loss spatial none": (lambda x, t: F.nll_loss(x, t, reduction="none"), [R(2, 3, 2, 2), targets(2, 3, 2, 2)]),
    "F.mse_loss": (F.mse_loss, [R(2, 3), R(2, 3)]),
    "F.mse_loss sum": (lambda a, b: F.mse_loss(a, b, reduction="sum"), [R(2, 3), R(2, 3)]),
    "F.mse_loss none": (lambda a, b: F.mse_loss(a, b, reduction="none"), [R(2, 3), R(2, 3)]),
    "F.mse_loss device target": (F.mse_loss, [R(2, 3), In(randn, (2, 3), grad=False)]),
    "F.mse_loss host target": (lambda x: F.mse_loss(x, HOST_23), [R(2, 3)]),
    "F.binary_cross_entropy": (F.binary_cross_entropy, [probabilities(2, 3), soft_labels(2, 3)]),
    "F.binary_cross_entropy host target": (lambda p: F.binary_cross_entropy(p, HOST_LABELS), [probabilities(2, 3)]),
    "F.binary_cross_entropy weight none": (
        lambda p, y, w: F.binary_cross_entropy(p, y, weight=w, reduction="none"),
        [probabilities(2, 3), soft_labels(2, 3), In(positive, (3,), grad=False)],
    ),
    "F.binary_cross_entropy sum": (
        lambda p, y: F.binary_cross_entropy(p, y, reduction="sum"),
        [probabilities(4), soft_labels(4)],
    ),
    "F.binary_cross_entropy_with_logits": (F.binary_cross_entropy_with_logits, [wide(2, 3), soft_labels(2, 3)]),
    "F.binary_cross_entropy_with_logits host target": (
        lambda x: F.binary_cross_entropy_with_logits(x, HOST_LABELS),
        [wide(2, 3)],
    ),
    "F.binary_cross_entropy_with_logits weight pos_weight": (
        lambda x, y, w, pw: F.binary_cross_entropy_with_logits(x, y, weight=w, pos_weight=pw),
        [wide(2, 3), soft_labels(2, 3), In(positive, (2, 1), grad=False), In(positive, (3,), grad=False)],
    ),
    "F.binary_cross_entropy_with_logits host pos_weight none": (
        lambda x, y: F.binary_cross_entropy_with_logits(x, y, pos_weight=HOST_POS_WEIGHT, reduction="none"),
        [wide(2, 3), soft_labels(2, 3)],
    ),
}


def run_case(fn, makers, device):
    """``fn`` on tensors made from the makers' arrays on ``device``, backpropagated with a fixed
    upstream gradient (given as a host array: backward moves it). Returns (output, inputs)."""
    inputs = []
    for seed, maker in enumerate(makers):
        array = maker.array(seed)
        requires_grad = maker.grad and array.dtype.kind == "f"
        inputs.append(dg.tensor(array, requires_grad=requires_grad, device=device))
    out = fn(*inputs)
    assert isinstance(out, dg.Tensor)
    if out.requires_grad:
        out.backward(rng(1234).standard_normal(out.shape))
    return out, inputs


@pytest.mark.parametrize("name", list(CATALOGUE))
def test_op_on_device_equals_cpu(name, device):
    fn, makers = CATALOGUE[name]
    cpu_out, cpu_inputs = run_case(fn, makers, "cpu")
    dev_out, dev_inputs = run_case(fn, makers, device)

    assert str(dev_out.device) == device and dev_out.device is backend.get_device(device)
    same(cpu_out.data, dev_out.data, device)
    assert dev_out.requires_grad == cpu_out.requires_grad
    for i, (cpu_input, dev_input) in enumerate(zip(cpu_inputs, dev_inputs)):
        assert str(dev_input.device) == device, f"input {i} left the device"
        if cpu_input.grad is None:
            assert dev_input.grad is None, f"input {i}: a gradient on the device, none on the CPU"
        else:
            assert dev_input.grad is not None, f"input {i}: no gradient on the device"
            same(cpu_input.grad, dev_input.grad, device)


CONV_CASES = [name for name in CATALOGUE if name.startswith("F.conv2d")]


@pytest.mark.parametrize("name", CONV_CASES)
def test_conv_paths_on_device_equal_cpu(name, device, conv_path):
    """Each way of building a convolution's columns (window copy, row runs, row runs in chunks)
    on the device, against the CPU."""
    if conv_path == "taps-compiled":
        pytest.skip("the compiled convolutions are the CPU's: a device takes NumPy's taps, as the CPU's reference")
    test_op_on_device_equals_cpu(name, device)


def test_catalogue_is_not_vacuous():
    """On the CPU alone: every differentiable case gives some nonzero gradient, and most cases differentiate."""
    differentiable = 0
    zero_gradient = {"x ** 0"}  # d(x**0)/dx is 0 everywhere
    for name, (fn, makers) in CATALOGUE.items():
        out, inputs = run_case(fn, makers, "cpu")
        assert out.size > 0, name
        if out.requires_grad:
            differentiable += 1
            grads = [t.grad for t in inputs if t.requires_grad]
            assert grads and all(g is not None for g in grads), name
            assert name in zero_gradient or any(np.any(g != 0) for g in grads), name
    assert differentiable > 0.8 * len(CATALOGUE)


# ----------------------------------------------------------------------------
# Batch norm with running statistics


def _batch_norm_both(device, training, affine, momentum=0.3):
    """F.batch_norm on the CPU and on ``device`` with running statistics living there;
    returns {where: (out, running_mean, running_var, inputs)}."""
    x, w, b = randn(0, (4, 3, 2, 2)), positive(1, (3,)), randn(2, (3,))
    mean0, var0 = randn(3, (3,)), positive(4, (3,))
    upstream = randn(5, x.shape)
    results = {}
    for where in ("cpu", device):
        running_mean, running_var = backend.to_device(mean0.copy(), where), backend.to_device(var0.copy(), where)
        inputs = [dg.tensor(a, requires_grad=True, device=where) for a in ((x, w, b) if affine else (x,))]
        out = F.batch_norm(*inputs[:1], running_mean, running_var, *inputs[1:], training=training, momentum=momentum)
        out.backward(upstream)
        results[where] = (out, running_mean, running_var, inputs)
    return results, (mean0, var0)


@pytest.mark.parametrize("training", [True, False], ids=["training", "eval"])
@pytest.mark.parametrize("affine", [True, False], ids=["affine", "plain"])
def test_batch_norm_running_stats_on_the_device(device, affine, training):
    """Training updates the running statistics in place, on the device, as on the CPU;
    evaluation uses them and leaves them alone."""
    results, (mean0, var0) = _batch_norm_both(device, training=training, affine=affine)
    (cpu_out, cpu_mean, cpu_var, cpu_inputs), (out, mean, var, inputs) = results["cpu"], results[device]
    same(cpu_out.data, out.data, device)
    for cpu_input, dev_input in zip(cpu_inputs, inputs):
        same(cpu_input.grad, dev_input.grad, device)
    same(cpu_mean, mean, device)
    same(cpu_var, var, device)
    moved = not np.allclose(backend.to_host(mean), mean0) and not np.allclose(backend.to_host(var), var0)
    assert moved == training


# ----------------------------------------------------------------------------
# Dropout


@pytest.mark.parametrize(
    "kwargs",
    [
        {"p": 0.3},
        {"p": 0.5, "scale_at_test": True},
        {"p": 1.0},
        {"p": 0.0},
        {"p": 0.3, "training": False},
        {"p": 0.3, "training": False, "scale_at_test": True},
    ],
    ids=["p=0.3", "p=0.5 scale_at_test", "p=1", "p=0", "eval", "eval scale_at_test"],
)
def test_dropout_with_the_same_seed_gives_the_same_output(device, kwargs):
    """With host masks (``host_masks``), a seed gives the CPU's masks on the device, bit for bit."""
    x, upstream = randn(0, (6, 7)), randn(1, (6, 7))
    results = {}
    for where in ("cpu", device):
        dg.manual_seed(7)
        t = dg.tensor(x, requires_grad=True, device=where)
        with host_masks():
            out = F.dropout(t, **kwargs)
        out.backward(upstream)
        results[where] = out, t
    (cpu_out, cpu_x), (out, t) = results["cpu"], results[device]
    same(cpu_out.data, out.data, device)
    same(cpu_x.grad, t.grad, device)
    kept = backend.to_host(out.data) != 0
    if kwargs.get("training", True) and 0 < kwargs["p"] < 1:
        assert kept.any() and not kept.all()  # a real mask, not the identity
    else:
        assert kept.all() == (kwargs["p"] < 1)


@pytest.mark.parametrize("scale_at_test", [False, True], ids=["inverted", "scale_at_test"])
def test_dropout_masks_are_drawn_on_the_device_by_default(device, scale_at_test):
    """Without a generator, a device tensor's mask is drawn on the device from one seed the default
    generator gives: the same seed gives the same mask (and gradient), another seed another mask, and
    neither is the CPU's; nothing waits for the device."""
    x, upstream = np.ones((40, 50)), randn(1, (40, 50))
    scale = 1.0 if scale_at_test else 1 / 0.7
    outs = []
    for seed in (7, 7, 8):
        dg.manual_seed(seed)
        t = dg.tensor(x, requires_grad=True, device=device)
        state = dg.get_rng_state()
        out = F.dropout(t, 0.3, scale_at_test=scale_at_test)
        out.backward(upstream)
        assert dg.get_rng_state() != state  # the seed came from the default generator
        assert backend.device_of(out.data) is backend.get_device(device) and out.dtype == np.float64
        values = backend.to_host(out.data)
        assert set(np.unique(values)) <= {0.0, scale}
        np.testing.assert_allclose(backend.to_host(t.grad), upstream * values, rtol=0, atol=0)
        outs.append(values)
    assert np.array_equal(outs[0], outs[1]) and not np.array_equal(outs[0], outs[2])
    assert abs((outs[0] == 0).mean() - 0.3) < 0.05
    dg.manual_seed(7)
    cpu_mask = F.dropout(dg.tensor(x), 0.3, scale_at_test=scale_at_test).data
    assert not np.array_equal(cpu_mask, outs[0])  # device masks are not the CPU's
    with host_masks():  # ... unless drawn on the host
        dg.manual_seed(7)
        on_host = F.dropout(dg.tensor(x, device=device), 0.3, scale_at_test=scale_at_test)
        np.testing.assert_array_equal(backend.to_host(on_host.data), cpu_mask)


def test_host_masks_as_a_call_and_as_a_block():
    from deepgrad.ops.dropout import host_masks_enabled

    assert not host_masks_enabled()
    with host_masks():
        assert host_masks_enabled()
        with host_masks(False):
            assert not host_masks_enabled()
        assert host_masks_enabled()
    assert not host_masks_enabled()
    host_masks(True)
    try:
        assert host_masks_enabled()
    finally:
        host_masks(False)
    assert not host_masks_enabled()


def test_dropout_with_an_explicit_generator(device):
    x = randn(0, (5, 8))
    outs = [F.dropout(dg.tensor(x, device=where), 0.4, generator=np.random.default_rng(3)) for where in ("cpu", device)]
    same(outs[0].data, outs[1].data, device)
    assert (backend.to_host(outs[1].data) == 0).any()


# ----------------------------------------------------------------------------
# gradcheck on device tensors

GRADCHECKED = {
    "a * b": (lambda a, b: a * b, [R(3, 1), R(4)]),
    "a @ b": (lambda a, b: a @ b, [R(2, 3), R(3, 2)]),
    "x - host": (lambda x: (x - HOST_3) ** 2, [R(2, 3)]),
    "F.softmax": (lambda x: F.softmax(x, dim=0), [R(3, 2)]),
    "x[device int tensor]": (lambda x, i: x[i], [R(3, 2), index(3, 4)]),
    "F.conv2d stride 2 padding 1": (
        lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=1),
        [R(1, 2, 4, 4), R(2, 2, 3, 3), R(2)],
    ),
    "F.max_pool2d": (lambda x: F.max_pool2d(x, 2), [D(1, 2, 4, 4)]),
    "F.cross_entropy device target": (
        lambda x, t: F.cross_entropy(x, t, label_smoothing=0.1),
        [R(4, 3), targets(4, 3)],
    ),
    "F.layer_norm": (lambda x, w, b: F.layer_norm(x, 3, w, b), [R(2, 3), P(3), R(3)]),
    "to cpu and back": (lambda x: (x.cpu() * 2).to(x.device).exp(), [R(2, 2)]),
}


@pytest.mark.parametrize("name", list(GRADCHECKED))
def test_gradcheck_on_device(name, device):
    fn, makers = GRADCHECKED[name]
    seen = []

    def recorded(*tensors):
        seen.extend(str(t.device) for t in tensors)
        return fn(*tensors)

    inputs = []
    for seed, maker in enumerate(makers):
        array = maker.array(seed)
        inputs.append(dg.tensor(array, requires_grad=array.dtype.kind == "f", device=device))
    assert dg.gradcheck(recorded, inputs) is True
    assert seen and set(seen) == {device}  # fn really ran on the device


def test_gradcheck_catches_a_wrong_gradient_on_device(device):
    class WrongSquare(dg.Function):
        def forward(self, x):
            self.x = x
            return x * x

        def backward(self, grad):
            return (grad * self.x,)  # should be 2·x

    x = dg.tensor(positive(0, (3,)), requires_grad=True, device=device)
    with pytest.raises(dg.GradcheckError, match="by backprop"):
        dg.gradcheck(lambda t: WrongSquare()(t), [x])


# ----------------------------------------------------------------------------
# Tensors of two devices


def _conv(x, w):
    return F.conv2d(x, w, padding=1)


MIXED = {
    "cpu + device": (lambda a, b: a + b, (2, 3), (2, 3)),
    "device + cpu": (lambda a, b: b + a, (2, 3), (2, 3)),
    "cpu * device": (lambda a, b: a * b, (2, 3), (3,)),
    "cpu @ device": (lambda a, b: a @ b, (2, 3), (3, 4)),
    "device @ cpu": (lambda a, b: b @ a, (4, 2), (3, 4)),
    "dg.matmul": (dg.matmul, (2, 3), (3, 4)),
    "conv2d cpu input": (_conv, (1, 2, 4, 4), (3, 2, 3, 3)),
    "conv2d device input": (lambda a, b: _conv(b, a), (3, 2, 3, 3), (1, 2, 4, 4)),
    "dg.stack": (lambda a, b: dg.stack([a, b]), (2, 3), (2, 3)),
    "F.linear": (F.linear, (2, 3), (4, 3)),
    "cpu < device": (lambda a, b: a < b, (2, 3), (2, 3)),
    "device == cpu": (lambda a, b: b == a, (2, 3), (3,)),
}


@pytest.mark.parametrize("case", list(MIXED))
def test_tensors_on_two_devices_do_not_mix(case, device):
    fn, shape_cpu, shape_dev = MIXED[case]
    a = dg.tensor(randn(0, shape_cpu), requires_grad=True)
    b = dg.tensor(randn(1, shape_dev), requires_grad=True, device=device)
    with pytest.raises(RuntimeError, match="expected all tensors on one device") as error:
        fn(a, b)
    assert "on cpu" in str(error.value) and f"on {device}" in str(error.value)
    assert ".to(device)" in str(error.value)


@pytest.mark.parametrize("join", [dg.concatenate, dg.stack], ids=["concatenate", "stack"])
def test_host_arrays_joined_with_device_tensors_follow_them(join, device):
    a = dg.tensor(randn(0, (2, 3)), requires_grad=True, device=device)
    host = randn(1, (2, 3))
    out = join([a, host])
    same(join([dg.tensor(randn(0, (2, 3))), host]).data, out.data, device)
    out.sum().backward()
    same(np.ones((2, 3)), a.grad, device)


FACTORIES = {
    "zeros": lambda **kw: dg.zeros(2, 3, **kw),
    "ones": lambda **kw: dg.ones((2, 3), **kw),
    "full": lambda **kw: dg.full((2, 3), 1.5, **kw),
    "arange": lambda **kw: dg.arange(5, **kw),
    "randn": lambda **kw: dg.randn(2, 3, generator=np.random.default_rng(0), **kw),
    "rand": lambda **kw: dg.rand(2, 3, generator=np.random.default_rng(0), **kw),
}


@pytest.mark.parametrize("name", list(FACTORIES))
def test_factories_create_on_the_device(name, device):
    make = FACTORIES[name]
    same(make().data, make(device=device).data, device)


# ----------------------------------------------------------------------------
# Tensor basics on a device


def test_tensor_created_on_a_device(device):
    target = backend.get_device(device)
    t = dg.tensor([[1.0, 2.0], [3.0, 4.0]], device=device)
    assert t.device is target and str(t.device) == device and isinstance(t.device, backend.Device)
    assert isinstance(t.data, target.array_type) and t.dtype == dg.float32
    np.testing.assert_array_equal(backend.to_host(t.data), [[1, 2], [3, 4]])

    x = randn(0, (2, 3))
    t = dg.tensor(x, requires_grad=True, device=device)
    assert t.requires_grad and t.is_leaf and t.dtype == dg.float64 and t.shape == (2, 3)
    same(x, t.data, device)
    x[0, 0] = 99.0  # the tensor holds a copy
    assert backend.to_host(t.data)[0, 0] != 99.0

    same(np.array([1, 2], dtype=np.int64), dg.tensor([1, 2], device=device).data, device)
    same(np.array([True, False]), dg.tensor([True, False], device=device).data, device)
    same(x.astype(np.float32), dg.tensor(x, dtype=dg.float32, device=device).data, device)
    same(np.asarray(2.5, dtype=np.float32), dg.tensor(2.5, device=device).data, device)
    # From a device array or tensor: stays there without device=, moves with it.
    on_device = backend.to_device(x, device)
    assert dg.tensor(on_device).device is target
    back = dg.tensor(dg.tensor(on_device), device="cpu")
    assert type(back.data) is np.ndarray
    np.testing.assert_array_equal(back.data, x)


def test_to_moves_between_devices_and_dtypes(device):
    target = backend.get_device(device)
    x = randn(0, (2, 3))
    cpu = dg.tensor(x)
    on_device = cpu.to(device)
    assert on_device.device is target and on_device is not cpu
    same(x, on_device.data, device)
    assert cpu.to(target).device is target  # a Device object works as well as its name

    for back in (on_device.to("cpu"), on_device.cpu(), on_device.to(backend.CPU)):
        assert type(back.data) is np.ndarray and back.device is backend.CPU
        np.testing.assert_array_equal(back.data, x)

    for moved in (
        cpu.to(device, dg.float32),
        cpu.to(dg.float32, device),
        cpu.to(dtype=dg.float32, device=device),
        cpu.to(device, dtype="float32"),
        on_device.to(dg.float32),
    ):
        assert moved.device is target and moved.dtype == dg.float32
        same(x.astype(np.float32), moved.data, device)
    back = on_device.to("cpu", dg.float32)
    assert type(back.data) is np.ndarray and back.dtype == dg.float32


def test_to_returns_the_same_tensor_when_nothing_changes(device):
    t = dg.tensor(randn(0, (2, 3)), requires_grad=True, device=device)
    assert t.to(device) is t
    assert t.to(backend.get_device(device)) is t
    assert t.to(dg.float64) is t
    assert t.to(device, dg.float64) is t
    assert t.to(dtype=dg.float64, device=device) is t
    assert t.to() is t
    cpu = dg.tensor(randn(0, (2, 3)))
    assert cpu.to("cpu") is cpu and cpu.cpu() is cpu


def test_to_device_is_differentiable(device):
    x = randn(0, (2, 3))
    leaf = dg.tensor(x, requires_grad=True)
    moved = leaf.to(device)
    assert moved.requires_grad and not moved.is_leaf
    (moved * moved).sum().backward()
    assert type(leaf.grad) is np.ndarray  # the gradient came back to the CPU leaf
    np.testing.assert_array_equal(leaf.grad, 2 * x)

    # And the other way: a device leaf, computed on the CPU.
    leaf = dg.tensor(x, requires_grad=True, device=device)
    out = (leaf.cpu() * 3).sum()
    assert type(out.data) is np.ndarray
    out.backward()
    same(np.full((2, 3), 3.0), leaf.grad, device)

    # Through a dtype change and back: the gradient has the leaf's dtype and device.
    leaf = dg.tensor(x, dtype=dg.float32, requires_grad=True)
    (leaf.to(device, dg.float64) * 2).sum().backward()
    assert type(leaf.grad) is np.ndarray and leaf.grad.dtype == dg.float32
    np.testing.assert_array_equal(leaf.grad, np.full((2, 3), 2.0, dtype=np.float32))


def test_backward_takes_host_or_device_gradients(device):
    x = randn(0, (2, 3))
    upstream = randn(1, (2, 3))
    for grad in (upstream, backend.to_device(upstream, device), upstream.tolist()):
        t = dg.tensor(x, requires_grad=True, device=device)
        (t * 2).backward(grad)
        same(2 * upstream, t.grad, device)
    t = dg.tensor(x, requires_grad=True, device=device)
    (t * t).sum().backward()  # an implicit gradient of ones, made on the device
    same(2 * x, t.grad, device)


def test_numpy_refuses_a_device_tensor_but_asarray_copies_to_the_host(device):
    x = randn(0, (2, 3))
    t = dg.tensor(x, device=device)
    with pytest.raises(TypeError, match=r"\.cpu\(\)"):
        t.numpy()
    host = np.asarray(t)
    assert type(host) is np.ndarray
    np.testing.assert_array_equal(host, x)
    host[0, 0] = 99.0  # a copy: the tensor is untouched
    assert backend.to_host(t.data)[0, 0] == x[0, 0]
    as32 = np.asarray(t, dtype=np.float32)
    assert type(as32) is np.ndarray and as32.dtype == np.float32
    np.testing.assert_array_equal(t.cpu().numpy(), x)


def test_repr_names_the_device(device):
    t = dg.tensor([1.0, 2.0], device=device)
    assert repr(t) == f"tensor([1., 2.], device='{device}')"
    r = repr(dg.tensor([1.0, 2.0], requires_grad=True, dtype=dg.float64, device=device) * 2)
    assert f"device='{device}'" in r and "dtype=float64" in r and "grad_fn=<Mul>" in r
    assert "device=" not in repr(dg.tensor([1.0, 2.0]))


def test_python_scalars_and_lists_from_a_device_tensor(device):
    t = dg.tensor(np.array([[1.5, -2.0], [3.0, 4.25]]), device=device)
    total = t.sum()
    assert total.device is backend.get_device(device)
    assert total.item() == 6.75 and type(total.item()) is float
    assert float(total) == 6.75 and float(t[0, 0]) == 1.5
    assert int(t[1, 0]) == 3 and t.argmax().item() == 3
    assert t.tolist() == [[1.5, -2.0], [3.0, 4.25]]
    assert bool(t[0, 0] > 1.0) is True and len(t) == 2
    assert (t > 0).tolist() == [[True, False], [True, True]]


def test_unknown_device_names_raise_value_error(device):
    t = dg.tensor([1.0], device=device)
    for call in (
        lambda: backend.get_device("tpu"),
        lambda: dg.tensor([1.0], device="tpu"),
        lambda: t.to("tpu"),
        lambda: dg.tensor([1.0]).to("tpu"),
    ):
        with pytest.raises(ValueError, match="unknown device 'tpu'"):
            call()
    assert not backend.is_available("tpu")
    assert backend.is_available(device) and backend.is_available("cpu")


def test_to_refuses_two_devices_or_two_dtypes(device):
    t = dg.tensor([1.0], device=device)
    with pytest.raises(TypeError, match="two devices"):
        t.to("cpu", device)
    with pytest.raises(TypeError, match="two devices"):
        t.to(device, device="cpu")
    with pytest.raises(TypeError, match="two dtypes"):
        t.to(dg.float32, dg.float64)
    with pytest.raises(TypeError, match="two dtypes"):
        t.to("float32", dtype=dg.float64)
    with pytest.raises(TypeError, match="unexpected keyword"):
        t.to(device, non_blocking=True)


def test_backend_moves(device):
    target = backend.get_device(device)
    x = randn(0, (3,))
    on_device = backend.to_device(x, device)
    assert backend.device_of(on_device) is target and isinstance(on_device, target.array_type)
    assert backend.to_device(on_device, device) is on_device  # already there: the same array
    assert backend.to_device(on_device, target) is on_device
    host = backend.to_host(on_device)
    assert type(host) is np.ndarray and host is not x
    np.testing.assert_array_equal(host, x)
    assert backend.to_host(x) is x  # a host array is not copied
    assert backend.device_of(x) is backend.CPU and backend.device_of(np.float64(1.0)) is backend.CPU
    assert backend.get_device(target) is target and str(target) == device and repr(target) == f"device({device!r})"
    back = backend.to_device(on_device, "cpu")
    assert type(back) is np.ndarray
    np.testing.assert_array_equal(back, x)
    assert backend.get_array_module(on_device) is target.xp


# ----------------------------------------------------------------------------
# Device arrays where NumPy would convert (CuPy refuses np.asarray), and no reading back


def test_where_takes_a_raw_device_mask(device):
    mask, a, b = rng(0).random((2, 3)) < 0.5, randn(1, (2, 3)), randn(2, (3,))
    expected = dg.where(mask, dg.tensor(a), dg.tensor(b)).data
    out = dg.where(backend.to_device(mask, device), dg.tensor(a, device=device), dg.tensor(b, device=device))
    same(expected, out.data, device)


def test_tensor_from_a_list_of_device_arrays(device):
    x = randn(0, (3, 2))
    on_device = backend.to_device(x, device)
    for parts, host_parts in (
        ([on_device[i, 0] for i in range(3)], [x[i, 0] for i in range(3)]),  # 0-d results, as CuPy gives
        ([on_device[0], on_device[1]], [x[0], x[1]]),
        (
            [[on_device[0, 0], on_device[0, 1]], [on_device[1, 0], on_device[1, 1]]],
            [[x[0, 0], x[0, 1]], [x[1, 0], x[1, 1]]],
        ),
    ):
        t = dg.tensor(parts)  # a list takes the default dtype, on the CPU as here
        same(dg.tensor(host_parts).data, t.data, device)
        same(dg.tensor(host_parts, dtype=dg.float64).data, dg.tensor(parts, dtype=dg.float64).data, device)
    with pytest.raises(TypeError, match=f"arrays of device '{device}'"):
        dg.tensor([on_device[0, 0], 2.0])


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"reduction": "none"}, {"reduction": "sum"}, {"label_smoothing": 0.1}, {"weight": "weights"}],
    ids=["mean", "none", "sum", "label_smoothing", "weight"],
)
def test_cross_entropy_out_of_range_targets_give_nan_on_a_device(device, kwargs):
    """The CPU raises IndexError for a target outside 0..C−1; a device cannot without waiting for it
    every step, so the rows of such targets (and a mean or sum over them) are NaN, loss and gradient."""
    logits, target = randn(0, (4, 3)), np.array([0, 3, 1, -1])
    if kwargs.get("weight") == "weights":
        kwargs = {"weight": class_weights(1, (4, 3))}
    with pytest.raises(IndexError, match="out of range"):
        F.cross_entropy(dg.tensor(logits), dg.tensor(target), **kwargs)
    x = dg.tensor(logits, requires_grad=True, device=device)
    loss = F.cross_entropy(x, dg.tensor(target, device=device), **kwargs)
    loss.backward(np.ones(loss.shape))
    values, grad = backend.to_host(loss.data), backend.to_host(x.grad)
    reduction = kwargs.get("reduction", "mean")
    if reduction == "none":
        assert np.isnan(values[[1, 3]]).all() and np.isfinite(values[[0, 2]]).all()
    else:
        assert np.isnan(values)
    if reduction == "mean":  # the denominator (the targets' weights) is NaN too
        assert np.isnan(grad).all()
    else:
        assert np.isnan(grad[[1, 3]]).all() and np.isfinite(grad[[0, 2]]).all()
    nll = F.nll_loss(dg.tensor(logits, device=device), dg.tensor(target, device=device))
    assert np.isnan(backend.to_host(nll.data))


@pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning", "ignore:invalid value:RuntimeWarning")
def test_cross_entropy_ignores_targets_on_a_device_as_on_the_cpu(device):  # all ignored: 0/0
    logits = randn(0, (6, 3))
    for target, kwargs in (
        (np.array([0, -100, 2, 1, -100, 0]), {}),
        (np.array([1, 1, 1, 1, 1, 1]), {"ignore_index": 1}),  # all ignored: NaN, as PyTorch
        (np.array([0, 2, 2, 1, 0, 1]), {"ignore_index": 2, "reduction": "none"}),
    ):
        out = []
        for where in ("cpu", device):
            x = dg.tensor(logits, requires_grad=True, device=where)
            loss = F.cross_entropy(x, dg.tensor(target, device=where), **kwargs)
            loss.backward(np.ones(loss.shape))
            out.append((loss, x))
        (cpu_loss, cpu_x), (loss, x) = out
        same(cpu_loss.data, loss.data, device)
        same(cpu_x.grad, x.grad, device)


HYPERPARAMETERS = {
    "clamp": lambda x, h: x.clamp(h(-0.5), h(0.5)),
    "F.elu": lambda x, h: F.elu(x, h(0.7)),
    "F.leaky_relu": lambda x, h: F.leaky_relu(x, h(0.1)),
    "F.softplus": lambda x, h: F.softplus(x, beta=h(2.0), threshold=h(3.0)),
    "F.dropout": lambda x, h: F.dropout(x, h(0.3), generator=np.random.default_rng(0)),
    "F.layer_norm": lambda x, h: F.layer_norm(x, (4,), eps=h(1e-3)),
    "F.group_norm": lambda x, h: F.group_norm(x.reshape(2, 4, 2), 2, eps=h(1e-3)),
    "F.batch_norm": lambda x, h: F.batch_norm(
        x,
        None,
        None,
        training=True,
        momentum=h(0.3),
        eps=h(1e-3),  # batch statistics
    ),
    "F.cross_entropy label_smoothing": lambda x, h: F.cross_entropy(
        x, dg.tensor(np.array([0, 3, 1, 2]), device=x.device), label_smoothing=h(0.2), reduction="none"
    ),
}


@pytest.mark.parametrize("name", list(HYPERPARAMETERS))
def test_numpy_hyperparameters_compute_in_the_data_dtype(name, device):
    """A NumPy float64 hyperparameter computes as the Python float it holds (NEP 50 would widen float32
    data to float64 with it), on the CPU and on the device alike."""
    fn, x32 = HYPERPARAMETERS[name], randn(0, (4, 4)).astype(np.float32)
    results = {}
    for where in ("cpu", device):
        for h in (float, np.float64):
            out = fn(dg.tensor(x32, device=where), h)
            assert out.dtype == np.float32, (where, h)
            results[where, h] = out.data
    np.testing.assert_array_equal(results["cpu", np.float64], results["cpu", float])
    same(results["cpu", float], results[device, np.float64], device)


def test_batch_norm_running_statistics_keep_their_dtype_with_numpy_hyperparameters(device):
    x = randn(0, (5, 3)).astype(np.float32)
    stats = {}
    for where in ("cpu", device):
        mean, var = backend.to_device(np.zeros(3, np.float32), where), backend.to_device(np.ones(3, np.float32), where)
        F.batch_norm(dg.tensor(x, device=where), mean, var, training=True, momentum=np.float64(0.3))
        stats[where] = mean, var
    for cpu_array, dev_array in zip(stats["cpu"], stats[device]):
        assert dev_array.dtype == np.float32
        same(cpu_array, dev_array, device)


def test_binary_cross_entropy_outside_zero_one_gives_nan_on_a_device(device):
    """The CPU raises ValueError for a probability or target outside [0, 1]; on a device those
    elements' loss and gradient are NaN, and nothing is read back to check them."""
    p, y = np.array([[0.2, 1.5], [0.7, 0.4]]), np.array([[1.0, 0.0], [0.5, -0.5]])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        F.binary_cross_entropy(dg.tensor(p), dg.tensor(y))
    x = dg.tensor(p, requires_grad=True, device=device)
    loss = F.binary_cross_entropy(x, dg.tensor(y, device=device), reduction="none")
    loss.backward(np.ones((2, 2)))
    outside = np.array([[False, True], [False, True]])
    for values in (backend.to_host(loss.data), backend.to_host(x.grad)):
        assert np.isnan(values[outside]).all() and np.isfinite(values[~outside]).all()
    if device == "fake":
        from fake_device import count_syncs

        with count_syncs() as syncs:
            for _ in range(10):
                F.binary_cross_entropy(x, dg.tensor(y, device=device)).backward()
        assert syncs == []
