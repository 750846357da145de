"""The command line: ``deepgrad train | evaluate | predict | experiment | search | report | bench``.

    deepgrad train                       # an MLP on the embedded digits, into runs/<name>
    deepgrad train --dataset mnist --data-dir DIR --model simple-cnn --epochs 5 --out runs/cnn
    deepgrad train --out runs/cnn --resume --epochs 10   # continue that run
    deepgrad evaluate runs/cnn
    deepgrad predict runs/cnn --input images.npy
    deepgrad report runs/cnn runs/mlp --out report.html

The train flags are generated from the option schema (:mod:`deepgrad.train.config`); the work
is :mod:`deepgrad.train.run`'s. A user error (:class:`deepgrad.DeepgradError`) is one line on
stderr and exit code 2; any other exception is a bug and shows its traceback.
"""

import argparse
import os
import subprocess
import sys

import numpy as np

from . import experiments
from .diagnostics import standard_monitors
from .errors import ConfigError, DeepgradError
from .train import config as options
from .data.inputs import read_inputs
from .train.run import build_run, default_directory, load_run


def command_train(args):
    if args.resume and args.out is None:
        raise ConfigError("--resume needs --out RUN_DIR (the run to continue)")
    given = given_options(args)
    if args.monitor_every < 1:
        raise ConfigError(f"--monitor-every must be at least 1, got {args.monitor_every}")
    if args.tensorboard:  # before the run directory is made
        from .train.tensorboard import require_tensorboardx

        require_tensorboardx()
    run = build_run(given, out=args.out or default_directory(options.resolve(given)), resume=args.resume,
                    override=args.override, overwrite=args.overwrite, unique=args.out is None,
                    progress=False if args.quiet else None)
    out = run.directory
    if args.monitor:
        run.trainer.callbacks += standard_monitors(out, args.monitor_every)
    if args.tensorboard:
        from .train.tensorboard import TensorBoardLogger

        run.trainer.callbacks.append(TensorBoardLogger(run.path("tb"), config=run.config))
    if not args.quiet:
        for line in filter(None, [run.resume_line(), *run.notes, run.describe()]):
            print(f"deepgrad train: {line}")
    try:
        summary = run.fit()
    except KeyboardInterrupt:
        trainer = run.trainer
        if trainer.position is not None:  # stopped after a step, and saved there
            saved = f"step {trainer.global_step} (batch {trainer.position['batch']} of epoch {trainer.epoch + 1})"
        else:  # a second Ctrl-C: the last complete epoch's checkpoint is what there is
            saved = f"epoch {trainer.epoch}" if trainer.epoch else None
        where = (f"{saved} is saved in {out}/checkpoints/last.safetensors; continue with: deepgrad train --out {out} "
                 "--resume" if saved else "nothing was saved yet, so there is nothing to resume"
                 + ("" if os.path.isdir(out) else f" ({out} was removed)"))
        print(f"deepgrad train: interrupted; {where}", file=sys.stderr)
        return 130
    print_table(summary)
    if summary["kept_epoch"] != summary["epochs"]:
        print(f"\nthe model is epoch {summary['kept_epoch']}'s (the lowest val_loss; --keep last for the last "
              "epoch's)")
    seconds, figure = summary["train_seconds"], os.path.exists(run.path("curves.png"))
    print(f"\n{summary['epochs']} epoch{'s' if summary['epochs'] != 1 else ''} in "
          f"{seconds:.{1 if seconds >= 10 else 2}f} s; run saved in {out}/ (config.json, metrics.jsonl, "
          f"summary.json, model.safetensors{', curves.png' if figure else ''}"
          f"{', diagnostics.jsonl' if args.monitor else ''}{', tb/' if args.tensorboard else ''}, checkpoints/)")
    if args.tensorboard:
        print(f"watch it with: tensorboard --logdir {run.path('tb')}")
    return 0


def print_table(summary):
    """Loss and accuracy per split, from ``summary`` keys like ``val_loss`` and ``test_accuracy``."""
    print(f"\n{'split':<6} {'loss':>8} {'accuracy':>9}")
    for split in ("train", "val", "test"):
        if f"{split}_loss" in summary:
            print(f"{split:<6} {summary[f'{split}_loss']:>8.4f} {summary[f'{split}_accuracy']:>9.2%}")


