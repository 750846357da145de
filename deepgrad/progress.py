"""Progress bars (tqdm, of the [train] extra) where people watch them: in a terminal as text, and in
a Jupyter notebook as a widget — or as text when ipywidgets is not installed, without tqdm's
warning about it. Anywhere else (a log file, CI, nohup) the callers print plain lines instead.
"""

from __future__ import annotations

import sys
import warnings
from typing import Any, TextIO


def in_notebook() -> bool:
    """Whether this process is a Jupyter kernel (an IPython shell whose output a browser shows)."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    return shell is not None and "IPKernelApp" in shell.config


def watched(stream: TextIO) -> bool:
    """Whether people watch ``stream`` as it is written: a terminal, or a notebook's own output."""
    if stream.isatty():
        return True
    return stream in (sys.stdout, sys.stderr) and in_notebook()


def tqdm(*args: Any, **kwargs: Any) -> Any:
    """``tqdm.auto.tqdm(*args, **kwargs)``: a notebook widget in Jupyter with ipywidgets, text otherwise."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*IProgress not found.*")  # its text fallback is fine
        from tqdm.auto import tqdm as auto_tqdm
    return auto_tqdm(*args, **kwargs)
