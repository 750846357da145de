"""``overfitting``: a big net on few samples, and two regularizers, weight decay and dropout.

The course notes' setting (after Saito's *Deep Learning from Scratch*, ch. 6): 300 training
samples and an MLP of 6 hidden layers of 100 ReLU units (7 Linear layers), trained with SGD long
enough to fit those 300 samples perfectly — once as is, once with L2 weight decay, once with
dropout after every hidden layer. After every epoch its accuracy and loss are measured on the 300
training samples (in eval mode, so without dropout) and on the test set.
"""

import math

from ..viz.training import curves_grid
from .common import Figure, Report, Table, recorded_run

WEIGHT_DECAY, DROPOUT = 0.01, 0.2
# The book's λ = 0.1 keeps this net far from fitting its 300 samples (measured: 40 % training
# accuracy on digits after 300 epochs of the SGD below, 34 % on MNIST after 200 epochs without
# momentum); 0.01 lets it fit them, as the unregularized net does.
SETTINGS = {"none": {}, "weight-decay": {"weight_decay": WEIGHT_DECAY}, "dropout": {"dropout": DROPOUT}}
LABELS = {
    "none": "no regularization",
    "weight-decay": f"weight decay λ = {WEIGHT_DECAY:g}",
    "dropout": f"dropout p = {DROPOUT:g}",
}
TRAINING = {
    "hidden": [100] * 6,
    "activation": "relu",
    "train_size": 300,
    "optimizer": "sgd",
    "lr": 0.01,
    "momentum": 0.9,
    "batch_size": 100,
    "epochs": 200,
}
QUICK_EPOCHS = 30
SPLITS = {"train": f"training samples ({TRAINING['train_size']})", "test": "test set"}


def train_setting(context, options):
    """Accuracy and loss on the training samples and the test set after every epoch (epoch 0: before
    training) of the run of ``options``."""
    run, evaluations = recorded_run(context, SPLITS, **options)
    run.fit()
    result = {"epochs": list(range(len(evaluations.steps)))}
    for measure in ("accuracy", "loss"):
        for split in SPLITS:
            result[f"{split}_{measure}"] = evaluations.series(split, measure)
    return result


def gaps(result):
    """The final train−test accuracy gap and test−train loss gap."""
    return (
        result["train_accuracy"][-1] - result["test_accuracy"][-1],
        result["test_loss"][-1] - result["train_loss"][-1],
    )


def run(context):
    training = {**TRAINING, "epochs": QUICK_EPOCHS} if context.quick else TRAINING
    results = {
        setting: train_setting(context, {**training, **options})
        for setting, options in context.bar(SETTINGS.items(), total=len(SETTINGS), desc="settings")
    }
    for measure, log_y in (("accuracy", False), ("loss", True)):
        curves_grid(
            {
                LABELS[setting]: {SPLITS[split]: (r["epochs"], r[f"{split}_{measure}"]) for split in SPLITS}
                for setting, r in results.items()
            },
            context.path(f"overfitting_{measure}.png"),
            xlabel="epoch",
            ylabel="cross-entropy loss (log scale)" if log_y else "accuracy",
            log_y=log_y,
            title=f"7-layer ReLU MLP on 300 {context.dataset} samples: {measure} after every epoch",
        )
    rows = [
        [
            LABELS[setting],
            r["train_accuracy"][-1],
            r["test_accuracy"][-1],
            gaps(r)[0],
            max(r["test_accuracy"]),
            r["train_loss"][-1],
            r["test_loss"][-1],
            gaps(r)[1],
        ]
        for setting, r in results.items()
    ]
    epochs, steps_per_epoch = training["epochs"], math.ceil(TRAINING["train_size"] / TRAINING["batch_size"])
    return Report(
        title="Overfitting, weight decay and dropout",
        claim=claim(results),
        setup={
            "data": f"the first {TRAINING['train_size']} samples of the {context.dataset} training split; the "
            "whole test set",
            "model": "MLP with 6 hidden layers of 100 ReLU units (He initialization) + output layer: 7 Linear layers",
            "training": f"{epochs} epochs of SGD with momentum {TRAINING['momentum']:g}, lr {TRAINING['lr']:g}, "
            f"batch {TRAINING['batch_size']} ({epochs * steps_per_epoch} steps)",
            "settings": f"none; L2 weight decay λ = {WEIGHT_DECAY:g} on every parameter; dropout p = "
            f"{DROPOUT:g} after every hidden layer (inverted: kept units scaled by 1/(1 − p))",
            "measured": "accuracy and loss on the training samples (eval mode) and the test set after every epoch",
        },
        tables=[
            Table(
                f"After {epochs} epochs: accuracy and loss on the training samples and the test set, and the "
                "gaps between them",
                [
                    "setting",
                    "train accuracy",
                    "test accuracy",
                    "accuracy gap",
                    "best test accuracy",
                    "train loss",
                    "test loss",
                    "loss gap",
                ],
                rows,
            )
        ],
        figures=[
            Figure(
                "overfitting_accuracy.png",
                "Accuracy on the 300 training samples and on the test set after every epoch, one panel per setting",
            ),
            Figure(
                "overfitting_loss.png",
                "Cross-entropy loss on the training samples and on the test set "
                "after every epoch (log scale), one panel per setting",
            ),
        ],
        results=results,
    )


def change(before, after, points=False):
    """How a gap moved, in words: "shrinks from 10.3 to 7.8 points" (``points``: accuracies, as
    percentage points) or "shrinks from 0.61 to 0.41" (losses); under 0.005 it "barely changes"."""
    verb = "barely changes" if abs(after - before) < 0.005 else "shrinks" if after < before else "widens"
    if points:
        return f"{verb} from {100 * before:.1f} to {100 * after:.1f} points"
    return f"{verb} from {before:.2f} to {after:.2f}"


def claim(results):
    """What the three runs show, from their numbers."""
    none = results["none"]
    accuracy_gap, loss_gap = gaps(none)
    text = (
        f"Without regularization the net fits its 300 training samples ({none['train_accuracy'][-1]:.0%}) but "
        f"reaches {none['test_accuracy'][-1]:.1%} on the test set."
    )
    for setting in ("dropout", "weight-decay"):
        result = results[setting]
        accuracy_after, loss_after = gaps(result)
        text += (
            f" With {LABELS[setting]} the train–test accuracy gap "
            f"{change(accuracy_gap, accuracy_after, points=True)} (test accuracy "
            f"{result['test_accuracy'][-1]:.1%}, training {result['train_accuracy'][-1]:.0%}) and the gap "
            f"between test and training loss {change(loss_gap, loss_after)}."
        )
    return text
