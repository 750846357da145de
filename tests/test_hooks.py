"""Hooks with PyTorch's names and semantics: Tensor.register_hook / retain_grad and a Module's full
backward hooks, on small cases whose gradients are worked out by hand."""

import numpy as np
import pytest

import deepgrad as dg
import deepgrad.functional as F
import deepgrad.nn as nn


def t64(values, requires_grad=True):
    return dg.tensor(np.asarray(values, dtype=np.float64), requires_grad=requires_grad)


# ----------------------------------------------------------------------------
# Tensor.register_hook


def test_a_non_leaf_hook_sees_the_total_gradient_once_and_can_replace_it():
    x = t64([1.0, 2.0])
    y = x * 3.0  # used twice below: dL/dy = 2·y + 1
    seen = []
    y.register_hook(lambda g: seen.append(g.copy()))
    y.register_hook(lambda g: g * 10)  # then doubled... times ten
    ((y * y).sum() + y.sum()).backward()
    np.testing.assert_array_equal(seen[0], [7.0, 13.0])
    assert len(seen) == 1
    np.testing.assert_array_equal(x.grad, [210.0, 390.0])  # dL/dx = 3 · 10 · (2y + 1)


def test_a_leaf_hook_sees_the_total_before_it_is_added_to_grad():
    x = t64([1.0, -2.0])
    seen = []
    handle = x.register_hook(lambda g: seen.append(g.copy()) or -g)
    (x * x + x).sum().backward()  # dL/dx = 2x + 1, from two uses
    np.testing.assert_array_equal(seen[0], [3.0, -3.0])
    np.testing.assert_array_equal(x.grad, [-3.0, 3.0])
    handle.remove()
    x.grad = None
    (x * x).sum().backward()
    assert len(seen) == 1
    np.testing.assert_array_equal(x.grad, [2.0, -4.0])


def test_hooks_chain_in_order_and_retain_grad_keeps_the_hooked_gradient():
    x = t64([1.0, 2.0])
    y = x * 2.0
    y.retain_grad()
    y.register_hook(lambda g: g + 1)
    y.register_hook(lambda g: g * 3)
    y.sum().backward()
    np.testing.assert_array_equal(y.grad, [6.0, 6.0])  # (1 + 1) · 3
    np.testing.assert_array_equal(x.grad, [12.0, 12.0])


def test_a_hook_on_the_root_and_on_a_leaf_root():
    x = t64([1.0, 2.0])
    y = (x * x).sum()
    y.register_hook(lambda g: g * 0.5)
    y.backward()
    np.testing.assert_array_equal(x.grad, [1.0, 2.0])
    leaf = t64([4.0])
    leaf.register_hook(lambda g: g + 1)
    leaf.backward(np.array([2.0]))
    np.testing.assert_array_equal(leaf.grad, [3.0])


def test_handles_remove_and_work_as_context_managers():
    x = t64([1.0])
    calls = []
    with x.register_hook(lambda g: calls.append(1)):
        (x * 2).sum().backward()
    (x * 2).sum().backward()
    assert calls == [1]
    assert x._hooks.hooks == {}


def test_hooks_compose_with_retain_graph_no_grad_and_fused_ops():
    rng = np.random.default_rng(0)
    x = dg.tensor(rng.standard_normal((4, 3)), requires_grad=True)
    layer = nn.Linear(3, 5).double()
    norm = nn.BatchNorm1d(5).double()
    hidden = norm(layer(x))
    calls = []
    hidden.register_hook(lambda g: calls.append(g.shape))
    loss = F.cross_entropy(hidden, np.array([0, 1, 2, 3]))
    loss.backward(retain_graph=True)
    loss.backward()
    assert calls == [(4, 5), (4, 5)]
    with dg.no_grad():
        layer(x)  # a hook on a tensor of the earlier graph is not called by anything built without grad
    assert len(calls) == 2
    # a hook that zeroes the gradient of the fused op's output cuts everything before it
    fresh = layer(x)
    fresh.register_hook(lambda g: np.zeros_like(g))
    layer.weight.grad = None
    F.cross_entropy(norm(fresh), np.array([0, 1, 2, 3])).backward()
    np.testing.assert_array_equal(layer.weight.grad, np.zeros((5, 3)))


def test_bad_hooks_are_clear_errors():
    with pytest.raises(RuntimeError, match="cannot register a hook on a tensor that does not require grad"):
        dg.tensor([1.0]).register_hook(print)

    def explode(grad):
        raise ValueError("boom")

    x = t64([1.0, 2.0])
    y = x * 2
    y.register_hook(explode)
    with pytest.raises(
        RuntimeError, match=r"gradient hook .*explode of a tensor of shape \(2,\) raised ValueError: boom"
    ):
        y.sum().backward()
    z = t64([1.0, 2.0])
    z.register_hook(lambda g: g[:1])
    with pytest.raises(RuntimeError, match=r"returned \(1,\) for a gradient of shape \(2,\)"):
        (z * 2).sum().backward()


