"""Forward and backward parity with PyTorch in float64 for every core op.

Each case goes through :func:`helpers.check_op`: same inputs, same random
upstream gradient, outputs and input gradients equal to rtol=1e-6.
Unlike the gradchecks, ties and boundaries are tested here on purpose: that
is where conventions differ (max/min share the gradient between ties like
``torch.amax``; ``torch.maximum`` splits it in half; clamp's bounds are inclusive).
"""

import numpy as np
import pytest
from helpers import (
    SETTINGS,
    away_from_bounds,
    away_from_zero,
    broadcast_shapes,
    check_op,
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
import deepgrad.functional as dgF

torch = pytest.importorskip("torch")
F = torch.nn.functional


# ----------------------------------------------------------------------------
# Binary elementwise ops


BINARY = {
    "add": (lambda a, b: a + b, lambda a, b: a + b, randn, randn),
    "sub": (lambda a, b: a - b, lambda a, b: a - b, randn, randn),
    "mul": (lambda a, b: a * b, lambda a, b: a * b, randn, randn),
    "div": (lambda a, b: a / b, lambda a, b: a / b, randn, away_from_zero),
    "pow": (lambda a, b: a**b, lambda a, b: a**b, positive, randn),
    "maximum": (dg.maximum, torch.maximum, None, None),
    "minimum": (dg.minimum, torch.minimum, None, None),
}


@pytest.mark.parametrize("op", sorted(BINARY))
@SETTINGS
@given(shape_pair=broadcast_shapes(), seed=seeds)
def test_binary(op, shape_pair, seed):
    dg_fn, torch_fn, make_a, make_b = BINARY[op]
    shape_a, shape_b = shape_pair
    if make_a is None:
        a, b = untied_pair(seed, shape_a, shape_b)
    else:
        a, b = make_a(seed, shape_a), make_b(seed + 1, shape_b)
    check_op(dg_fn, torch_fn, a, b, seed=seed)


@pytest.mark.parametrize("op", ["maximum", "minimum"])
def test_maximum_minimum_split_ties_in_half(op):
    a = np.array([[1.0, 2.0, 3.0], [0.5, -1.0, 4.0]])
    b = np.array([1.0, 5.0, 3.0])  # ties at columns 0 and 2 of row 0
    check_op(getattr(dg, op), getattr(torch, op), a, b)
    check_op(
        lambda x: getattr(dg, op)(x, 0.0),
        lambda x: getattr(torch, op)(x, torch.tensor(0.0, dtype=x.dtype)),
        np.array([-1.0, 0.0, 2.0]),
    )


@pytest.mark.parametrize("op", ["maximum", "minimum"])
def test_maximum_minimum_give_both_inputs_the_gradient_where_either_is_nan(op):
    a = np.array([np.nan, 1.0, np.nan, -np.inf, 2.0])
    b = np.array([0.5, np.nan, np.nan, -np.inf, np.inf])
    check_op(getattr(dg, op), getattr(torch, op), a, b)


def test_division_by_a_huge_denominator_keeps_its_gradient_finite():
    """db = −g·(a/b)/b: the b² of −g·a/b² overflows to inf (float32 from |b| ≈ 1.8e19), making 0 or NaN."""
    a, b = np.array([3.0, -2.0, np.inf]), np.array([1e200, -3e250, -1e308])
    check_op(lambda x, y: x / y, lambda x, y: x / y, a, b, rtol=1e-12, atol=0)
    a32, b32 = dg.tensor(np.float32([3.0]), requires_grad=True), dg.tensor(np.float32([1e20]), requires_grad=True)
    (a32 / b32).backward(dg.tensor(np.float32([1.0])))
    np.testing.assert_allclose(b32.grad, np.float32([-3e-40]), rtol=1e-3)  # a subnormal, not -0


@pytest.mark.parametrize("exponent", [0, 1, 2, 3, -1, 0.5, 1.5, -2.5])
@SETTINGS
@given(shape=shapes(), seed=seeds)
def test_pow_scalar_exponent(exponent, shape, seed):
    base = away_from_zero(seed, shape) if float(exponent).is_integer() else positive(seed, shape)
    check_op(lambda x: x**exponent, lambda x: x**exponent, base, seed=seed)


def test_pow_at_zero():
    # d(x**0)/dx = 0 and d(0**y)/dy = 0 for y >= 0, as in PyTorch.
    check_op(lambda a, b: a**b, lambda a, b: a**b, np.array([0.0, 0.0, 2.0, 0.0]), np.array([0.0, 2.0, 0.0, 1.0]))
    check_op(lambda x: x**2, lambda x: x**2, np.array([0.0, -1.5, 3.0]))
    check_op(lambda x: x**0, lambda x: x**0, np.array([0.0, -1.5, 3.0]))


@pytest.mark.parametrize("exponent", [0.5, -0.5, 1.5, -1.5, 2, 3, -1, -2])
def test_pow_scalar_exponent_at_signed_zeros_nan_and_inf(exponent):
    """torch takes √x for 0.5 and 1/√x for −0.5 (forward, and the backward's x^(p−1)): at −0.0 and
    −inf those differ from C's pow in sign or in being NaN."""
    x = np.array([-0.0, 0.0, -np.inf, np.inf, np.nan, -1.0, 4.0, 5e-324])
    ours, theirs = dg.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    with np.errstate(all="ignore"):
        out = ours**exponent
        out.backward(dg.tensor(np.full_like(x, 1.5)))
    torch_out = theirs**exponent
    torch_out.backward(torch.full_like(theirs, 1.5))
    pairs = [("output", out.numpy(), torch_out.detach().numpy()), ("gradient", ours.grad, theirs.grad.numpy())]
    for name, a, b in pairs:
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=0, err_msg=name)
        np.testing.assert_array_equal(np.signbit(a[b == 0]), np.signbit(b[b == 0]), err_msg=f"{name}: signs of zeros")


