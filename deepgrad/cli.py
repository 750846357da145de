"""The command line, ``deepgrad train | evaluate | predict | experiment | search | report | notebooks | bench``:
it parses (:mod:`deepgrad.cli_parser`: the option flags come from the schema), calls the library and
prints. A user error (:class:`deepgrad.DeepgradError`) is one line on stderr and exit code 2; any
other exception is a bug and shows its traceback.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from typing import Any

import numpy as np

from . import experiments
from .cli_parser import build_parser
from .data.inputs import read_inputs
from .errors import ConfigError, DeepgradError
from .report import find_sources, write_experiments_index, write_report
from .train import config as options
from .train.directory import describe_entries
from .train.run import build_run, default_directory, load_run


def command_train(args: argparse.Namespace) -> int:
    if args.resume and args.out is None:
        raise ConfigError("--resume needs --out RUN_DIR (the run to continue)")
    given = given_options(args)
    how = dict(resume=args.resume, override=args.override, overwrite=args.overwrite, unique=args.out is None)
    out = args.out or default_directory(options.resolve(given))
    run = build_run(given, out=out, progress=False if args.quiet else None, **how)
    out, config = run.directory, run.config
    assert out is not None, "deepgrad train always writes a run directory"
    if not args.quiet:
        for line in filter(None, [run.resume_line(), *run.notes, run.describe()]):
            print(f"deepgrad train: {line}")
    try:
        summary = run.fit()
    except KeyboardInterrupt:
        saved, gone = run.trainer.stopped_at(), "" if os.path.isdir(out) else f" ({out} was removed)"
        resume = f"is saved in {out}/checkpoints/last.safetensors; continue with: deepgrad train --out {out} --resume"
        where = f"{saved} {resume}" if saved else f"nothing was saved yet, so there is nothing to resume{gone}"
        print(f"deepgrad train: interrupted; {where}", file=sys.stderr)
        return 130
    print_table(summary)
    if summary["kept_epoch"] != summary["epochs"]:
        print(f"\nthe model is epoch {summary['kept_epoch']}'s (the lowest val_loss; --keep last for the last epoch's)")
    seconds, epochs = summary["train_seconds"], f"{summary['epochs']} epoch{'s' if summary['epochs'] != 1 else ''}"
    print(f"\n{epochs} in {seconds:.{1 if seconds >= 10 else 2}f} s; run saved in {out}/ ({describe_entries(out)})")
    if config["tensorboard"]:
        print(f"watch it with: tensorboard --logdir {os.path.dirname(os.path.abspath(out))} (every run there)")
    return 0


def print_table(summary: dict[str, Any]) -> None:
    """Loss and accuracy per split, from ``summary`` keys like ``val_loss`` and ``test_accuracy``."""
    print(f"\n{'split':<6} {'loss':>8} {'accuracy':>9}")
    for split in ("train", "val", "test"):
        if f"{split}_loss" in summary:
            print(f"{split:<6} {summary[f'{split}_loss']:>8.4f} {summary[f'{split}_accuracy']:>9.2%}")


def loaded(args: argparse.Namespace) -> Any:
    """The run of ``args.run_dir`` with its weights, saying where they come from when not model.safetensors."""
    run = load_run(args.run_dir, checkpoint=args.checkpoint)
    if args.checkpoint is None and run.weights is not None and not run.weights.endswith("model.safetensors"):
        print(
            f"deepgrad {args.command}: note: {args.run_dir} has no model.safetensors (the run stopped before it "
            f"finished); using {os.path.relpath(run.weights, args.run_dir)}",
            file=sys.stderr,
        )
    return run


def command_evaluate(args: argparse.Namespace) -> int:
    results = loaded(args).evaluate()
    print_table({f"{split}_{key}": value for split, metrics in results.items() for key, value in metrics.items()})
    return 0


def command_predict(args: argparse.Namespace) -> int:
    if args.output and not os.path.isdir(os.path.dirname(os.path.abspath(args.output))):
        raise ConfigError(f"--output {args.output}: its folder {os.path.dirname(args.output)} does not exist")
    run = loaded(args)
    x, names = read_inputs(args.input, run.splits.input_shape, invert=args.invert)
    if len(args.input) == 1 and args.input[0].endswith(".npy"):
        names = [str(i) for i in range(len(x))]  # the rows of the one array given
    probabilities = run.predict_proba(x)
    predictions = probabilities.argmax(axis=1)
    if args.output:
        np.save(args.output, probabilities if args.proba else predictions)
    classes = run.splits.classes
    if args.proba:
        print("\t".join(["input", *classes]))
    for name, row, p in zip(names, probabilities, predictions):
        if args.proba:
            print("\t".join([name, *(f"{q:.4f}" for q in row)]))
        elif args.top_k:
            best = np.argsort(-row, kind="stable")[: args.top_k]
            print("\t".join([name, *(f"{classes[c]} {row[c]:.4f}" for c in best)]))
        else:
            print(f"{name}\t{classes[p]}")
    return 0


def command_experiment(args: argparse.Namespace) -> int:
    data = experiments.Settings(args.dataset or "digits", args.data_dir, bool(args.download), args.quick)
    run = dict(seed=args.seed or 0, seeds=args.seeds, backend=args.backend, jobs=args.jobs, progress=not args.quiet)
    names = experiments.names() if args.name == "all" else [args.name]
    outcome = experiments.run_experiments(
        experiments.registry(), names, args.out, data, claims=args.name == "all", **run
    )
    for name, report in outcome.reports.items():
        print("\n".join(report.lines()) + f"\n  -> {os.path.join(args.out, name)}/ ({report.setup['wall_seconds']} s)")
    if args.name == "all" or os.path.exists(os.path.join(args.out, "index.html")):
        print(f"index of every claim: {write_experiments_index(args.out, experiments.registry())}")
    for name, error in outcome.failures.items():
        print(f"deepgrad experiment: {name} failed: {error}", file=sys.stderr)
    return 1 if outcome.failures else 0


def command_search(args: argparse.Namespace) -> int:
    from .search.files import load_space
    from .search.training import search_training, summary_lines

    base = given_options(args)
    out = args.out or default_directory(options.resolve(base), root=os.path.join("runs", "search"))
    space = load_space(args.space) if args.space else None
    plan = dict(trials=args.trials, rounds=args.rounds, keep=args.keep_fraction, scheduler=args.scheduler, new=args.new)
    progress = not args.quiet and sys.stderr.isatty()
    runner = dict(executor=args.backend, n_jobs=args.jobs, ray_address=args.ray_address, progress=progress)

    def say(line: str) -> None:
        print(f"deepgrad search: {line}", file=sys.stderr)

    study = search_training(base, out, space, **plan, **runner, cpus_per_trial=args.cpus_per_trial, note=say)
    if study.interrupted and not len(study):
        say("interrupted before any trial finished; nothing was kept")
        return 130
    print("\n".join(summary_lines(study, out, tensorboard=options.resolve(base)["tensorboard"])))
    if study.interrupted:
        say(f"interrupted; run the same command again to resume from {out}/study.jsonl")
        return 130
    return 0


def command_report(args: argparse.Namespace) -> int:
    runs, searches = find_sources(args.run_dirs, args.filter)
    path = write_report(args.run_dirs, args.out, title=args.title, filter=args.filter)
    found = [f"{len(runs)} run{'s' if len(runs) != 1 else ''}"] if runs else []
    found += [f"{len(searches)} search{'es' if len(searches) != 1 else ''}"] if searches else []
    print(f"report of {' and '.join(found)} written to {path}")
    return 0


def command_notebooks(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .notebooks import execute_all

    for path in execute_all(Path(args.out), timeout=args.timeout):
        print(f"executed {path}")
    return 0


def command_bench(argv: list[str]) -> int:
    """``deepgrad bench ARGS`` runs ``python -m benchmarks ARGS`` (benchmarks/ is in the source checkout)."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if not os.path.isdir(os.path.join(root, "benchmarks")):
        print(
            f"deepgrad bench: error: no benchmarks/ next to the package in {root} (they ship with the source checkout)",
            file=sys.stderr,
        )
        return 2
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])))
    try:
        return subprocess.call([sys.executable, "-m", "benchmarks", *argv], env=env)
    except KeyboardInterrupt:
        return 130


def given_options(args: argparse.Namespace) -> dict[str, Any]:
    """The training options given: the --config file's, with the flags over them."""
    given = options.load_file(args.config) if getattr(args, "config", None) else {}
    given.update({name: getattr(args, name) for name in options.OPTIONS if getattr(args, name, None) is not None})
    return given


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["bench"]:
        return command_bench(argv[1:])
    commands = (
        command_train,
        command_evaluate,
        command_predict,
        command_experiment,
        command_search,
        command_report,
        command_notebooks,
    )
    args = build_parser({command.__name__.removeprefix("command_"): command for command in commands}).parse_args(argv)
    try:
        # NumPy's overflow/invalid warnings would print before the NaN guard's one line, which says it all
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            return int(args.handler(args))
    except DeepgradError as error:
        print(f"deepgrad {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"deepgrad {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
