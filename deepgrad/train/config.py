"""The options of a training run: one schema, validated in one place.

A config is a dict of the options below (``deepgrad train --help`` is generated
from them). It is built from layers — the defaults, a TOML file, a run's saved
``config.json`` when it is resumed, the command line or a dict from code — by
:func:`resolve`, which merges them (later layers win) and validates the result:
every value's type, choice and range. Errors are :class:`ConfigError`
naming the option (and the file it came from).
"""

import json
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .. import backend
from ..data import datasets
from ..errors import ConfigError
from ..optim import OPTIMIZERS, SCHEDULES
from ..threads import SPLITTERS
from . import presets


def _positive(name, value):
    return None if value > 0 else f"{name} must be positive, got {value}"


def _probability(name, value):
    return None if 0 <= value <= 1 else f"{name} must be in [0, 1], got {value}"


def _at_least_one(name, value):
    return None if value >= 1 else f"{name} must be at least 1, got {value}"


def _fraction_below_one(name, value):
    return None if 0 <= value < 1 else f"{name} must be in [0, 1), got {value}"


def _open_fraction(name, value):
    return None if 0 < value < 1 else f"{name} must be in (0, 1), got {value}"


def _non_negative(name, value):
    return None if value >= 0 else f"{name} must be >= 0, got {value}"


def _factor(name, value):
    return None if 0 < value < 1 else f"{name} must be in (0, 1), got {value}"


def _threads_by(name, value):
    return None if value in SPLITTERS else f"unknown {name} {value!r}; valid: {', '.join(SPLITTERS)}"


def _widths(name, value):
    return None if all(width >= 1 for width in value) else f"{name} widths must be at least 1, got {value}"


def _known_device(name, value):
    try:
        backend.get_device(value)
    except (ValueError, RuntimeError) as error:
        return f"--device {value}: {error}"
    return None


@dataclass(frozen=True)
class Option:
    """One training option: its default, type (str, int, float, bool, or list of ints), help text,
    the valid choices (None: any value of the type) and a range check, ``check(name, value)`` -> an
    error message or None (not called for None)."""

    default: Any
    type: type
    help: str
    choices: tuple[Any, ...] | None = None
    check: Callable[[str, Any], str | None] | None = None


