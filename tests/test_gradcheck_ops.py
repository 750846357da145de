"""Every op gradchecked in float64 on random shapes (hypothesis), broadcasting included.

Inputs are drawn away from the points where an op is not differentiable
(ties of max/min, the bounds of clamp, 0 for abs and log), so that central
differences are a valid reference at ``dg.gradcheck``'s default tolerances.
"""

import numpy as np
import pytest
from helpers import (
    SETTINGS,
    away_from_bounds,
    away_from_zero,
    broadcast_shapes,
    distinct,
    matmul_shapes,
    positive,
    randn,
    reduction_args,
    reshape_target,
    rng,
    seeds,
    shapes,
    slices_for,
    untied_pair,
)
from hypothesis import given
from hypothesis import strategies as st

import deepgrad as dg


def gradcheck(fn, *arrays, requires=None, **kwargs):
    """``dg.gradcheck`` on float64 tensors made from ``arrays`` (all requiring grad unless told)."""
    requires = requires or (True,) * len(arrays)
    inputs = [dg.tensor(np.asarray(a, dtype=np.float64), requires_grad=r) for a, r in zip(arrays, requires)]
    assert dg.gradcheck(fn, inputs, **kwargs) is True


# ----------------------------------------------------------------------------
# Binary elementwise ops

WHICH_REQUIRE_GRAD = st.sampled_from([(True, True), (True, False), (False, True)])

BINARY = {
    "+": (lambda a, b: a + b, randn, randn),
    "-": (lambda a, b: a - b, randn, randn),
    "*": (lambda a, b: a * b, randn, randn),
    "/": (lambda a, b: a / b, randn, away_from_zero),
    "**": (lambda a, b: a**b, positive, randn),
    "dg.add": (dg.add, randn, randn),
    "dg.sub": (dg.sub, randn, randn),
    "dg.mul": (dg.mul, randn, randn),
    "dg.div": (dg.div, randn, away_from_zero),
    "dg.pow": (dg.pow, positive, randn),
    "pow method": (lambda a, b: a.pow(b), positive, randn),
}


@pytest.mark.parametrize("op", sorted(BINARY))
@SETTINGS
@given(shape_pair=broadcast_shapes(), seed=seeds, requires=WHICH_REQUIRE_GRAD)
def test_binary(op, shape_pair, seed, requires):
    fn, make_a, make_b = BINARY[op]
    shape_a, shape_b = shape_pair
    gradcheck(fn, make_a(seed, shape_a), make_b(seed + 1, shape_b), requires=requires)


@pytest.mark.parametrize(
    "fn",
    [dg.maximum, dg.minimum, lambda a, b: a.maximum(b), lambda a, b: a.minimum(b)],
    ids=["dg.maximum", "dg.minimum", "maximum method", "minimum method"],
)
@SETTINGS
@given(shape_pair=broadcast_shapes(), seed=seeds)
def test_maximum_minimum(fn, shape_pair, seed):
    gradcheck(fn, *untied_pair(seed, *shape_pair))


@SETTINGS
@given(shape_triple=broadcast_shapes(num_shapes=3), seed=seeds)
def test_clamp_with_tensor_bounds(shape_triple, seed):
    """Bounds that broadcast (and may widen x), in either order, never tied with x or each other."""
    r = rng(seed)
    shape_x, shape_low, shape_high = shape_triple
    x = r.integers(-4, 4, shape_x) + 0.5 + r.uniform(-0.1, 0.1, shape_x)
    low = r.integers(-4, 4, shape_low) + r.uniform(-0.1, 0.1, shape_low)
    high = r.integers(-4, 4, shape_high) + 0.25 + r.uniform(-0.05, 0.05, shape_high)
    gradcheck(lambda a, b, c: dg.clamp(a, b, c), x, low, high)
    gradcheck(lambda a, b: dg.clamp(a, min=b), x, low)
    gradcheck(lambda a, c: a.clamp(max=c), x, high)


