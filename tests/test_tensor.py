"""The engine: Tensor, graph recording, backward, grad modes, dtype rules."""

import gc
import inspect
import weakref

import numpy as np
import pytest

import deepgrad as dg


def leaf(values, dtype=dg.float64):
    return dg.tensor(np.asarray(values, dtype=dtype), requires_grad=True)


# ----------------------------------------------------------------------------
# Gradient accumulation and ownership


def test_gradients_accumulate_across_backward_calls():
    x = leaf([1.0, 2.0, 3.0])
    (x * x).sum().backward()
    (x * 3).sum().backward()
    np.testing.assert_array_equal(x.grad, 2 * x.data + 3)
    x.grad = None
    (x * 3).sum().backward()
    np.testing.assert_array_equal(x.grad, [3.0, 3.0, 3.0])


def test_leaves_fed_the_same_gradient_array_never_alias():
    a, b = leaf([1.0, 2.0]), leaf([3.0, 4.0])
    (a + b).sum().backward()  # Add's backward hands the very same array to both
    (a + b).sum().backward()
    assert not np.shares_memory(a.grad, b.grad)
    np.testing.assert_array_equal(a.grad, [2.0, 2.0])
    np.testing.assert_array_equal(b.grad, [2.0, 2.0])
    a.grad += 10
    np.testing.assert_array_equal(b.grad, [2.0, 2.0])


def test_leaf_grads_never_alias_the_upstream_gradient():
    a, b = leaf([1.0, 2.0]), leaf([3.0, 4.0])
    upstream = np.array([1.0, -1.0])
    (a + b).backward(upstream)
    (a + b).backward(upstream)
    np.testing.assert_array_equal(upstream, [1.0, -1.0])
    for g in (a.grad, b.grad):
        assert not np.shares_memory(g, upstream)
        np.testing.assert_array_equal(g, [2.0, -2.0])
    x = leaf([1.0, 2.0])
    x.backward(upstream)  # backward from a leaf
    x.grad *= 3
    np.testing.assert_array_equal(upstream, [1.0, -1.0])


def test_retained_root_grad_and_leaf_grads_are_independent():
    a, b = leaf(1.0), leaf(2.0)
    y = a + b
    y.retain_grad()
    y.backward(retain_graph=True)
    y.backward()
    assert a.grad == 2.0 and b.grad == 2.0 and y.grad == 2.0
    assert not np.shares_memory(a.grad, y.grad) and not np.shares_memory(b.grad, y.grad)


def test_retained_intermediate_grad_and_leaf_grads_are_independent():
    a = leaf([1.0, 2.0])
    h = a * 1.0
    h.retain_grad()
    y = h + h
    y.backward(np.ones(2), retain_graph=True)
    y.backward(np.ones(2))
    np.testing.assert_array_equal(h.grad, [4.0, 4.0])
    np.testing.assert_array_equal(a.grad, [4.0, 4.0])
    assert not np.shares_memory(a.grad, h.grad)


def test_backward_accepts_a_tensor_or_array_and_casts_it_to_the_tensor_dtype():
    x = leaf([1.0, 2.0], dtype=dg.float32)
    (x * 2).backward(dg.tensor([1.0, 1.0]))
    (x * 2).backward(np.array([1.0, 1.0], dtype=np.float64))
    assert x.grad.dtype == dg.float32
    np.testing.assert_array_equal(x.grad, [4.0, 4.0])


# ----------------------------------------------------------------------------
# Graph structure


def test_a_10000_op_chain_backpropagates_without_recursion():
    x = leaf(1.0)
    y = x
    for _ in range(10_000):
        y = y * 1.0001
    y.backward()
    np.testing.assert_allclose(x.grad, 1.0001**10_000, rtol=1e-9)


def test_a_10000_op_graph_kept_with_retain_graph_is_released_cleanly():
    x = leaf([1.0, 2.0])
    y = x
    for _ in range(10_000):
        y = y + 1.0
    y.sum().backward(retain_graph=True)
    ref = weakref.ref(y)
    del y
    gc.collect()
    assert ref() is None
    np.testing.assert_array_equal(x.grad, [1.0, 1.0])