@SETTINGS
@given(shape=shapes(), seed=seeds)
def test_scalars_on_either_side(shape, seed):
    x = away_from_zero(seed, shape)
    for fn in [lambda t: 2.0 * t, lambda t: 1 - t, lambda t: 3.0 / t, lambda t: t / 4 + 1, lambda t: 2.0**t]:
        check_op(fn, fn, x, seed=seed)


@SETTINGS
@given(shape_pair=broadcast_shapes(), seed=seeds)
def test_numpy_arrays_on_either_side(shape_pair, seed):
    shape_x, shape_c = shape_pair
    x, c = away_from_zero(seed, shape_x), randn(seed + 1, shape_c)
    tc = torch.from_numpy(c)
    check_op(lambda t: c - t, lambda t: tc - t, x, seed=seed)
    check_op(lambda t: t * c, lambda t: t * tc, x, seed=seed)
    check_op(lambda t: c / t, lambda t: tc / t, x, seed=seed)


@SETTINGS
@given(shape_triple=broadcast_shapes(num_shapes=3), seed=seeds)
def test_where(shape_triple, seed):
    shape_c, shape_a, shape_b = shape_triple
    condition = np.asarray(rng(seed).random(shape_c) < 0.5)
    tc = torch.from_numpy(condition)
    check_op(
        lambda a, b: dg.where(condition, a, b),
        lambda a, b: torch.where(tc, a, b),
        randn(seed, shape_a),
        randn(seed + 1, shape_b),
        seed=seed,
    )
    check_op(
        lambda a: dg.where(dg.tensor(condition), a, 0.0),
        lambda a: torch.where(tc, a, 0.0),
        randn(seed, shape_a),
        seed=seed,
    )


@SETTINGS
@given(operand_shapes=matmul_shapes(), seed=seeds)
def test_matmul(operand_shapes, seed):
    shape_a, shape_b = operand_shapes
    check_op(lambda a, b: a @ b, torch.matmul, randn(seed, shape_a), randn(seed + 1, shape_b), seed=seed)


