"""Every op gives the same results whatever the memory layout of its inputs and of the gradient it
receives.

NumPy arrays that reach an op need not be contiguous: a transpose, a permute to channels-last or a
slice hands on a view. An op that makes its output "like" its input (``np.empty_like`` keeps the
input's layout) and then writes through a reshape of it writes into a copy, and the values are lost
(max pooling and a depthwise convolution's input gradient once did); one that requires contiguous
memory fails (a convolution's backward once did). Each case of the device tests' catalogue runs
here twice on the CPU: on contiguous arrays, and with every floating input of two or more axes
handed over as a transposed view (of a leaf holding it transposed) and the output's gradient
arriving as one; then the same with views reversed along the last axis (negative strides, as a
flipped image has). Outputs and gradients must agree to rounding (a sum may group differently over
another layout).
"""

import numpy as np
import pytest
from helpers import rng
from test_device_ops import CATALOGUE

import deepgrad as dg

RTOL, ATOL = 1e-12, 1e-12


def swapped(array):
    """``array`` with its last two axes swapped, as a new contiguous array."""
    return np.ascontiguousarray(array.swapaxes(-1, -2))


def reversed_last(array):
    """``array`` reversed along its last axis, as a new contiguous array (its own inverse)."""
    return np.ascontiguousarray(array[..., ::-1])


# How an array of 2+ axes reaches the op as a view: (what the leaf holds, the view of the leaf that
# gives the array back, the same view of the output's gradient), for a transposed view and one
# reversed along its last axis (negative strides: a flipped image).
VIEWS = {
    "transposed": (swapped, lambda t: t.transpose(-1, -2)),
    "reversed": (reversed_last, lambda t: t[..., ::-1]),
}


def run(fn, makers, view=None):
    """(output, gradients of the inputs) of a catalogue case on the CPU; ``view``: a VIEWS key, floating
    inputs of 2+ axes reaching ``fn`` as such views, and so does the output's gradient."""
    hold, look = VIEWS[view] if view else (None, None)
    leaves, inputs = [], []
    for seed, maker in enumerate(makers):
        array = maker.array(seed)
        requires_grad = maker.grad and array.dtype.kind == "f"
        viewed = view is not None and array.dtype.kind == "f" and array.ndim >= 2
        leaf = dg.tensor(hold(array) if viewed else array, requires_grad=requires_grad)
        leaves.append((leaf, viewed))
        inputs.append(look(leaf) if viewed else leaf)
    out = fn(*inputs)
    upstream = rng(1234).standard_normal(out.shape)
    if out.requires_grad:
        if view is not None and out.ndim >= 2:
            look(out).backward(hold(upstream))  # the op's backward receives upstream as such a view
        else:
            out.backward(upstream)
    grads = [None if leaf.grad is None else (hold(leaf.grad) if viewed else leaf.grad) for leaf, viewed in leaves]
    return out.numpy(), grads


@pytest.mark.parametrize("view", list(VIEWS))
@pytest.mark.parametrize("name", list(CATALOGUE))
def test_op_gives_the_same_results_on_views(name, view):
    fn, makers = CATALOGUE[name]
    expected_out, expected_grads = run(fn, makers)
    out, grads = run(fn, makers, view)
    np.testing.assert_allclose(out, expected_out, rtol=RTOL, atol=ATOL, err_msg=f"{name}: forward")
    for i, (grad, expected) in enumerate(zip(grads, expected_grads)):
        assert (grad is None) == (expected is None), f"{name}: input {i}'s gradient"
        if grad is not None:
            np.testing.assert_allclose(grad, expected, rtol=RTOL, atol=ATOL, err_msg=f"{name}: gradient of input {i}")


WITH_KERNELS = [name for name in CATALOGUE if "depthwise" in name or "batch_norm batch stats" in name]


@pytest.mark.parametrize("view", list(VIEWS))
@pytest.mark.parametrize("name", WITH_KERNELS)
def test_ops_with_kernels_give_the_same_results_on_views_on_either_path(name, view, kernels_path):
    test_op_gives_the_same_results_on_views(name, view)


def test_the_views_are_views():
    """The cases really hand non-contiguous arrays to the ops."""
    seen = []
    fn, makers = CATALOGUE["F.conv2d stride 2 padding 1"]

    def recorded(*tensors):
        seen.extend(t.data.flags.c_contiguous for t in tensors if t.ndim >= 2)
        return fn(*tensors)

    for view in VIEWS:
        seen.clear()
        run(recorded, makers, view)
        assert seen and not any(seen), view