def test_diamond_graph_gets_the_summed_gradient():
    x = leaf([1.0, -2.0, 3.0])
    a, b = x * 2, x * 3
    (a * b).sum().backward()  # 6x² -> 12x
    np.testing.assert_allclose(x.grad, 12 * x.data, rtol=1e-12)


class CountingDouble(dg.Function):
    """out = 2x, counting its backward calls."""

    calls = 0

    def forward(self, x):
        return 2 * x

    def backward(self, grad):
        CountingDouble.calls += 1
        return (2 * grad,)


def test_a_reused_node_is_differentiated_once_with_the_sum_of_its_gradients():
    CountingDouble.calls = 0
    x = leaf([1.0, 2.0])
    h = CountingDouble()(x)
    out = h + h * h + h.exp().sum() + h[0]
    out.sum().backward()
    assert CountingDouble.calls == 1
    hv = 2 * x.data
    expected_dh = 1 + 2 * hv + 2 * np.exp(hv) + np.array([2.0, 0.0])  # the scalars are added to both elements
    np.testing.assert_allclose(x.grad, 2 * expected_dh, rtol=1e-12)
    y = leaf([1.0, 2.0])
    (y * y + y).sum().backward()
    np.testing.assert_allclose(y.grad, 2 * y.data + 1, rtol=1e-12)


class FirstOnly(dg.Function):
    """out = a + b, but declares no gradient for b (returns None)."""

    def forward(self, a, b):
        return a + b

    def backward(self, grad):
        return grad, None


def test_a_none_gradient_counts_as_zero():
    a = leaf([1.0, 2.0])
    y = a * 3  # consumed by FirstOnly (which gives it None) and by +
    (FirstOnly()(a, y) + y).sum().backward()
    np.testing.assert_array_equal(a.grad, [4.0, 4.0])
    x, w = leaf([1.0]), leaf([5.0])
    FirstOnly()(w, x * 2).sum().backward()  # x's only path gives None: nothing reaches it
    assert x.grad is None
    np.testing.assert_array_equal(w.grad, [1.0])


def test_the_graph_is_freed_after_backward():
    x = leaf([1.0, 2.0])
    h = x * 2
    ref = weakref.ref(h)
    y = (h * 3).sum()
    del h
    gc.collect()
    assert ref() is not None  # kept alive by the graph
    y.backward()
    gc.collect()
    assert ref() is None
    with pytest.raises(RuntimeError, match="retain_graph"):
        y.backward()


def test_retain_graph_allows_a_second_backward():
    x = leaf([1.0, 2.0])
    y = (x * x).sum()
    y.backward(retain_graph=True)
    first = x.grad.copy()
    y.backward()
    np.testing.assert_array_equal(x.grad, 2 * first)
    with pytest.raises(RuntimeError, match="retain_graph"):
        y.backward()


def test_backward_uses_the_values_saved_at_forward_time():
    x, w = leaf([1.0, 2.0]), leaf([3.0, 4.0])
    y = (x * w).sum()
    x.data = np.array([10.0, 20.0])  # the user rebinds x's data after the op
    y.backward()
    np.testing.assert_array_equal(w.grad, [1.0, 2.0])
    np.testing.assert_array_equal(x.grad, [3.0, 4.0])


def test_forward_and_backward_do_not_mutate_inputs_or_saved_values():
    rng = np.random.default_rng(0)
    x0, w0 = rng.standard_normal((3, 4)), rng.standard_normal((4, 2))
    x, w = leaf(x0.copy()), leaf(w0.copy())
    h = (x @ w).exp() / (1 + (x * x).sum(dim=1, keepdim=True))
    out = (h.max(dim=0) + h.var() + h[[0, 0, 2]].sum() + dg.maximum(h, 0.5).mean()).sum()
    out.backward(retain_graph=True)
    first = x.grad.copy(), w.grad.copy()
    x.grad = w.grad = None
    out.backward()
    np.testing.assert_array_equal(x.data, x0)
    np.testing.assert_array_equal(w.data, w0)
    np.testing.assert_array_equal(x.grad, first[0])
    np.testing.assert_array_equal(w.grad, first[1])


