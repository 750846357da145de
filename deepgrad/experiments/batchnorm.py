"""``batchnorm``: what batch normalization does for a net whose initial weights are badly scaled,
and how much sooner it makes a sigmoid net learn.

Two studies, each net trained once as is ("plain") and once with BatchNorm1d before each activation:

- the weight-scale sweep of the course notes (after Saito's *Deep Learning from Scratch*, ch. 6): an
  MLP of 5 hidden layers of 100 ReLU units whose hidden weights start from N(0, s²), at 16 scales s
  from 1 down to 1e-4, trained on 1000 samples for 20 epochs of plain SGD (lr 0.01, batch 100); its
  accuracy on those 1000 samples is measured after every epoch;
- Figure 1 of Ioffe & Szegedy's batch-normalization paper: 3 hidden layers of 100 sigmoid units
  (weights N(0, 1/n_in), the notes' "Xavier"), plain SGD with batch 60; its test accuracy is
  measured 40 times over the run.

The plain nets at the largest scales overflow; the NaN guard stops them (TrainingDiverged) and
their accuracy before the step that diverged is kept.
"""

import numpy as np

from ..errors import TrainingDiverged
from ..viz.studies import against_setting
from ..viz.training import curves_grid
from .common import Figure, Report, Table, recorded_run

NETS = {"plain": "without BN", "bn": "with BN"}
SCALES = np.logspace(0, -4, 16)
SWEEP = {
    "hidden": [100] * 5,
    "activation": "relu",
    "init": "normal",
    "train_size": 1000,
    "optimizer": "sgd",
    "lr": 0.01,
    "momentum": 0.0,
    "batch_size": 100,
    "epochs": 20,
}
SIGMOID = {
    "hidden": [100] * 3,
    "activation": "sigmoid",
    "init": "lecun",
    "optimizer": "sgd",
    "lr": 0.5,
    "momentum": 0.0,
    "batch_size": 60,
}
# digits' 1257 training samples make 21 batches of 60: 100 epochs are 2100 steps; MNIST's 55000
# make 917, so 2 epochs there are about as many steps.
SIGMOID_EPOCHS, BIG_SIGMOID_EPOCHS = 100, 2
EVALUATIONS = 40  # test accuracies measured over the sigmoid net's run
QUICK_SCALES = np.logspace(0, -4, 5)
QUICK_SWEEP_EPOCHS, QUICK_SIGMOID_EPOCHS = 8, 10
TRAINED = 0.9  # the final training accuracy from which a net counts as trained
CHANCE = 1 / 10  # every data set of the experiments has 10 classes


def train_at_scale(context, scale, batch_norm, options):
    """The sweep's net from N(0, scale²) weights, trained to the end or until it diverges: its
    training accuracy after every epoch, the last one measured, its test accuracy (None when it
    diverged) and the epoch it diverged in (None when it did not)."""
    run, evaluations = recorded_run(context, ("train",), init_std=float(scale), batch_norm=batch_norm, **options)
    try:
        # Plain nets from large weights overflow on purpose; the NaN guard reports it, NumPy need not warn too.
        with np.errstate(over="ignore", invalid="ignore"):
            summary = run.fit()
    except TrainingDiverged:
        summary = None
    curve, diverged = evaluations.series("train"), summary is None
    return {
        "curve": curve,
        "accuracy": curve[-1],
        "test_accuracy": None if diverged else summary["test_accuracy"],
        "diverged_epoch": run.trainer.epoch + 1 if diverged else None,
    }


def sweep(context):
    """Every scale with and without BN: results.json's scale-sweep keys, and the per-epoch curves."""
    scales = QUICK_SCALES if context.quick else SCALES
    options = {**SWEEP, "epochs": QUICK_SWEEP_EPOCHS} if context.quick else SWEEP
    runs = {net: [] for net in NETS}
    for scale in context.bar(scales, desc="weight scales"):
        for net in NETS:
            runs[net].append(train_at_scale(context, scale, net == "bn", options))
    results = {"scales": [float(scale) for scale in scales]}
    for net in NETS:
        for key in ("accuracy", "test_accuracy", "diverged_epoch"):
            results[f"{net}_{key}"] = [r[key] for r in runs[net]]
    return results, {net: [r["curve"] for r in runs[net]] for net in NETS}, options


def sigmoid_options(context):
    if context.quick:
        return {**SIGMOID, "epochs": QUICK_SIGMOID_EPOCHS}
    return {**SIGMOID, "epochs": SIGMOID_EPOCHS if context.dataset == "digits" else BIG_SIGMOID_EPOCHS}


def sigmoid_net(context):
    """The BN paper's 3×100 sigmoid net with and without BN: results.json's "sigmoid3x100"."""
    results = {}
    for net in context.bar(NETS, desc="3×100 sigmoid nets"):
        run, evaluations = recorded_run(
            context, ("test",), times=EVALUATIONS, batch_norm=net == "bn", **sigmoid_options(context)
        )
        run.fit()
        results["steps"] = evaluations.steps
        results[f"{net}_test_accuracy"] = evaluations.series("test")
    return results


