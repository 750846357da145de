"""The command line's parser: a flag per option of the schema (:mod:`deepgrad.train.config`),
generated for each command that takes it, and each command's own arguments (what it reads and
writes, how it runs). :mod:`deepgrad.cli` runs the commands."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from typing import Any

from . import experiments
from .train import config as options


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def parse_widths(text: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError("--hidden: expected integers like 256,128") from None


def add_option_flags(parser: argparse.ArgumentParser, names: Any) -> dict[str, Any]:
    """A flag for each of the schema's options ``names`` ("all": every one, and --config for a TOML
    file of them), grouped by topic; returns {topic: argument group} (the "run" group always)."""
    wanted = set(options.OPTIONS) if names == "all" else set(names)
    groups = {}
    for topic, members in options.GROUPS.items():
        if topic != "run" and not wanted & set(members):
            continue
        group = groups[topic] = parser.add_argument_group(f"{topic} options")
        for name in (member for member in members if member in wanted):
            option = options.OPTIONS[name]
            flag = "--" + options.flag(name)
            if option.type is bool:
                group.add_argument(flag, action="store_const", const=True, default=None, help=option.help)
            else:
                parse = parse_widths if option.type is list else option.type
                default = "" if option.default is None else f" (default: {options.show(option.default)})"
                group.add_argument(flag, type=parse, default=None, help=option.help + default)
    if names == "all":
        parser.add_argument("--config", help="TOML file of options (flags override it)")
    return groups


def add_command_arguments(command: str, parser: argparse.ArgumentParser, groups: dict[str, Any]) -> None:
    """The arguments of ``command`` that are not options of a run."""
    run = groups["run"]
    if command == "train":
        run.add_argument("--out", help="run directory (default: runs/DATASET-MODEL-TIME)")
        run.add_argument(
            "--overwrite",
            action="store_true",
            help="replace the run in --out (only a run's own files; "
            "the old run is kept until the new one has saved something)",
        )
        run.add_argument(
            "--resume",
            action="store_true",
            help="continue the run in --out from its last checkpoint (with more --epochs to extend it)",
        )
        run.add_argument(
            "--override",
            action="store_true",
            help="with --resume: apply the given --lr, "
            "--weight-decay, --momentum, --clip-grad-norm or --dropout from the step the run resumes at "
            "(without it, an option that differs from the run's is an error)",
        )
        run.add_argument("--quiet", action="store_true", help="no progress bar or header")
    elif command in ("evaluate", "predict"):
        parser.add_argument("run_dir")
        parser.add_argument(
            "--checkpoint",
            choices=("best", "last"),
            help="the model of checkpoints/best or last instead of model.safetensors",
        )
    if command == "predict":
        parser.add_argument(
            "--input",
            required=True,
            nargs="+",
            metavar="PATH",
            help=".npy arrays shaped like the training data, image files (PNG, JPEG, ...: made like "
            "the training images: grayscale or RGB, resized, scaled to [0, 1]) or directories of "
            "them",
        )
        parser.add_argument(
            "--invert",
            action="store_true",
            help="invert the images (x -> 1 - x): for dark strokes "
            "on a light background, as MNIST and the digits are light on black",
        )
        shown = parser.add_mutually_exclusive_group()
        shown.add_argument(
            "--proba",
            action="store_true",
            help="print every class's probability (softmax of the model's outputs) instead of the class",
        )
        shown.add_argument(
            "--top-k", type=positive_int, metavar="K", help="print the K most probable classes with their probabilities"
        )
        parser.add_argument(
            "--output",
            help="also save the predicted class indices (with --proba: the "
            "probabilities, N x classes) to this .npy file",
        )
    elif command == "experiment":
        parser.add_argument("name", help=f"{', '.join(experiments.names())}, or all (adds claims.json and index.html)")
        parser.add_argument("--quick", action="store_true", help="a few steps only: seconds instead of minutes")
        parser.add_argument(
            "--seeds",
            type=positive_int,
            metavar="N",
            help="measure each statistical claim over N "
            "seeds from --seed (default: each study's own count, at least 3; 2 with --quick)",
        )
        parser.add_argument(
            "--backend",
            choices=("local", "serial", "ray"),
            default="local",
            help="where the studies' measurements run: local (a process per CPU, the default), serial, ray",
        )
        parser.add_argument("--jobs", type=positive_int, help="processes of the local backend (default: one per CPU)")
        parser.add_argument("--out", default="experiments", help="writes OUT/NAME/ (default: %(default)s)")
        parser.add_argument("--quiet", action="store_true", help="no progress bars")
    elif command == "search":
        add_search_arguments(parser.add_argument_group("search options"))
    elif command == "report":
        parser.add_argument(
            "run_dirs", nargs="+", metavar="RUN_DIR", help="run or search directories, or folders holding them"
        )
        parser.add_argument("--out", default="report.html", help="the HTML file to write (default: %(default)s)")
        parser.add_argument("--title", help="the page's title (default: the runs' names)")
        parser.add_argument("--filter", metavar="REGEX", help="only the runs and searches whose path matches REGEX")
    elif command == "notebooks":
        parser.add_argument("--out", required=True, help="the folder the executed notebooks are written to")
        parser.add_argument(
            "--timeout", type=float, default=300, help="seconds any one cell may run (default: %(default)s)"
        )


def add_search_arguments(group: Any) -> None:
    group.add_argument(
        "--space", help="TOML file of ranges over train options (default: lr and weight_decay on log scales)"
    )
    group.add_argument("--trials", type=int, default=20, help="trials per round (default: %(default)s)")
    group.add_argument("--rounds", type=int, default=2, help="rounds, each narrowing the ranges (default: %(default)s)")
    group.add_argument(
        "--keep-fraction",
        type=float,
        default=0.2,
        help="fraction of the best trials the next round's ranges span (default: %(default)s)",
    )
    group.add_argument(
        "--scheduler",
        choices=("none", "asha"),
        default="none",
        help="asha: stop hopeless trials early (successive halving)",
    )
    group.add_argument(
        "--backend",
        choices=("local", "serial", "ray"),
        default="local",
        help="local: a process per CPU (default); serial: one after the other; ray: Ray tasks "
        "(pip install 'deepgrad[ray]')",
    )
    group.add_argument("--jobs", type=int, help="processes of the local backend (default: one per CPU)")
    group.add_argument(
        "--ray-address",
        help="with --backend ray: a cluster to join ('auto', 'ray://host:port'; default: start a local Ray)",
    )
    group.add_argument(
        "--cpus-per-trial",
        type=int,
        default=1,
        help="with --backend ray: CPUs (and BLAS threads) of each trial (default: %(default)s)",
    )
    group.add_argument(
        "--out", help="study directory (default: runs/search/DATASET-MODEL-TIME); an existing one resumes"
    )
    group.add_argument(
        "--new",
        action="store_true",
        help="start a new study in --out even when it holds one made "
        "with other options: the old study's files (study.jsonl, search.json, best.toml, search.png, "
        "tb/) are moved into OUT/previous-N/ first",
    )
    group.add_argument("--quiet", action="store_true", help="no progress bar")


# command -> (its help, the schema's options it takes as flags: "all", or a list of names)
COMMANDS: dict[str, tuple[str, Any]] = {
    "train": ("train a model (defaults: an MLP on the embedded digits)", "all"),
    "evaluate": ("loss and accuracy of a trained run on its data", []),
    "predict": ("predicted classes (or probabilities) for inputs in .npy files or images", []),
    "experiment": (
        "run a study of why networks train or don't: figures, report.md and results.json",
        ["dataset", "data_dir", "download", "seed"],
    ),
    "search": (
        "random search over training options that narrows its ranges round by round (the options given are "
        "the base of every trial)",
        "all",
    ),
    "report": ("one self-contained HTML page of runs: results, curves overlaid, config differences, diagnostics", []),
    "notebooks": (
        "run the notebooks of the course notes (notebooks/ of the source checkout) and write the executed copies",
        [],
    ),
    "bench": (
        "speed and memory against PyTorch, DeZero and NumPy (python -m benchmarks; see deepgrad bench --help)",
        [],
    ),
}


def build_parser(handlers: Mapping[str, Callable[[argparse.Namespace], int]]) -> argparse.ArgumentParser:
    """The parser of every command, each calling its ``handlers[command]`` (``bench`` is listed for
    --help only: the CLI hands everything after it to ``python -m benchmarks``)."""
    parser = argparse.ArgumentParser(prog="deepgrad", description="Train, evaluate and use deepgrad models.")
    commands = parser.add_subparsers(dest="command", required=True)
    for name, (text, shared) in COMMANDS.items():
        command = commands.add_parser(name, help=text, add_help=name != "bench")
        if name == "bench":
            continue
        groups = add_option_flags(command, shared)
        add_command_arguments(name, command, groups)
        command.set_defaults(handler=handlers[name])
    return parser
