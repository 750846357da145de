"""``init``: what the initial weight scale does to the activations of a deep net, before any
training — the course notes' histograms.

Five bias-free layers of 100 units on 1000 Gaussian samples of 100 features, weights drawn with
std 1, std 0.01, the notes' "Xavier" (1/√n) and He (√(2/n)), under sigmoid, tanh and ReLU.
"""

import numpy as np

from .. import nn
from ..diagnostics import ActivationStats
from ..tensor import no_grad, tensor
from ..viz.diagnostics import activation_histograms
from .common import Figure, Report, Table

LAYERS, WIDTH, SAMPLES = 5, 100, 1000
INITS = {
    "std1": lambda n: 1.0,
    "std0.01": lambda n: 0.01,
    "xavier": lambda n: 1 / np.sqrt(n),
    "he": lambda n: np.sqrt(2 / n),
}
INIT_LABELS = {"std1": "std 1", "std0.01": "std 0.01", "xavier": "Xavier 1/√n", "he": "He √(2/n)"}
ACTIVATIONS = {"sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "relu": nn.ReLU}


def network(activation, std, generator):
    layers = []
    for _ in range(LAYERS):
        linear = nn.Linear(WIDTH, WIDTH, bias=False, dtype=np.float64)
        nn.init.normal_(linear.weight, 0.0, std, generator=generator)
        layers += [linear, ACTIVATIONS[activation]()]
    return nn.Sequential(*layers)


def run(context):
    generator = np.random.default_rng(context.seed)
    x = tensor(generator.standard_normal((SAMPLES, WIDTH)))
    results, grids = {}, {}
    for activation in context.bar(ACTIVATIONS, desc="activations"):
        grids[activation] = {}
        for init, std_of in INITS.items():
            model = network(activation, std_of(WIDTH), generator)
            with ActivationStats(model) as stats, no_grad():
                model(x)
            layers = [stats.results[name].to_dict() for name, _ in stats.layers]
            results[f"{activation}/{init}"] = {
                key: [layer[key] for layer in layers] for key in ("std", "saturated", "dead")
            }
            grids[activation][INIT_LABELS[init]] = {f"layer {i + 1}": layer for i, layer in enumerate(layers)}
    figures = []
    for activation, grid in grids.items():
        filename = f"init_{activation}.png"
        activation_histograms(
            grid, context.path(filename), title=f"{activation} outputs of 5 layers (rows: initial weight std)"
        )
        figures.append(
            Figure(
                filename,
                f"Histograms of the {activation} outputs of each layer (columns) for each initial weight scale (rows)",
            )
        )
    rows = [
        [key.split("/")[0], INIT_LABELS[key.split("/")[1]], *r["std"], r["saturated"][-1], r["dead"][-1]]
        for key, r in results.items()
    ]
    table = Table(
        "Standard deviation of each layer's outputs; saturated and dead fraction at layer 5",
        ["activation", "init", *[f"std layer {i + 1}" for i in range(LAYERS)], "saturated (5)", "dead (5)"],
        rows,
    )
    return Report(
        title="Weight initialization and the activations of a deep net",
        claim="With std 1 the sigmoid's outputs pile up at 0 and 1 (saturated) and with std 0.01 they collapse "
        "towards 0.5, in both cases leaving gradients little to work with; Xavier keeps the sigmoid and tanh "
        "outputs spread over all five layers and He keeps ReLU's spread, where std 0.01 makes them vanish "
        "and std 1 makes them explode.",
        setup={
            "data": f"{SAMPLES} × {WIDTH} standard Gaussian samples (no training)",
            "model": f"{LAYERS} bias-free Linear({WIDTH}, {WIDTH}) layers, each followed by the activation",
            "inits": ", ".join(INIT_LABELS.values()),
        },
        tables=[table],
        figures=figures,
        results=results,
    )