# ----------------------------------------------------------------------------
# backward() preconditions


def test_backward_on_a_non_scalar_needs_a_grad():
    y = leaf([1.0, 2.0]) * 2
    with pytest.raises(RuntimeError, match=r"one-element.*\(2,\)"):
        y.backward()
    leaf([[3.0]]).sum(dim=0).backward()  # one element, any shape: fine


def test_backward_with_a_grad_of_the_wrong_shape_raises():
    y = leaf([1.0, 2.0]) * 2
    with pytest.raises(ValueError, match=r"\(3,\).*\(2,\)"):
        y.backward(np.ones(3))
    with pytest.raises(ValueError, match="shape"):
        y.backward(np.ones((2, 1)))  # broadcastable is not enough


def test_backward_from_a_tensor_that_does_not_require_grad_raises():
    with pytest.raises(RuntimeError, match="does not require grad"):
        dg.tensor([1.0, 2.0]).sum().backward()


# ----------------------------------------------------------------------------
# Grad modes


def test_no_grad_context_builds_no_graph():
    x = leaf([1.0, 2.0])
    with dg.no_grad():
        assert not dg.is_grad_enabled()
        y = x * 2 + 1
    assert dg.is_grad_enabled()
    assert not y.requires_grad and y.grad_fn is None and y.is_leaf


def test_no_grad_decorator_builds_no_graph_and_restores_the_mode():
    @dg.no_grad()
    def double(t, depth=0):
        assert not dg.is_grad_enabled()
        return double(t, depth + 1) if depth < 2 else t * 2

    y = double(leaf([1.0]))
    assert not y.requires_grad and y.grad_fn is None
    assert dg.is_grad_enabled()


def test_no_grad_restores_the_mode_after_an_exception():
    with pytest.raises(KeyError):
        with dg.no_grad():
            raise KeyError
    assert dg.is_grad_enabled()


def test_enable_grad_inside_no_grad():
    x = leaf([1.0, 2.0])
    with dg.no_grad():
        with dg.enable_grad():
            y = x * 2
        z = x * 2
        assert not dg.is_grad_enabled()
    assert y.requires_grad and y.grad_fn is not None
    assert not z.requires_grad
    y.sum().backward()
    np.testing.assert_array_equal(x.grad, [2.0, 2.0])


def test_set_grad_enabled_as_call_and_as_context():
    x = leaf([1.0])
    with dg.set_grad_enabled(False):
        assert not (x * 2).requires_grad
    assert dg.is_grad_enabled()
    dg.set_grad_enabled(False)
    try:
        assert not (x * 2).requires_grad
        with dg.set_grad_enabled(True):
            assert (x * 2).requires_grad
        assert not dg.is_grad_enabled()
    finally:
        dg.set_grad_enabled(True)
    assert (x * 2).requires_grad


# ----------------------------------------------------------------------------
# Tensor state: leaves, retain_grad, detach, requires_grad_


def test_leaves_grad_fn_and_retain_grad():
    x = leaf([1.0, 2.0])
    h = x * 3
    kept = h.exp()
    kept.retain_grad()
    assert x.is_leaf and x.grad_fn is None
    assert not h.is_leaf and type(h.grad_fn).__name__ == "Mul"
    kept.sum().backward()
    assert h.grad is None  # a non-leaf keeps no grad unless asked
    np.testing.assert_allclose(kept.grad, [1.0, 1.0])
    np.testing.assert_allclose(x.grad, 3 * np.exp(3 * x.data), rtol=1e-12)
    with pytest.raises(RuntimeError, match="does not require grad"):
        dg.tensor([1.0]).retain_grad()


def test_detach_shares_data_and_stops_gradients():
    x = leaf([1.0, 2.0])
    h = x * 2
    d = h.detach()
    assert not d.requires_grad and d.grad_fn is None
    assert np.shares_memory(d.data, h.data)
    (h * d).sum().backward()  # d is a constant: d/dx (2x · c) = 2c
    np.testing.assert_array_equal(x.grad, 2 * d.data)


