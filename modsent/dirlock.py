"""One writer per output directory: a lock file naming the pid and host of the process writing it.

A job (``modsent run`` on its run directory, a stage on its output directory) takes the lock for
its whole life (a stage that replaces its directory in one rename keeps the lock valid: the
lock file sits beside the directory, not in it). A second process that finds the directory locked by a live process refuses with
a message naming that process, instead of racing it — e.g. a rerun while ranks of a killed run
are still alive. The lock is an ``flock`` on ``<parent>/.<dir name>.modsent-lock``: the kernel releases it when
its holder dies in any way (SIGKILL included), so a lock file left by a dead process is simply
taken over. The pid and host written into the file are only for the message.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
from pathlib import Path

from modsent.errors import ModsentError
from modsent.io import remove_stale_temporaries
from modsent.output_checks import OutputError

__all__ = ["DirectoryBusyError", "DirectoryLock", "claim_output", "hold_directory", "lock_path"]


class DirectoryBusyError(ModsentError):
    pass


def lock_path(directory: str | os.PathLike) -> Path:
    directory = Path(directory).resolve()
    return directory.parent / f".{directory.name}.modsent-lock"


class DirectoryLock:
    """An exclusive, non-blocking lock on ``directory`` (need not exist yet), released by :meth:`release`."""

    def __init__(self, directory: str | os.PathLike, purpose: str) -> None:
        self.directory = Path(directory)
        self.path = lock_path(directory)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as err:  # the lock sits beside the directory: its parent must be writable too
            raise OutputError(f"{self.directory}: the output directory of {purpose} is not writable ({err.strerror} "
                              f"for its lock file {self.path}); fix the permissions or choose another path") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            raise DirectoryBusyError(
                f"{self.directory} is being written by {holder.get('purpose', 'another process')} "
                f"(pid {holder.get('pid', '?')} on host {holder.get('host', '?')}); wait for it to finish or stop it "
                f"(kill {holder.get('pid', 'PID')}) before rerunning") from None
        self._fd: int | None = fd
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "purpose": purpose}) + "\n")
                  .encode(), 0)

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock; the file may stay
            self._fd = None

    def __enter__(self) -> "DirectoryLock":
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _read_holder(fd: int) -> dict:
    try:
        return json.loads(os.pread(fd, 4096, 0).decode() or "{}")
    except (ValueError, UnicodeDecodeError):
        return {}


_held: dict[Path, DirectoryLock] = {}


def hold_directory(directory: str | os.PathLike, purpose: str) -> DirectoryLock:
    """Lock ``directory`` until this process exits (idempotent within one process)."""
    key = Path(directory).resolve()
    if key not in _held:
        _held[key] = DirectoryLock(directory, purpose)
    return _held[key]


def claim_output(path: str | os.PathLike, purpose: str) -> DirectoryLock:
    """Hold the lock of the output ``path`` (a file or a directory), then remove the temporaries a killed
    writer of it left beside it (``.tmp-NAME.*``, ``.old-NAME.*``): with the lock held, no live process
    is writing them, and another process's output keeps its own."""
    lock = hold_directory(path, purpose)
    remove_stale_temporaries(Path(path).parent, Path(path).name)
    return lock
