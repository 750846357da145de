"""deepgrad: the training presets themselves, SGD, fused softmax cross-entropy."""

import deepgrad as dg
import deepgrad.functional as F
from deepgrad.train import presets

from .workloads import CLASSES, LR, MODEL_SEED

VERSION = dg.__version__


def build(workload, x, y):
    dg.manual_seed(MODEL_SEED)
    model = presets.build(workload.model, workload.input_shape, CLASSES, **workload.options)
    n_params = sum(p.data.size for p in model.parameters())
    x = dg.tensor(x)
    if not workload.train:
        model.eval()

        def step():
            with dg.no_grad():
                return model(x)

        return step, n_params

    optimizer = dg.optim.SGD(model.parameters(), lr=LR)

    def step():
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        return loss.data

    return step, n_params