# ----------------------------------------------------------------------------
# Module full backward hooks


def linear_case():
    layer = nn.Linear(2, 3).double()
    layer.weight.data[...] = [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]
    layer.bias.data[...] = 0.0
    x = t64([[1.0, -1.0]])
    upstream = np.array([[1.0, 0.0, 2.0]])  # L = Σ y · upstream
    return layer, x, upstream


def test_full_backward_hook_sees_grad_input_and_grad_output():
    layer, x, upstream = linear_case()
    seen = []
    layer.register_full_backward_hook(lambda m, gi, go: seen.append((m, gi, go)))
    (layer(x) * dg.tensor(upstream)).sum().backward()
    ((module, grad_input, grad_output),) = seen
    assert module is layer and len(grad_input) == len(grad_output) == 1
    np.testing.assert_array_equal(grad_output[0], upstream)
    np.testing.assert_array_equal(grad_input[0], [[11.0, 14.0]])  # upstream · W
    np.testing.assert_array_equal(x.grad, [[11.0, 14.0]])


def test_full_backward_hook_replaces_grad_input_and_pre_hook_grad_output():
    layer, x, upstream = linear_case()
    layer.register_full_backward_hook(lambda m, gi, go: (gi[0] * 0.5,))
    (layer(x) * dg.tensor(upstream)).sum().backward()
    np.testing.assert_array_equal(x.grad, [[5.5, 7.0]])
    np.testing.assert_array_equal(layer.weight.grad, [[1.0, -1.0], [0.0, 0.0], [2.0, -2.0]])  # untouched

    layer, x, upstream = linear_case()
    seen = []
    layer.register_full_backward_pre_hook(lambda m, go: (go[0] * 2,))
    layer.register_full_backward_hook(lambda m, gi, go: seen.append(go[0].copy()))
    (layer(x) * dg.tensor(upstream)).sum().backward()
    np.testing.assert_array_equal(seen[0], upstream * 2)  # the hooks see the replaced grad_output
    np.testing.assert_array_equal(layer.weight.grad, [[2.0, -2.0], [0.0, 0.0], [4.0, -4.0]])
    np.testing.assert_array_equal(x.grad, [[22.0, 28.0]])


def test_a_first_layer_whose_input_needs_no_gradient_still_reports():
    layer, x, upstream = linear_case()
    seen = []
    layer.register_full_backward_hook(lambda m, gi, go: seen.append((gi, go[0].copy())))
    (layer(x.detach()) * dg.tensor(upstream)).sum().backward()
    ((grad_input, grad_output),) = seen
    assert grad_input == (None,)
    np.testing.assert_array_equal(grad_output, upstream)


def test_backward_hooks_per_call_in_a_network_and_removal():
    dg.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3)).double()
    order = []
    handles = [m.register_full_backward_hook(lambda m, gi, go, i=i: order.append(i)) for i, m in enumerate(model)]
    x = dg.tensor(np.ones((2, 4)), requires_grad=True)
    F.cross_entropy(model(x), np.array([0, 1])).backward()
    assert order == [2, 1, 0]  # from the output back
    expected = x.grad.copy()
    for handle in handles:
        handle.remove()
    x.grad = None
    out = model(x)
    assert type(out.grad_fn).__name__ == "Linear"  # no identity wrappers left
    F.cross_entropy(out, np.array([0, 1])).backward()
    np.testing.assert_array_equal(x.grad, expected)  # the hooks changed nothing
    with dg.no_grad():
        model[0].register_full_backward_hook(lambda *a: order.append("no grad"))
        model(x)
    assert "no grad" not in order


class Product(nn.Module):
    def forward(self, a, b):
        return a * b


def test_several_inputs_and_what_cannot_be_replaced():
    a, b = t64([2.0]), t64([5.0])
    module = Product()
    seen = []
    module.register_full_backward_hook(lambda m, gi, go: seen.append(gi))
    (module(a, b) * 3).sum().backward()
    np.testing.assert_array_equal(seen[0][0], [15.0])
    np.testing.assert_array_equal(seen[0][1], [6.0])

    module = Product()
    module.register_full_backward_hook(lambda m, gi, go: (gi[0] * 0, gi[1] * 0))
    with pytest.raises(RuntimeError, match="replaced the gradient of input .*only the last input's"):
        (module(t64([2.0]), t64([5.0])) * 3).sum().backward()


class Pair(nn.Module):
    def forward(self, x):
        return x, x


def test_bad_backward_hooks_are_clear_errors():
    layer, x, upstream = linear_case()

    def broken(module, grad_input, grad_output):
        raise KeyError("oops")

    layer.register_full_backward_hook(broken)
    with pytest.raises(RuntimeError, match=r"backward hook .*broken of Linear\(in_features=2.* raised KeyError"):
        (layer(x) * dg.tensor(upstream)).sum().backward()

    pair = Pair()
    pair.register_full_backward_hook(lambda *args: None)
    with pytest.raises(NotImplementedError, match="full backward hooks need a forward that returns one Tensor"):
        pair(x)
