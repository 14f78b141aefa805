"""Crash-safe file writes shared by every layer: a reader sees the old file or the whole new one.

What a destination gets depends on what it is (:func:`atomic_open`):

- a new path or a regular file: the text goes to a temp file in the same
  folder, is fsynced and renamed over the path when the writing ends; after a
  failure the temp file is removed and the path is as it was;
- a symlink: resolved, and its target treated as above (the link stays);
- a FIFO, a character or block device (``/dev/null``, a terminal), or a
  path naming an open descriptor (``/dev/stdout``, ``/dev/fd/N``): there is
  nothing to replace, so it is opened for appending and written through;
- a directory: refused (``IsADirectoryError``), nothing written.
"""

from __future__ import annotations

import os
import secrets
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TextIO

__all__ = ["atomic_open", "atomic_replace", "atomic_write_text", "fsync_dir"]


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
    (a full disk, an interrupt) removes the temp file and leaves the old file as it was. A FIFO, a
    device or an open descriptor (``/dev/stdout``) is written through. A directory raises
    ``IsADirectoryError``.

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "a.txt"
    >>> with atomic_open(p) as fh:
    ...     _ = fh.write("step,lr\\n"); _ = fh.write("0,0.0\\n")
    >>> p.read_text()
    'step,lr\\n0,0.0\\n'
    """
    try:
        mode = os.stat(path).st_mode  # what the path leads to, through any symlinks
    except FileNotFoundError:
        mode = None
    if mode is not None and stat.S_ISDIR(mode):
        raise IsADirectoryError(f"{path}: is a directory")
    fd_link = _descriptor_link(path)
    if mode is not None and (not stat.S_ISREG(mode) or fd_link is not None):
        with _write_through(path, fd_link) as fh:
            yield fh
        return
    target = Path(os.path.realpath(path))  # replace the file a symlink points to, not the link
    with atomic_replace(target, keep_mode=None if mode is None else mode & 0o777) as fh:
        yield fh


@contextmanager
def atomic_replace(target: str | Path, *, binary: bool = False, keep_mode: int | None = None) -> Iterator[IO]:
    """Write a new ``target`` in a temp file beside it, fsync it and rename it over ``target``.

    The one rename-into-place of the package (text files here, checkpoints in ``train``): a
    reader sees the old file or the whole new one; any exception removes the temp file and leaves
    ``target`` as it was. ``keep_mode`` gives the new file those permission bits.

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "a.bin"
    >>> with atomic_replace(p, binary=True) as fh:
    ...     _ = fh.write(b"lr")
    >>> p.read_bytes(), [q.name for q in p.parent.iterdir()]
    (b'lr', ['a.bin'])
    """
    target = Path(target)
    fd, tmp = _create_temp(target)
    try:
        with (open(fd, "wb") if binary else open(fd, "w", encoding="utf-8", newline="")) as fh:
            if keep_mode is not None:
                os.chmod(fh.fileno() if os.chmod in os.supports_fd else tmp, keep_mode)
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(target.parent)


def _descriptor_link(path: str | Path) -> str | None:
    """The ``/proc/PID/fd/N`` link that ``path``'s symlinks pass through (``/dev/stdout``, ``/dev/fd/N``), if any.

    Such a path names a descriptor a process already holds: replacing the file behind it by a rename
    would cut the file from that descriptor and drop what was written through it.
    """
    link = os.path.abspath(path)
    for _ in range(40):  # the kernel's own limit on nested symlinks
        folder = os.path.realpath(os.path.dirname(link))
        if folder.startswith("/proc/"):
            return os.path.join(folder, os.path.basename(link))
        if not os.path.islink(link):
            return None
        link = os.path.join(os.path.dirname(link), os.readlink(link))
    return None


@contextmanager
def _write_through(path: str | Path, fd_link: str | None) -> Iterator[TextIO]:
    """Write to a FIFO, device or open descriptor as it is: one of this process's own descriptors is
    duplicated (so the text lands where that descriptor's next write would, after what it already
    wrote); anything else is opened for appending (nothing there is truncated or replaced)."""
    folder, name = os.path.split(fd_link) if fd_link else ("", "")
    own = folder == os.path.realpath("/proc/self/fd") and name.isdigit()
    fh = open(os.dup(int(name)), "w", encoding="utf-8", newline="") if own \
        else open(path, "a", encoding="utf-8", newline="")
    with fh:
        yield fh


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