@pytest.mark.parametrize("exponent", [0, 1, 2, 3, -1, -2, 0.5, 1.5, -2.5, np.float64(2.5)])
@SETTINGS
@given(shape=shapes(), seed=seeds)
def test_pow_scalar_exponent(exponent, shape, seed):
    integral = float(exponent).is_integer()
    base = away_from_zero(seed, shape) if integral else positive(seed, shape)
    gradcheck(lambda x: x**exponent, base)
    gradcheck(lambda x: dg.pow(x, exponent), base)


@SETTINGS
@given(shape=shapes(), seed=seeds, base=st.sampled_from([2.0, 0.5, np.e, 3]))
def test_scalar_base_pow(shape, seed, base):
    gradcheck(lambda x: base**x, randn(seed, shape))


@SETTINGS
@given(shape_triple=broadcast_shapes(num_shapes=3), seed=seeds, as_tensor=st.booleans())
def test_where(shape_triple, seed, as_tensor):
    shape_c, shape_a, shape_b = shape_triple
    condition = rng(seed).random(shape_c) < 0.5
    if as_tensor:
        condition = dg.tensor(condition)
    gradcheck(lambda a, b: dg.where(condition, a, b), randn(seed, shape_a), randn(seed + 1, shape_b))
    gradcheck(lambda a: dg.where(condition, a, 0.0), randn(seed, shape_a))
    gradcheck(lambda b: dg.where(condition, 1.5, b), randn(seed, shape_b))


@SETTINGS
@given(operand_shapes=matmul_shapes(), seed=seeds, requires=WHICH_REQUIRE_GRAD)
def test_matmul(operand_shapes, seed, requires):
    shape_a, shape_b = operand_shapes
    a, b = randn(seed, shape_a), randn(seed + 1, shape_b)
    gradcheck(lambda a, b: a @ b, a, b, requires=requires)
    gradcheck(dg.matmul, a, b, requires=requires)


@pytest.mark.parametrize(
    "shape_a, shape_b",
    [((3,), (3,)), ((3,), (3, 2)), ((2, 3), (3,)), ((4, 2, 3), (3,)), ((3,), (4, 3, 2)), ((2, 1, 2, 3), (4, 3, 2))],
)
def test_matmul_vector_and_batch_cases(shape_a, shape_b):
    gradcheck(lambda a, b: a @ b, randn(0, shape_a), randn(1, shape_b))


# ----------------------------------------------------------------------------
# Unary elementwise ops


UNARY = {
    "exp": (lambda x: x.exp(), randn),
    "dg.exp": (dg.exp, randn),
    "log": (lambda x: x.log(), positive),
    "dg.log": (dg.log, positive),
    "sqrt": (lambda x: x.sqrt(), positive),
    "dg.sqrt": (dg.sqrt, positive),
    "abs": (lambda x: x.abs(), away_from_zero),
    "abs()": (abs, away_from_zero),
    "dg.abs": (dg.abs, away_from_zero),
    "neg": (lambda x: -x, randn),
    "dg.neg": (dg.neg, randn),
    "clamp": (lambda x: x.clamp(-0.5, 0.5), away_from_bounds),
    "clamp min": (lambda x: x.clamp(min=-0.5), away_from_bounds),
    "clamp max": (lambda x: dg.clamp(x, max=0.5), away_from_bounds),
    "clip": (lambda x: dg.clip(x, -0.5, 0.5), away_from_bounds),
    "clip method": (lambda x: x.clip(-0.5, 0.5), away_from_bounds),
}


@pytest.mark.parametrize("op", sorted(UNARY))
@SETTINGS
@given(shape=shapes(), seed=seeds)
def test_unary(op, shape, seed):
    fn, make = UNARY[op]
    gradcheck(fn, make(seed, shape))


# ----------------------------------------------------------------------------
# Reductions


