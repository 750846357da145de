"""The command line: ``deepgrad train | evaluate | predict``.

    deepgrad train                       # an MLP on the embedded digits, into runs/<name>
    deepgrad train --dataset mnist --data-dir DIR --model simple-cnn --epochs 5 --out runs/cnn
    deepgrad train --out runs/cnn --resume --epochs 10   # continue that run
    deepgrad evaluate runs/cnn
    deepgrad predict runs/cnn --input images.npy

Errors in what the user asked for are one line on stderr and exit code 2.
"""

import argparse
import datetime
import json
import os
import shutil
import subprocess
import sys
import time

import numpy as np

from . import functional as F
from . import backend, io, optim
from .data import DataLoader, DatasetError, datasets
from .optim.lr_scheduler import CosineAnnealingLR, LinearDecay, StepLR
from .random import manual_seed
from .tensor import Tensor
from .threads import set_num_threads
from .train import EarlyStopping, HistoryWriter, ModelCheckpoint, ProgressBar, Trainer, TrainingDiverged, presets


class UsageError(Exception):
    """Something the user asked for cannot be done; reported as one line, exit code 2."""


# name -> (default, type, help). Types are checked for values from a config file too.
TRAIN_OPTIONS = {
    "dataset": ("digits", str, "digits (embedded), mnist, fashion-mnist or spiral"),
    "data_dir": (None, str, "directory holding the IDX files (mnist, fashion-mnist)"),
    "download": (False, bool, "download missing IDX files into --data-dir"),
    "model": ("mlp", str, "mlp, simple-cnn or resnet-small"),
    "hidden": ([256, 128], list, "mlp hidden widths, e.g. 256,128"),
    "activation": ("relu", str, "mlp activation: relu, tanh, sigmoid, gelu, leaky_relu"),
    "batch_norm": (False, bool, "mlp: BatchNorm1d before each activation"),
    "dropout": (0.0, float, "mlp: dropout probability after each activation"),
    "optimizer": ("adam", str, "sgd, momentum, adagrad, rmsprop, adam or adamw"),
    "lr": (3e-3, float, "learning rate"),
    "momentum": (0.9, float, "momentum of sgd and momentum (the other optimizers do not use it)"),
    "weight_decay": (0.0, float, "L2 weight decay (decoupled for adamw)"),
    "schedule": ("none", str, "learning-rate schedule: none, linear-decay, step, cosine"),
    "final_lr": (0.0, float, "final learning rate of linear-decay / cosine"),
    "clip_grad_norm": (None, float, "clip the global gradient norm to this value"),
    "batch_size": (32, int, "mini-batch size"),
    "epochs": (20, int, "number of epochs"),
    "patience": (None, int, "stop early after this many epochs without val_loss improvement"),
    "seed": (0, int, "random seed (weights, dropout, data order)"),
    "device": ("cpu", str, "cpu, or cuda (needs CuPy and an NVIDIA GPU)"),
    "threads": (None, int, "threads of NumPy's BLAS (unset: its own default, one per core); 1 is "
                           "faster for small models on a busy machine"),
}

DATASETS = ("digits", "mnist", "fashion-mnist", "spiral")
OPTIMIZERS = ("sgd", "momentum", "adagrad", "rmsprop", "adam", "adamw")
SCHEDULES = ("none", "linear-decay", "step", "cosine")


# ----------------------------------------------------------------------------
# Configuration


def _parse_value(name, text):
    default, kind, _ = TRAIN_OPTIONS[name]
    if kind is list:
        try:
            return [int(v) for v in text.split(",") if v.strip()]
        except ValueError:
            raise argparse.ArgumentTypeError(f"--{name.replace('_', '-')}: expected integers like 256,128") from None
    return kind(text)


def _check_type(name, value, source):
    default, kind, _ = TRAIN_OPTIONS[name]
    if value is None and default is None:
        return value
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if kind is list:
        if not isinstance(value, list) or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            raise UsageError(f"{source}: {name} must be a list of integers, got {value!r}")
        return value
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise UsageError(f"{source}: {name} must be of type {kind.__name__}, got {value!r}")
    return value


