"""Crash-safe file writes shared by every layer: a reader sees the old file or the whole new one."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["atomic_write_text", "fsync_dir"]


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temp file in the same folder, fsync, rename, fsync the folder.

    On any failure the temp file is removed and ``path`` is left as it was.

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "a.txt"
    >>> atomic_write_text(p, "one\\n"); p.read_text()
    'one\\n'
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")  # opened like any new file, so the umask sets its mode
    try:
        with open(tmp, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


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
