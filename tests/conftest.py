"""Shared fixtures. The helpers themselves live in ``tests/helpers.py``
(importable as ``helpers``: pytest puts this directory on ``sys.path``)."""

import pytest

import deepgrad as dg


@pytest.fixture(autouse=True)
def _restore_global_state():
    """Leave grad mode and the default dtype as found, even when a test fails midway."""
    grad_enabled, default_dtype = dg.is_grad_enabled(), dg.get_default_dtype()
    yield
    dg.set_grad_enabled(grad_enabled)
    dg.set_default_dtype(default_dtype)
