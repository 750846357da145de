"""``depth``: the degradation problem — a plain MLP gets harder to train as it gets deeper, a
residual one does not.

Plain and residual MLPs of 4, 8, 16 and 32 hidden layers of 100 tanh units (Glorot initialization,
no normalization) are trained with the same budget: 10 epochs of SGD with momentum 0.9, lr 0.01,
batch 32. In a residual net every hidden layer after the first is a block x + tanh(W x + b). The
final accuracy on the whole training set (what degradation is about: fitting, not generalizing)
is compared across depths, with the training loss of every epoch.

Why tanh: with ReLU and He initialization each residual block adds a branch as large as its input,
so the sum's variance about doubles per block and the 16- and 32-block nets overflow within their
first steps (measured); tanh's bounded outputs let the sum grow only about linearly with depth, so
both kinds of net start out trainable and the comparison is about depth alone.
"""

from ..viz.studies import against_setting
from ..viz.training import curves_grid
from .common import Figure, Report, Table

DEPTHS = (4, 8, 16, 32)
WIDTH = 100
NETS = {"plain": False, "residual": True}
TRAINING = {
    "activation": "tanh",
    "init": "xavier",
    "optimizer": "sgd",
    "lr": 0.01,
    "momentum": 0.9,
    "batch_size": 32,
    "epochs": 10,
}
QUICK = {"epochs": 4}  # the whole digits training split: on fewer samples the 32-block nets need more epochs
BIG_TRAIN_SIZE = 5000  # mnist and fashion-mnist: a training subset keeps the 8 runs within a couple of minutes
CHANCE = 1 / 10


def training_options(context):
    """TRAINING, shortened in quick mode, on a training subset of the bigger data sets."""
    subset = {"train_size": None if context.dataset == "digits" else BIG_TRAIN_SIZE}
    return {**TRAINING, **subset, **(QUICK if context.quick else {})}


def train_net(context, depth, residual, options):
    """Final training and test accuracy, and the training loss of every epoch, of one net."""
    run, summary = context.train(hidden=[WIDTH] * depth, residual=residual, **options)
    return {
        "train_accuracy": run.evaluate(("train",))["train"]["accuracy"],
        "test_accuracy": summary["test_accuracy"],
        "train_loss": run.trainer.history["train_loss"],
    }


def by_net_and_depth(nets, measure):
    """{net: {"depth": measure}}, the layout of results.json."""
    return {net: {str(depth): r[measure] for depth, r in by_depth.items()} for net, by_depth in nets.items()}


def run(context):
    options = training_options(context)
    nets = {net: {} for net in NETS}
    for depth in context.bar(DEPTHS, desc="depths"):
        for net, residual in NETS.items():
            nets[net][depth] = train_net(context, depth, residual, options)
    results = by_net_and_depth(nets, "train_accuracy")
    for measure in ("test_accuracy", "train_loss"):
        results[measure] = by_net_and_depth(nets, measure)
    epochs = options["epochs"]
    against_setting(
        {net: (DEPTHS, [nets[net][depth]["train_accuracy"] for depth in DEPTHS]) for net in NETS},
        context.path("depth.png"),
        xlabel="hidden layers (log scale)",
        ylabel=f"training accuracy after {epochs} epochs",
        ticks=DEPTHS,
        references={"chance": CHANCE},
        ylim=(0, 1.02),
        title=f"Plain and residual MLPs of {WIDTH} tanh units per layer, same budget",
    )
    curves_grid(
        {
            f"{depth} hidden layers": {net: (range(1, epochs + 1), nets[net][depth]["train_loss"]) for net in NETS}
            for depth in DEPTHS
        },
        context.path("depth_curves.png"),
        xlabel="epoch",
        ylabel="training loss (epoch mean, log scale)",
        log_y=True,
        columns=2,
        title="Training loss of every epoch, plain and residual, per depth",
    )
    rows = [
        [depth, *(nets[net][depth][measure] for measure in ("train_accuracy", "test_accuracy") for net in NETS)]
        for depth in DEPTHS
    ]
    return Report(
        title="Depth: plain against residual MLPs",
        claim=claim(results),
        setup={
            "data": f"{context.dataset} training split"
            + (f", first {options['train_size']} samples" if options["train_size"] else ""),
            "models": f"MLPs of {', '.join(map(str, DEPTHS))} hidden layers of {WIDTH} tanh units + output "
            "layer, Glorot (Xavier) initialization, no normalization; plain, and residual (every hidden "
            "layer after the first a block x + tanh(W x + b))",
            "training": f"the same for every net: {epochs} epochs of SGD with momentum {TRAINING['momentum']:g}, "
            f"lr {TRAINING['lr']:g}, batch {TRAINING['batch_size']}",
            "measured": "accuracy on the whole training set (eval mode) and the test set after training; the "
            "training loss of every epoch",
        },
        tables=[
            Table(
                f"Accuracy after {epochs} epochs, per number of hidden layers",
                ["hidden layers", "plain train", "residual train", "plain test", "residual test"],
                rows,
            )
        ],
        figures=[
            Figure(
                "depth.png",
                f"Accuracy on the training set after {epochs} epochs against the number of "
                "hidden layers (log scale), plain and residual",
            ),
            Figure(
                "depth_curves.png",
                "Training loss (mean over each epoch, log scale) of every epoch, plain "
                "and residual, one panel per depth",
            ),
        ],
        results=results,
    )


def claim(results):
    """What the runs show, from their numbers."""
    plain = [results["plain"][str(depth)] for depth in DEPTHS]
    residual = [results["residual"][str(depth)] for depth in DEPTHS]
    numbers = (
        f"the plain net's final training accuracy goes from {plain[0]:.1%} with {DEPTHS[0]} hidden layers to "
        f"{plain[-1]:.1%} with {DEPTHS[-1]}, the residual net's stays between {min(residual):.1%} and "
        f"{max(residual):.1%}"
    )
    if plain[0] - plain[-1] > 0.05 and all(r >= p for r, p in zip(residual, plain)):
        text = (
            f"Trained alike, residual nets keep training as depth grows where plain ones degrade: {numbers}, "
            "above the plain net's at every depth."
        )
    else:
        text = f"Trained alike, {numbers}."
    return text + deepest_start(results)


def deepest_start(results):
    """A sentence on the deepest residual net's first epochs, when it starts out behind the plain one."""
    deepest = DEPTHS[-1]
    plain, residual = (results["train_loss"][net][str(deepest)] for net in NETS)
    if residual[0] <= plain[0]:
        return ""
    behind = [epoch for epoch, (r, p) in enumerate(zip(residual, plain), start=1) if r >= p]
    ahead_from = behind[-1] + 1
    after = (
        f"but its loss is below the plain net's from epoch {ahead_from} on"
        if ahead_from <= len(residual)
        else "and is still behind after the last epoch"
    )
    return (
        f" The {deepest}-layer residual net starts out worse (mean training loss {residual[0]:.3g} in its first "
        f"epoch against {plain[0]:.3g}: without normalization the sum of its {deepest - 1} blocks grows large), "
        f"{after}."
    )
