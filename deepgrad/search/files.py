"""The files of a search over training options: a TOML file of ranges (``--space``) and
``best.toml``, the best trial's config, which ``deepgrad train --config best.toml`` accepts as is.

    # space.toml: one table per training option, with one kind of range
    [lr]
    log_uniform = [1e-5, 1e-1]
    [hidden]
    choice = [[64], [128, 64]]
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from typing import Any

from .. import io
from ..errors import ConfigError
from ..train import config as options
from .objective import check_training_space
from .spaces import Choice, Dimension, IntLogUniform, IntUniform, LogUniform, Uniform

KINDS: dict[str, type[Uniform] | type[Choice]] = {
    "uniform": Uniform,
    "log_uniform": LogUniform,
    "int_uniform": IntUniform,
    "int_log_uniform": IntLogUniform,
    "choice": Choice,
}


def default_space(optimizer: str) -> dict[str, Dimension]:
    """The course notes' ranges: the learning rate and the weight decay on log scales (the rate's range
    suited to ``optimizer``: adaptive ones take smaller steps)."""
    lr = LogUniform(1e-5, 1e-1) if optimizer in ("adam", "adamw", "rmsprop") else LogUniform(1e-4, 1.0)
    return {"lr": lr, "weight_decay": LogUniform(1e-8, 1e-4)}


def load_space(path: str) -> dict[str, Dimension]:
    """The ranges in the TOML file at ``path``, checked against the training options' schema (see
    :meth:`~deepgrad.search.TrainingObjective.check_space`); ConfigError naming the file and what
    is wrong."""
    tables = options.read_toml(path, "space file")
    if not tables:
        raise ConfigError(f"space file {path} names no option to search")
    unknown = sorted(set(tables) - set(options.OPTIONS))
    if unknown:
        raise ConfigError(f"space file {path}: unknown options {unknown}; valid: {', '.join(options.OPTIONS)}")
    space: dict[str, Dimension] = {}
    for name, table in tables.items():
        if not isinstance(table, dict) or len(table) != 1 or next(iter(table)) not in KINDS:
            raise ConfigError(
                f"space file {path}: [{name}] must hold one of {', '.join(KINDS)}, e.g. "
                f"log_uniform = [1e-5, 1e-1]; got {table!r}"
            )
        kind, value = next(iter(table.items()))
        try:
            if kind == "choice":
                space[name] = Choice(value)
            elif not isinstance(value, list) or len(value) != 2:
                raise ConfigError(f"expected [lo, hi], got {value!r}")
            else:
                space[name] = KINDS[kind](*value)
        except (TypeError, ValueError) as error:
            raise ConfigError(f"space file {path}: [{name}] {kind} = {value!r}: {error}") from None
    return check_training_space(space, f"space file {path}")


def space_table(space: Mapping[str, Dimension]) -> dict[str, dict[str, Any]]:
    """``space`` as the tables of a space file (``{"lr": {"log_uniform": [1e-05, 0.1]}}``): what a
    study records of the space it searched, and how the differences between two are named."""
    names = {cls: kind for kind, cls in KINDS.items()}
    table: dict[str, dict[str, Any]] = {}
    for name, dimension in space.items():
        if isinstance(dimension, Choice):
            table[name] = {"choice": list(dimension.options)}
        else:
            lo, hi = dimension.bounds  # the original range, whatever narrowing did since
            kind = next(names[cls] for cls in type(dimension).__mro__ if cls in names)
            table[name] = {kind: [lo, hi]}
    return table


def write_best(path: str, config: Mapping[str, Any]) -> None:
    """``config`` (a training config) as a TOML file of train options, atomically and in UTF-8;
    options at None (unset) are left out, as TOML has no null."""
    text = toml_text(config)

    def write(temporary: str) -> None:
        with open(temporary, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)

    io.atomic_write(path, write)


def toml_text(config: Mapping[str, Any]) -> str:
    """The text of best.toml for ``config``; a ConfigError naming the option whose value TOML cannot
    hold (a path that is not valid Unicode, an integer beyond 64 bits)."""
    lines = ["# The best trial of a deepgrad search: deepgrad train --config best.toml"]
    for name, value in config.items():
        if value is None:
            continue
        try:
            lines.append(f"{name} = {toml_value(value)}")
        except ValueError as error:
            raise ConfigError(f"best.toml cannot hold {name} = {value!r}: {error}") from None
    return "\n".join(lines) + "\n"


def toml_value(value: Any) -> str:
    """``value`` as a TOML value; a ValueError for one TOML cannot hold."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, numbers.Integral):
        if not -(2**63) <= int(value) < 2**63:
            raise ValueError("TOML integers have 64 bits")
        return str(int(value))
    if isinstance(value, numbers.Real):
        number = float(value)
        if math.isnan(number):
            return "nan"
        return repr(number) if math.isfinite(number) else ("inf" if number > 0 else "-inf")
    raise ValueError(f"TOML has no value of type {type(value).__name__}")


ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}


def toml_string(text: str) -> str:
    """``text`` as a TOML basic string: quotes, backslashes and control characters escaped."""
    out = []
    for char in text:
        code = ord(char)
        if char in ESCAPES:
            out.append(ESCAPES[char])
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\u{code:04X}")
        elif 0xD800 <= code <= 0xDFFF:
            raise ValueError(f"{text!r} is not valid Unicode (a file name's undecodable bytes?)")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'
