"""What every experiment shares: its :class:`Context` (data set, seed, quick mode, where its files
go) and the :class:`Report` it returns — its question, its claims (:mod:`.claims`), figures and
tables — which :func:`write_report` turns into ``report.md`` and ``results.json`` beside the
experiment's figures.

A study is a module with ``TITLE``, ``SEEDS`` (how many seeds its claims are measured over by
default; 1 for a study whose numbers do not depend on a seed) and two functions:
``measure(context) -> dict`` — one seed's numbers (``context.seed``), as JSON, run on the search's
executors — and ``report(context, measured) -> Report``, which draws the figures into
``context.directory`` and judges the claims from every seed's numbers.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from typing import Any

from .. import io
from ..data import DataLoader, datasets
from ..train.callbacks import Callback
from ..train.run import EVAL_BATCH_SIZE, build_run
from .claims import Claim, format_number

DATASETS = ("digits", "mnist", "fashion-mnist")  # the data sets the studies run on (the schema's names)
BIG_TRAIN_SIZE = 5000  # mnist and fashion-mnist: a training subset keeps each study within a minute or two


def run_options(context, training, quick):
    """``training`` as this context runs it: with ``quick``'s options over it in quick mode, and on
    the first BIG_TRAIN_SIZE samples of a data set bigger than digits."""
    if context.quick:
        return {**training, **quick}
    return {**training, "train_size": None if context.dataset == "digits" else BIG_TRAIN_SIZE}


def data_description(context, options):
    """What the runs of ``options`` train on, for the report's setup."""
    subset = f", first {options['train_size']} samples" if options.get("train_size") else ""
    return f"{context.dataset} training split{subset}"


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
    """What an experiment found: ``question`` is the one question it answers; ``claims`` the claims
    of the notes it measured, each judged by its numbers; ``setup`` what was run (data, model,
    steps; the runner adds the seeds and the wall time); ``results`` the numbers of its tables and
    figures (``results.json``, beside the claims)."""

    title: str
    question: str
    setup: dict
    claims: list[Claim] = field(default_factory=list)
    tables: list = field(default_factory=list)
    figures: list = field(default_factory=list)
    results: dict = field(default_factory=dict)
    directory: str | None = None  # where the runner wrote it (its figures), once it is done

    def lines(self) -> list[str]:
        """What ``deepgrad experiment`` prints of it: the title, the question, a line per claim."""
        return [self.title, self.question] + [
            f"  {claim.verdict:<15} {claim.note:<9} {claim.claim} ({claim.measure}: {claim.summary()}, judged by "
            f"value {claim.comparison})"
            for claim in self.claims
        ]

    def _repr_html_(self) -> str:
        """The report in a notebook: its question, its claims with their verdicts, its figures."""
        from .display import report_html

        return report_html(self)

    def to_record(self) -> dict[str, Any]:
        """Everything the report holds, as JSON (what ``results.json`` and the index read)."""
        return {
            "title": self.title,
            "question": self.question,
            "setup": self.setup,
            "claims": [claim.to_dict() for claim in self.claims],
            "figures": [{"filename": f.filename, "caption": f.caption} for f in self.figures],
            "tables": [{"title": t.title, "columns": t.columns, "rows": t.rows} for t in self.tables],
            "results": self.results,
        }


@dataclass
class Context:
    """Where and how an experiment runs: ``directory`` (its files go there), the data set (digits,
    mnist or fashion-mnist; ``data_dir``/``download`` as for ``deepgrad train``), the ``seed`` of
    this measurement, every seed of the study (``seeds``), and ``quick`` (a few steps, for tests:
    seconds instead of minutes)."""

    name: str
    directory: str
    dataset: str = "digits"
    data_dir: str | None = None
    download: bool = False
    seed: int = 0
    quick: bool = False
    progress: bool = False
    seeds: tuple[int, ...] = (0,)

    def path(self, filename):
        return os.path.join(self.directory, filename)

    def config(self, **options):
        """A training config on the context's data set and seed, with ``options`` over it (one BLAS
        thread unless given: runs are bit-identical whatever the load, and run side by side)."""
        return {
            "dataset": self.dataset,
            "data_dir": self.data_dir,
            "download": self.download,
            "seed": self.seed,
            "threads": 1,
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
        from ..progress import tqdm

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


def write_report(report, directory):
    """``report.md`` and ``results.json`` of ``report`` in ``directory`` (its figures are there)."""
    record = json_safe(report.to_record())
    io.write_text(os.path.join(directory, "results.json"), json.dumps(record, indent=1, allow_nan=False) + "\n")
    io.write_text(os.path.join(directory, "report.md"), markdown(report))


def json_safe(value: Any) -> Any:
    """``value`` with every NaN and infinity as text ("nan", "inf", "-inf"): strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    return value


def markdown(report):
    """The report as Markdown: title, question, the claims and their verdicts, what was run, the
    figures, the tables."""
    lines = [f"# {report.title}", "", f"*{report.question}*", ""]
    if report.claims:
        lines += [
            "## Claims",
            "",
            "| claim | note | measure | values (per seed) | mean ± sd | judged by | verdict |",
            "|---|---|---|---|---|---|---|",
        ]
        lines += [
            "| "
            + " | ".join(
                markdown_cell(value)
                for value in (
                    claim.claim,
                    claim.note,
                    claim.measure,
                    ", ".join(format_number(v) for v in claim.values),
                    claim.summary(),
                    f"value {claim.comparison}",
                    claim.verdict,
                )
            )
            + " |"
            for claim in report.claims
        ]
        lines.append("")
    lines += ["## What was run", ""]
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