def test_requires_grad_():
    x = dg.tensor([1.0, 2.0])
    assert x.requires_grad_() is x and x.requires_grad
    x.requires_grad_(False)
    assert not x.requires_grad
    with pytest.raises(TypeError, match="int64"):
        dg.tensor([1, 2]).requires_grad_()
    with pytest.raises(TypeError, match="bool"):
        dg.tensor([True]).requires_grad_()
    with pytest.raises(RuntimeError, match="non-leaf"):
        (leaf([1.0]) * 2).requires_grad_(False)


# ----------------------------------------------------------------------------
# dtype rules


@pytest.mark.parametrize(
    "data, dtype",
    [
        (np.zeros(3, dtype=np.float64), dg.float64),
        (np.zeros(3, dtype=np.float32), dg.float32),
        (np.float64(1.5), dg.float64),
        (1.5, dg.float32),
        ([1.0, 2.0], dg.float32),
        ([1, 2.5], dg.float32),
        ([[1, 2], [3, 4]], dg.int64),
        (3, dg.int64),
        (np.arange(3, dtype=np.int32), dg.int64),
        (np.arange(3, dtype=np.uint8), dg.int64),
        ([True, False], dg.bool_),
    ],
)
def test_tensor_dtype_rules(data, dtype):
    t = dg.tensor(data)
    assert t.dtype == dtype
    np.testing.assert_array_equal(t.data, np.asarray(data))


@pytest.mark.parametrize("data", ["abc", ["a", "b"], [object()], np.array([1 + 2j]), [1j], None])
def test_tensor_refuses_strings_objects_and_complex(data):
    with pytest.raises(TypeError, match="tensor"):
        dg.tensor(data)


def test_tensor_copies_its_data_and_honours_dtype():
    source = np.array([1.0, 2.0])
    t = dg.tensor(source)
    source[0] = 100.0
    assert t.data[0] == 1.0
    assert dg.tensor([1, 2], dtype=dg.float64).dtype == dg.float64
    assert dg.tensor(np.ones(2), dtype=np.float32).dtype == dg.float32


def test_default_dtype_applies_to_python_floats():
    dg.set_default_dtype(dg.float64)
    assert dg.tensor([1.0]).dtype == dg.float64
    assert dg.randn(2).dtype == dg.float64
    dg.set_default_dtype(dg.float32)
    assert dg.tensor([1.0]).dtype == dg.float32
    with pytest.raises(TypeError, match="floating"):
        dg.set_default_dtype(dg.int64)


@pytest.mark.parametrize(
    "fn",
    [
        lambda x: x * 0.5,
        lambda x: 0.5 * x,
        lambda x: x * np.float64(0.5),
        lambda x: np.float64(0.5) * x,
        lambda x: x + 1,
        lambda x: 1 - x,
        lambda x: x / 3,
        lambda x: 3.0 / x,
        lambda x: x**2,
        lambda x: x ** np.float64(0.5),
        lambda x: 2.0**x,
        lambda x: x * np.array(0.5),
        lambda x: dg.maximum(x, 0.0),
        lambda x: dg.minimum(0.0, x),
        lambda x: dg.where(x.data > 1.5, x, 0.0),
        lambda x: x.clamp(0.0, 1.5),
        lambda x: x.mean(),
        lambda x: x.var(),
        lambda x: x.std(),
    ],
)
def test_python_scalars_keep_float32(fn):
    x = dg.tensor([1.0, 2.0], requires_grad=True)
    out = fn(x)
    assert out.dtype == dg.float32
    out.sum().backward()
    assert x.grad.dtype == dg.float32


@pytest.mark.parametrize(
    "fn",
    [
        lambda f, i: f + i,
        lambda f, i: i * f,
        lambda f, i: f / i,
        lambda f, i: i - f,
        lambda f, i: f**i,
        lambda f, i: dg.maximum(f, i),
        lambda f, i: f * (i > 1),
        lambda f, i: dg.where(i.data > 1, f, i),
        lambda f, i: f + dg.tensor(np.float64(2.0)),
        lambda f, i: i.exp() * f,
        lambda f, i: i**0.5 + f,
    ],
)
def test_float32_meeting_integers_or_a_float64_0d_tensor_stays_float32(fn):
    f, i = dg.tensor([0.5, 1.5, 2.5], requires_grad=True), dg.tensor([1, 2, 3])
    out = fn(f, i)
    assert out.dtype == dg.float32
    out.sum().backward()
    assert f.grad.dtype == dg.float32


