"""Crash-safe file writes shared by every layer: a reader sees the old file or the whole new one.

What a destination gets depends on what it is (:func:`atomic_open`):

- a new path or a regular file: the text goes to a temp file in the same
  folder, is fsynced and renamed over the path when the writing ends; after a
  failure the temp file is removed and the path is as it was;
- a symlink: resolved, and its target treated as above (the link stays);
- a FIFO, a character or block device (``/dev/null``, a terminal): there is
  nothing to replace, so it is opened and written through;
- a directory: refused (``IsADirectoryError``), nothing written.
"""

from __future__ import annotations

import os
import secrets
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

__all__ = ["atomic_open", "atomic_write_text", "fsync_dir"]


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` through :func:`atomic_open`.

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "a.txt"
    >>> atomic_write_text(p, "one\\n"); p.read_text()
    'one\\n'
    """
    with atomic_open(path) as fh:
        fh.write(text)


@contextmanager
def atomic_open(path: str | Path) -> Iterator[TextIO]:
    """``with atomic_open(path) as fh:`` write text to ``fh`` (UTF-8, ``\\n`` kept) as it is produced.

    A regular file or a new path (after resolving symlinks) is replaced atomically when the block
    ends without an exception: a reader sees the old file or the whole new one, and an exception
    (a full disk, an interrupt) removes the temp file and leaves the old file as it was. A FIFO or
    a device is written through. A directory raises ``IsADirectoryError``.

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "a.txt"
    >>> with atomic_open(p) as fh:
    ...     _ = fh.write("step,lr\\n"); _ = fh.write("0,0.0\\n")
    >>> p.read_text()
    'step,lr\\n0,0.0\\n'
    """
    target = Path(os.path.realpath(path))
    try:
        mode = os.stat(target).st_mode
    except FileNotFoundError:
        mode = None
    if mode is not None and stat.S_ISDIR(mode):
        raise IsADirectoryError(f"{path}: is a directory")
    if mode is not None and not stat.S_ISREG(mode):
        with open(target, "w", encoding="utf-8", newline="") as fh:  # a FIFO or device: nothing to replace
            yield fh
        return
    fd, tmp = _create_temp(target)
    try:
        with open(fd, "w", encoding="utf-8", newline="") as fh:
            if mode is not None:
                os.chmod(fh.fileno(), mode & 0o777)  # the replacement keeps the old file's permissions
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(target.parent)


def _create_temp(target: Path) -> tuple[int, Path]:
    """A new file ``.NAME.RANDOM.tmp`` next to ``target``, opened like any new file (the umask sets its mode)."""
    while True:
        tmp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), tmp
        except FileExistsError:  # pragma: no cover - a 32-bit collision
            continue


def fsync_dir(path: str | Path) -> None:
    """fsync a folder so a rename in it survives a power cut (a no-op where folders have no fds)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
