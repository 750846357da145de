"""PyTorch (CPU, or CUDA with --device cuda): the same architectures as deepgrad's presets, built from torch.nn."""

import torch
import torch.nn as nn
import torch.nn.functional as F

from .workloads import CLASSES, LR, MODEL_SEED

VERSION = torch.__version__
DEVICES = ("cpu", "cuda")


def synchronize(device):
    if device == "cuda":
        torch.cuda.synchronize()


def set_threads(threads):
    torch.set_num_threads(threads)


class Residual(nn.Module):
    def __init__(self, block, shortcut=None):
        super().__init__()
        self.block, self.shortcut = block, shortcut

    def forward(self, x):
        return self.block(x) + (x if self.shortcut is None else self.shortcut(x))


def mlp(input_shape, hidden, activation, batch_norm):
    assert activation == "relu"
    layers, width = [nn.Flatten()], input_shape[0]
    for size in hidden:
        layers.append(nn.Linear(width, size, bias=not batch_norm))
        layers += [nn.BatchNorm1d(size)] if batch_norm else []
        layers.append(nn.ReLU())
        width = size
    return nn.Sequential(*layers, nn.Linear(width, CLASSES))


def simple_cnn(input_shape, channels, kernel_size, hidden):
    c, h, w = input_shape
    flat = channels * ((h - kernel_size + 1) // 2) * ((w - kernel_size + 1) // 2)
    return nn.Sequential(
        nn.Conv2d(c, channels, kernel_size),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(flat, hidden),
        nn.ReLU(),
        nn.Linear(hidden, CLASSES),
    )


def basic_block(cin, cout, stride):
    block = nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride, 1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(),
        nn.Conv2d(cout, cout, 3, 1, 1, bias=False),
        nn.BatchNorm2d(cout),
    )
    shortcut = None
    if stride != 1 or cin != cout:
        shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
    return nn.Sequential(Residual(block, shortcut), nn.ReLU())


def resnet_small(input_shape, widths, blocks_per_stage):
    layers = [nn.Conv2d(input_shape[0], widths[0], 3, 1, 1, bias=False), nn.BatchNorm2d(widths[0]), nn.ReLU()]
    channels = widths[0]
    for stage, width in enumerate(widths):
        for block in range(blocks_per_stage):
            layers.append(basic_block(channels, width, 2 if stage > 0 and block == 0 else 1))
            channels = width
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, CLASSES))


MODELS = {"mlp": mlp, "simple-cnn": simple_cnn, "resnet-small": resnet_small}


def build(workload, x, y, device="cpu"):
    if device == "cuda" and not torch.cuda.is_available():
        raise NotImplementedError("torch sees no CUDA GPU here")
    torch.manual_seed(MODEL_SEED)
    model = MODELS[workload.model](workload.input_shape, **workload.options).to(device)
    n_params = sum(p.numel() for p in model.parameters())
    x, y = torch.from_numpy(x).to(device), torch.from_numpy(y).to(device)
    if not workload.train:
        model.eval()

        def step():
            with torch.no_grad():
                return model(x)

        return step, n_params

    optimizer = torch.optim.SGD(model.parameters(), lr=LR)

    def step():
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        return loss.detach()

    return step, n_params
