"""Batch, layer and group normalization against PyTorch in float64 over drawn configurations.

Hypothesis draws the input's shape (any number of axes PyTorch takes), the affine parts (γ and β
each given or not), ε, momentum and the running statistics' presence, and for batch norm whether
the compiled kernels serve (where numba is installed) and whether the input arrives as a
transposed view. Outputs, every input's gradient and the updated running statistics must equal
PyTorch's to float64's last digits. The conftest runs each on one thread and on two with every op
split.
"""

import numpy as np
import pytest
from helpers import rng
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import deepgrad.functional as F
from deepgrad import kernels

torch = pytest.importorskip("torch")
tF = torch.nn.functional

from twins import run_both  # noqa: E402 (needs torch)

FUZZ = settings(max_examples=60, deadline=None)
RTOL, ATOL = 1e-9, 1e-11  # normalizing divides by σ̂: rounding grows with 1/σ̂

shapes = st.lists(st.integers(1, 5), min_size=2, max_size=5).map(tuple)
optional = st.booleans()


@FUZZ
@given(
    shape=shapes,
    weight=optional,
    bias=optional,
    running=optional,
    training=st.booleans(),
    momentum=st.sampled_from([0.1, 0.5, 1.0]),
    eps=st.sampled_from([1e-5, 1e-2]),
    compiled=st.booleans(),
    relu=st.booleans(),
    transposed=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_batch_norm(shape, weight, bias, running, training, momentum, eps, compiled, relu, transposed, seed):
    """F.batch_norm, and with ``relu`` F.batch_norm(fuse_relu=True) against torch's relu(batch_norm)."""
    channels = shape[1]
    assume(not training or np.prod(shape) // channels > 1)  # PyTorch's: more than one value a channel
    assume(running or training)  # evaluation needs running statistics
    r = rng(seed)
    x = r.normal(r.uniform(-3, 3), r.uniform(0.5, 3), shape)
    arrays = [x, r.uniform(0.5, 2, channels) if weight else None, r.standard_normal(channels) if bias else None]
    stats = [r.standard_normal(channels), r.uniform(0.5, 2, channels)] if running else [None, None]
    ours_stats = [None if s is None else s.copy() for s in stats]
    theirs_stats = [None if s is None else torch.tensor(s) for s in stats]
    options = dict(training=training, momentum=momentum, eps=eps)
    after = tF.relu if relu else torch.nn.Identity()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(kernels, "ENABLED", compiled)
        run_both(
            lambda t, w, b: F.batch_norm(t, *ours_stats, w, b, **options, fuse_relu=relu),
            lambda t, w, b: after(tF.batch_norm(t, *theirs_stats, w, b, **options)),
            arrays,
            seed,
            (transposed, False),
            RTOL,
            ATOL,
        )
    for ours, theirs in zip(ours_stats, theirs_stats):
        if ours is not None:
            np.testing.assert_allclose(ours, theirs.numpy(), rtol=1e-12, atol=1e-14, err_msg="running statistics")


@FUZZ
@given(
    shape=shapes,
    axes=st.integers(1, 3),
    weight=optional,
    bias=optional,
    eps=st.sampled_from([1e-5, 1e-2]),
    transposed=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_layer_norm(shape, axes, weight, bias, eps, transposed, seed):
    axes = min(axes, len(shape))
    normalized = shape[len(shape) - axes :]
    assume(np.prod(normalized) > 1)
    r = rng(seed)
    arrays = [
        r.normal(1, 2, shape),
        r.uniform(0.5, 2, normalized) if weight else None,
        r.standard_normal(normalized) if bias else None,
    ]
    run_both(
        lambda t, w, b: F.layer_norm(t, normalized, w, b, eps=eps),
        lambda t, w, b: tF.layer_norm(t, normalized, w, b, eps=eps),
        arrays,
        seed,
        (transposed, False),
        RTOL,
        ATOL,
    )


@FUZZ
@given(
    shape=shapes,
    groups=st.integers(1, 4),
    affine=optional,
    eps=st.sampled_from([1e-5, 1e-2]),
    transposed=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_group_norm(shape, groups, affine, eps, transposed, seed):
    channels = groups * shape[1]
    shape = (shape[0], channels) + shape[2:]
    assume(np.prod(shape[1:]) // groups > 1)
    r = rng(seed)
    arrays = [
        r.normal(-1, 2, shape),
        r.uniform(0.5, 2, channels) if affine else None,
        r.standard_normal(channels) if affine else None,
    ]
    run_both(
        lambda t, w, b: F.group_norm(t, groups, w, b, eps=eps),
        lambda t, w, b: tF.group_norm(t, groups, w, b, eps=eps),
        arrays,
        seed,
        (transposed, False),
        RTOL,
        ATOL,
    )
