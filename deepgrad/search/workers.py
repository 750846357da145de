"""The local executor's processes die with the search that started them, however it ends.

A worker of a ``ProcessPoolExecutor`` (and the manager process serving the ASHA rungs) outlives a
parent killed with ``kill -9``: nothing tells it. :func:`die_with_parent`, called first thing in
the child, makes sure something does:

- on Linux, ``prctl(PR_SET_PDEATHSIG, SIGKILL)``: the kernel kills the child the moment the thread
  that started it ends (the search's process, or the fork server that forked the child, which
  itself ends with the search);
- everywhere, a daemon thread that waits on multiprocessing's parent sentinel (a pipe the parent
  holds open until it dies) or, without one, polls the parent's pid once a second, and ends the
  child when the parent is gone. It also covers a parent that died before ``prctl`` was called.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
import threading
import time

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
POLL_SECONDS = 1.0


def die_with_parent() -> None:
    """Make this child process end when its parent does (see the module's docstring)."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        except (OSError, AttributeError):  # no libc to ask: the watcher below does it
            pass
    parent = multiprocessing.parent_process()
    sentinel = getattr(parent, "sentinel", None)
    if sentinel is not None:
        watch = threading.Thread(target=_exit_when_ready, args=(sentinel,), daemon=True)
    else:
        watch = threading.Thread(target=_exit_when_orphaned, args=(os.getppid(),), daemon=True)
    watch.name = "deepgrad-die-with-parent"
    watch.start()


def _exit_when_ready(sentinel: int) -> None:
    from multiprocessing.connection import wait

    wait([sentinel])  # readable (end of file) once the parent has exited
    os._exit(1)


def _exit_when_orphaned(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(POLL_SECONDS)
    os._exit(1)
