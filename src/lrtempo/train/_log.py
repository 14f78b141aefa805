"""The run log, ``log.csv``: :class:`lrtempo.rundir.RunLog`, kept importable from here (docs/training.md).

Append-only and resume-safe: a row is flushed as it is written and the file
is fsynced at each checkpoint; on resume, rows at or past the checkpoint's
step (and a torn last line) are dropped, atomically, before appending again.
"""

from __future__ import annotations

from pathlib import Path

from ..rundir import LOG_SCHEMA_VERSION, SCHEMA_COLUMNS, RunLog, header_mismatch

__all__ = ["RunLog", "SCHEMA_COLUMNS", "LOG_SCHEMA_VERSION", "read_log", "header_mismatch"]


def read_log(path: str | Path) -> list[dict[str, str]]:
    """The rows of a log as dicts of strings (for tests and tools)."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    header = lines[0].split(",")
    return [dict(zip(header, line.split(","))) for line in lines[1:] if line]
