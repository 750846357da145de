"""``clipping``: exploding gradients at a gradient cliff, and clipping the gradient norm.

The course notes: in a deep net whose weights are too large every layer multiplies the gradient,
which becomes huge (exploding gradients), and where the loss surface has such a cliff one
gradient step throws the parameters far away and undoes the training so far; rescaling the
gradient to at most a threshold norm, g ← g·v/‖g‖ when ‖g‖ > v, bounds that step.

A plain ReLU MLP with 8 hidden layers of 100 units starts from N(0, 0.25²) weights (He would be
about 0.14), so the signal and the gradients grow about 1.8× per layer; it is trained with plain
SGD at lr 0.1, once as is and once with the ``clip_grad_norm`` option at 5. A GradientFlowMonitor
records every step's loss and total gradient norm, before clipping. The unclipped run stops at the
NaN guard (TrainingDiverged) when its loss overflows; its steps until then are kept.
"""

import io
import math

import numpy as np

from ..diagnostics import GradientFlowMonitor
from ..errors import TrainingDiverged
from ..viz.dynamics import step_curves
from .common import Figure, Report, Table, data_description, run_options

MAX_NORM = 5.0
SETTINGS = {"unclipped": None, "clipped": MAX_NORM}
DEPTH, WIDTH, INIT_STD, LR = 8, 100, 0.25, 0.1
TRAINING = {
    "hidden": [WIDTH] * DEPTH,
    "activation": "relu",
    "init": "normal",
    "init_std": INIT_STD,
    "optimizer": "sgd",
    "momentum": 0.0,
    "lr": LR,
    "batch_size": 32,
    "epochs": 10,
}
QUICK = {"train_size": 320, "epochs": 2}


def train_setting(context, max_norm, options):
    """Train with gradients clipped to ``max_norm`` (None: not clipped) until the end or divergence:
    every step's loss and raw gradient norm, whether it diverged, and the test accuracy if not."""
    monitor = GradientFlowMonitor(every=1, stream=io.StringIO())  # its warnings: this study's subject
    summary = None
    try:
        # The unclipped run overflows on purpose; the NaN guard reports it, NumPy need not warn too.
        with np.errstate(over="ignore", invalid="ignore"):
            _, summary = context.train(callbacks=[monitor], clip_grad_norm=max_norm, **options)
    except TrainingDiverged:
        pass
    # A norm past float32's range is inf though the gradients themselves are finite; JSON has no inf.
    norms = [record["total"] if math.isfinite(record["total"]) else None for record in monitor.records]
    finite = [norm for norm in norms if norm is not None]
    return {
        "loss": [record["loss"] for record in monitor.records],
        "max_grad_norm": max(finite, default=None),
        "norm_overflowed": len(finite) < len(norms),
        "diverged": summary is None,
        "grad_norm": norms,
        "last_epoch_loss": None if summary is None else summary["train_loss"],
        "test_accuracy": None if summary is None else summary["test_accuracy"],
        "clipped_steps": None if max_norm is None else sum(norm > max_norm for norm in finite),
    }