def load_config_file(path):
    """A TOML file of train options (the flag names with underscores)."""
    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib
    try:
        with open(path, "rb") as handle:
            raw = tomllib.load(handle)
    except FileNotFoundError:
        raise UsageError(f"config file not found: {path}") from None
    except tomllib.TOMLDecodeError as error:
        raise UsageError(f"config file {path} is not valid TOML: {error}") from None
    unknown = sorted(set(raw) - set(TRAIN_OPTIONS))
    if unknown:
        raise UsageError(f"config file {path}: unknown keys {unknown}; valid keys: {', '.join(TRAIN_OPTIONS)}")
    return {name: _check_type(name, value, f"config file {path}") for name, value in raw.items()}


def resolve_config(args):
    """Defaults, overridden by the config file, overridden by flags given on the command line."""
    config = {name: spec[0] for name, spec in TRAIN_OPTIONS.items()}
    if args.config:
        config.update(load_config_file(args.config))
    for name in TRAIN_OPTIONS:
        value = getattr(args, name)
        if value is not None:
            config[name] = value
    _check_choice("dataset", config["dataset"], DATASETS)
    _check_choice("model", config["model"], tuple(presets.PRESETS))
    _check_choice("optimizer", config["optimizer"], OPTIMIZERS)
    _check_choice("schedule", config["schedule"], SCHEDULES)
    _check_choice("activation", config["activation"], tuple(presets.ACTIVATIONS))
    for name in ("lr", "batch_size", "epochs"):
        if config[name] <= 0:
            raise UsageError(f"{name} must be positive, got {config[name]}")
    if not 0 <= config["dropout"] <= 1:
        raise UsageError(f"dropout must be in [0, 1], got {config['dropout']}")
    try:
        backend.get_device(config["device"])
    except (ValueError, RuntimeError) as error:
        raise UsageError(f"--device {config['device']}: {error}") from None
    if config["threads"] is not None and config["threads"] < 1:
        raise UsageError(f"threads must be at least 1, got {config['threads']}")
    return config


def _check_choice(name, value, choices):
    if value not in choices:
        raise UsageError(f"unknown {name} {value!r}; valid: {', '.join(choices)}")


# ----------------------------------------------------------------------------
# Building the pieces from a config


def load_splits(config):
    name, flatten = config["dataset"], False
    if name == "digits":
        return datasets.digits(flatten=flatten)
    if name == "spiral":
        if config["model"] != "mlp":
            raise UsageError("the spiral dataset is 2-D points: use --model mlp")
        return datasets.spiral_splits(seed=config["seed"])
    loader = datasets.mnist if name == "mnist" else datasets.fashion_mnist
    return loader(config["data_dir"], download=config["download"], flatten=flatten)


def build_model(config, splits):
    options = {}
    if config["model"] == "mlp":
        options = dict(hidden=tuple(config["hidden"]), activation=config["activation"],
                       batch_norm=config["batch_norm"], dropout=config["dropout"])
    elif len(splits.input_shape) != 3:
        raise UsageError(f"model {config['model']!r} needs images (C, H, W); {config['dataset']} has shape "
                         f"{splits.input_shape}")
    return presets.build(config["model"], splits.input_shape, splits.num_classes, **options)


def build_optimizer(config, parameters):
    name, lr, wd, momentum = config["optimizer"], config["lr"], config["weight_decay"], config["momentum"]
    if name == "sgd":
        return optim.SGD(parameters, lr=lr, momentum=momentum, weight_decay=wd)
    if name == "momentum":
        return optim.Momentum(parameters, lr=lr, momentum=momentum)
    if name == "adagrad":
        return optim.Adagrad(parameters, lr=lr, weight_decay=wd)
    if name == "rmsprop":
        return optim.RMSprop(parameters, lr=lr, weight_decay=wd, momentum=0.0)
    if name == "adam":
        return optim.Adam(parameters, lr=lr, weight_decay=wd)
    return optim.AdamW(parameters, lr=lr, weight_decay=wd)


