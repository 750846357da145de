"""One search per study at a time: :func:`claim` holds an exclusive lock on a study file.

The lock is ``fcntl.flock`` on a hidden file beside the study (``DIR/.study.jsonl.lock``; on Windows
``msvcrt.locking``), so the operating system lets it go when its process ends in any way, ``kill -9``
included: a killed search never leaves a study locked. The file holds the pid of the process that
holds it, for the error a second search gets. Claims are reentrant within a thread (the CLI's
search claims its study, then random_search claims it again), and a process forked by the holder
(a worker) holds nothing.

    with claim("runs/search/study.jsonl"):
        ...   # no other search appends to this study meanwhile
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from ..errors import ConfigError


@dataclass
class _Held:
    fd: int
    thread: int
    depth: int = 1


_held: dict[str, _Held] = {}  # the lock files this process holds, by absolute path


def lock_file(path: str) -> str:
    """The lock file of the study at ``path``: a hidden file beside it."""
    directory, name = os.path.split(os.path.abspath(path))
    return os.path.join(directory, f".{name}.lock")


def is_claimed(path: str) -> bool:
    """Whether this process holds the claim on the study at ``path``."""
    return lock_file(path) in _held


@contextmanager
def claim(path: str) -> Iterator[None]:
    """Hold the study at ``path`` exclusively for the ``with`` block; a ConfigError naming the study
    and the pid of the search that has it when another process (or thread) holds it."""
    key = lock_file(path)
    held = _held.get(key)
    if held is not None:
        if held.thread != threading.get_ident():
            raise ConfigError(f"study {path} is in use by another search in this process")
        held.depth += 1
        try:
            yield
        finally:
            held.depth -= 1
        return
    fd = _acquire(key, path)
    _held[key] = _Held(fd, threading.get_ident())
    try:
        yield
    finally:
        del _held[key]
        _release(key, fd)


def _acquire(key: str, path: str) -> int:
    for _ in range(100):  # a holder may remove the file between our open and our lock: take the new one
        try:
            fd = os.open(key, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as error:
            raise ConfigError(f"cannot claim the study {path}: cannot open {key}: {error.strerror or error}") from None
        if not _try_lock(fd):
            holder = _read_pid(fd)
            os.close(fd)
            who = f"pid {holder}" if holder else "its pid not written yet"
            raise ConfigError(
                f"study {path} is in use by another search ({who}); wait for it to end or use another --out"
            )
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(key))
        except FileNotFoundError:
            same = False
        if same:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
            return fd
        os.close(fd)
    raise ConfigError(f"cannot claim the study {path}: its lock file {key} keeps being replaced")


if sys.platform == "win32":  # pragma: no cover - deepgrad's tests run on Linux
    import msvcrt

    def _try_lock(fd: int) -> bool:
        try:
            os.lseek(fd, 0, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
            return True
        except OSError:
            return False

    def _release(key: str, fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
        os.close(fd)  # an open file cannot be removed on Windows: the empty lock file stays

else:
    import fcntl

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            return False

    def _release(key: str, fd: int) -> None:
        try:
            os.remove(key)  # while still locked: whoever opened it meanwhile sees it is gone and retries
        except OSError:
            pass
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _forget_in_child() -> None:
    """In a process forked by a holder (a local executor's worker): it holds no claim, and its copies
    of the lock files' descriptors are closed (the parent's lock stays)."""
    for held in _held.values():
        try:
            os.close(held.fd)
        except OSError:
            pass
    _held.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_in_child)