OPTIONS = {
    "dataset": Option(
        "digits",
        str,
        "digits (embedded), mnist, fashion-mnist, spiral, or arrays (your own: the .npz of --data, which implies it)",
        choices=tuple(datasets.REGISTRY),
    ),
    "data_dir": Option(None, str, "directory holding the IDX files (mnist, fashion-mnist)"),
    "download": Option(False, bool, "download missing IDX files into --data-dir"),
    "data": Option(
        None,
        str,
        "train on your own arrays: a .npz file with x (inputs (N, F), (N, H, W) or (N, C, H, W), "
        "used as given, no scaling) and y (class indices 0..K-1), optionally x_test and "
        "y_test (else a fixed random fifth of x is the test part) and classes (names); "
        "implies --dataset arrays",
    ),
    "val_fraction": Option(
        None,
        float,
        "hold out this fraction of the training samples for validation (unset: "
        "the data set's default: digits 180 of 1437, mnist and fashion-mnist 5000 "
        "of 60000, arrays 0.1, spiral an independent draw)",
        check=_open_fraction,
    ),
    "model": Option("mlp", str, "mlp, simple-cnn or resnet-small", choices=tuple(presets.PRESETS)),
    "hidden": Option([256, 128], list, "mlp hidden widths, e.g. 256,128", check=_widths),
    "activation": Option(
        "relu", str, "mlp activation: relu, tanh, sigmoid, gelu, leaky_relu", choices=tuple(presets.ACTIVATIONS)
    ),
    "batch_norm": Option(False, bool, "mlp: BatchNorm1d before each activation"),
    "dropout": Option(0.0, float, "mlp: dropout probability after each activation", check=_probability),
    "init": Option(
        "auto",
        str,
        "mlp: initialization of the hidden layers' weights: auto (he for relu and kin, "
        "xavier otherwise), he, xavier, lecun (the course notes' 'Xavier', std 1/sqrt(n_in)) "
        "or normal (std --init-std)",
        choices=presets.INITS,
    ),
    "init_std": Option(0.01, float, "mlp: the standard deviation of --init normal", check=_positive),
    "residual": Option(
        False, bool, "mlp: residual connections around the hidden layers after the first (x + f(x); equal widths)"
    ),
    "optimizer": Option("adam", str, "sgd, momentum, adagrad, rmsprop, adam or adamw", choices=tuple(OPTIMIZERS)),
    "lr": Option(3e-3, float, "learning rate", check=_positive),
    "momentum": Option(
        0.9, float, "momentum of sgd and momentum (the other optimizers do not use it)", check=_fraction_below_one
    ),
    "weight_decay": Option(0.0, float, "L2 weight decay (decoupled for adamw)", check=_non_negative),
    "schedule": Option(
        "none",
        str,
        "learning-rate schedule: none, linear-decay, step, cosine or plateau (reduce on a val_loss plateau)",
        choices=tuple(SCHEDULES),
    ),
    "final_lr": Option(0.0, float, "final learning rate of linear-decay / cosine (at most --lr)", check=_non_negative),
    "step_size": Option(
        None, int, "step schedule: epochs between reductions (unset: a third of --epochs)", check=_at_least_one
    ),
    "gamma": Option(
        0.1, float, "step and plateau schedules: the factor each reduction multiplies the rate by", check=_factor
    ),
    "plateau_patience": Option(
        3, int, "plateau schedule: epochs without val_loss improvement before the rate is reduced", check=_non_negative
    ),
    "warmup_steps": Option(
        0,
        int,
        "ramp the rate up linearly over the first N steps (step t uses (t+1)/N of it), with any schedule",
        check=_non_negative,
    ),
    "clip_grad_norm": Option(None, float, "clip the global gradient norm to this value", check=_positive),
    "train_size": Option(
        None, int, "train on only this many of the training samples (a fixed random subset)", check=_positive
    ),
    "batch_size": Option(32, int, "mini-batch size", check=_positive),
    "epochs": Option(20, int, "number of epochs", check=_positive),
    "patience": Option(
        None, int, "stop early after this many epochs without val_loss improvement", check=_at_least_one
    ),
    "keep": Option(
        "best",
        str,
        "the weights model.safetensors and the test row come from: best (the epoch of the lowest val_loss) or last",
        choices=("best", "last"),
    ),
    "checkpoint_every": Option(
        None,
        int,
        "also save checkpoints/last.safetensors every N steps, mid-epoch (--resume goes on from exactly there)",
        check=_at_least_one,
    ),
    "seed": Option(0, int, "random seed (weights, dropout, data order)", check=_non_negative),
    "device": Option("cpu", str, "cpu, or cuda (needs CuPy and an NVIDIA GPU)", check=_known_device),
    "host_masks": Option(
        False,
        bool,
        "draw dropout masks on the host, as the CPU does, and copy them to the device: a seed then "
        "gives a GPU run the CPU run's masks (slower; without it a GPU draws its own)",
    ),
    "stop_on_divergence": Option(
        False,
        bool,
        "stop, as at a NaN loss, when the training loss climbs above 1000 times "
        "its first value (without it: one warning, and training goes on)",
    ),
    "log_every": Option(
        10,
        int,
        "record the loss, accuracy and learning rate of every N-th step (steps.jsonl, TensorBoard's batch scalars)",
        check=_at_least_one,
    ),
    "monitor": Option(
        False,
        bool,
        "record gradient flow and activation statistics into diagnostics.jsonl and warn "
        "when gradients vanish or explode or units die or saturate",
    ),
    "monitor_every": Option(10, int, "with --monitor: sample every N steps", check=_at_least_one),
    "tensorboard": Option(
        False,
        bool,
        "write TensorBoard event files into RUN_DIR: step and epoch metrics, the "
        "options as hparams, weight and gradient histograms, the --monitor statistics "
        "(pip install 'deepgrad[tensorboard]'; then tensorboard --logdir runs)",
    ),
    "threads": Option(
        None,
        int,
        "threads to compute on (unset: the fastest of 1 and one per core split by deepgrad's "
        "ops or by the BLAS, timed on the run's first steps and kept for the run; a fixed "
        "count makes reruns bit-identical under any load)",
        check=_at_least_one,
    ),
    "threads_by": Option(
        None,
        str,
        "who splits work over --threads: ops (deepgrad's heavy ops, and NumPy's BLAS its "
        "matrix products until the first op splits work, then the BLAS on one thread; the "
        "default for a fixed count) or blas (only the BLAS's matrix products, for good)",
        check=_threads_by,
    ),
}