def _reduce(x, name, dim, keepdim, style, **kwargs):
    if style == "method":
        return getattr(x, name)(dim=dim, keepdim=keepdim, **kwargs)
    if style == "numpy":
        return getattr(x, name)(axis=dim, keepdims=keepdim, **kwargs)
    if style == "positional":
        return getattr(dg, name)(x, dim, keepdim, **kwargs)
    return getattr(x, name)(**kwargs) if dim is None and not keepdim else getattr(x, name)(dim, keepdim, **kwargs)


STYLES = st.sampled_from(["method", "numpy", "positional", "short"])


@pytest.mark.parametrize("name", ["sum", "mean", "max", "min"])
@SETTINGS
@given(args=reduction_args(), seed=seeds, style=STYLES)
def test_reduction(name, args, seed, style):
    shape, dim, keepdim = args
    make = distinct if name in ("max", "min") else randn
    gradcheck(lambda x: _reduce(x, name, dim, keepdim, style), make(seed, shape))


CORRECTIONS = [{}, {"correction": 0}, {"correction": 1}, {"correction": 2}, {"unbiased": True}, {"unbiased": False}]


def _dof_correction(kwargs):
    if "unbiased" in kwargs:
        return int(kwargs["unbiased"])
    return kwargs.get("correction", 1)


@pytest.mark.parametrize("name", ["var", "std"])
@pytest.mark.parametrize("kwargs", CORRECTIONS, ids=lambda k: ",".join(f"{a}={b}" for a, b in k.items()) or "default")
@SETTINGS
@given(data=st.data(), seed=seeds, style=STYLES)
def test_var_std(name, kwargs, data, seed, style):
    # Enough elements per reduction for n - correction > 0 (and a positive variance under std).
    correction = _dof_correction(kwargs)
    shape, dim, keepdim = data.draw(reduction_args(min_count=max(correction + 1, 2)))
    gradcheck(lambda x: _reduce(x, name, dim, keepdim, style, **kwargs), distinct(seed, shape))


# ----------------------------------------------------------------------------
# Shape ops


@SETTINGS
@given(data=st.data(), seed=seeds)
def test_reshape_and_view(data, seed):
    shape = data.draw(shapes())
    target = data.draw(reshape_target(shape))
    x = randn(seed, shape)
    gradcheck(lambda t: t.reshape(*target), x)
    gradcheck(lambda t: t.reshape(target), x)
    gradcheck(lambda t: t.view(target), x)
    gradcheck(lambda t: dg.reshape(t, target), x)


@SETTINGS
@given(data=st.data(), seed=seeds)
def test_transpose_permute_T(data, seed):
    shape = data.draw(shapes(min_dims=1))
    ndim = len(shape)
    d0, d1 = data.draw(st.integers(-ndim, ndim - 1)), data.draw(st.integers(-ndim, ndim - 1))
    perm = data.draw(st.permutations(range(ndim)))
    perm = tuple(p - ndim if data.draw(st.booleans()) else p for p in perm)
    x = randn(seed, shape)
    gradcheck(lambda t: t.transpose(d0, d1), x)
    gradcheck(lambda t: dg.transpose(t, d0, d1), x)
    gradcheck(lambda t: t.permute(*perm), x)
    gradcheck(lambda t: t.permute(perm), x)
    gradcheck(lambda t: dg.permute(t, perm), x)
    gradcheck(lambda t: t.T, x)


def test_T_of_a_scalar():
    gradcheck(lambda t: t.T * 2, randn(0, ()))


@SETTINGS
@given(data=st.data(), seed=seeds)
def test_flatten(data, seed):
    shape = data.draw(shapes())
    x = randn(seed, shape)
    gradcheck(lambda t: t.flatten(), x)
    if shape:
        ndim = len(shape)
        start, end = sorted([data.draw(st.integers(0, ndim - 1)), data.draw(st.integers(0, ndim - 1))])
        start -= ndim * data.draw(st.booleans())
        end -= ndim * data.draw(st.booleans())
        gradcheck(lambda t: t.flatten(start, end), x)
        gradcheck(lambda t: dg.flatten(t, start_dim=start, end_dim=end), x)