def command_evaluate(args):
    results = load_run(args.run_dir, checkpoint=args.checkpoint).evaluate()
    print_table({f"{split}_{key}": value for split, metrics in results.items() for key, value in metrics.items()})
    return 0


def command_predict(args):
    run = load_run(args.run_dir, checkpoint=args.checkpoint)
    x, names = read_inputs(args.input, run.splits.input_shape, invert=args.invert)
    if len(args.input) == 1 and args.input[0].endswith(".npy"):
        names = [str(i) for i in range(len(x))]   # the rows of the one array given
    probabilities = run.predict_proba(x)
    predictions = probabilities.argmax(axis=1)
    if args.output:
        np.save(args.output, probabilities if args.proba else predictions)
    classes = run.splits.classes
    if args.proba:
        print("\t".join(["input", *classes]))
        for name, row in zip(names, probabilities):
            print("\t".join([name, *(f"{p:.4f}" for p in row)]))
    elif args.top_k:
        for name, row in zip(names, probabilities):
            best = np.argsort(-row, kind="stable")[:args.top_k]
            print("\t".join([name, *(f"{classes[c]} {row[c]:.4f}" for c in best)]))
    else:
        for name, p in zip(names, predictions):
            print(f"{name}\t{classes[p]}")
    return 0


def command_experiment(args):
    options = dict(dataset=args.dataset, data_dir=args.data_dir, download=args.download, seed=args.seed,
                   quick=args.quick, progress=not args.quiet and sys.stderr.isatty())
    if args.name == "all":
        from .report import write_experiments_index

        reports = experiments.run_all(args.out, **options)
        print(f"{len(reports)} experiments written to {args.out}/ (open {write_experiments_index(reports, args.out)})")
        return 0
    report = experiments.run_experiment(args.name, args.out, **options)
    print(f"{report.title}\n{report.claim}\n-> {os.path.join(args.out, args.name)}/ (report.md, results.json, "
          f"{', '.join(f.filename for f in report.figures)}; {report.setup['wall_seconds']} s)")
    return 0


def command_search(args):
    from .search.files import load_space
    from .search.training import BEST_FILE, search_training

    base = given_options(args)
    out = args.out or default_directory(options.resolve(base), root=os.path.join("runs", "search"))
    study = search_training(base, out, load_space(args.space) if args.space else None, args.trials, args.rounds,
                            args.keep_fraction, args.scheduler, args.backend, args.jobs,
                            progress=not args.quiet and sys.stderr.isatty(), ray_address=args.ray_address,
                            cpus_per_trial=args.cpus_per_trial, tensorboard=args.tensorboard)
    ranked = study.ranked()
    names = list(study.spaces[0]) if getattr(study, "spaces", None) else []
    print(f"\n{'rank':>4} {'trial':>5} {'round':>5} {'val acc':>8} {'status':<8} " + " ".join(f"{n:>12}" for n in names))
    for rank, trial in enumerate(ranked[:10], 1):
        values = " ".join(f"{trial.params[n]:>12.4g}" if isinstance(trial.params[n], float) else
                          f"{str(trial.params[n]):>12}" for n in names)
        print(f"{rank:>4} {trial.number + 1:>5} {trial.round + 1:>5} {trial.score:>8.4f} {trial.status:<8} {values}")
    failed = sum(t.status == "failed" for t in study.trials.values())
    print(f"\n{len(study)} trials ({failed} failed) in {out}/ (study.jsonl, search.png, {BEST_FILE}"
          f"{', tb/' if args.tensorboard else ''}); train the best with: deepgrad train --config "
          f"{os.path.join(out, BEST_FILE)}")
    if args.tensorboard:
        print(f"compare the trials in TensorBoard's HParams tab: tensorboard --logdir {os.path.join(out, 'tb')}")
    if study.interrupted:
        print(f"deepgrad search: interrupted; run the same command again to resume from {out}/study.jsonl",
              file=sys.stderr)
        return 130
    return 0