# Other names a data set goes by (on the command line, in TOML files and experiments).
DATASET_ALIASES = {"fashion": "fashion-mnist"}

# The options by topic, in the order ``deepgrad train --help`` lists them (every option is in one).
GROUPS = {
    "data": ("dataset", "data", "data_dir", "download", "val_fraction", "train_size"),
    "model": ("model", "hidden", "activation", "batch_norm", "dropout", "init", "init_std", "residual"),
    "optimization": (
        "optimizer",
        "lr",
        "momentum",
        "weight_decay",
        "clip_grad_norm",
        "batch_size",
        "epochs",
        "patience",
        "stop_on_divergence",
        "seed",
    ),
    "schedule": ("schedule", "final_lr", "step_size", "gamma", "plateau_patience", "warmup_steps"),
    "run": (
        "keep",
        "checkpoint_every",
        "device",
        "host_masks",
        "threads",
        "threads_by",
        "log_every",
        "monitor",
        "monitor_every",
        "tensorboard",
    ),
}

# What a resumed run may be given. These change how long, where and how it runs, not what it trains:
RESUME_FREE = (
    "epochs",
    "patience",
    "keep",
    "checkpoint_every",
    "device",
    "host_masks",
    "threads",
    "threads_by",
    "data_dir",
    "download",
    "stop_on_divergence",
    "log_every",
    "monitor",
    "monitor_every",
    "tensorboard",
)
# these take effect from the step it resumes at, when asked for (--override):
RESUME_OVERRIDABLE = ("lr", "weight_decay", "momentum", "clip_grad_norm", "dropout")
# and every other option is fixed by what the run has trained so far (the data, the model, the
# batches, the schedule's plan): changing it needs a new run.


def resume_changes(saved, config, given, override=False):
    """The options ``given`` to a resumed run whose value in its resolved ``config`` differs from
    the run's ``saved`` one, checked against what a resumed run may change: {name: new value}. A
    ConfigError lists every conflict — an option that needs ``override``, or one no resumed run can
    change — with the saved and the new value."""
    saved = validate(saved)
    changed = {name: config[name] for name in given if config[name] != saved[name]}
    overridable = [name for name in changed if name in RESUME_OVERRIDABLE]
    fixed = [name for name in changed if name not in RESUME_FREE + RESUME_OVERRIDABLE]
    if fixed or (overridable and not override):
        listed = "; ".join(
            f"--{flag(name)} {show(changed[name])} (the run has {show(saved[name])})" for name in fixed + overridable
        )
        advice = []
        if overridable and not override:
            advice.append(
                f"pass --override to change {', '.join('--' + flag(n) for n in overridable)} from the "
                "step the run resumes at"
            )
        if fixed:
            advice.append(
                f"{', '.join('--' + flag(n) for n in fixed)} cannot change in a resumed run (the run "
                "has trained with the old value); start a new run for that"
            )
        raise ConfigError(
            f"resuming with options that differ from the run's config.json: {listed}. " + "; ".join(advice)
        )
    return changed


def canonical_dataset(name):
    """The data set's registry name for ``name`` or one of its aliases (``fashion``)."""
    return DATASET_ALIASES.get(name, name)


def flag(name):
    """The command-line flag of option ``name``, without the dashes: ``clip_grad_norm`` -> clip-grad-norm."""
    return name.replace("_", "-")


def show(value):
    """An option's value as it is written on the command line (widths as 256,128)."""
    return ",".join(map(str, value)) if isinstance(value, list) else str(value)


def defaults():
    """Every option at its default."""
    return {name: option.default for name, option in OPTIONS.items()}


def check_types(values, source):
    """``values`` (some options) with each value checked against its option's type, ints given for
    floats made floats; unknown names are an error naming ``source`` (e.g. the file they came from)."""
    unknown = sorted(set(values) - set(OPTIONS))
    if unknown:
        raise ConfigError(f"{source}: unknown keys {unknown}; valid keys: {', '.join(OPTIONS)}")
    return {name: _typed(name, value, source) for name, value in values.items()}


