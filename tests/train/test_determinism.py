"""The same seed gives bit-identical weights on the same machine — with shuffling, dropout, batch
norm and every schedule — and another seed gives other weights."""

import numpy as np
import pytest

from deepgrad.train import build_run
from deepgrad.train.config import OPTIONS


def weights(seed, schedule):
    run = build_run(
        {
            "hidden": [16, 16],
            "dropout": 0.2,
            "batch_norm": True,
            "epochs": 2,
            "schedule": schedule,
            "optimizer": "sgd",
            "lr": 0.05,
            "train_size": 400,
            "seed": seed,
        },
        progress=False,
    )
    run.fit()
    return {name: array.copy() for name, array in run.model.state_dict().items()}


@pytest.mark.parametrize("schedule", OPTIONS["schedule"].choices)
def test_a_seed_gives_the_same_weights_and_another_seed_others(schedule):
    first, second, other = weights(3, schedule), weights(3, schedule), weights(4, schedule)
    assert first.keys() == second.keys()
    for name in first:
        assert np.array_equal(first[name], second[name]), name
    assert not all(np.array_equal(first[name], other[name]) for name in first if first[name].dtype.kind == "f")
