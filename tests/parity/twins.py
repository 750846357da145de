"""Running one op on deepgrad and on PyTorch side by side, for the parity fuzzing."""

import numpy as np
import pytest
from helpers import rng

import deepgrad as dg

torch = pytest.importorskip("torch")


def run_both(ours, theirs, arrays, seed, views=(False, False), rtol=1e-10, atol=1e-12):
    """The op by deepgrad (``ours``) and by PyTorch (``theirs``) on ``arrays`` (None stays None) under
    one random upstream gradient: the outputs and every input's gradient must agree. ``views``:
    whether the first input reaches the op as a transposed view of its last two axes (of a leaf
    holding it swapped), and whether the op's output gradient does (a transpose after it), instead
    of contiguous arrays."""
    input_view, grad_view = views
    swapped = input_view and arrays[0].ndim >= 2
    leaves = list(arrays)
    if swapped:
        leaves[0] = np.ascontiguousarray(arrays[0].swapaxes(-1, -2))
    ours_in = [None if a is None else dg.tensor(a, requires_grad=True) for a in leaves]
    theirs_in = [None if a is None else torch.tensor(a, requires_grad=True) for a in leaves]
    results = []
    for op, inputs in ((ours, ours_in), (theirs, theirs_in)):
        first = inputs[0].transpose(-1, -2) if swapped else inputs[0]
        out = op(first, *inputs[1:])
        results.append(out.transpose(-1, -2) if grad_view and out.ndim >= 2 else out)
    out, expected = results
    assert out.shape == tuple(expected.shape)
    upstream = rng(seed).standard_normal(out.shape)
    out.backward(upstream)
    expected.backward(torch.from_numpy(upstream))
    np.testing.assert_allclose(out.numpy(), expected.detach().numpy(), rtol=rtol, atol=atol, err_msg="forward")
    for i, (a, b) in enumerate(zip(ours_in, theirs_in)):
        if a is not None:
            np.testing.assert_allclose(a.grad, b.grad.numpy(), rtol=rtol, atol=atol, err_msg=f"gradient of input {i}")
