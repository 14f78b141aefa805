"""One writer per run directory: an exclusive ``flock`` on ``RUN_DIR/.lock``.

The lock is taken before anything in the run directory is read for a decision
or written, and held for the life of the process (the kernel drops it when
the process ends, however it ends, so a killed run never leaves a stale lock).
A second process finds it held and refuses at once; opening the existing lock
file to try changes nothing in the directory. A holder that goes on to write
the run writes its pid into the file first (:meth:`RunLock.claim`), so a
refusal can name it; one that only reads (a finished run's resume) leaves the
file as it was. Under ``torchrun`` only rank 0 takes it.

``flock`` is advisory and POSIX-only; on a platform without ``fcntl`` there is
no lock. On network file systems it is only as good as the server's locking.
"""

from __future__ import annotations

import os
from pathlib import Path

from .._rundir_schema import RUN_FILES
from ..config import ConfigError, Problem

__all__ = ["RunLock", "LOCK_NAME"]

LOCK_NAME = RUN_FILES.lock


class RunLock:
    """``with RunLock(run_dir):`` holds the run directory's lock; a held lock raises :class:`ConfigError`.

    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> with RunLock(folder):
    ...     try:
    ...         RunLock(folder)
    ...     except ConfigError as exc:
    ...         print("refused:", "in use by another lrtempo process" in str(exc))
    refused: True
    """

    def __init__(self, run_dir: str | Path) -> None:
        self.path = Path(run_dir) / LOCK_NAME
        self._fd: int | None = None
        try:
            import fcntl
        except ImportError:  # pragma: no cover - no flock on this platform
            return
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
            os.close(fd)
            pid = f" (pid {holder})" if holder.isdigit() else ""
            raise ConfigError([Problem("", f"{run_dir} is in use by another lrtempo process{pid}: "
                                           "wait for it to end or stop it, then try again")]) from None
        self._fd = fd

    def claim(self) -> None:
        """Write this process's pid into the lock file (before the holder's first write to the run)."""
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            os.pwrite(self._fd, f"{os.getpid()}\n".encode("ascii"), 0)

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None

    def __enter__(self) -> RunLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