def first_step_reaching(steps, accuracies, target):
    """The first step at which ``accuracies`` reach ``target`` (None: never)."""
    return next((step for step, accuracy in zip(steps, accuracies) if accuracy >= target), None)


def run(context):
    results, curves, options = sweep(context)
    sigmoid = results["sigmoid3x100"] = sigmoid_net(context)
    draw_sweep(context, results, curves, options)
    curves_grid(
        {
            "3 hidden layers of 100 sigmoid units": {
                NETS[net]: (sigmoid["steps"], sigmoid[f"{net}_test_accuracy"]) for net in NETS
            }
        },
        context.path("sigmoid3x100.png"),
        xlabel=f"training step (batch of {SIGMOID['batch_size']})",
        ylabel="test accuracy",
        references={"chance": CHANCE},
        title=f"The BN paper's Figure 1 on {context.dataset}: SGD at lr {SIGMOID['lr']:g}",
    )
    return Report(
        title="Batch normalization: training from any weight scale, and sooner",
        claim=claim(results, sigmoid),
        setup=setup(context, results, options),
        tables=tables(results, options),
        figures=[
            Figure(
                "accuracy_vs_scale.png",
                f"Training accuracy after {options['epochs']} epochs against the "
                "initial weight std (log scale), with and without batch norm; a "
                "net that diverged shows its accuracy before it did",
            ),
            Figure(
                "scale_curves.png",
                "Training accuracy after every epoch, one panel per initial weight std; "
                "a net that diverged says so in its panel's legend",
            ),
            Figure(
                "sigmoid3x100.png",
                "Test accuracy of the 3×100 sigmoid MLP during training, with and "
                "without batch norm (the BN paper's Figure 1a)",
            ),
        ],
        results=results,
    )


def setup(context, results, options):
    """What was run, in words."""
    sigmoid = results["sigmoid3x100"]
    return {
        "data": f"{context.dataset}: the first {options['train_size']} training samples (sweep); the whole "
        "training split (sigmoid net)",
        "sweep": f"MLP with 5 hidden layers of 100 ReLU units, hidden weights N(0, s²) at "
        f"{len(results['scales'])} log-spaced s from 1 to 1e-4, with and without BatchNorm1d (then "
        f"without the Linear biases); {options['epochs']} epochs of plain SGD, lr {SWEEP['lr']:g}, "
        f"batch {SWEEP['batch_size']}; accuracy on the training samples (eval mode) after every epoch",
        "sigmoid net": f"MLP with 3 hidden layers of 100 sigmoid units, weights N(0, 1/n_in), with and without "
        f"BatchNorm1d; {sigmoid_options(context)['epochs']} epochs ({sigmoid['steps'][-1]} steps) "
        f"of plain SGD, lr {SIGMOID['lr']:g}, batch {SIGMOID['batch_size']}; test accuracy every "
        f"{sigmoid['steps'][1]} steps and after the last",
    }


def tables(results, options):
    """The sweep's accuracies per scale; the sigmoid nets' final and best test accuracy."""
    columns = ("plain_accuracy", "bn_accuracy", "plain_test_accuracy", "bn_test_accuracy", "plain_diverged_epoch")
    sweep_rows = [[scale, *(results[column][i] for column in columns)] for i, scale in enumerate(results["scales"])]
    sigmoid = results["sigmoid3x100"]
    sigmoid_rows = [
        [
            NETS[net],
            sigmoid[f"{net}_test_accuracy"][-1],
            max(sigmoid[f"{net}_test_accuracy"]),
            first_step_reaching(sigmoid["steps"], sigmoid[f"{net}_test_accuracy"], TRAINED),
        ]
        for net in NETS
    ]
    return [
        Table(
            f"Accuracy on the {options['train_size']} training samples after {options['epochs']} epochs, and "
            "on the test set, per initial weight std",
            ["weight std", "plain train", "BN train", "plain test", "BN test", "plain diverged in epoch"],
            sweep_rows,
        ),
        Table(
            f"3×100 sigmoid MLP: test accuracy after {sigmoid['steps'][-1]} steps, the best measured, and the "
            f"first step measured at {TRAINED:.0%} or more",
            ["net", "final test accuracy", "best test accuracy", f"steps to {TRAINED:.0%}"],
            sigmoid_rows,
        ),
    ]