@pytest.mark.parametrize(
    "shape_a, shape_b",
    [((3,), (3,)), ((3,), (3, 2)), ((2, 3), (3,)), ((4, 2, 3), (3,)), ((3,), (4, 3, 2)), ((2, 1, 2, 3), (4, 3, 2))],
)
def test_matmul_vector_and_batch_cases(shape_a, shape_b):
    check_op(dg.matmul, torch.matmul, randn(0, shape_a), randn(1, shape_b))
    b = randn(1, shape_b)
    check_op(lambda t: t @ b, lambda t: t @ torch.from_numpy(b), randn(0, shape_a))
    a = randn(0, shape_a)
    check_op(lambda t: a @ t, lambda t: torch.from_numpy(a) @ t, randn(1, shape_b))


# ----------------------------------------------------------------------------
# Unary elementwise ops


UNARY = {
    "exp": (dg.exp, torch.exp, randn),
    "log": (dg.log, torch.log, positive),
    "sqrt": (dg.sqrt, torch.sqrt, positive),
    "abs": (dg.abs, torch.abs, away_from_zero),
    "neg": (lambda x: -x, lambda x: -x, randn),
    "clamp": (lambda x: x.clamp(-0.5, 0.5), lambda x: x.clamp(-0.5, 0.5), away_from_bounds),
    "clamp min": (lambda x: x.clamp(min=-0.5), lambda x: x.clamp(min=-0.5), away_from_bounds),
    "clamp max": (lambda x: dg.clip(x, max=0.5), lambda x: torch.clip(x, max=0.5), away_from_bounds),
}


@pytest.mark.parametrize("op", sorted(UNARY))
@SETTINGS
@given(shape=shapes(), seed=seeds)
def test_unary(op, shape, seed):
    dg_fn, torch_fn, make = UNARY[op]
    check_op(dg_fn, torch_fn, make(seed, shape), seed=seed)


@pytest.mark.parametrize(
    "shapes, sides",
    [
        (((2, 6), (2, 6), (2, 6)), "both"),
        (((2, 6), (6,), (2, 1)), "both"),
        (((2, 6), (6,), ()), "both"),
        (((2, 6), (2, 6), None), "min"),
        (((2, 6), None, (1, 6)), "max"),
    ],
    ids=["same-shape", "broadcast", "0-d-max", "min-only", "max-only"],
)
def test_clamp_with_tensor_bounds(shapes, sides):
    """Ties with either bound, bounds in either order, NaN in x and in the bounds: every input's
    gradient is where PyTorch puts it (x inclusive of the bounds, min below a min < max, max above
    or wherever max < min)."""
    values = np.array([-1.0, 0.0, 0.5, 1.0, 2.0, np.nan])
    x, low, high = (None if s is None else np.resize(np.roll(values, i), s) for i, s in enumerate(shapes))
    given = [a for a in (x, low, high) if a is not None]

    def clamp(t, *bounds, lib):
        low_t = bounds[0] if low is not None else None
        high_t = bounds[-1] if high is not None else None
        return lib.clamp(t, low_t, high_t)

    check_op(lambda *t: clamp(*t, lib=dg), lambda *t: clamp(*t, lib=torch), *given, rtol=1e-12, atol=0)
    number = torch.tensor(1.5 if sides != "max" else -0.5, dtype=torch.float64)  # torch takes no mix
    check_op(  # a number beside a Tensor bound
        lambda t, b: dg.clamp(t, b, 1.5) if sides != "max" else dg.clamp(t, -0.5, b),
        lambda t, b: torch.clamp(t, b, number) if sides != "max" else torch.clamp(t, number, b),
        x,
        given[1],
    )


def test_abs_at_zero_and_clamp_bounds_inclusive():
    x = np.array([-0.5, 0.5, 0.0, -1.0, 1.0, 0.25])
    check_op(dg.abs, torch.abs, x)
    check_op(dg.abs, torch.abs, np.array([np.nan, -0.0, np.inf, -np.inf]))  # sign(NaN) = 0, as torch.sgn
    check_op(lambda t: t.clamp(-0.5, 0.5), lambda t: t.clamp(-0.5, 0.5), x)
    check_op(lambda t: t.clamp(min=-0.5), lambda t: t.clamp(min=-0.5), x)
    check_op(lambda t: t.clamp(max=0.5), lambda t: t.clamp(max=0.5), x)


# ----------------------------------------------------------------------------
# Reductions


