"""DeZero 0.0.13 (the book "Deep Learning from Scratch 3"): the same architectures from its layers."""

import numpy as np

if not hasattr(np, "int"):  # dezero 0.0.13 uses np.int (removed in NumPy 1.24) at import time
    np.int = int

import dezero  # noqa: E402
import dezero.functions as F  # noqa: E402
import dezero.layers as L  # noqa: E402
from dezero.models import Sequential  # noqa: E402

from .workloads import CLASSES, LR, MODEL_SEED  # noqa: E402

VERSION = dezero.__version__


class Residual(dezero.Layer):
    def __init__(self, block, shortcut=None):
        super().__init__()
        self.block, self.shortcut = block, shortcut

    def forward(self, x):
        return self.block(x) + (x if self.shortcut is None else self.shortcut(x))


def mlp(input_shape, hidden, activation, batch_norm):
    assert activation == "relu"
    layers, width = [F.flatten], input_shape[0]
    for size in hidden:
        layers.append(L.Linear(size, nobias=batch_norm, in_size=width))
        layers += [L.BatchNorm()] if batch_norm else []
        layers.append(F.relu)
        width = size
    return Sequential(*layers, L.Linear(CLASSES, in_size=width))


def simple_cnn(input_shape, channels, kernel_size, hidden):
    c, h, w = input_shape
    flat = channels * ((h - kernel_size + 1) // 2) * ((w - kernel_size + 1) // 2)
    return Sequential(
        L.Conv2d(channels, kernel_size, in_channels=c),
        F.relu,
        lambda x: F.pooling(x, 2, 2),
        F.flatten,
        L.Linear(hidden, in_size=flat),
        F.relu,
        L.Linear(CLASSES, in_size=hidden),
    )


def basic_block(cin, cout, stride):
    block = Sequential(
        L.Conv2d(cout, 3, stride, 1, nobias=True, in_channels=cin),
        L.BatchNorm(),
        F.relu,
        L.Conv2d(cout, 3, 1, 1, nobias=True, in_channels=cout),
        L.BatchNorm(),
    )
    shortcut = None
    if stride != 1 or cin != cout:
        shortcut = Sequential(L.Conv2d(cout, 1, stride, nobias=True, in_channels=cin), L.BatchNorm())
    return Sequential(Residual(block, shortcut), F.relu)


def global_average_pool(x):
    return F.flatten(F.average_pooling(x, x.shape[2:], stride=1))


def resnet_small(input_shape, widths, blocks_per_stage):
    layers = [L.Conv2d(widths[0], 3, 1, 1, nobias=True, in_channels=input_shape[0]), L.BatchNorm(), F.relu]
    channels = widths[0]
    for stage, width in enumerate(widths):
        for block in range(blocks_per_stage):
            layers.append(basic_block(channels, width, 2 if stage > 0 and block == 0 else 1))
            channels = width
    return Sequential(*layers, global_average_pool, L.Linear(CLASSES, in_size=channels))


MODELS = {"mlp": mlp, "simple-cnn": simple_cnn, "resnet-small": resnet_small}


def make_model(workload, x):
    """The workload's model in float32, its parameters allocated (BatchNorm's by a first call)."""
    np.random.seed(MODEL_SEED)  # DeZero initializes from the global NumPy generator
    model = MODELS[workload.model](workload.input_shape, **workload.options)
    with dezero.no_grad():
        model(x)
    for param in model.params():
        # DeZero draws float32 weights, then scales them by a NumPy float64 scalar: float32 under
        # NumPy 1, float64 under NumPy 2's promotion rules (NEP 50). Its float32, as the book runs it.
        param.data = param.data.astype(np.float32)
    return model


def build(workload, x, y):
    model = make_model(workload, x)
    n_params = sum(p.data.size for p in model.params() if p.name not in ("avg_mean", "avg_var"))
    if not workload.train:

        def step():
            with dezero.test_mode(), dezero.no_grad():
                return model(x)

        return step, n_params

    optimizer = dezero.optimizers.SGD(lr=LR).setup(model)

    def step():
        model.cleargrads()
        loss = F.softmax_cross_entropy(model(x), y)
        loss.backward()
        optimizer.update()
        return loss.data

    return step, n_params
