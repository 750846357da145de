"""What every experiment shares: its :class:`Context` (data set, seed, quick mode, where its files
go) and the :class:`Report` it returns, which :func:`write_report` turns into ``report.md`` and
``results.json`` beside the experiment's figures."""

import json
import os
import time
from dataclasses import dataclass, field

from .. import io
from ..data import DataLoader, datasets
from ..random import manual_seed
from ..train.callbacks import Callback
from ..train.run import EVAL_BATCH_SIZE, build_run

DATASETS = ("digits", "mnist", "fashion-mnist")  # the data sets the studies run on (the schema's names)


@dataclass
class Table:
    """A table of the report: a title, column headers and rows of values."""

    title: str
    columns: list
    rows: list


@dataclass
class Figure:
    """A PNG the experiment wrote into its directory, and what it shows."""

    filename: str
    caption: str


@dataclass
class Report:
    """What an experiment found: ``claim`` says in one sentence what its figures show; ``setup`` what
    was run (data, model, steps; the runner adds the seed and the wall time); ``results`` the numbers
    of its tables (``results.json``)."""

    title: str
    claim: str
    setup: dict
    tables: list = field(default_factory=list)
    figures: list = field(default_factory=list)
    results: dict = field(default_factory=dict)


@dataclass
class Context:
    """Where and how an experiment runs: ``directory`` (its files go there), the data set (digits,
    mnist or fashion-mnist; ``data_dir``/``download`` as for ``deepgrad train``), the ``seed``, and
    ``quick`` (a few steps, for tests: seconds instead of minutes)."""

    name: str
    directory: str
    dataset: str = "digits"
    data_dir: str | None = None
    download: bool = False
    seed: int = 0
    quick: bool = False
    progress: bool = False

    def path(self, filename):
        return os.path.join(self.directory, filename)

    def config(self, **options):
        """A training config on the context's data set and seed, with ``options`` over it."""
        return {
            "dataset": self.dataset,
            "data_dir": self.data_dir,
            "download": self.download,
            "seed": self.seed,
            **options,
        }

    def train(self, callbacks=(), **options):
        """Build and fit the run of ``config(**options)`` (nothing written): (run, summary)."""
        run = build_run(self.config(**options), progress=False, callbacks=callbacks)
        return run, run.fit()

    def splits(self):
        """The context's data set (seeded split), as :func:`deepgrad.data.datasets.load` gives it."""
        return datasets.load(self.dataset, self.data_dir, self.download, self.seed)

    def bar(self, iterable, total=None, desc=None):
        """``iterable`` with a tqdm progress bar on stderr when ``progress`` is on."""
        if not self.progress:
            return iterable
        from tqdm.auto import tqdm

        return tqdm(iterable, total=total, desc=f"{self.name}: {desc}" if desc else self.name, leave=False)


class StepRecorder(Callback):
    """Every step's learning rate (the one that step uses) and training loss (of its batch)."""

    def __init__(self):
        self.lr, self.loss = [], []

    def on_step_end(self, trainer, logs):
        self.lr.append(trainer.current_lr)  # the rate the step used (set just before it)
        self.loss.append(logs["loss"])


class Evaluations(Callback):
    """The model's loss and accuracy on some splits of its run ("train", "val", "test") before the
    first step, every ``every`` optimizer steps and after the last: ``steps``, and ``results[split]``
    a list of {"loss", "accuracy"}. It reads its run's data: :meth:`attach` it once build_run made
    the run."""

    def __init__(self, splits):
        self.splits = tuple(splits)
        self.loaders, self.every = {}, None
        self.steps, self.results = [], {split: [] for split in self.splits}

    def attach(self, run, every):
        # A loader that does not shuffle draws nothing from the default generator (the dropout masks'
        # source), so watching a run leaves its training exactly as it would be unwatched.
        self.loaders = {split: DataLoader(getattr(run.splits, split), EVAL_BATCH_SIZE) for split in self.splits}
        self.every = every

    def on_fit_start(self, trainer):
        self.record(trainer)

    def on_step_end(self, trainer, logs):
        if trainer.global_step % self.every == 0:
            self.record(trainer)

    def on_fit_end(self, trainer):
        if self.steps[-1] != trainer.global_step:  # the last step, when ``every`` does not divide the run
            self.record(trainer)

    def record(self, trainer):
        self.steps.append(trainer.global_step)
        for split, loader in self.loaders.items():
            self.results[split].append(trainer.evaluate(loader))

    def series(self, split, measure="accuracy"):
        return [measured[measure] for measured in self.results[split]]


def recorded_run(context, splits, times=None, **options):
    """The run of ``options`` (built, not yet fitted), watched by :class:`Evaluations` of ``splits``
    after every epoch, or ``times`` times over the run: (run, evaluations)."""
    evaluations = Evaluations(splits)
    run = build_run(context.config(**options), progress=False, callbacks=[evaluations])
    steps_per_epoch = len(run.loaders[0])
    every = steps_per_epoch if times is None else max(1, steps_per_epoch * run.config["epochs"] // times)
    evaluations.attach(run, every)
    return run, evaluations


def run_in(context, experiment):
    """Seed, run ``experiment(context)`` and time it; returns its :class:`Report` with the seed, wall
    time and quick mode added to its setup."""
    manual_seed(context.seed)
    start = time.perf_counter()
    report = experiment(context)
    report.setup = {
        **report.setup,
        "seed": context.seed,
        "quick": context.quick,
        "wall_seconds": round(time.perf_counter() - start, 2),
    }
    return report


def write_report(report, directory):
    """``report.md`` and ``results.json`` of ``report`` in ``directory`` (its figures are there)."""
    io.write_text(os.path.join(directory, "results.json"), json.dumps(report.results, indent=1) + "\n")
    io.write_text(os.path.join(directory, "report.md"), markdown(report))


def markdown(report):
    """The report as Markdown: title, claim, what was run, the figures, the tables."""
    lines = [f"# {report.title}", "", report.claim, "", "## What was run", ""]
    lines += [f"- {key.replace('_', ' ')}: {value}" for key, value in report.setup.items()]
    for figure in report.figures:
        lines += ["", f"![{figure.caption}]({figure.filename})", "", f"*{figure.caption}*"]
    for table in report.tables:
        lines += [
            "",
            f"## {table.title}",
            "",
            "| " + " | ".join(markdown_cell(c) for c in table.columns) + " |",
            "|" + "|".join("---" for _ in table.columns) + "|",
        ]
        lines += ["| " + " | ".join(markdown_cell(value) for value in row) + " |" for row in table.rows]
    return "\n".join(lines) + "\n"


def cell(value):
    """A table cell: floats to 4 significant digits (scientific when tiny or huge), None as '–'."""
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.3g}" if value and (abs(value) < 1e-3 or abs(value) >= 1e4) else f"{value:.4g}"
    return str(value)


def markdown_cell(value):
    """:func:`cell` with Markdown's column separator escaped (a header or value may hold "|y|")."""
    return cell(value).replace("|", "\\|")