def build_scheduler(config, optimizer, steps_per_epoch):
    schedule, epochs = config["schedule"], config["epochs"]
    if schedule == "linear-decay":
        return LinearDecay(optimizer, total_steps=epochs * steps_per_epoch, final_lr=config["final_lr"]), "batch"
    if schedule == "cosine":
        return CosineAnnealingLR(optimizer, T_max=epochs * steps_per_epoch, eta_min=config["final_lr"]), "batch"
    if schedule == "step":
        return StepLR(optimizer, step_size=max(1, epochs // 3), gamma=0.1), "epoch"
    return None, "epoch"


def loss_fn(outputs, targets):
    return F.cross_entropy(outputs, targets)


def _loaders(config, splits):
    train = DataLoader(splits.train, config["batch_size"], shuffle=True, seed=config["seed"])
    return train, DataLoader(splits.val, 1024), DataLoader(splits.test, 1024)


# ----------------------------------------------------------------------------
# Commands


def _check_run_dir(args, config):
    """Choose and check the run directory before any work; it is made by :func:`_prepare_run_dir`."""
    if args.out is None:
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        args.out = os.path.join("runs", f"{config['dataset']}-{config['model']}-{stamp}")
    if os.path.exists(args.out) and not os.path.isdir(args.out):
        raise UsageError(f"--out {args.out} is a file, not a directory")
    if args.resume:
        if not os.path.exists(os.path.join(args.out, "checkpoints", "last.safetensors")):
            raise UsageError(f"--resume: {args.out} has no checkpoints/last.safetensors to resume from")
    elif os.path.exists(args.out) and os.listdir(args.out) and not args.overwrite:
        raise UsageError(f"output directory {args.out} exists and is not empty; pass --overwrite or another --out")


def _prepare_run_dir(args):
    """Make the run directory once the data, model and optimizer are built (a run that cannot
    start leaves no directory behind)."""
    if args.resume:
        return
    if os.path.exists(args.out) and os.listdir(args.out):
        shutil.rmtree(args.out)
    os.makedirs(os.path.join(args.out, "checkpoints"), exist_ok=True)


def command_train(args):
    if args.resume:
        if args.out is None:
            raise UsageError("--resume needs --out RUN_DIR (the run to continue)")
        saved = _read_json(os.path.join(args.out, "config.json"))
        for name, value in saved.items():
            if name in TRAIN_OPTIONS and getattr(args, name) is None:
                setattr(args, name, value)
    config = resolve_config(args)
    _check_run_dir(args, config)
    run_dir = args.out
    if config["threads"] is not None:
        try:
            set_num_threads(config["threads"])
        except (ImportError, RuntimeError) as error:
            raise UsageError(f"--threads: {error}") from None
    manual_seed(config["seed"])
    splits = load_splits(config)
    model = build_model(config, splits)
    optimizer = build_optimizer(config, model.parameters())
    train_loader, val_loader, test_loader = _loaders(config, splits)
    scheduler, interval = build_scheduler(config, optimizer, len(train_loader))
    _prepare_run_dir(args)
    _write_json(os.path.join(run_dir, "config.json"), config)

    callbacks = [ProgressBar(quiet=True if args.quiet else None),
                 ModelCheckpoint(os.path.join(run_dir, "checkpoints"), monitor="val_loss")]
    if config["patience"]:
        callbacks.append(EarlyStopping("val_loss", patience=config["patience"]))
    trainer = Trainer(model, optimizer, loss_fn, callbacks=callbacks, scheduler=scheduler,
                      scheduler_interval=interval, clip_grad_norm=config["clip_grad_norm"], device=config["device"])
    resume_from = os.path.join(run_dir, "checkpoints", "last.safetensors") if args.resume else None
    metrics_path = os.path.join(run_dir, "metrics.jsonl")
    if not args.resume and os.path.exists(metrics_path):
        os.remove(metrics_path)
    trainer.callbacks.append(HistoryWriter(metrics_path))
    if not args.quiet:
        print(f"deepgrad train: {config['model']} on {config['dataset']} ({len(splits.train)} train / "
              f"{len(splits.val)} val / {len(splits.test)} test), {config['optimizer']} lr={config['lr']}, "
              f"{config['epochs']} epochs -> {run_dir}")
    start = time.perf_counter()
    history = trainer.fit(train_loader, val_loader, epochs=config["epochs"], resume_from=resume_from)
    wall_seconds = time.perf_counter() - start
    test = trainer.evaluate(test_loader)
    io.save(model.state_dict(), os.path.join(run_dir, "model.safetensors"))
    last = history.epochs[-1]
    summary = {
        "dataset": config["dataset"], "model": config["model"], "epochs": len(history),
        "train_loss": last["train_loss"], "train_accuracy": last["train_accuracy"],
        "val_loss": last["val_loss"], "val_accuracy": last["val_accuracy"],
        "test_loss": test["loss"], "test_accuracy": test["accuracy"],
        "train_seconds": sum(logs["seconds"] for logs in history.epochs),
        "wall_seconds": wall_seconds,
    }
    _write_json(os.path.join(run_dir, "summary.json"), summary)
    figure = _plot(history, run_dir, config)
    _print_table(summary, run_dir, figure)
    return 0


def _plot(history, run_dir, config):
    try:
        from .viz import plot_curves
        return plot_curves(history.epochs, os.path.join(run_dir, "curves.png"),
                           title=f"{config['model']} on {config['dataset']}")
    except ImportError:
        print("note: matplotlib is not installed, so curves.png was not drawn (pip install 'deepgrad[viz]')",
              file=sys.stderr)
        return None


def _print_table(summary, run_dir, figure):
    rows = [("train", summary["train_loss"], summary["train_accuracy"]),
            ("val", summary["val_loss"], summary["val_accuracy"])]
    if "test_loss" in summary:
        rows.append(("test", summary["test_loss"], summary["test_accuracy"]))
    print(f"\n{'split':<6} {'loss':>8} {'accuracy':>9}")
    for name, loss, accuracy in rows:
        print(f"{name:<6} {loss:>8.4f} {accuracy:>9.2%}")
    if "train_seconds" in summary:
        epochs, seconds = summary["epochs"], summary["train_seconds"]
        print(f"\n{epochs} epoch{'s' if epochs != 1 else ''} in {seconds:.{1 if seconds >= 10 else 2}f} s; "
              f"run saved in {run_dir}/ "
              f"(config.json, metrics.jsonl, summary.json, model.safetensors"
              f"{', curves.png' if figure else ''}, checkpoints/)")


def _load_run(run_dir):
    config = _read_json(os.path.join(run_dir, "config.json"))
    config = {name: _check_type(name, value, f"{run_dir}/config.json") for name, value in config.items()
              if name in TRAIN_OPTIONS}
    splits = load_splits(config)
    model = build_model(config, splits)
    weights = os.path.join(run_dir, "model.safetensors")
    try:
        model.load_state_dict(io.load(weights))
    except (RuntimeError, io.CheckpointError) as error:
        raise UsageError(f"{weights}: {error}") from None
    return config, splits, model


def command_evaluate(args):
    config, splits, model = _load_run(args.run_dir)
    trainer = Trainer(model, optim.SGD(model.parameters(), lr=1.0), loss_fn)
    results = {name: trainer.evaluate(DataLoader(getattr(splits, name), 1024)) for name in ("train", "val", "test")}
    summary = {f"{split}_{k}": v for split, r in results.items() for k, v in r.items()}
    _print_table(summary, args.run_dir, None)
    return 0


def command_predict(args):
    config, splits, model = _load_run(args.run_dir)
    try:
        x = np.load(args.input, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise UsageError(f"cannot read {args.input} as a .npy array: {error}") from None
    expected = splits.input_shape
    if x.shape == expected:
        x = x[None]
    if x.shape[1:] != expected:
        raise UsageError(f"--input has shape {x.shape}; expected (N,) + {expected} like the training data")
    trainer = Trainer(model, optim.SGD(model.parameters(), lr=1.0), loss_fn)
    logits = trainer.predict(Tensor(x.astype(np.float32)))
    predictions = logits.argmax(axis=1)
    if args.output:
        np.save(args.output, predictions)
    for i, p in enumerate(predictions):
        print(f"{i}\t{splits.classes[p]}")
    return 0


def _read_json(path):
    try:
        with open(path) as handle:
            return json.load(handle)
    except FileNotFoundError:
        raise UsageError(f"{path} not found: is this a run directory written by 'deepgrad train'?") from None
    except json.JSONDecodeError as error:
        raise UsageError(f"{path} is not valid JSON: {error}") from None


def _write_json(path, value):
    temporary = path + ".tmp"
    with open(temporary, "w") as handle:
        json.dump(value, handle, indent=2, allow_nan=True)
        handle.write("\n")
    os.replace(temporary, path)


# ----------------------------------------------------------------------------
# Argument parsing


def build_parser():
    parser = argparse.ArgumentParser(prog="deepgrad", description="Train, evaluate and use deepgrad models.")
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser("train", help="train a model (defaults: an MLP on the embedded digits)")
    for name, (default, kind, help_text) in TRAIN_OPTIONS.items():
        flag = "--" + name.replace("_", "-")
        if kind is bool:
            train.add_argument(flag, action="store_const", const=True, default=None, help=help_text)
        else:
            parse = (lambda text, name=name: _parse_value(name, text)) if kind is list else kind
            train.add_argument(flag, type=parse, default=None, help=f"{help_text} (default: {default})")
    train.add_argument("--config", help="TOML file of options (flags override it)")
    train.add_argument("--out", help="run directory (default: runs/DATASET-MODEL-TIME)")
    train.add_argument("--overwrite", action="store_true", help="replace an existing run directory")
    train.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    train.add_argument("--quiet", action="store_true", help="no progress bar or header")
    train.set_defaults(handler=command_train)

    evaluate = commands.add_parser("evaluate", help="loss and accuracy of a trained run on its data")
    evaluate.add_argument("run_dir")
    evaluate.set_defaults(handler=command_evaluate)

    predict = commands.add_parser("predict", help="predicted classes for the inputs in a .npy file")
    predict.add_argument("run_dir")
    predict.add_argument("--input", required=True, help=".npy array of inputs shaped like the training data")
    predict.add_argument("--output", help="also save the predicted class indices to this .npy file")
    predict.set_defaults(handler=command_predict)

    # Listed for --help only: main() hands everything after "bench" to python -m benchmarks.
    commands.add_parser("bench", add_help=False, help="speed and memory against PyTorch, DeZero and NumPy "
                        "(python -m benchmarks; see deepgrad bench --help)")
    return parser


def command_bench(argv):
    """``deepgrad bench ARGS`` runs ``python -m benchmarks ARGS`` (benchmarks/ is in the source checkout)."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if not os.path.isdir(os.path.join(root, "benchmarks")):
        print(f"deepgrad bench: error: no benchmarks/ directory next to the package in {root}; "
              "the benchmarks ship with the source checkout", file=sys.stderr)
        return 2
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])))
    try:
        return subprocess.call([sys.executable, "-m", "benchmarks", *argv], env=env)
    except KeyboardInterrupt:
        return 130


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["bench"]:
        return command_bench(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except (UsageError, DatasetError, io.CheckpointError, TrainingDiverged, ValueError, FileNotFoundError) as error:
        print(f"deepgrad {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"deepgrad {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