def draw_sweep(context, results, curves, options):
    """accuracy_vs_scale.png (final accuracy against the scale; diverged runs as crosses) and
    scale_curves.png (accuracy after every epoch, a panel per scale)."""
    scales = results["scales"]
    finished, diverged = {}, {}
    for net, label in NETS.items():
        accuracies, diverged[label] = split_diverged(results, net)
        finished[label] = (scales, accuracies)
    against_setting(
        finished,
        context.path("accuracy_vs_scale.png"),
        xlabel="initial weight std s of the hidden layers (log scale)",
        ylabel=f"training accuracy after {options['epochs']} epochs",
        references={"chance": CHANCE},
        points=diverged,
        points_label="diverged (its accuracy before)",
        ylim=(0, 1.02),
        title=f"5×100 ReLU MLP from N(0, s²) weights, SGD lr {SWEEP['lr']:g}: with and without BN",
    )
    panels = {}
    for i, scale in enumerate(scales):
        panels[f"weight std {scale:.2g}"] = {
            legend_label(net, results[f"{net}_diverged_epoch"][i]): (range(len(curves[net][i])), curves[net][i])
            for net in NETS
        }
    curves_grid(
        panels,
        context.path("scale_curves.png"),
        xlabel="epoch",
        ylabel="training accuracy",
        columns=4,
        references={"chance": CHANCE},
        title="Training accuracy of the 5×100 ReLU MLP per initial weight std, with and without batch norm",
    )


def split_diverged(results, net):
    """The final accuracies of ``net``'s runs with None for those that diverged, and (scales,
    accuracies before diverging) of those."""
    runs = list(zip(results["scales"], results[f"{net}_accuracy"], results[f"{net}_diverged_epoch"]))
    diverged = [(scale, accuracy) for scale, accuracy, epoch in runs if epoch]
    return (
        [None if epoch else accuracy for _, accuracy, epoch in runs],
        ([scale for scale, _ in diverged], [accuracy for _, accuracy in diverged]),
    )


def legend_label(net, diverged_epoch):
    return NETS[net] if diverged_epoch is None else f"{NETS[net]} (diverged in epoch {diverged_epoch})"


def span(values):
    """The range of some weight scales, in words."""
    if not values:
        return "none"
    return f"std {values[0]:.2g}" if len(values) == 1 else f"std {min(values):.2g} to {max(values):.2g}"


def claim(results, sigmoid):
    """What the sweep and the sigmoid nets show, from their numbers."""
    return sweep_claim(results) + sigmoid_claim(sigmoid)


def sweep_claim(results):
    scales = results["scales"]
    accuracy = {net: dict(zip(scales, results[f"{net}_accuracy"])) for net in NETS}
    trained = {net: [s for s in scales if accuracy[net][s] >= TRAINED] for net in NETS}
    diverged = [s for s, epoch in zip(scales, results["plain_diverged_epoch"]) if epoch]
    stuck = [s for s in scales if accuracy["plain"][s] < 2 * CHANCE and s not in diverged]
    only_bn = [s for s in trained["bn"] if s not in trained["plain"]]
    slow_bn = [s for s in scales if accuracy["bn"][s] < TRAINED]
    text = (
        f"Batch normalization trains the 5-layer ReLU net to {TRAINED:.0%} training accuracy or more at "
        f"{len(trained['bn'])} of the {len(scales)} initial weight scales ({span(trained['bn'])}), the plain net "
        f"at only {len(trained['plain'])} ({span(trained['plain'])}): BN trains at {len(only_bn)} scales where "
        f"the plain net does not. The plain net stays near chance at {len(stuck)} scales ({span(stuck)}) and "
        f"diverges at {len(diverged)} ({span(diverged)})."
    )
    if slow_bn:
        text += (
            f" BN stays below {TRAINED:.0%} at {span(slow_bn)} ({min(accuracy['bn'][s] for s in slow_bn):.0%} "
            f"to {max(accuracy['bn'][s] for s in slow_bn):.0%}): a normalized layer's gradient shrinks as its "
            "weights grow, so from large weights it learns slowly."
        )
    return text


def sigmoid_claim(sigmoid):
    steps, plain, bn = sigmoid["steps"], sigmoid["plain_test_accuracy"], sigmoid["bn_test_accuracy"]
    catch_up = first_step_reaching(steps, bn, plain[-1])
    if plain[-1] < 2 * CHANCE:
        return (
            f" In the BN paper's 3×100 sigmoid net, BN reaches {bn[-1]:.1%} test accuracy in {steps[-1]} steps, "
            f"while the plain net stays near chance ({plain[-1]:.1%})."
        )
    if catch_up is not None and catch_up < steps[-1]:
        return (
            f" In the BN paper's 3×100 sigmoid net, BN reaches the plain net's final test accuracy "
            f"({plain[-1]:.1%} after {steps[-1]} steps) by step {catch_up}, and ends at {bn[-1]:.1%}."
        )
    return (
        f" In the BN paper's 3×100 sigmoid net, BN ends at {bn[-1]:.1%} test accuracy after {steps[-1]} "
        f"steps, the plain net at {plain[-1]:.1%}."
    )
