"""One writer per run directory, for ``lrtempo train``: the run directory's lock, a held one refused as bad input.

The lock itself (an exclusive ``flock`` on ``RUN_DIR/.lock``, taken before
anything in the run directory is read for a decision or written, dropped by the
kernel however the process ends) is :class:`lrtempo.rundir.RunLock`. Here a
held lock becomes a :class:`~lrtempo.config.ConfigError`, so ``lrtempo train``
refuses in one line with exit status 2 and writes nothing. Under ``torchrun``
only rank 0 takes it.
"""

from __future__ import annotations

from pathlib import Path

from ..config import ConfigError, Problem
from ..rundir import RUN_FILES, RunDir, RunDirInUse, RunLock

__all__ = ["RunLock", "LOCK_NAME", "take_lock"]

LOCK_NAME = RUN_FILES.lock


def take_lock(run: RunDir | str | Path) -> RunLock:
    """The lock of ``run`` (its folder made if missing); held by another process: a :class:`ConfigError`.

    >>> import tempfile
    >>> held = take_lock(tempfile.mkdtemp())
    >>> try: take_lock(held.path.parent)
    ... except ConfigError as exc: print("in use by another lrtempo process" in str(exc))
    True
    >>> held.release()
    """
    try:
        return (run if isinstance(run, RunDir) else RunDir(run)).lock()
    except RunDirInUse as exc:
        raise ConfigError([Problem("", str(exc))]) from None