def test_float_tensors_of_different_dtypes_promote():
    a = dg.tensor(np.ones(2, dtype=np.float32), requires_grad=True)
    b = dg.tensor(np.ones(2, dtype=np.float64), requires_grad=True)
    out = a * b
    assert out.dtype == dg.float64
    out.sum().backward()
    assert a.grad.dtype == dg.float32 and b.grad.dtype == dg.float64


# ----------------------------------------------------------------------------
# Python protocol and conversion


def test_item_numpy_len_tolist():
    t = dg.tensor([[1.0, 2.0], [3.0, 4.0]])
    assert dg.tensor([2.5]).item() == 2.5 and isinstance(dg.tensor(2.5).item(), float)
    assert isinstance(dg.tensor(3).item(), int)
    with pytest.raises(ValueError, match="one-element"):
        t.item()
    array = t.numpy()
    assert isinstance(array, np.ndarray) and np.shares_memory(array, t.data)
    assert len(t) == 2 and len(dg.zeros(5, 3)) == 5
    with pytest.raises(TypeError, match="0-d"):
        len(dg.tensor(1.0))
    assert t.tolist() == [[1.0, 2.0], [3.0, 4.0]]
    assert float(dg.tensor(1.5)) == 1.5 and int(dg.tensor(7)) == 7
    assert bool(dg.tensor([1.0])) and not bool(dg.tensor(0.0))
    with pytest.raises(ValueError, match="ambiguous"):
        bool(t)
    assert t.shape == (2, 2) and t.ndim == 2 and t.dim() == 2 and t.size == 4 and t.numel() == 4
    np.testing.assert_array_equal(np.asarray(t), t.data)


def test_repr():
    assert repr(dg.tensor([1.0, 2.0])) == "tensor([1., 2.])"
    assert repr(dg.tensor([1, 2])) == "tensor([1, 2])"
    assert "dtype=float64" in repr(dg.tensor(np.array([1.0])))
    assert "requires_grad=True" in repr(dg.tensor([1.0], requires_grad=True))
    r = repr(dg.tensor([1.0], requires_grad=True) * 2)
    assert r.startswith("tensor([2.]") and "grad_fn=<Mul>" in r


def test_comparisons_return_bool_tensors():
    a, b = dg.tensor([1.0, 2.0, 3.0], requires_grad=True), dg.tensor([3.0, 2.0, 1.0])
    cases = {
        "<": (a < b, [True, False, False]),
        "<=": (a <= b, [True, True, False]),
        ">": (a > b, [False, False, True]),
        ">=": (a >= b, [False, True, True]),
        "==": (a == b, [False, True, False]),
        "!=": (a != b, [True, False, True]),
        "scalar": (a > 1.5, [False, True, True]),
        "array": (a == np.array([1.0, 0.0, 3.0]), [True, False, True]),
    }
    for name, (result, expected) in cases.items():
        assert isinstance(result, dg.Tensor), name
        assert result.dtype == dg.bool_ and not result.requires_grad, name
        np.testing.assert_array_equal(result.data, expected, err_msg=name)
    assert len({a, b}) == 2  # defining == keeps tensors hashable


# Each Tensor method that takes arguments, and the ops function it calls: the same arguments, defaults included.
METHOD_FUNCTIONS = {
    "clamp": dg.clamp,
    "clip": dg.clip,
    "maximum": dg.maximum,
    "minimum": dg.minimum,
    "matmul": dg.matmul,
    "pow": dg.pow,
    "sum": dg.sum,
    "mean": dg.mean,
    "max": dg.max,
    "min": dg.min,
    "var": dg.var,
    "std": dg.std,
    "argmax": dg.argmax,
    "argmin": dg.argmin,
    "reshape": dg.reshape,
    "view": dg.reshape,
    "permute": dg.permute,
    "transpose": dg.transpose,
    "flatten": dg.flatten,
    "expand": dg.expand,
    "broadcast_to": dg.broadcast_to,
    "squeeze": dg.squeeze,
    "unsqueeze": dg.unsqueeze,
    "softmax": dg.softmax,
    "log_softmax": dg.ops.log_softmax,
    "to": dg.ops.device.to,
    "astype": dg.cast,
}


