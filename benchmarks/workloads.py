"""The workloads: one shared description per name, so every framework builds the same model on the
same data. A framework module turns a Workload into a step function (see ``benchmarks/__init__.py``)."""

from dataclasses import dataclass, field

import numpy as np

CLASSES = 10
LR = 0.01  # plain SGD, no momentum, no weight decay
DATA_SEED = 1234
MODEL_SEED = 0


@dataclass(frozen=True)
class Workload:
    name: str
    model: str  # a deepgrad.train.presets name: mlp, simple-cnn, resnet-small
    options: dict = field(hash=False)  # the preset's options, spelled out so all frameworks build the same net
    input_shape: tuple = ()
    batch: int = 0
    steps: int = 0  # steps per timed repetition (the full run; --quick uses fewer)
    train: bool = True  # False: inference only, no graph
    default: bool = True  # False: run only when named (--only, benchmarks.cores)

    @property
    def base(self):
        """The training workload this one shares its model with (``cnn`` for ``cnn-eval``)."""
        return self.name.removesuffix("-eval")


_TRAIN = [
    Workload("mlp", "mlp", dict(hidden=(512, 512), activation="relu", batch_norm=False), (784,), 128, 20),
    Workload("mlp-bn", "mlp", dict(hidden=(100,) * 5, activation="relu", batch_norm=True), (784,), 100, 20),
    Workload("cnn", "simple-cnn", dict(channels=30, kernel_size=5, hidden=100), (1, 28, 28), 100, 5),
    Workload("resnet-small", "resnet-small", dict(widths=(16, 32), blocks_per_stage=1), (1, 28, 28), 64, 3),
]

WORKLOADS = {}
for _w in _TRAIN:
    WORKLOADS[_w.name] = _w
    # Inference is roughly 3x cheaper than a training step: twice the steps keeps a repetition comparable.
    _eval = Workload(_w.name + "-eval", _w.model, _w.options, _w.input_shape, _w.batch, 2 * _w.steps, False)
    WORKLOADS[_eval.name] = _eval
# A larger residual net for the scaling over cores (benchmarks.cores): resnet-small's preset, wider and deeper.
WORKLOADS["resnet-wide"] = Workload(
    "resnet-wide", "resnet-small", dict(widths=(32, 64), blocks_per_stage=2), (1, 28, 28), 64, 2, default=False
)


def make_data(workload):
    """Random float32 inputs of the workload's shape and int64 class labels, the same for every framework."""
    rng = np.random.default_rng(DATA_SEED)
    x = rng.standard_normal((workload.batch,) + workload.input_shape, dtype=np.float32)
    y = rng.integers(0, CLASSES, workload.batch, dtype=np.int64)
    return x, y
