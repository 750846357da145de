"""The course notes as notebooks: the repository's ``notebooks/`` folder holds one Jupyter notebook
per seed note, kept without outputs; :func:`execute_all` (``deepgrad notebooks --out DIR``) runs
each top to bottom and writes the executed copies, their numbers, tables and figures in them.

    from deepgrad.notebooks import execute_all
    execute_all(Path("executed"))        # [Path("executed/01_from_scratch.ipynb"), ...]

Each runs with nbclient on this interpreter's ``python3`` ipykernel (not whatever kernel of that
name another environment installed), in ``out_dir`` as its working directory. Needs the
``notebooks`` extra (nbclient, nbformat, ipykernel) and a source checkout: the notebooks are not
part of the installed package.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from .errors import ConfigError, DeepgradError

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
KERNEL = "python3"


class NotebookFailed(DeepgradError, RuntimeError):
    """A notebook raised while it ran: the message names the notebook, the cell and the error."""


def notebook_paths() -> list[Path]:
    """The notebooks of the repository's ``notebooks/`` folder, in their numbered order."""
    paths = sorted(NOTEBOOKS.glob("*.ipynb"))
    if not paths:
        raise ConfigError(f"no notebooks in {NOTEBOOKS} (they ship with the source checkout, not the package)")
    return paths


def execute_all(out_dir: Path, timeout: float = 300) -> list[Path]:
    """Execute every notebook of :func:`notebook_paths` and write each executed copy into
    ``out_dir`` (created if missing) under its own name; returns their paths, in order. ``timeout``:
    the seconds any one cell may run. The executed copy's metadata ``deepgrad.seconds`` is how long
    the notebook took, kernel start included. A failing cell raises :class:`NotebookFailed` naming
    the notebook and the cell (its executed copy, up to the error, is written first)."""
    out_dir = Path(out_dir)
    if out_dir.resolve() == NOTEBOOKS:
        raise ConfigError(f"--out {out_dir} is the notebooks' own folder; the executed copies go elsewhere")
    if out_dir.exists() and not out_dir.is_dir():
        raise ConfigError(f"--out {out_dir} is a file, not a folder")
    out_dir.mkdir(parents=True, exist_ok=True)
    return [execute(path, out_dir, timeout) for path in notebook_paths()]


def execute(path: Path, out_dir: Path, timeout: float = 300) -> Path:
    """Execute the notebook at ``path`` (see :func:`execute_all`) into ``out_dir / path.name``."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    notebook = nbformat.read(path, as_version=4)
    started: list[int] = []  # the index of each cell as it starts: the last is the one that failed
    client = NotebookClient(
        notebook,
        km=_kernel_manager(),
        timeout=timeout,
        coalesce_streams=True,  # a text progress bar's redraws (\r) become its last state
        # the kernel's own log (its warning that local TCP is unencrypted) only on errors
        extra_arguments=["--IPKernelApp.log_level=ERROR"],
        resources={"metadata": {"path": str(out_dir.resolve())}},  # the kernel's working directory
        on_cell_execute=lambda cell, cell_index: started.append(cell_index),
    )
    executed = out_dir / path.name
    start = time.perf_counter()
    try:
        client.execute(cleanup_kc=True)  # a kernel manager given to nbclient is shut down only when asked
    except (CellExecutionError, CellTimeoutError, DeadKernelError) as error:
        nbformat.write(notebook, executed)
        where = f"cell {started[-1] + 1} ({_first_line(notebook.cells[started[-1]].source)!r})" if started else "start"
        what = f"{error.ename}: {error.evalue}" if isinstance(error, CellExecutionError) else _first_line(error)
        raise NotebookFailed(f"{path.name}: {where} failed: {what} (executed copy: {executed})") from error
    notebook.metadata["deepgrad"] = {"seconds": round(time.perf_counter() - start, 2)}
    nbformat.write(notebook, executed)
    return executed


def _kernel_manager() -> Any:
    """An nbclient kernel manager whose ``python3`` is this interpreter's ipykernel."""
    from ipykernel.kernelspec import RESOURCES, get_kernel_dict
    from jupyter_client.kernelspec import KernelSpec, KernelSpecManager
    from jupyter_client.manager import AsyncKernelManager

    class ThisInterpreter(KernelSpecManager):
        def get_kernel_spec(self, kernel_name: str) -> KernelSpec:
            return KernelSpec(resource_dir=RESOURCES, **get_kernel_dict())

    return AsyncKernelManager(kernel_name=KERNEL, kernel_spec_manager=ThisInterpreter())


def _first_line(text: object) -> str:
    lines = str(text).strip().splitlines()
    return lines[0][:120] if lines else ""