@pytest.mark.parametrize("method", sorted(METHOD_FUNCTIONS))
def test_methods_are_declared_in_the_class_with_their_functions_arguments(method):
    declared = inspect.getattr_static(dg.Tensor, method)
    assert inspect.isfunction(declared), method  # in the class body, visible to readers and type checkers

    def arguments(function):
        return [(p.name, p.kind, p.default) for p in list(inspect.signature(function).parameters.values())[1:]]

    assert arguments(declared) == arguments(METHOD_FUNCTIONS[method]), method


def test_operators_and_properties_are_declared_in_the_class():
    for name in (
        "__add__",
        "__radd__",
        "__rsub__",
        "__rtruediv__",
        "__rpow__",
        "__rmatmul__",
        "__neg__",
        "__abs__",
        "__getitem__",
        "__lt__",
        "__eq__",
        "__ne__",
        "exp",
        "relu",
        "cpu",
        "cuda",
        "float",
        "double",
    ):
        assert name in vars(dg.Tensor), name
    assert isinstance(vars(dg.Tensor)["T"], property) and isinstance(vars(dg.Tensor)["device"], property)
    assert dg.Tensor.__hash__ is object.__hash__
    x = dg.tensor([[1.0, 2.0]])
    assert x.T.shape == (2, 1) and x.device is dg.backend.CPU and x.view(2).shape == (2,)
    assert x.float() is x and x.double().dtype == dg.float64 and x.astype(dg.int64).dtype == dg.int64


def test_tensors_and_numpy_arrays_combine_into_tensors():
    x = dg.tensor(np.ones((2, 2)), requires_grad=True)
    c = np.full((2, 2), 2.0)
    for out in (c + x, c - x, c * x, c / x, c @ x, c**x):
        assert isinstance(out, dg.Tensor) and out.requires_grad


# ----------------------------------------------------------------------------
# Randomness


def test_manual_seed_makes_randn_and_rand_reproducible():
    dg.manual_seed(123)
    a, u = dg.randn(3, 4), dg.rand(2)
    dg.manual_seed(123)
    b, v = dg.randn(3, 4), dg.rand(2)
    np.testing.assert_array_equal(a.data, b.data)
    np.testing.assert_array_equal(u.data, v.data)
    assert a.dtype == dg.float32 and a.shape == (3, 4)
    dg.manual_seed(124)
    assert not np.array_equal(dg.randn(3, 4).data, a.data)


def test_rng_state_round_trips_and_explicit_generators_are_independent():
    dg.manual_seed(0)
    state = dg.get_rng_state()
    first = dg.randn(5).data
    dg.set_rng_state(state)
    np.testing.assert_array_equal(dg.randn(5).data, first)
    g1, g2 = np.random.default_rng(7), np.random.default_rng(7)
    np.testing.assert_array_equal(dg.randn(4, generator=g1).data, dg.randn(4, generator=g2).data)
    with pytest.raises(ValueError, match="seed"):
        dg.manual_seed(-1)


def test_factories():
    assert dg.zeros(2, 3).shape == (2, 3) and dg.zeros((2, 3)).dtype == dg.float32
    assert dg.ones(2, dtype=dg.float64).dtype == dg.float64
    assert dg.full((2,), 7.0).tolist() == [7.0, 7.0]
    assert dg.arange(3).dtype == dg.int64 and dg.arange(0.0, 1.0, 0.5).dtype == dg.float32
    z = dg.zeros_like(dg.ones(2, 2, dtype=dg.float64), requires_grad=True)
    assert z.dtype == dg.float64 and z.requires_grad and z.is_leaf
    with pytest.raises(TypeError, match="int64"):
        dg.zeros(2, dtype=dg.int64, requires_grad=True)
