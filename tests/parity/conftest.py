"""The parity suite runs twice: on one thread, and on two with every parallel op split in parts
(deepgrad.parallel's threshold at one element), so PyTorch's results hold for either."""

import pytest

import deepgrad as dg
from deepgrad import parallel


@pytest.fixture(autouse=True, params=[1, 2], ids=["1-thread", "2-threads"])
def threads(request, monkeypatch):
    pytest.importorskip("threadpoolctl")
    before = dg.get_num_threads()
    dg.set_num_threads(request.param)
    if request.param > 1:
        monkeypatch.setattr(parallel, "MIN_WORK", 1)
    yield request.param
    dg.set_num_threads(before)
