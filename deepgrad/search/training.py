"""A search over training options as one call, what ``deepgrad search`` runs: the study in
``OUT/study.jsonl`` (resumed when it is there), ``OUT/search.png``, ``OUT/best.toml`` and, on
request, the trials' TensorBoard runs in ``OUT/tb/``."""

import os
import sys

from ..errors import ConfigError
from ..train import config as options
from .asha import ASHA
from .files import default_space, write_best
from .objective import TrainingObjective
from .runner import random_search

STUDY_FILE, FIGURE_FILE, BEST_FILE, TENSORBOARD_DIR = "study.jsonl", "search.png", "best.toml", "tb"


def search_training(base, out, space=None, trials=20, rounds=2, keep=0.2, scheduler=None, executor="local",
                    n_jobs=None, progress=False, ray_address=None, cpus_per_trial=1, tensorboard=False):
    """Search the training options ``space`` (default: lr and weight decay on log scales for the
    base config's optimizer) around the training config ``base``, scoring each trial's validation
    accuracy; the seed of ``base`` seeds the search. ``executor``: "local", "serial" or "ray" (a local
    Ray, or the cluster at ``ray_address``, ``cpus_per_trial`` CPUs each). ``tensorboard``: each
    trial writes its params (as hparams) and metrics to ``OUT/tb/trial-NNNN/`` for TensorBoard's
    HParams tab (``tensorboard --logdir OUT/tb``). Returns the Study."""
    config = options.resolve(base)
    objective = TrainingObjective(base, tensorboard_dir=os.path.join(out, TENSORBOARD_DIR) if tensorboard else None)
    space = objective.check_space(space or default_space(config["optimizer"]))
    if scheduler not in (None, "none", "asha"):
        raise ConfigError(f"unknown scheduler {scheduler!r}; valid: asha, none")
    asha = ASHA(max_epochs=config["epochs"]) if scheduler == "asha" and "epochs" not in space else None
    try:
        os.makedirs(out, exist_ok=True)
    except OSError as error:
        raise ConfigError(f"cannot write the search into --out {out}: {error.strerror or error}") from None
    if executor == "ray":
        from .ray_executor import RayExecutor

        executor = RayExecutor(ray_address, cpus_per_trial)
    bar = TrialProgress(trials * rounds) if progress else None
    study = random_search(objective, space, trials, rounds, keep, config["seed"], executor, asha,
                          os.path.join(out, STUDY_FILE), n_jobs=n_jobs, progress=bar and bar.step)
    if bar:
        bar.close()
    if study.best is not None:
        write_best(os.path.join(out, BEST_FILE), {**config, **study.best.params})
        from ..viz.search import search_scores

        search_scores(study, os.path.join(out, FIGURE_FILE),
                      title=f"{config['model']} on {config['dataset']}: validation accuracy of each trial")
    return study


class TrialProgress:
    """A tqdm bar of trials done, with the best score so far."""

    def __init__(self, total):
        from tqdm.auto import tqdm

        self.bar, self.best = tqdm(total=total, desc="trials", file=sys.stderr), None

    def step(self, trial):
        if trial.scored and (self.best is None or trial.score > self.best):
            self.best = trial.score
        self.bar.update(1)
        if self.best is not None:
            self.bar.set_postfix(best=f"{self.best:.4f}")

    def close(self):
        self.bar.close()
