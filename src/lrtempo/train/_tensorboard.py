"""TensorBoard event files of ``lrtempo train``: ``tensorboard: true`` in the run config.

Each row of ``log.csv`` is also written to ``RUN_DIR/tensorboard/`` as one
event holding every numeric cell of the row as a scalar: the tag is the
column's name (``lr``, ``grad_l2_norm``, ``loss``, ``val_loss`` when it was
computed, the monitor's ``effective_lr_median``, ...), the global step is the
row's ``step``, and the value is stored as TensorBoard stores a scalar, a
float32. Empty cells (a validation loss not computed at that step) and the
text columns (``phase``, ``trap_status``) are left out. Only the process that
writes ``log.csv`` (rank 0) writes them.

The events go through ``torch.utils.tensorboard.SummaryWriter`` (the
``tensorboard`` package, an optional extra), whose thread writes them behind
the loop; they are flushed and fsynced with ``log.csv`` at every checkpoint.

A resume continues one curve. The event files are cut back like every
per-step file (:func:`cut_back`): the events at or past the resume step, which
a kill after the last checkpoint left behind, are dropped (and a torn last
record), each file replaced atomically. The resumed call writes a new file
whose first events are a ``SessionLog.START`` at the resume step (the
writer's ``purge_step``), so a TensorBoard that had already read the dropped
points discards them too.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from .._atomic import atomic_replace, fsync_dir
from .._util import MissingDependency
from ..rundir import RunDir, RunLog

__all__ = ["INSTALL_HINT", "require_tensorboard", "TensorBoardLog", "tensorboard_log", "cut_back", "event_files"]

#: the one line ``tensorboard: true`` without the package gives
INSTALL_HINT = "tensorboard: true needs the tensorboard package, which is not installed: pip install tensorboard"

#: the start of an event file's name (``events.out.tfevents.<seconds>.<host>.<pid>.<n>``)
EVENT_FILE_PREFIX = "events.out.tfevents."

#: a record's frame in an event file: a little-endian uint64 length and its uint32 CRC, the data, the data's CRC
_HEADER, _FOOTER = 12, 4


def _summary_writer() -> Any:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise MissingDependency(INSTALL_HINT) from None
    return SummaryWriter


def require_tensorboard(enabled: bool) -> None:
    """Raise :class:`MissingDependency` (one line with the install command) if ``enabled`` and it is missing."""
    if enabled:
        _summary_writer()


# -- reading the events' steps without the package: the record frame and the Event message's field 2 ---------------


def _varint(data: bytes, i: int) -> tuple[int, int]:
    """The protobuf varint at ``data[i:]`` and the index after it (IndexError past the end)."""
    value = shift = 0
    while True:
        byte = data[i]
        i += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, i
        shift += 7


def event_step(payload: bytes) -> int:
    """The ``step`` of a serialized ``tensorboard.Event`` (field 2, an int64; 0 when absent).

    >>> event_step(bytes([0x09]) + bytes(8) + bytes([0x10, 0xAC, 0x02]))  # wall_time 0.0, step 300
    300
    >>> event_step(b"")
    0
    """
    i = 0
    while i < len(payload):
        key, i = _varint(payload, i)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _varint(payload, i)
            if field == 2:
                return value - (1 << 64) if value >= 1 << 63 else value
        elif wire == 1:
            i += 8
        elif wire == 2:
            size, i = _varint(payload, i)
            i += size
        elif wire == 5:
            i += 4
        else:
            raise ValueError(f"wire type {wire} in an event")
    if i != len(payload):
        raise ValueError("an event's last field runs past its record")
    return 0


def _kept(data: bytes, step: int) -> bytes:
    """The records of ``data`` before the first one at or past ``step``, or unreadable, or torn."""
    i = 0
    while i + _HEADER <= len(data):
        size = int.from_bytes(data[i:i + 8], "little")
        end = i + _HEADER + size + _FOOTER
        if end > len(data):
            break  # torn: a kill while it was written
        try:
            if event_step(data[i + _HEADER:end - _FOOTER]) >= step:
                break
        except (IndexError, ValueError):
            break
        i = end
    return data[:i]


def event_files(folder: str | Path) -> list[Path]:
    """The event files in ``folder``, in the order TensorBoard reads them (their names'), none when it is missing."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.name.startswith(EVENT_FILE_PREFIX) and p.is_file())


def cut_back(folder: str | Path, step: int) -> None:
    """Drop the events at or past ``step`` (and a torn last record) from every event file in ``folder``.

    A file is replaced atomically, and only when that changes it; one left without any event is removed.
    Needs no ``tensorboard`` package, so a resume without it still cuts a record it had written.
    """
    for path in event_files(folder):
        data = path.read_bytes()
        kept = _kept(data, step)
        if not kept:
            path.unlink()
        elif kept != data:
            with atomic_replace(path, binary=True) as fh:
                fh.write(kept)


def _after_the_last_file(folder: Path) -> None:
    """Wait (at most a second or two) until a new event file's name sorts after every one in ``folder``.

    TensorBoard reads a folder's event files in the order of their names, which start with the second the
    file was made; a resume within the second its predecessor's file was made waits for the next second.
    """
    seconds = []
    for path in event_files(folder):
        part = path.name[len(EVENT_FILE_PREFIX):].split(".", 1)[0]
        if part.isdigit():
            seconds.append(int(part))
    if not seconds:
        return
    deadline = time.time() + 2.5  # a clock set back by more than that: nothing to wait for
    while time.time() < deadline and int(time.time()) <= max(seconds):
        time.sleep(0.05)


def _scalar(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class TensorBoardLog:
    """The run's log, each row of it also written to TensorBoard event files in ``folder``.

    It stands where the :class:`~lrtempo.rundir.RunLog` stands: :meth:`append` writes the row to both,
    :meth:`sync` (at each checkpoint) and :meth:`close` flush and fsync both. ``purge_step`` (a resume's
    step, or 0 for a run started again) is written first into the new file, as ``SummaryWriter`` does.
    """

    def __init__(self, log: RunLog, folder: str | Path, *, purge_step: int | None = None) -> None:
        SummaryWriter = _summary_writer()
        from tensorboard.compat.proto.summary_pb2 import Summary

        self.log, self.columns, self.path = log, log.columns, log.path
        self._summary, self._value = Summary, Summary.Value
        folder = Path(folder)
        _after_the_last_file(folder)
        # the writer's thread writes the events as they come; flushing is ours, at the checkpoints
        self.writer = SummaryWriter(str(folder), purge_step=purge_step, max_queue=1000, flush_secs=3600)
        self.folder = folder

    def append(self, **values: Any) -> None:
        """Write a row to the log and its numeric cells (tag: the column) as one event at its ``step``."""
        self.log.append(**values)
        Value = self._value
        cells = [Value(tag=name, simple_value=value) for name, value in values.items()
                 if name != "step" and _scalar(value)]
        self.writer.file_writer.add_summary(self._summary(value=cells), global_step=values["step"])

    def sync(self) -> None:
        """Flush and fsync the log and the events written so far."""
        self.log.sync()
        self.writer.flush()
        self._fsync()

    def close(self) -> None:
        self.log.close()
        if self.writer.file_writer is not None:
            self.writer.close()
            self._fsync()

    def _fsync(self) -> None:
        """fsync the folder's event files (the writer's is one of them; the others' cost nothing) and the folder."""
        for path in event_files(self.folder):
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fsync_dir(self.folder)


def tensorboard_log(log: RunLog, run: RunDir, enabled: bool, step: int, *, new: bool) -> RunLog | TensorBoardLog:
    """The log a call of ``lrtempo train`` writes (rank 0, after the run directory's other writes).

    The run's event files are cut back to ``step``, whether or not this call writes more; with ``enabled``
    the rows also go to TensorBoard, a continued run's (``new`` False) in a file starting with its purge.
    """
    cut_back(run.tensorboard, step)
    if not enabled:
        return log
    return TensorBoardLog(log, run.tensorboard, purge_step=None if new else step)