def command_report(args):
    from .report import write_report

    path = write_report(args.run_dirs, args.out, title=args.title)
    print(f"report of {len(args.run_dirs)} run{'s' if len(args.run_dirs) != 1 else ''} written to {path}")
    return 0


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


def positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def parse_widths(text):
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError("--hidden: expected integers like 256,128") from None


def add_option_flags(parser):
    """A flag per training option of the schema, grouped by topic, and --config for a TOML file of
    them; returns {topic: argument group}."""
    groups = {}
    for topic, names in options.GROUPS.items():
        group = groups[topic] = parser.add_argument_group(f"{topic} options")
        for name in names:
            option = options.OPTIONS[name]
            flag = "--" + options.flag(name)
            if option.type is bool:
                group.add_argument(flag, action="store_const", const=True, default=None, help=option.help)
            else:
                parse = parse_widths if option.type is list else option.type
                default = "" if option.default is None else f" (default: {options.show(option.default)})"
                group.add_argument(flag, type=parse, default=None, help=option.help + default)
    parser.add_argument("--config", help="TOML file of options (flags override it)")
    return groups


def given_options(args):
    """The training options given: the --config file's, with the flags over them."""
    given = options.load_file(args.config) if args.config else {}
    given.update({name: getattr(args, name) for name in options.OPTIONS if getattr(args, name) is not None})
    return given


