"""Every op gives the same results whatever the memory layout of its inputs and of the gradient it
receives.

NumPy arrays that reach an op need not be contiguous: a transpose, a permute to channels-last or a
slice hands on a view. An op that makes its output "like" its input (``np.empty_like`` keeps the
input's layout) and then writes through a reshape of it writes into a copy, and the values are lost
(max pooling and a depthwise convolution's input gradient once did); one that requires contiguous
memory fails (a convolution's backward once did). Each case of the device tests' catalogue runs
here twice on the CPU: on contiguous arrays, and with every floating input of two or more axes
handed over as a transposed view (of a leaf holding it transposed) and the output's gradient
arriving as one. Outputs and gradients must agree to rounding (a sum may group differently over
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


def run(fn, makers, as_views):
    """(output, gradients of the inputs) of a catalogue case on the CPU; ``as_views``: floating inputs
    of 2+ axes reach ``fn`` as transposed views, and so does the output's gradient."""
    leaves, inputs = [], []
    for seed, maker in enumerate(makers):
        array = maker.array(seed)
        requires_grad = maker.grad and array.dtype.kind == "f"
        viewed = as_views and array.dtype.kind == "f" and array.ndim >= 2
        leaf = dg.tensor(swapped(array) if viewed else array, requires_grad=requires_grad)
        leaves.append((leaf, viewed))
        inputs.append(leaf.transpose(-1, -2) if viewed else leaf)
    out = fn(*inputs)
    upstream = rng(1234).standard_normal(out.shape)
    if out.requires_grad:
        if as_views and out.ndim >= 2:
            viewed_out = out.transpose(-1, -2)  # the op's backward receives upstream as a transposed view
            viewed_out.backward(swapped(upstream))
        else:
            out.backward(upstream)
    grads = [None if leaf.grad is None else (swapped(leaf.grad) if viewed else leaf.grad) for leaf, viewed in leaves]
    return out.numpy(), grads


@pytest.mark.parametrize("name", list(CATALOGUE))
def test_op_gives_the_same_results_on_views(name):
    fn, makers = CATALOGUE[name]
    expected_out, expected_grads = run(fn, makers, as_views=False)
    out, grads = run(fn, makers, as_views=True)
    np.testing.assert_allclose(out, expected_out, rtol=RTOL, atol=ATOL, err_msg=f"{name}: forward")
    for i, (grad, expected) in enumerate(zip(grads, expected_grads)):
        assert (grad is None) == (expected is None), f"{name}: input {i}'s gradient"
        if grad is not None:
            np.testing.assert_allclose(grad, expected, rtol=RTOL, atol=ATOL, err_msg=f"{name}: gradient of input {i}")


WITH_KERNELS = [name for name in CATALOGUE if "depthwise" in name or "batch_norm batch stats" in name]


@pytest.mark.parametrize("name", WITH_KERNELS)
def test_ops_with_kernels_give_the_same_results_on_views_on_either_path(name, kernels_path):
    test_op_gives_the_same_results_on_views(name)


def test_the_views_are_views():
    """The cases really hand non-contiguous arrays to the ops."""
    seen = []
    fn, makers = CATALOGUE["F.conv2d stride 2 padding 1"]

    def recorded(*tensors):
        seen.extend(t.data.flags.c_contiguous for t in tensors if t.ndim >= 2)
        return fn(*tensors)

    run(recorded, makers, as_views=True)
    assert seen and not any(seen)