@st.composite
def expansion(draw):
    """(shape, target, expand_sizes): target broadcasts shape; expand_sizes uses -1 for kept axes."""
    shape = draw(shapes(max_dims=3))
    stretched = tuple(draw(st.integers(1, 4)) if s == 1 else s for s in shape)
    lead = tuple(draw(st.lists(st.integers(1, 3), max_size=2)))
    target = lead + stretched
    sizes = lead + tuple(-1 if s == t and draw(st.booleans()) else t for s, t in zip(shape, stretched))
    return shape, target, sizes


@SETTINGS
@given(args=expansion(), seed=seeds)
def test_expand_broadcast_to(args, seed):
    shape, target, sizes = args
    x = randn(seed, shape)
    gradcheck(lambda t: t.expand(*sizes), x)
    gradcheck(lambda t: t.expand(sizes), x)
    gradcheck(lambda t: dg.expand(t, sizes), x)
    gradcheck(lambda t: t.broadcast_to(target), x)
    gradcheck(lambda t: dg.broadcast_to(t, target), x)


def shapes_with_ones():
    return st.lists(st.sampled_from([1, 1, 2, 3]), max_size=4).map(tuple)


@SETTINGS
@given(data=st.data(), seed=seeds)
def test_squeeze_unsqueeze(data, seed):
    shape = data.draw(shapes_with_ones())
    ndim = len(shape)
    x = randn(seed, shape)
    gradcheck(lambda t: t.squeeze(), x)
    gradcheck(lambda t: dg.squeeze(t), x)
    if ndim:
        dim = data.draw(st.integers(-ndim, ndim - 1))
        dims = tuple(data.draw(st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim, unique=True)))
        gradcheck(lambda t: t.squeeze(dim), x)
        gradcheck(lambda t: t.squeeze(dims), x)
    new = data.draw(st.integers(-ndim - 1, ndim))
    gradcheck(lambda t: t.unsqueeze(new), x)
    gradcheck(lambda t: dg.unsqueeze(t, new), x)


@SETTINGS
@given(data=st.data(), seed=seeds)
def test_getitem_basic(data, seed):
    shape = data.draw(shapes(min_dims=1))
    index = data.draw(slices_for(shape))
    x = randn(seed, shape)
    gradcheck(lambda t: t[index], x)
    gradcheck(lambda t: t[index[0]], x)
    gradcheck(lambda t: t[..., index[-1]], x)


@SETTINGS
@given(shape=shapes(min_dims=1), seed=seeds, n=st.integers(1, 5), form=st.sampled_from(["array", "list", "tensor"]))
def test_getitem_integer_arrays_with_repeats(shape, seed, n, form):
    r = rng(seed)
    index = r.integers(-shape[0], shape[0], n)
    index = np.concatenate([index, index[:1]])  # at least one repeat: gradients must add up
    index = {"array": index, "list": index.tolist(), "tensor": dg.tensor(index)}[form]
    x = randn(seed, shape)
    gradcheck(lambda t: t[index], x)
    gradcheck(lambda t: t[index, ...], x)
    if len(shape) >= 2:
        rows = r.integers(0, shape[0], (2, 3))
        cols = r.integers(0, shape[1], (1, 3))  # two index arrays broadcast together
        gradcheck(lambda t: t[rows, cols], x)
        gradcheck(lambda t: t[index, 1:], x)
        gradcheck(lambda t: t[:, [0, 0, -1]], x)


@SETTINGS
@given(shape=shapes(min_dims=1), seed=seeds, as_tensor=st.booleans())
def test_getitem_boolean_masks(shape, seed, as_tensor):
    r = rng(seed)
    full, rows = r.random(shape) < 0.5, r.random(shape[0]) < 0.5
    if as_tensor:
        full, rows = dg.tensor(full), dg.tensor(rows)
    x = randn(seed, shape)
    gradcheck(lambda t: t[full], x)
    gradcheck(lambda t: t[rows], x)
    gradcheck(lambda t: t[rows, ...] * 2, x)


