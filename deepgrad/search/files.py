"""The files of a search over training options: a TOML file of ranges (``--space``) and
``best.toml``, the best trial's config, which ``deepgrad train --config best.toml`` accepts as is.

    # space.toml: one table per training option, with one kind of range
    [lr]
    log_uniform = [1e-5, 1e-1]
    [hidden]
    choice = [[64], [128, 64]]
"""

from .. import io
from ..errors import ConfigError
from ..train import config as options
from .spaces import Choice, IntLogUniform, IntUniform, LogUniform, Uniform

KINDS = {"uniform": Uniform, "log_uniform": LogUniform, "int_uniform": IntUniform,
         "int_log_uniform": IntLogUniform, "choice": Choice}


def default_space(optimizer):
    """The course notes' ranges: the learning rate and the weight decay on log scales (the rate's range
    suited to ``optimizer``: adaptive ones take smaller steps)."""
    lr = LogUniform(1e-5, 1e-1) if optimizer in ("adam", "adamw", "rmsprop") else LogUniform(1e-4, 1.0)
    return {"lr": lr, "weight_decay": LogUniform(1e-8, 1e-4)}


def load_space(path):
    """The ranges in the TOML file at ``path``; ConfigError naming the file and what is wrong."""
    tables = options.read_toml(path, "space file")
    if not tables:
        raise ConfigError(f"space file {path} names no option to search")
    unknown = sorted(set(tables) - set(options.OPTIONS))
    if unknown:
        raise ConfigError(f"space file {path}: unknown options {unknown}; valid: {', '.join(options.OPTIONS)}")
    space = {}
    for name, table in tables.items():
        if not isinstance(table, dict) or len(table) != 1 or next(iter(table)) not in KINDS:
            raise ConfigError(f"space file {path}: [{name}] must hold one of {', '.join(KINDS)}, e.g. "
                              f"log_uniform = [1e-5, 1e-1]; got {table!r}")
        kind, value = next(iter(table.items()))
        try:
            space[name] = KINDS[kind](value) if kind == "choice" else KINDS[kind](*value)
        except (TypeError, ValueError) as error:
            raise ConfigError(f"space file {path}: [{name}] {kind} = {value!r}: {error}") from None
    return space


def write_best(path, config):
    """``config`` (a training config) as a TOML file of train options, atomically; options at None
    (unset) are left out, as TOML has no null."""
    lines = ["# The best trial of a deepgrad search: deepgrad train --config best.toml"]
    lines += [f"{name} = {toml_value(value)}" for name, value in config.items() if value is not None]
    io.write_text(path, "\n".join(lines) + "\n")


def toml_value(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return repr(value)