def build_parser():
    parser = argparse.ArgumentParser(prog="deepgrad", description="Train, evaluate and use deepgrad models.")
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser("train", help="train a model (defaults: an MLP on the embedded digits)")
    run_group = add_option_flags(train)["run"]
    run_group.add_argument("--out", help="run directory (default: runs/DATASET-MODEL-TIME)")
    run_group.add_argument("--overwrite", action="store_true", help="replace the run in --out (only a run's own files; "
                           "the old run is kept until the new one has saved something)")
    run_group.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint "
                       "(with more --epochs to extend it)")
    run_group.add_argument("--override", action="store_true", help="with --resume: apply the given --lr, --weight-decay, "
                       "--momentum, --clip-grad-norm or --dropout from the step the run resumes at (without it, "
                       "an option that differs from the run's is an error)")
    run_group.add_argument("--quiet", action="store_true", help="no progress bar or header")
    run_group.add_argument("--monitor", action="store_true",
                       help="record gradient flow and activation statistics into diagnostics.jsonl and warn when "
                            "gradients vanish or explode or units die or saturate")
    run_group.add_argument("--monitor-every", type=int, default=10, metavar="N",
                       help="with --monitor: sample every N steps (default: %(default)s)")
    run_group.add_argument("--tensorboard", action="store_true",
                       help="write TensorBoard event files into RUN_DIR/tb/: step and epoch metrics, the options "
                            "as hparams, weight and gradient histograms, the --monitor statistics "
                            "(pip install 'deepgrad[tensorboard]'; then tensorboard --logdir runs)")
    train.set_defaults(handler=command_train)

    evaluate = commands.add_parser("evaluate", help="loss and accuracy of a trained run on its data")
    evaluate.add_argument("run_dir")
    evaluate.add_argument("--checkpoint", choices=("best", "last"), help="the model of checkpoints/best or last "
                                                                         "instead of model.safetensors")
    evaluate.set_defaults(handler=command_evaluate)

    predict = commands.add_parser("predict", help="predicted classes (or probabilities) for inputs in .npy files "
                                  "or images")
    predict.add_argument("run_dir")
    predict.add_argument("--checkpoint", choices=("best", "last"), help="the model of checkpoints/best or last "
                                                                        "instead of model.safetensors")
    predict.add_argument("--input", required=True, nargs="+", metavar="PATH",
                         help=".npy arrays shaped like the training data, image files (PNG, JPEG, ...: made like "
                              "the training images: grayscale or RGB, resized, scaled to [0, 1]) or directories of "
                              "them")
    predict.add_argument("--invert", action="store_true", help="invert the images (x -> 1 - x): for dark strokes on "
                         "a light background, as MNIST and the digits are light on black")
    shown = predict.add_mutually_exclusive_group()
    shown.add_argument("--proba", action="store_true", help="print every class's probability (softmax of the "
                       "model's outputs) instead of the class")
    shown.add_argument("--top-k", type=positive_int, metavar="K", help="print the K most probable classes with "
                       "their probabilities")
    predict.add_argument("--output", help="also save the predicted class indices (with --proba: the probabilities, "
                                          "N x classes) to this .npy file")
    predict.set_defaults(handler=command_predict)

    experiment = commands.add_parser("experiment", help="run a study of why networks train or don't: figures, "
                                     "report.md and results.json")
    experiment.add_argument("name", help=f"{', '.join(experiments.names())}, or all (adds index.html)")
    experiment.add_argument("--dataset", default="digits", help="digits (default), mnist or fashion")
    experiment.add_argument("--data-dir", help="directory holding the IDX files (mnist, fashion)")
    experiment.add_argument("--download", action="store_true", help="download missing IDX files into --data-dir")
    experiment.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    experiment.add_argument("--quick", action="store_true", help="a few steps only: seconds instead of minutes")
    experiment.add_argument("--out", default="experiments", help="writes OUT/NAME/ (default: %(default)s)")
    experiment.add_argument("--quiet", action="store_true", help="no progress bars")
    experiment.set_defaults(handler=command_experiment)

    search = commands.add_parser("search", help="random search over training options that narrows its ranges "
                                 "round by round (the options given are the base of every trial)")
    add_option_flags(search)
    searching = search.add_argument_group("search options")
    searching.add_argument("--space", help="TOML file of ranges over train options (default: lr and weight_decay on "
                                        "log scales)")
    searching.add_argument("--trials", type=int, default=20, help="trials per round (default: %(default)s)")
    searching.add_argument("--rounds", type=int, default=2, help="rounds, each narrowing the ranges (default: "
                                                              "%(default)s)")
    searching.add_argument("--keep-fraction", type=float, default=0.2, help="fraction of the best trials the next "
                                                                         "round's ranges span (default: %(default)s)")
    searching.add_argument("--scheduler", choices=("none", "asha"), default="none",
                        help="asha: stop hopeless trials early (successive halving)")
    searching.add_argument("--backend", choices=("local", "serial", "ray"), default="local",
                        help="local: a process per CPU (default); serial: one after the other; ray: Ray tasks "
                             "(pip install 'deepgrad[ray]')")
    searching.add_argument("--jobs", type=int, help="processes of the local backend (default: one per CPU)")
    searching.add_argument("--ray-address", help="with --backend ray: a cluster to join ('auto', 'ray://host:port'; "
                                              "default: start a local Ray)")
    searching.add_argument("--cpus-per-trial", type=int, default=1, help="with --backend ray: CPUs (and BLAS threads) "
                                                                      "of each trial (default: %(default)s)")
    searching.add_argument("--out", help="study directory (default: runs/search/DATASET-MODEL-TIME); an existing one "
                                      "resumes")
    searching.add_argument("--tensorboard", action="store_true", help="each trial's options and validation metrics "
                        "as TensorBoard hparams in OUT/tb/trial-NNNN/ (pip install 'deepgrad[tensorboard]')")
    searching.add_argument("--quiet", action="store_true", help="no progress bar")
    search.set_defaults(handler=command_search)

    report = commands.add_parser("report", help="one self-contained HTML page of runs: results, curves overlaid, "
                                 "config differences, diagnostics")
    report.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="run directories of deepgrad train")
    report.add_argument("--out", default="report.html", help="the HTML file to write (default: %(default)s)")
    report.add_argument("--title", help="the page's title (default: the runs' names)")
    report.set_defaults(handler=command_report)

    # Listed for --help only: main() hands everything after "bench" to python -m benchmarks.
    commands.add_parser("bench", add_help=False, help="speed and memory against PyTorch, DeZero and NumPy "
                        "(python -m benchmarks; see deepgrad bench --help)")
    return parser


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["bench"]:
        return command_bench(argv[1:])
    args = build_parser().parse_args(argv)
    try:
        # NumPy's overflow/invalid warnings would print before the NaN guard's one line, which says it all
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            return args.handler(args)
    except DeepgradError as error:
        print(f"deepgrad {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"deepgrad {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