@st.composite
def joinable(draw):
    """(shapes, dim) for concatenate: equal shapes except along dim."""
    base = list(draw(shapes(min_dims=1)))
    ndim = len(base)
    dim = draw(st.integers(-ndim, ndim - 1))
    count = draw(st.integers(1, 3))
    result = []
    for _ in range(count):
        base[dim] = draw(st.integers(1, 3))
        result.append(tuple(base))
    return result, dim


@SETTINGS
@given(args=joinable(), seed=seeds)
def test_concatenate(args, seed):
    shape_list, dim = args
    arrays = [randn(seed + i, s) for i, s in enumerate(shape_list)]
    gradcheck(lambda *ts: dg.concatenate(ts, dim=dim), *arrays)
    gradcheck(lambda *ts: dg.cat(list(ts), axis=dim), *arrays)
    gradcheck(lambda *ts: dg.concatenate(ts, dim) * 2, *arrays)


@SETTINGS
@given(shape=shapes(), seed=seeds, count=st.integers(1, 3), data=st.data())
def test_stack(shape, seed, count, data):
    dim = data.draw(st.integers(-len(shape) - 1, len(shape)))
    arrays = [randn(seed + i, shape) for i in range(count)]
    gradcheck(lambda *ts: dg.stack(ts, dim=dim), *arrays)
    gradcheck(lambda *ts: dg.stack(list(ts), axis=dim), *arrays)


def test_concatenate_and_stack_reuse_one_tensor():
    gradcheck(lambda t: dg.concatenate([t, t * 2, t], dim=1), randn(0, (2, 3)))
    gradcheck(lambda t: dg.stack([t, t], dim=-1), randn(0, (2, 3)))


@SETTINGS
@given(data=st.data(), seed=seeds, value=st.sampled_from([0, 0.5, -2.0]))
def test_pad(data, seed, value):
    shape = data.draw(shapes(min_dims=1))
    ndim = len(shape)
    widths = st.integers(0, 2)
    form = data.draw(st.sampled_from(["int", "pair", "per axis"]))
    if form == "int":
        pad_width = data.draw(widths)
    elif form == "pair":
        pad_width = (data.draw(widths), data.draw(widths))
    else:
        pad_width = tuple((data.draw(widths), data.draw(widths)) for _ in range(ndim))
    gradcheck(lambda t: dg.pad(t, pad_width, value=value), randn(seed, shape))


@pytest.mark.parametrize("mode, numpy_mode", [("reflect", "reflect"), ("replicate", "edge"), ("circular", "wrap")])
@pytest.mark.parametrize(
    "shape, pad_width", [((4,), [(2, 3)]), ((3, 5), [(2, 0), (1, 4)]), ((2, 3, 4), [(1, 1), (0, 2), (3, 0)])]
)
def test_pad_modes(mode, numpy_mode, shape, pad_width):
    """Any axis, not only the last ones F.pad takes: the values NumPy's own modes give, and the
    gradient of each element the sum over the places it was copied to."""
    widest = np.array(shape)[:, None] - (mode == "reflect")  # reflect: widths under the size
    widths = np.minimum(pad_width, widest)
    x = randn(0, shape)
    np.testing.assert_array_equal(dg.pad(dg.tensor(x), widths, mode=mode).data, np.pad(x, widths, mode=numpy_mode))
    gradcheck(lambda t: dg.pad(t, widths, mode=mode), x)