def _typed(name, value, source):
    option = OPTIONS[name]
    kind = option.type
    if value is None and option.default is None:
        return value
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if kind is str and isinstance(value, os.PathLike):  # a directory given as a pathlib.Path
        return os.fspath(value)
    if kind is list:
        if not isinstance(value, list) or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            raise ConfigError(f"{source}: {name} must be a list of integers, got {value!r}")
        return list(value)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ConfigError(f"{source}: {name} must be of type {kind.__name__}, got {value!r}")
    return value


def validate(config, source="config"):
    """A complete config: ``config``'s options (a dict, possibly partial) over the defaults, with
    every type, choice and range checked."""
    resolved = defaults()
    given = check_types(config, source)
    if "dataset" in given:
        given["dataset"] = canonical_dataset(given["dataset"])
    resolved.update(given)
    if resolved["data"] is not None and "dataset" not in given:
        resolved["dataset"] = "arrays"  # --data alone means the data set of the user's arrays
    for name, option in OPTIONS.items():
        value = resolved[name]
        problem = None
        if option.choices is not None and value not in option.choices:
            problem = f"unknown {name} {value!r}; valid: {', '.join(option.choices)}"
        elif isinstance(value, float) and not math.isfinite(value):
            problem = f"{name} must be a finite number, got {value}"
        elif option.check is not None and value is not None:
            problem = option.check(name, value)
        if problem:
            raise ConfigError(problem if source == "config" else f"{source}: {problem}")
    problem = None
    if resolved["dataset"] == "arrays" and resolved["data"] is None:
        problem = "dataset 'arrays' trains on the arrays of a .npz file: give it with --data FILE.npz (data=...)"
    elif resolved["data"] is not None and resolved["dataset"] != "arrays":
        problem = (
            f"data {resolved['data']} is a data set of your own arrays (dataset 'arrays'), but dataset is "
            f"{resolved['dataset']!r}: give one of them"
        )
    if problem:
        raise ConfigError(problem if source == "config" else f"{source}: {problem}")
    for path in ("data", "data_dir"):  # saved absolute: the run's config.json finds them from anywhere
        if resolved[path] is not None:
            resolved[path] = os.path.abspath(os.path.expanduser(resolved[path]))
    if resolved["final_lr"] > resolved["lr"]:
        problem = f"final_lr {resolved['final_lr']} is above lr {resolved['lr']}: a schedule decays towards it"
        raise ConfigError(problem if source == "config" else f"{source}: {problem}")
    return resolved


def resolve(*layers):
    """Merge partial configs, later ones winning, over the defaults, and validate the result.
    An option whose value is None in a layer is not given there (the command line's unset flags)."""
    merged = {}
    for layer in layers:
        merged.update({name: value for name, value in layer.items() if value is not None})
    return validate(merged)


def read_toml(path, what="config file"):
    """The tables of the TOML file at ``path``; a ConfigError naming ``what`` it is and the file when
    it is missing or not TOML."""
    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"{what} not found: {path}") from None
    except OSError as error:  # a directory, a symlink loop, no permission
        raise ConfigError(f"cannot read {what} {path}: {error.strerror or error}") from None
    except UnicodeDecodeError as error:
        raise ConfigError(f"{what} {path} is not UTF-8 text ({error.reason} at byte {error.start})") from None
    except (ValueError, RecursionError) as error:  # TOMLDecodeError, an integer too long to read, nesting too deep
        raise ConfigError(f"{what} {path} is not valid TOML: {str(error)[:200] or type(error).__name__}") from None


def load_file(path):
    """The options in a TOML file (the flag names with underscores), types checked."""
    return check_types(read_toml(path), f"config file {path}")


def load_saved(path):
    """The options saved in a run's ``config.json`` at ``path``, types checked (keys this version
    does not know are ignored: a run written by another version still loads)."""
    try:
        with open(path, encoding="utf-8") as handle:
            saved = json.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"{path} not found: is this a run directory written by 'deepgrad train'?") from None
    except OSError as error:
        raise ConfigError(f"cannot read {path}: {error.strerror or error}") from None
    except (ValueError, RecursionError) as error:  # not JSON, not UTF-8, a number too long, nesting too deep
        raise ConfigError(f"{path} is not valid JSON: {str(error)[:200] or type(error).__name__}") from None
    if not isinstance(saved, dict):
        raise ConfigError(f"{path}: expected a JSON object of options, got {type(saved).__name__}")
    return check_types({name: value for name, value in saved.items() if name in OPTIONS}, path)
