"""The model presets of the command line: mlp, simple-cnn, resnet-small."""

import math

from .. import nn

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "gelu": nn.GELU, "leaky_relu": nn.LeakyReLU}


INITS = ("auto", "he", "xavier", "lecun", "normal")


def hidden_init(init, activation, std, generator):
    """The weight initialization of an mlp's hidden layers: "auto" is He for ReLU and kin, Xavier
    (Glorot) otherwise; "lecun" is the course notes' "Xavier" (std 1/√n_in); "normal" is N(0, std²)."""
    if init == "auto":
        init = "he" if activation in ("relu", "leaky_relu", "gelu") else "xavier"
    if init == "normal":
        return lambda weight: nn.init.normal_(weight, 0.0, std, generator=generator)
    return {"he": "kaiming_normal", "xavier": "xavier_normal", "lecun": "lecun_normal"}[init]


def mlp(
    input_shape,
    num_classes,
    hidden=(128, 64),
    activation="relu",
    batch_norm=False,
    dropout=0.0,
    init="auto",
    init_std=0.01,
    residual=False,
    generator=None,
):
    """Flatten → [Linear → (BatchNorm1d) → activation → (Dropout)] per hidden width → Linear.

    ``init`` initializes the hidden layers' weights (see :func:`hidden_init`; the output layer keeps
    PyTorch's default). With ``residual``, every hidden layer after the first is a residual block,
    x + f(x), so all hidden widths must be equal.
    """
    if activation not in ACTIVATIONS:
        raise ValueError(f"mlp: unknown activation {activation!r}; available: {sorted(ACTIVATIONS)}")
    if init not in INITS:
        raise ValueError(f"mlp: unknown init {init!r}; available: {', '.join(INITS)}")
    if residual and len(set(hidden)) > 1:
        raise ValueError(f"mlp: residual blocks need equal hidden widths, got {list(hidden)}")
    weight_init = hidden_init(init, activation, init_std, generator)
    layers = [nn.Flatten()]
    width = math.prod(input_shape)
    for size in hidden:
        # With BatchNorm after it, a Linear's bias is redundant (BN's shift β does its job).
        unit = [nn.Linear(width, size, bias=not batch_norm, init=weight_init, generator=generator)]
        if batch_norm:
            unit.append(nn.BatchNorm1d(size))
        unit.append(ACTIVATIONS[activation]())
        if dropout:
            unit.append(nn.Dropout(dropout))
        layers += [nn.Residual(nn.Sequential(*unit))] if residual and len(layers) > 1 else unit
        width = size
    layers.append(nn.Linear(width, num_classes, generator=generator))
    return nn.Sequential(*layers)


def simple_cnn(input_shape, num_classes, channels=30, kernel_size=5, hidden=100, generator=None):
    """conv channels@k×k → ReLU → maxpool 2 → Linear hidden → ReLU → Linear classes."""
    c, h, w = input_shape
    if h < kernel_size or w < kernel_size:
        kernel_size = min(h, w) // 2 + 1
    conv_h, conv_w = h - kernel_size + 1, w - kernel_size + 1
    flat = channels * (conv_h // 2) * (conv_w // 2)
    return nn.Sequential(
        nn.Conv2d(c, channels, kernel_size, init="kaiming_normal", generator=generator),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(flat, hidden, init="kaiming_normal", generator=generator),
        nn.ReLU(),
        nn.Linear(hidden, num_classes, generator=generator),
    )


def _basic_block(in_channels, out_channels, stride, generator):
    block = nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False, init="kaiming_normal", generator=generator),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(),
        nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False, init="kaiming_normal", generator=generator),
        nn.BatchNorm2d(out_channels),
    )
    shortcut = None
    if stride != 1 or in_channels != out_channels:
        shortcut = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 1, stride, bias=False, generator=generator),
            nn.BatchNorm2d(out_channels),
        )
    return nn.Sequential(nn.Residual(block, shortcut), nn.ReLU())


def resnet_small(input_shape, num_classes, widths=(16, 32), blocks_per_stage=1, generator=None):
    """A stem conv, then per width ``blocks_per_stage`` residual basic blocks (the first of each
    later stage downsamples by 2), global average pooling and a Linear classifier."""
    c = input_shape[0]
    layers = [
        nn.Conv2d(c, widths[0], 3, 1, 1, bias=False, init="kaiming_normal", generator=generator),
        nn.BatchNorm2d(widths[0]),
        nn.ReLU(),
    ]
    channels = widths[0]
    for stage, width in enumerate(widths):
        for block in range(blocks_per_stage):
            stride = 2 if stage > 0 and block == 0 else 1
            layers.append(_basic_block(channels, width, stride, generator))
            channels = width
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, num_classes, generator=generator)]
    return nn.Sequential(*layers)


PRESETS = {"mlp": mlp, "simple-cnn": simple_cnn, "resnet-small": resnet_small}
# The training options (deepgrad.train.config) each preset takes; the presets that need (C, H, W) images.
CONFIG_OPTIONS = {
    "mlp": ("hidden", "activation", "batch_norm", "dropout", "init", "init_std", "residual"),
    "simple-cnn": (),
    "resnet-small": (),
}
IMAGE_PRESETS = ("simple-cnn", "resnet-small")


def build(name, input_shape, num_classes, **options):
    if name not in PRESETS:
        raise ValueError(f"unknown model {name!r}; available: {', '.join(sorted(PRESETS))}")
    return PRESETS[name](tuple(input_shape), num_classes, **options)