@SETTINGS
@given(shape=shapes(), seed=seeds)
def test_cast_and_to(shape, seed):
    # float32 rounds its input, so central differences need a step well above
    # float32's resolution: eps=1e-2 (exact for these linear maps, 1e-5 for exp).
    x = randn(seed, shape)
    gradcheck(lambda t: t.to(dg.float32).to(dg.float64) * 3, x, eps=1e-2)
    gradcheck(lambda t: t.float().double().exp(), x, eps=1e-2)
    gradcheck(lambda t: dg.cast(t, np.float32).astype("float64"), x, eps=1e-2)
    gradcheck(lambda t: t.to(dg.float64) * t.to("cpu"), x)  # same dtype and device: no-ops


# ----------------------------------------------------------------------------
# Scalars and NumPy arrays on either side of a tensor


@pytest.mark.parametrize(
    "fn, args, expected",
    [
        (dg.add, (1.0, 2.0), np.float32(3.0)),
        (dg.div, (3, 2), np.float32(1.5)),
        (dg.sub, ([1.0, 2.0], 1), np.array([0.0, 1.0], dtype=np.float32)),
        (dg.mul, (np.ones(2), 2.0), np.array([2.0, 2.0])),
        (dg.maximum, (np.ones(2), np.zeros(2)), np.ones(2)),
        (dg.matmul, (np.ones((2, 2)), np.ones(2)), np.array([2.0, 2.0])),
    ],
    ids=["scalars", "int-scalars", "list-and-int", "array-and-float", "arrays", "matmul-arrays"],
)
def test_binary_functions_of_no_tensor_at_all(fn, args, expected):
    """dg.add and its kin take plain data on both sides too (the result is a new tensor)."""
    out = fn(*args)
    assert isinstance(out, dg.Tensor) and out.dtype == np.asarray(expected).dtype
    np.testing.assert_array_equal(out.data, expected)


@SETTINGS
@given(shape_pair=broadcast_shapes(), seed=seeds)
def test_scalars_and_numpy_arrays_mix_on_either_side(shape_pair, seed):
    shape_x, shape_c = shape_pair
    c, c_nonzero = randn(seed + 1, shape_c), away_from_zero(seed + 2, shape_c)
    cases = [
        lambda x: 2.0 * x,
        lambda x: x * 2.0,
        lambda x: 3 + x,
        lambda x: 1 - x,
        lambda x: x - 1,
        lambda x: 2.0 / x,
        lambda x: x / 4,
        lambda x: np.float64(0.5) * x,
        lambda x: x * np.array(0.5),
        lambda x: x - c,
        lambda x: c - x,
        lambda x: c * x,
        lambda x: x + c,
        lambda x: c + x,
        lambda x: c / x,
        lambda x: x / c_nonzero,
        lambda x: dg.maximum(x, 0.25),
        lambda x: dg.minimum(0.25, x),
    ]
    x = away_from_zero(seed, shape_x)  # |x| >= 0.5: a safe divisor, never tied with 0.25
    for fn in cases:
        with dg.no_grad():
            out = fn(dg.tensor(x))
        assert isinstance(out, dg.Tensor)
        gradcheck(fn, x)


@SETTINGS
@given(operand_shapes=matmul_shapes(), seed=seeds)
def test_numpy_arrays_mix_with_matmul(operand_shapes, seed):
    shape_a, shape_b = operand_shapes
    a, b = randn(seed, shape_a), randn(seed + 1, shape_b)
    out = a @ dg.tensor(b)
    assert isinstance(out, dg.Tensor)
    np.testing.assert_allclose(out.data, a @ b, rtol=1e-12, atol=1e-12)
    gradcheck(lambda t: a @ t, b)
    gradcheck(lambda t: t @ b, a)


# ----------------------------------------------------------------------------
# Gradients have their tensor's shape and dtype


class Probe(dg.Function):
    """The identity, recording the (shape, dtype) of the gradient that reaches it."""

    def __init__(self, seen):
        self.seen = seen

    def forward(self, x):
        return x

    def backward(self, grad):
        self.seen.append((grad.shape, grad.dtype))
        return (grad,)