def _torch_dims(dim):
    return dim if dim is None or isinstance(dim, int) else list(dim)


@pytest.mark.parametrize("name, torch_name", [("sum", "sum"), ("mean", "mean"), ("max", "amax"), ("min", "amin")])
@SETTINGS
@given(args=reduction_args(), seed=seeds, numpy_style=st.booleans())
def test_reduction(name, torch_name, args, seed, numpy_style):
    shape, dim, keepdim = args
    kwargs = {"axis": dim, "keepdims": keepdim} if numpy_style else {"dim": dim, "keepdim": keepdim}
    check_op(
        lambda x: getattr(x, name)(**kwargs),
        lambda x: getattr(torch, torch_name)(x, dim=_torch_dims(dim), keepdim=keepdim),
        distinct(seed, shape) if name in ("max", "min") else randn(seed, shape),
        seed=seed,
    )


@pytest.mark.parametrize("name, torch_name", [("max", "amax"), ("min", "amin")])
@SETTINGS
@given(args=reduction_args(), seed=seeds)
def test_max_min_share_the_gradient_between_ties(name, torch_name, args, seed):
    shape, dim, keepdim = args
    x = rng(seed).integers(-1, 2, shape).astype(np.float64)  # values in {-1, 0, 1}: many ties
    check_op(
        lambda t: getattr(t, name)(dim=dim, keepdim=keepdim),
        lambda t: getattr(torch, torch_name)(t, dim=_torch_dims(dim), keepdim=keepdim),
        x,
        seed=seed,
    )


def test_max_of_all_elements_matches_torch_max():
    x = np.array([[1.0, 3.0, 3.0], [0.0, 3.0, -2.0]])
    check_op(lambda t: t.max(), torch.max, x)
    check_op(lambda t: dg.min(t), torch.min, x)


CORRECTIONS = [{}, {"correction": 0}, {"correction": 1}, {"correction": 2}, {"unbiased": True}, {"unbiased": False}]


@pytest.mark.parametrize("name", ["var", "std"])
@pytest.mark.parametrize("kwargs", CORRECTIONS, ids=lambda k: ",".join(f"{a}={b}" for a, b in k.items()) or "default")
@SETTINGS
@given(data=st.data(), seed=seeds)
def test_var_std(name, kwargs, data, seed):
    correction = int(kwargs["unbiased"]) if "unbiased" in kwargs else kwargs.get("correction", 1)
    shape, dim, keepdim = data.draw(reduction_args(min_count=max(correction + 1, 2)))
    if "unbiased" in kwargs:
        # torch's unbiased= overload takes no keepdim with dim=None: pass an explicit dim list.
        torch_dim = list(range(len(shape))) if dim is None else _torch_dims(dim)
        torch_kwargs = {"dim": torch_dim, "unbiased": kwargs["unbiased"], "keepdim": keepdim}
    else:
        torch_kwargs = {"dim": _torch_dims(dim), "keepdim": keepdim, "correction": correction}
    check_op(
        lambda x: getattr(x, name)(dim=dim, keepdim=keepdim, **kwargs),
        lambda x: getattr(torch, name)(x, **torch_kwargs),
        distinct(seed, shape),
        seed=seed,
    )


@pytest.mark.parametrize(
    "kwargs, x",
    [
        ({}, [[2.0, 2.0], [2.0, 2.0]]),
        ({"dim": 1}, [[2.0, 2.0, 2.0], [1.0, 4.0, 1.0]]),  # row 0 constant
        ({"dim": 0, "correction": 0}, [[2.0, 1.0, 3.0], [2.0, 4.0, 3.0]]),  # columns 0 and 2 constant
    ],
    ids=["all", "dim1", "dim0-biased"],
)
def test_std_of_constant_values_has_a_zero_gradient(kwargs, x):
    """√var's derivative is infinite at 0; PyTorch masks it there, so a constant feature does not
    turn the whole gradient into NaN (var's own gradient is 0 there already)."""
    check_op(lambda t: t.std(**kwargs), lambda t: torch.std(t, **kwargs), np.array(x))


