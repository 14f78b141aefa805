"""The run log: ``log.csv`` with ``step,lr,grad_l2_norm,loss`` first (docs/training.md).

Append-only and resume-safe: a row is flushed as it is written and the file
is fsynced at each checkpoint; on resume, rows at or past the checkpoint's
step (and a torn last line) are dropped, atomically, before appending again.
So after a crash and resume no row is duplicated, torn or lost up to the last
checkpoint.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .._atomic import atomic_write_text
from .._rundir_schema import LOG_SCHEMA_VERSION, SCHEMA_COLUMNS

__all__ = ["RunLog", "SCHEMA_COLUMNS", "LOG_SCHEMA_VERSION", "read_log", "header_mismatch"]

def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    return str(value)


def header_mismatch(path: str | Path, extra_columns: tuple[str, ...] = ()) -> str | None:
    """Why the log at ``path`` cannot be continued with these columns, or None when it can (reads only)."""
    header = ",".join((*SCHEMA_COLUMNS, *extra_columns))
    path = Path(path)
    if not path.exists():
        return f"{path}: missing"
    with open(path, encoding="utf-8", newline="") as fh:
        found = fh.readline().rstrip("\n")
    if found != header:
        return f"{path}: its header {found or '(empty file)'!r} is not this run's {header!r}"
    return None


class RunLog:
    """Rows of ``columns`` (the schema columns first) in a CSV file."""

    def __init__(self, path: str | Path, extra_columns: tuple[str, ...] = (), *, resume_step: int | None = None):
        self.path = Path(path)
        self.columns = (*SCHEMA_COLUMNS, *extra_columns)
        header = ",".join(self.columns)
        if resume_step is None:
            if self.path.exists() and self.path.stat().st_size:
                raise FileExistsError(f"{self.path} exists: resume the run or choose another output folder")
            atomic_write_text(self.path, header + "\n")
        else:
            self._truncate_for_resume(header, resume_step)
        self._fh = open(self.path, "a", encoding="utf-8", newline="")

    def _truncate_for_resume(self, header: str, resume_step: int) -> None:
        problem = header_mismatch(self.path, self.columns[len(SCHEMA_COLUMNS):])
        if problem is not None:
            raise ValueError(problem)
        lines = self.path.read_text(encoding="utf-8").split("\n")
        kept = [header]
        width = len(self.columns)
        for line in lines[1:-1]:  # the last element is "" after a final newline, or a torn line
            cells = line.split(",")
            if len(cells) != width:
                break
            try:
                step = int(cells[0])
            except ValueError:
                break
            if step >= resume_step:
                break
            kept.append(line)
        atomic_write_text(self.path, "\n".join(kept) + "\n")
        self.rows = len(kept) - 1

    def append(self, **values: Any) -> None:
        unknown = set(values) - set(self.columns)
        if unknown:
            raise KeyError(f"not columns of this log: {sorted(unknown)}")
        self._fh.write(",".join(_cell(values.get(c)) for c in self.columns) + "\n")
        self._fh.flush()

    def sync(self) -> None:
        """Flush and fsync: called at every checkpoint."""
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def close(self) -> None:
        if not self._fh.closed:
            self.sync()
            self._fh.close()


def read_log(path: str | Path) -> list[dict[str, str]]:
    """The rows of a log as dicts of strings (for tests and tools)."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    header = lines[0].split(",")
    return [dict(zip(header, line.split(","))) for line in lines[1:] if line]