SHAPED_CASES = {
    "add": (lambda a, b: a + b, (3, 1), (4,)),
    "sub": (lambda a, b: a - b, (3, 1), (4,)),
    "mul": (lambda a, b: a * b, (2, 3, 1), (1, 4)),
    "div": (lambda a, b: a / (b * b + 1), (1, 4), (3, 1)),
    "pow": (lambda a, b: (a * a + 1) ** b, (2, 1), (3,)),
    "pow scalar": (lambda a: a**3, (2, 3)),
    "maximum": (lambda a, b: dg.maximum(a, b), (3, 1), (4,)),
    "minimum": (lambda a, b: dg.minimum(a, b), (3, 1), (4,)),
    "where": (lambda a, b: dg.where(np.array([True, False, True]), a, b), (2, 1), (3,)),
    "matmul": (lambda a, b: a @ b, (2, 1, 3, 4), (5, 4, 2)),
    "matmul vectors": (lambda a, b: a @ b, (4,), (4,)),
    "exp": (lambda a: a.exp(), (2, 3)),
    "log": (lambda a: (a * a + 1).log(), (2, 3)),
    "sqrt": (lambda a: (a * a + 1).sqrt(), (2, 3)),
    "abs": (lambda a: a.abs(), (2, 3)),
    "clamp": (lambda a: a.clamp(-0.5, 0.5), (2, 3)),
    "sum": (lambda a: a.sum(dim=1), (2, 3)),
    "mean": (lambda a: a.mean(dim=(0, 2), keepdim=True), (2, 3, 2)),
    "max": (lambda a: a.max(dim=0), (2, 3)),
    "max all": (lambda a: a.max(), (2, 3)),
    "min": (lambda a: a.min(dim=-1, keepdim=True), (2, 3)),
    "var": (lambda a: a.var(dim=1), (2, 3)),
    "std": (lambda a: a.std(), (2, 3)),
    "reshape": (lambda a: a.reshape(3, 2), (2, 3)),
    "permute": (lambda a: a.permute(2, 0, 1), (2, 3, 4)),
    "expand": (lambda a: a.expand(2, 3, 4), (3, 1)),
    "getitem": (lambda a: a[[0, 0, 1], 1:], (2, 3)),
    "getitem mask": (lambda a: a[np.array([True, False])], (2, 3)),
    "concatenate": (lambda a, b: dg.concatenate([a, b], dim=1), (2, 3), (2, 1)),
    "stack": (lambda a, b: dg.stack([a, b]), (2, 3), (2, 3)),
    "pad": (lambda a: dg.pad(a, 1), (2, 3)),
}


@pytest.mark.parametrize("dtype", [dg.float32, dg.float64], ids=str)
@pytest.mark.parametrize("case", sorted(SHAPED_CASES))
def test_gradients_have_the_shape_and_dtype_of_their_tensor(case, dtype):
    fn, *input_shapes = SHAPED_CASES[case]
    leaves = [dg.tensor(randn(i, s), dtype=dtype, requires_grad=True) for i, s in enumerate(input_shapes)]
    seen = []
    probed = [Probe(seen)(t) for t in leaves]
    out = fn(*probed)
    assert out.dtype == dtype
    out.backward(np.ones(out.shape, dtype=dtype))
    # The gradients leaving the op (recorded by the probes) and the leaves' .grad.
    assert sorted((s, str(d)) for s, d in seen) == sorted((t.shape, str(dtype)) for t in leaves)
    for t in leaves:
        assert t.grad.shape == t.shape and t.grad.dtype == dtype


def test_gradient_of_cast_has_the_source_dtype():
    x = dg.tensor(randn(0, (2, 3)), dtype=dg.float32, requires_grad=True)
    y = x.double() * 2
    assert y.dtype == dg.float64
    y.sum().backward()
    assert x.grad.dtype == dg.float32 and x.grad.shape == (2, 3)
    np.testing.assert_array_equal(x.grad, np.full((2, 3), 2, dtype=np.float32))