def test_var_std_default_is_unbiased_like_torch():
    x = randn(0, (3, 4))
    check_op(lambda t: t.var(), torch.var, x)
    check_op(lambda t: dg.std(t, 1), lambda t: torch.std(t, 1), x)


# ----------------------------------------------------------------------------
# Shape ops


@SETTINGS
@given(data=st.data(), seed=seeds)
def test_reshape_view(data, seed):
    shape = data.draw(shapes())
    target = data.draw(reshape_target(shape))
    x = randn(seed, shape)
    check_op(lambda t: t.reshape(target), lambda t: t.reshape(target), x, seed=seed)
    check_op(lambda t: t.view(*target), lambda t: t.view(target), x, seed=seed)


@SETTINGS
@given(data=st.data(), seed=seeds)
def test_transpose_permute_T(data, seed):
    shape = data.draw(shapes(min_dims=1))
    ndim = len(shape)
    d0, d1 = data.draw(st.integers(-ndim, ndim - 1)), data.draw(st.integers(-ndim, ndim - 1))
    perm = tuple(data.draw(st.permutations(range(ndim))))
    x = randn(seed, shape)
    check_op(lambda t: t.transpose(d0, d1), lambda t: t.transpose(d0, d1), x, seed=seed)
    check_op(lambda t: t.permute(*perm), lambda t: t.permute(*perm), x, seed=seed)
    check_op(lambda t: t.T, lambda t: t.permute(*reversed(range(ndim))), x, seed=seed)


@SETTINGS
@given(data=st.data(), seed=seeds)
def test_flatten(data, seed):
    shape = data.draw(shapes())
    x = randn(seed, shape)
    check_op(lambda t: t.flatten(), lambda t: t.flatten(), x, seed=seed)
    if shape:
        start, end = sorted([data.draw(st.integers(0, len(shape) - 1)) for _ in range(2)])
        check_op(lambda t: t.flatten(start, end), lambda t: t.flatten(start, end), x, seed=seed)


@SETTINGS
@given(shape=shapes(max_dims=3), seed=seeds, data=st.data())
def test_expand_broadcast_to(shape, seed, data):
    stretched = tuple(data.draw(st.integers(1, 4)) if s == 1 else s for s in shape)
    target = tuple(data.draw(st.lists(st.integers(1, 3), max_size=2))) + stretched
    x = randn(seed, shape)
    check_op(lambda t: t.expand(*target), lambda t: t.expand(target), x, seed=seed)
    check_op(lambda t: dg.broadcast_to(t, target), lambda t: torch.broadcast_to(t, target), x, seed=seed)


@SETTINGS
@given(shape=st.lists(st.sampled_from([1, 1, 2, 3]), max_size=4).map(tuple), seed=seeds, data=st.data())
def test_squeeze_unsqueeze(shape, seed, data):
    ndim = len(shape)
    x = randn(seed, shape)
    check_op(lambda t: t.squeeze(), lambda t: t.squeeze(), x, seed=seed)
    if ndim:
        dim = data.draw(st.integers(-ndim, ndim - 1))
        check_op(lambda t: t.squeeze(dim), lambda t: t.squeeze(dim), x, seed=seed)
    new = data.draw(st.integers(-ndim - 1, ndim))
    check_op(lambda t: t.unsqueeze(new), lambda t: t.unsqueeze(new), x, seed=seed)


@SETTINGS
@given(data=st.data(), seed=seeds)
def test_getitem_basic(data, seed):
    shape = data.draw(shapes(min_dims=1))
    index = data.draw(slices_for(shape, negative_steps=False))  # torch has no negative steps
    check_op(lambda t: t[index], lambda t: t[index], randn(seed, shape), seed=seed)


