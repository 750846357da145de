"""``optimizers``: SGD, Momentum, AdaGrad, RMSProp and Adam training one network — the course notes'
comparison on real data, after Saito's *Deep Learning from Scratch* (ch. 6, optimizer_compare_mnist:
the same network and rates; he trains on MNIST for 2000 steps of batch 128).

An MLP with 4 hidden layers of 100 ReLU units (He initialization) is trained from the same
initial weights and batch order by each optimizer for about 1000 steps of batch 32; a callback
records the training loss of every step. The trained model's loss on the whole training set and
its test accuracy are compared.
"""

from ..viz.optimizers import loss_per_step
from .common import Figure, Report, StepRecorder, Table

OPTIMIZER_NAMES = {"sgd": "SGD", "momentum": "Momentum", "adagrad": "AdaGrad", "rmsprop": "RMSProp", "adam": "Adam"}

MODEL = {"hidden": [100] * 4, "activation": "relu"}
BATCH_SIZE = 32
STEPS = 1000
DIGITS_EPOCHS = 25  # digits has 1257 training samples: 40 batches an epoch, 1000 steps
QUICK_SAMPLES = 640  # 20 steps
# Saito's rates for this comparison (SGD, Momentum and AdaGrad 0.01, Adam 0.001); RMSProp at 0.001,
# the rate usually given for it (Hinton's lecture, Keras) as for Adam. RMSProp's ρ is PyTorch's 0.99.
RATES = {
    "sgd": {"lr": 0.01, "momentum": 0.0},
    "momentum": {"lr": 0.01, "momentum": 0.9},
    "adagrad": {"lr": 0.01},
    "rmsprop": {"lr": 1e-3},
    "adam": {"lr": 1e-3},
}
SMOOTHING = 20  # steps of the moving average drawn over the per-step loss


def budget(context):
    """The config options that set how long each optimizer trains: ``STEPS`` steps, as whole epochs
    of digits, or one epoch of a ``STEPS`` × batch subset of the bigger data sets (MNIST's 55000
    samples would be 1719 steps, a minute or more for the five); one epoch of ``QUICK_SAMPLES``
    samples in quick mode."""
    if context.quick:
        return {"train_size": QUICK_SAMPLES, "epochs": 1}
    if context.dataset == "digits":
        return {"epochs": DIGITS_EPOCHS}
    return {"train_size": STEPS * BATCH_SIZE, "epochs": 1}


def describe_budget(context, steps):
    """The data and the training length, in words, for the report's setup."""
    options = budget(context)
    samples = f"a fixed random {options['train_size']}" if "train_size" in options else "all"
    epochs = options["epochs"]
    return (
        f"{context.dataset}, {samples} of its training samples, {epochs} epoch{'s' * (epochs > 1)} of batch "
        f"{BATCH_SIZE}: {steps} steps"
    )


def train(context, optimizer, options):
    """Train the MLP with ``optimizer``: its loss per step, the trained model's loss on the training
    set, its test accuracy."""
    steps = StepRecorder()
    run, summary = context.train(
        callbacks=[steps], optimizer=optimizer, batch_size=BATCH_SIZE, **MODEL, **budget(context), **options
    )
    return {
        "loss": steps.loss,
        "final_loss": run.evaluate(("train",))["train"]["loss"],
        "test_accuracy": summary["test_accuracy"],
    }


def rate_label(options):
    """ "lr 0.01, β 0.9": an optimizer's options as the table and the setup show them."""
    return f"lr {options['lr']:g}" + (f", β {options['momentum']:g}" if options.get("momentum") else "")


def claim(results, steps):
    """What the figure and the table show: how far plain SGD lags behind the other four."""
    sgd, others = results["sgd"], [r for opt, r in results.items() if opt != "sgd"]
    accuracies = [r["test_accuracy"] for r in others]
    return (
        f"At the book's rates plain SGD lags far behind: after {steps} steps its training loss is "
        f"{sgd['final_loss']:.2g}, {min(sgd['final_loss'] / r['final_loss'] for r in others):.2g}× or more that "
        f"of Momentum, AdaGrad, RMSProp and Adam, and its test accuracy {sgd['test_accuracy']:.1%} the lowest "
        f"(the others: {min(accuracies):.1%}–{max(accuracies):.1%})."
    )


def run(context):
    results = {
        opt: train(context, opt, options)
        for opt, options in context.bar(RATES.items(), total=len(RATES), desc="optimizers")
    }
    steps = len(results["sgd"]["loss"])
    loss_per_step(
        {OPTIMIZER_NAMES[opt]: r["loss"] for opt, r in results.items()},
        context.path("loss.png"),
        title=f"Training loss of a 4 × 100 ReLU MLP on {context.dataset}, batch {BATCH_SIZE}",
        window=SMOOTHING,
        xlabel=f"training step (mini-batch of {BATCH_SIZE})",
        ylabel="training loss, cross-entropy (log)",
    )
    table = Table(
        f"After {steps} steps: the loss on the whole training set and the test accuracy",
        ["optimizer", "rate", "final training loss", "test accuracy"],
        [
            [OPTIMIZER_NAMES[opt], rate_label(RATES[opt]), r["final_loss"], r["test_accuracy"]]
            for opt, r in results.items()
        ],
    )
    return Report(
        title="Five optimizers training one network",
        claim=claim(results, steps),
        setup={
            "data": describe_budget(context, steps),
            "model": "MLP 4 × 100 ReLU (He initialization) + output layer; the same initial weights and batch "
            "order for every optimizer (the seed)",
            "optimizers": ", ".join(f"{OPTIMIZER_NAMES[opt]} {rate_label(o)}" for opt, o in RATES.items())
            + " (Saito's rates; RMSProp at Adam's, ρ 0.99); other hyperparameters at PyTorch's "
            "defaults",
            "figure": f"the raw per-step loss light, its {SMOOTHING}-step moving average strong",
        },
        tables=[table],
        figures=[
            Figure(
                "loss.png",
                f"The training loss at every step: each optimizer's {SMOOTHING}-step moving "
                "average over its raw per-step loss (light), log scale",
            )
        ],
        results=results,
    )
