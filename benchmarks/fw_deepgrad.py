"""deepgrad: the training presets themselves, SGD, fused softmax cross-entropy; on the CPU or, with
CuPy and a GPU, on "cuda"."""

import deepgrad as dg
import deepgrad.functional as F
from deepgrad.train import presets

from .workloads import CLASSES, LR, MODEL_SEED

VERSION = dg.__version__
DEVICES = ("cpu", "cuda")


def set_threads(threads):
    dg.set_num_threads(threads)


def synchronize(device):
    if device == "cuda":
        import cupy

        cupy.cuda.get_current_stream().synchronize()


def build(workload, x, y, device="cpu"):
    if not dg.backend.is_available(device):
        raise NotImplementedError(f"device {device!r} is not available here (needs CuPy and a GPU)")
    dg.manual_seed(MODEL_SEED)
    model = presets.build(workload.model, workload.input_shape, CLASSES, **workload.options).to(device)
    n_params = sum(p.data.size for p in model.parameters())
    x, y = dg.tensor(x, device=device), dg.tensor(y, device=device)
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