@SETTINGS
@given(shape=shapes(min_dims=1), seed=seeds, n=st.integers(1, 5))
def test_getitem_integer_arrays_with_repeats(shape, seed, n):
    r = rng(seed)
    index = r.integers(-shape[0], shape[0], n)
    index = np.concatenate([index, index[:1]])
    ti = torch.from_numpy(index)
    x = randn(seed, shape)
    check_op(lambda t: t[index], lambda t: t[ti], x, seed=seed)
    check_op(lambda t: t[index.tolist()], lambda t: t[index.tolist()], x, seed=seed)
    if len(shape) >= 2:
        rows, cols = r.integers(0, shape[0], (2, 3)), r.integers(0, shape[1], (1, 3))
        tr, tc = torch.from_numpy(rows), torch.from_numpy(cols)
        check_op(lambda t: t[rows, cols], lambda t: t[tr, tc], x, seed=seed)
        check_op(lambda t: t[index, 1:], lambda t: t[ti, 1:], x, seed=seed)


@SETTINGS
@given(shape=shapes(min_dims=1), seed=seeds)
def test_getitem_boolean_masks(shape, seed):
    r = rng(seed)
    full, rows = r.random(shape) < 0.5, r.random(shape[0]) < 0.5
    tf, tr = torch.from_numpy(full), torch.from_numpy(rows)
    x = randn(seed, shape)
    check_op(lambda t: t[full], lambda t: t[tf], x, seed=seed)
    check_op(lambda t: t[dg.tensor(rows)], lambda t: t[tr], x, seed=seed)


@SETTINGS
@given(shape=shapes(min_dims=1), seed=seeds, data=st.data())
def test_concatenate_stack(shape, seed, data):
    ndim = len(shape)
    dim = data.draw(st.integers(-ndim, ndim - 1))
    sizes = data.draw(st.lists(st.integers(1, 3), min_size=1, max_size=3))
    arrays = []
    for i, size in enumerate(sizes):
        s = list(shape)
        s[dim] = size
        arrays.append(randn(seed + i, tuple(s)))
    check_op(lambda *ts: dg.concatenate(ts, dim=dim), lambda *ts: torch.cat(ts, dim=dim), *arrays, seed=seed)
    new = data.draw(st.integers(-ndim - 1, ndim))
    same = [randn(seed + i, shape) for i in range(len(sizes))]
    check_op(lambda *ts: dg.stack(ts, dim=new), lambda *ts: torch.stack(ts, dim=new), *same, seed=seed)