def run(context):
    options = run_options(context, TRAINING, QUICK)
    results = {
        setting: train_setting(context, max_norm, options)
        for setting, max_norm in context.bar(SETTINGS.items(), total=len(SETTINGS), desc="settings")
    }
    labels = {setting: legend_label(setting, r) for setting, r in results.items()}
    figure = "clipping.png"
    step_curves(
        {
            "training loss": {
                "ylabel": "mini-batch loss (log)",
                "log_y": True,
                "curves": {labels[s]: r["loss"] for s, r in results.items()},
            },
            "gradient norm before clipping": {
                "ylabel": "total gradient norm ‖g‖ (log)",
                "log_y": True,
                "curves": {labels[s]: r["grad_norm"] for s, r in results.items()},
                "references": {f"clipping threshold {MAX_NORM:g}": MAX_NORM},
            },
        },
        context.path(figure),
        log_x=True,
        legend_outside=True,
        title=f"{DEPTH}×{WIDTH} ReLU MLP from N(0, {INIT_STD:g}²) weights, SGD lr {LR:g}",
    )
    unclipped, clipped = results["unclipped"], results["clipped"]
    steps = len(clipped["loss"])
    rows = [
        [
            setting,
            len(r["loss"]),
            r["loss"][0],
            r["loss"][-1],
            r["grad_norm"][0],
            "inf" if r["norm_overflowed"] else r["max_grad_norm"],
            r["clipped_steps"],
            r["diverged"],
            r["test_accuracy"],
        ]
        for setting, r in results.items()
    ]
    return Report(
        title="Gradient clipping at a gradient cliff",
        claim=claim(unclipped, clipped, steps),
        setup={
            "data": data_description(context, options),
            "model": f"plain MLP, {DEPTH} hidden layers of {WIDTH} ReLU units, weights N(0, {INIT_STD:g}²) "
            "(He: about 0.14)",
            "training": f"up to {options['epochs']} epochs ({steps} steps) of plain SGD, lr {LR:g}, batch "
            f"{TRAINING['batch_size']}; unclipped, and with clip_grad_norm {MAX_NORM:g}; the "
            "gradient norm is recorded every step before clipping",
        },
        tables=[
            Table(
                "Per setting: steps taken, loss, gradient norm before clipping, test accuracy",
                [
                    "setting",
                    "steps",
                    "first loss",
                    "last loss",
                    "first gradient norm",
                    "largest gradient norm",
                    f"steps with norm > {MAX_NORM:g}",
                    "diverged",
                    "test accuracy",
                ],
                rows,
            )
        ],
        figures=[
            Figure(
                figure,
                "Every step's mini-batch loss (top) and total gradient norm before clipping (bottom), "
                "both axes log scale; the unclipped run ends where its loss stopped being finite; "
                "the dashed line is the clipping threshold",
            )
        ],
        results=results,
    )


def legend_label(setting, result):
    """The setting's name in the figure, with its threshold or the step where it diverged."""
    if result["diverged"]:
        overflow = ""
        if result["norm_overflowed"]:
            overflow = f";\n‖g‖ past float32 at step {result['grad_norm'].index(None) + 1}"
        return f"{setting} (diverged at step {len(result['loss']) + 1}{overflow})"
    return setting if SETTINGS[setting] is None else f"{setting} at norm {SETTINGS[setting]:g}"


def claim(unclipped, clipped, steps):
    """What the two runs show, from their numbers (which run diverged decides the wording)."""
    cliff = (
        f"The first gradient's norm is {unclipped['grad_norm'][0]:.3g}, so one SGD step at lr {LR:g} moves the "
        f"weights by {LR * unclipped['grad_norm'][0]:.3g} (the norm of the update): "
    )
    if unclipped["diverged"] and not clipped["diverged"]:
        seen = len(unclipped["loss"])
        return (
            cliff + f"without clipping the loss climbs from {unclipped['loss'][0]:.3g} to "
            f"{max(unclipped['loss']):.2g} and the gradient norm to {largest_norm(unclipped)} in {seen} steps, "
            f"and at step {seen + 1} the loss is no longer finite (diverged). Clipped at norm {MAX_NORM:g} (a "
            f"step of at most {LR * MAX_NORM:g}), the same net trains through all {steps} steps: its loss falls "
            f"to {clipped['last_epoch_loss']:.2g} (mean of the last epoch) and it reaches "
            f"{clipped['test_accuracy']:.1%} test accuracy."
        )
    return (
        cliff + f"without clipping the run {'diverged' if unclipped['diverged'] else 'survived'} (largest "
        f"gradient norm {largest_norm(unclipped)}); clipped at norm {MAX_NORM:g} it "
        f"{'diverged too' if clipped['diverged'] else 'trained'} (largest {largest_norm(clipped)})."
    )


def largest_norm(result):
    """The largest gradient norm seen, in words."""
    if result["norm_overflowed"]:
        return "beyond float32's range (inf)"
    return f"{result['max_grad_norm']:.2g}"