@SETTINGS
@given(shape=shapes(min_dims=1), seed=seeds, data=st.data(), value=st.sampled_from([0.0, 1.5]))
def test_pad(shape, seed, data, value):
    pairs = [(data.draw(st.integers(0, 2)), data.draw(st.integers(0, 2))) for _ in shape]
    flat = tuple(w for pair in reversed(pairs) for w in pair)  # torch: from the last dim
    check_op(
        lambda t: dg.pad(t, pairs, value=value), lambda t: F.pad(t, flat, value=value), randn(seed, shape), seed=seed
    )


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
@pytest.mark.parametrize(
    "shape, flat",
    [((2, 3, 5), (2, 4)), ((2, 2, 4, 5), (1, 3, 3, 0)), ((1, 2, 3, 4, 5), (0, 2, 1, 1, 2, 0)), ((2, 3, 5), (0, 0))],
    ids=["last-dim", "last-2-dims", "last-3-dims", "nothing"],
)
def test_pad_modes(mode, shape, flat):
    """F.pad's reflect (widths under the size), replicate and circular (widths up to the size)."""
    if mode == "reflect":
        flat = tuple(min(w, shape[-1 - i // 2] - 1) for i, w in enumerate(flat))
    check_op(lambda t: dgF.pad(t, flat, mode=mode), lambda t: F.pad(t, flat, mode=mode), randn(0, shape))


@SETTINGS
@given(shape=shapes(), seed=seeds)
def test_cast_and_to(shape, seed):
    x = randn(seed, shape)
    check_op(lambda t: t.to(dg.float32).to(dg.float64), lambda t: t.to(torch.float32).to(torch.float64), x, seed=seed)
    check_op(lambda t: t.float().double() * t, lambda t: t.float().double() * t, x, seed=seed)


# ----------------------------------------------------------------------------
# Result dtypes of integer and bool tensors meeting scalars (PyTorch's, not NumPy's float64)

INTEGER_SCALAR_CASES = {
    "int * float": lambda x: x * 2.5,
    "float * int": lambda x: 2.5 * x,
    "int - float": lambda x: x - 0.5,
    "float - int": lambda x: 1.5 - x,
    "int + numpy float64": lambda x: x + np.float64(1.5),
    "int * int": lambda x: x * 3,
    "int / int": lambda x: x / 2,
    "int divides int": lambda x: 2 / x,
    "int / int tensor": lambda x: x / x,
    "int / float": lambda x: x / 2.0,
    "bool * float": lambda x: (x > 1) * 1.5,
    "bool + int": lambda x: (x > 1) + 2,
    "int ** float": lambda x: x**0.5,
    "float ** int": lambda x: 2.5**x,
    "int ** int": lambda x: x**2,
    "exp of int": lambda x: x.exp(),
    "log of int": lambda x: x.log(),
    "sqrt of int": lambda x: x.sqrt(),
    "exp of bool": lambda x: (x > 1).exp(),
    "sigmoid of int": lambda x: x.sigmoid(),
    "tanh of int": lambda x: x.tanh(),
}


@pytest.mark.parametrize("case", list(INTEGER_SCALAR_CASES))
def test_integer_tensors_meeting_scalars_take_pytorchs_dtype(case):
    fn = INTEGER_SCALAR_CASES[case]
    ours, theirs = fn(dg.tensor([1, 2, 3])), fn(torch.tensor([1, 2, 3]))
    assert str(ours.dtype) == str(theirs.dtype).removeprefix("torch."), (ours.dtype, theirs.dtype)
    np.testing.assert_allclose(ours.data, theirs.numpy(), rtol=1e-7)


# ----------------------------------------------------------------------------
# Tensors of different dtypes meeting each other: float32 data stays float32 (NumPy would widen to float64)

MIXED_TENSOR_CASES = {
    "float32 + int64": lambda f, i, d0: f + i,
    "int64 - float32": lambda f, i, d0: i - f,
    "float32 * bool": lambda f, i, d0: f * (i > 1),
    "float32 / int64": lambda f, i, d0: f / i,
    "int64 / float32": lambda f, i, d0: i / f,
    "float32 ** int64": lambda f, i, d0: f**i,
    "int64 ** float32": lambda f, i, d0: i**f,
    "maximum(float32, int64)": lambda f, i, d0: f.maximum(i),
    "where(float32, int64)": lambda f, i, d0: (
        dg.where(f.data > 1.5, f, i) if isinstance(f, dg.Tensor) else torch.where(f > 1.5, f, i)
    ),
    "float32 + float64 0-d": lambda f, i, d0: f + d0,
    "float64 0-d * float32": lambda f, i, d0: d0 * f,
    "int64 + float64 0-d": lambda f, i, d0: i + d0,
    "float32 + float64": lambda f, i, d0: f + d0.reshape(1).expand(3),
}


@pytest.mark.parametrize("case", list(MIXED_TENSOR_CASES))
def test_mixed_dtype_tensors_promote_as_pytorch(case):
    fn = MIXED_TENSOR_CASES[case]
    values, integers = np.array([0.5, 1.5, 2.5]), np.array([1, 2, 3])
    ours_in = (
        dg.tensor(values.astype(np.float32), requires_grad=True),
        dg.tensor(integers),
        dg.tensor(np.float64(2.0), requires_grad=True),
    )
    theirs_in = (
        torch.tensor(values, dtype=torch.float32, requires_grad=True),
        torch.tensor(integers),
        torch.tensor(2.0, dtype=torch.float64, requires_grad=True),
    )
    ours, theirs = fn(*ours_in), fn(*theirs_in)
    assert str(ours.dtype) == str(theirs.dtype).removeprefix("torch."), (ours.dtype, theirs.dtype)
    np.testing.assert_allclose(ours.data, theirs.detach().numpy(), rtol=1e-6)
    ours.sum().backward()
    theirs.sum().backward()
    for x, tx in zip(ours_in, theirs_in):
        if tx.grad is None:
            assert x.grad is None
            continue
        assert x.grad.dtype == x.dtype, (x.grad.dtype, x.dtype)
        np.testing.assert_allclose(x.grad, tx.grad.numpy(), rtol=1e-6)
