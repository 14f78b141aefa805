"""Reading a run log (``log.csv``, or any CSV with ``step,lr,grad_l2_norm,loss``) exactly, or refusing it.

One reader for ``lrtempo analyze`` and ``lrtempo report``, so both accept and
refuse the same files. A refusal is a :class:`~lrtempo.config.ConfigError`
naming the file, the line (as an editor counts them: the header is line 1),
the column and the cell; what the reader handles by itself it says in one
note. The rules, also in ``docs/diagnostics.md``:

* the file is a regular UTF-8 file (a byte-order mark is allowed); the header
  names each column once (a column with an empty name, such as a pandas index,
  is ignored); every row has as many cells as the header; a blank line or a
  row of empty cells is skipped; a last line cut short (no line break and too
  few cells: a writer stopped mid-row) is left out;
* ``step`` is a whole number from 0 to 2**63 - 1 in any decimal form
  (``12``, ``12.0``, ``1.2e1``), never rounded;
* a number is a decimal literal, ``nan`` or ``inf``; one beyond the float64
  range (``1e400``) is refused rather than read as infinite. A blank cell is
  "no value" (NaN). ``lr`` is a finite number >= 0 on every row;
  ``grad_l2_norm`` is >= 0 (or NaN/inf: a diverged or overflowed update);
* the columns analyze and report draw (:data:`NUMERIC`) hold only numbers;
  any other column is read as numbers when every cell is one, else left out;
* steps increase. A step that goes back to a step logged before is a resumed
  run (a trainer restarted from a checkpoint logs those steps again): its row
  and the rows after it replace every earlier row from that step on, exactly
  what lrtempo's own log does on resume. A step that goes back to a step no
  earlier row has is refused: the rows are out of order.
"""

from __future__ import annotations

import contextlib
import csv
import gc
import json
import math
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import numpy as np

from .._rundir_schema import NUMERIC_COLUMNS, RUN_FILES, SCHEMA_COLUMNS
from ..config import ConfigError, Problem

__all__ = ["LogFile", "NUMERIC", "REQUIRED", "is_regular", "read_events", "read_log_file", "resolve_log"]

#: the columns every log has (the trainer writes them first, in this order)
REQUIRED = SCHEMA_COLUMNS
#: the columns analyze and report draw: every cell of these must be a number or blank
NUMERIC = NUMERIC_COLUMNS
#: the largest step a log may hold (steps are int64)
MAX_STEP = 2**63 - 1

_INF_WORDS = frozenset({"inf", "infinity", "+inf", "+infinity", "-inf", "-infinity"})
_LISTED = 3  # how many line numbers a note lists before "and N more"


@dataclass(frozen=True)
class LogFile:
    """A log read exactly: strictly increasing ``steps`` (int64) and its numeric ``columns`` (float64).

    ``columns["step"]`` is ``steps``; ``notes`` says, one line each, what the reader handled by itself
    (rows a resumed run replaced, a torn last line).
    """

    path: Path
    steps: np.ndarray = field(repr=False)
    columns: dict[str, np.ndarray] = field(repr=False)
    notes: tuple[str, ...] = ()

    @property
    def rows(self) -> int:
        return int(self.steps.size)


def _refuse(path: Path, message: str) -> ConfigError:
    return ConfigError([Problem("", message)], source=str(path))


def _check_regular(path: Path) -> None:
    """A regular file (or a link to one): a FIFO would block and a device never end."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise _refuse(path, "no such file") from None
    except OSError as exc:
        raise _refuse(path, f"cannot be read ({exc.strerror})") from None
    if not stat.S_ISREG(mode):
        raise _refuse(path, "not a regular file (a log is read from a file on disk, not a pipe or device)")


def is_regular(path: Path) -> bool:
    """Whether ``path`` is a regular file (or a link to one), so reading it ends."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


def resolve_log(target: str | Path) -> tuple[Path | None, Path]:
    """``(run_dir, log_path)`` of a run directory (its ``log.csv``) or of a log CSV (``run_dir`` None); a folder
    without ``log.csv`` is another trainer's record (:mod:`._foreign`): ``(None, folder)``, or refused."""
    target = Path(target)
    if target.is_dir():
        log_path = target / RUN_FILES.log
        if not log_path.exists():
            from ._foreign import check_foreign_folder

            check_foreign_folder(target)
            return None, target
        return target, log_path
    return None, target


def _lines(numbers: list[int]) -> str:
    """
    >>> _lines([7]), _lines([7, 9]), _lines([1, 2, 3]), _lines([1, 2, 3, 4, 5])
    ('line 7', 'lines 7 and 9', 'lines 1, 2 and 3', 'lines 1, 2, 3 and 2 more')
    """
    if len(numbers) == 1:
        return f"line {numbers[0]}"
    if len(numbers) <= _LISTED:
        return f"lines {', '.join(map(str, numbers[:-1]))} and {numbers[-1]}"
    return f"lines {', '.join(map(str, numbers[:_LISTED]))} and {len(numbers) - _LISTED} more"


def _read_rows(path: Path) -> tuple[list[str], list[list[str]], list[int], list[str]]:
    """Header, rows (blank lines skipped) with their line numbers, and notes; csv errors refused by line."""
    _check_regular(path)
    try:
        with open(path, "rb") as fh:
            size = fh.seek(0, os.SEEK_END)
            fh.seek(max(size - 1, 0))
            unterminated = size > 0 and fh.read(1) not in (b"\n", b"\r")
    except OSError as exc:
        raise _refuse(path, f"cannot be read ({exc.strerror})") from None
    rows, numbers, notes = [], [], []
    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.reader(fh)
        try:
            header = next(reader, None)
            for row in reader:
                if any(row):  # not a blank line, nor a row of empty cells (a spreadsheet's tail)
                    rows.append(row)
                    numbers.append(reader.line_num)
        except UnicodeDecodeError as exc:
            raise _refuse(path, f"line {_undecodable_line(path)}: not UTF-8 text ({exc.reason})") from None
        except csv.Error as exc:
            if "field larger than field limit" in str(exc):
                raise _refuse(path, f"line {reader.line_num}: a cell longer than {csv.field_size_limit():,} "
                                    "characters (a log cell is a number or a short text)") from None
            raise _refuse(path, f"line {reader.line_num}: not a CSV row ({exc})") from None
    if not header:
        raise _refuse(path, "empty file: a CSV with columns step,lr,grad_l2_norm,loss is needed")
    header = [h.strip() for h in header]
    if unterminated and rows and len(rows[-1]) < len(header):
        notes.append(f"{path.name}: its last line ({numbers[-1]}) has no line break and {len(rows[-1])} of "
                     f"{len(header)} cells (a write cut short): left out")
        rows.pop()
        numbers.pop()
    return header, rows, numbers, notes


def _undecodable_line(path: Path) -> int:
    number = 0
    with open(path, "rb") as fh:
        for number, raw in enumerate(fh, start=1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError:
                return number
    return number  # a character cut at the very end


def _check_names(path: Path, header: list[str]) -> dict[str, int]:
    """Each column named once (an empty name aside): the 1-based column of each name, or refused."""
    seen: dict[str, int] = {}
    for i, name in enumerate(header, start=1):
        if name and name in seen:
            raise _refuse(path, f"header: column {name!r} appears twice (columns {seen[name]} and {i}); "
                                "each column must be named once")
        seen.setdefault(name, i)
    return seen


def _check_header(path: Path, header: list[str]) -> None:
    seen = _check_names(path, header)
    missing = [c for c in REQUIRED if c not in seen]
    if missing:
        raise _refuse(path, f"missing column(s) {', '.join(missing)}; found {', '.join(header)} "
                            f"(the schema is {','.join(REQUIRED)})")


def parse_step(cell: str) -> int | None:
    """The step a cell holds: a whole number from 0 to :data:`MAX_STEP` in any decimal form, else None.

    >>> [parse_step(c) for c in ["12", " 12 ", "12.0", "1.2e1", "+0", "1.5", "-1", "nan", "", "1e30", "1_0"]]
    [12, 12, 12, 12, 0, None, None, None, None, None, None]
    """
    text = cell.strip()
    if text.isascii() and text.isdigit():
        digits = text.lstrip("0") or "0"
        value = int(digits) if len(digits) <= 19 else MAX_STEP + 1
        return value if value <= MAX_STEP else None
    exact = _converted(text, Decimal, InvalidOperation)
    if exact is None or not exact.is_finite() or exact != exact.to_integral_value() or not 0 <= exact <= MAX_STEP:
        return None
    return int(exact)


def _converted(text: str, convert: Callable[[str], Any], error: type[Exception]) -> Any:
    """``convert(text)``; None where ``text`` is not plain ASCII, has a ``_`` (Python reads ``1_0`` as 10, a
    CSV reader should not) or ``convert`` raises ``error``.

    >>> _converted("1_0", float, ValueError), _converted("2.5", float, ValueError), _converted("x", float, ValueError)
    (None, 2.5, None)
    """
    if not text.isascii() or "_" in text:
        return None
    try:
        return convert(text)
    except error:
        return None


def parse_number(cell: str) -> float | None:
    """The float64 a cell holds (blank is NaN), correctly rounded; None for a non-number or one out of range.

    >>> [parse_number(c) for c in ["0.1", " -2e-3 ", "", "NaN", "-inf", "1e400", "0x10", "1_0", "abc"]]
    [0.1, -0.002, nan, nan, -inf, None, None, None, None]
    """
    text = cell.strip()
    if not text:
        return math.nan
    value = _converted(text, float, ValueError)
    if value is None:
        return None
    if math.isinf(value) and text.lower() not in _INF_WORDS:
        return None  # 1e400: beyond float64, not infinite
    return value


def _step_problem(cell: str) -> str:
    return f"step: must be a whole number from 0 to 2**63 - 1 (got {cell.strip()!r})"


def _value_problem(name: str, cell: str, value: float | None) -> str | None:
    """What is wrong with a cell of a drawn column, or None."""
    text = cell.strip()
    if value is None:
        if text.isascii() and "_" not in text:
            try:
                if math.isinf(float(text)):
                    return f"{name}: {text!r} is beyond the float64 range (about 1.8e308)"
            except ValueError:
                pass
        return f"{name}: not a number (got {text[:40]!r}{'...' if len(text) > 40 else ''})"
    if name == "lr" and not (math.isfinite(value) and value >= 0):
        return f"lr: must be a finite number >= 0 on every row (got {text!r})"
    if name == "grad_l2_norm" and value < 0:
        return f"grad_l2_norm: a norm is >= 0 (got {text!r})"
    return None


def _plain(cells: tuple[str, ...]) -> bool:
    """No cell uses what Python's int()/float() accept beyond a decimal literal (underscores, other digits)."""
    joined = "".join(cells)
    return joined.isascii() and "_" not in joined


def _steps(path: Path, cells: tuple[str, ...], numbers: list[int]) -> np.ndarray:
    try:
        values = [int(c) for c in cells]
        if _plain(cells) and min(values) >= 0 and max(values) <= MAX_STEP:
            return np.asarray(values, dtype=np.int64)
    except ValueError:
        pass
    out = []
    for cell, number in zip(cells, numbers):
        value = parse_step(cell)
        if value is None:
            raise _refuse(path, f"line {number}: {_step_problem(cell)}")
        out.append(value)
    return np.asarray(out, dtype=np.int64)


def _numbers(path: Path, name: str, cells: tuple[str, ...], numbers: list[int]) -> np.ndarray | None:
    """A column as float64 (blank is NaN); a drawn column's bad cell is refused, another column's is None."""
    try:
        values = np.asarray([float(c) if c else math.nan for c in cells], dtype=np.float64)
        fast = _plain(cells) and not any(c.strip().lower() not in _INF_WORDS
                                          for c in (cells[i] for i in np.flatnonzero(np.isinf(values))))
    except ValueError:
        fast = False
    if not fast:
        parsed = []
        for k, cell in enumerate(cells):
            value = parse_number(cell)
            if value is None:
                if name not in NUMERIC:
                    return None  # a text column: not read
                raise _refuse(path, f"line {numbers[k]}: {_value_problem(name, cell, None)}")
            parsed.append(value)
        values = np.asarray(parsed, dtype=np.float64)
    if name in ("lr", "grad_l2_norm"):
        wrong = ~(np.isfinite(values) & (values >= 0)) if name == "lr" else values < 0
        if wrong.any():
            k = int(np.argmax(wrong))
            raise _refuse(path, f"line {numbers[k]}: {_value_problem(name, cells[k], float(values[k]))}")
    return values


def _line_of(numbers: np.ndarray | None, i: int) -> int:
    """The line of row ``i``: from the list kept by the exact reader, or ``i + 2`` (the fast reader reads only
    files where every line after the header is a row)."""
    return int(numbers[i]) if numbers is not None else i + 2


def _resume_order(path: Path, steps: np.ndarray, numbers: np.ndarray | None,
                  where: Callable[[int], str] | None = None) -> tuple[np.ndarray, str | None]:
    """The rows in effect: a step that goes back to a logged step starts a resumed run, whose rows replace
    the earlier rows from that step on. A step that goes back to a step never logged is refused.

    ``where(i)`` says where row ``i`` is, for a record that is not a CSV (default: its line).

    The rows in effect are always a few runs of consecutive rows (each restart cuts the last runs short and
    starts a new one), so this costs one pass over the steps plus a binary search per restart.
    """
    back = np.flatnonzero(np.diff(steps) <= 0) + 1 if steps.size > 1 else np.zeros(0, dtype=np.int64)
    if back.size == 0:
        return np.arange(steps.size), None
    runs: list[list[int]] = [[0, int(back[0])]]  # [first, stop) row ranges in effect, steps increasing
    ends = [*back.tolist()[1:], steps.size]
    for i, stop in zip(back.tolist(), ends):
        s = int(steps[i])
        while len(runs) > 1 and int(steps[runs[-1][0]]) > s:
            runs.pop()  # a whole earlier run lies past the step gone back to
        first, end = runs[-1]
        j = first + int(np.searchsorted(steps[first:end], s))
        if j >= end or int(steps[j]) != s:
            place = where(i) if where else f"line {_line_of(numbers, i)}"
            raise _refuse(path, f"{place}: step: {s} after {int(steps[i - 1])} goes back to a "
                                "step no earlier row has: steps must increase (a resumed run may go back to a "
                                "step it logged before)")
        if j == first:
            runs.pop()
        else:
            runs[-1][1] = j
        runs.append([i, stop])
    keep = np.concatenate([np.arange(a, b, dtype=np.int64) for a, b in runs])
    if where is not None:
        places = [where(i) for i in back[:_LISTED].tolist()]
        listed = ", ".join(places) + (f" and {back.size - _LISTED} more" if back.size > _LISTED else "")
    else:
        restarts = [_line_of(numbers, i) for i in back[:_LISTED + 1].tolist()]
        listed = _lines(restarts) if back.size <= _LISTED else (
            f"lines {', '.join(map(str, restarts[:_LISTED]))} and {back.size - _LISTED} more")
    note = (f"{path.name}: steps go back to a step logged before at {listed} (a resumed run?): "
            f"from there the later rows replace the earlier ones ({steps.size - keep.size} earlier rows left out)")
    return keep, note


@contextlib.contextmanager
def _collector_paused():
    """Pause the cyclic garbage collector while building millions of small lists that hold no cycles (it
    would otherwise rescan them again and again: about half the read time of a long log)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def read_log_file(path: str | Path, columns: tuple[str, ...] | None = None) -> LogFile:
    """Read a log CSV exactly by the rules above, or raise :class:`~lrtempo.config.ConfigError` (one line).

    A plain file (ASCII, no quotes, no blank lines: what trainers write) is read by the columnar reader
    (:mod:`._columns`: NumPy's C parser a chunk at a time, the checks on the arrays); anything it does not
    accept as it is (a refusal among them) is read again by the exact row reader, which says what and where.

    ``columns``: read only these of the columns not in :data:`NUMERIC` (``()``: none; default all). The
    drawn columns are always read and checked, so what is refused does not change.
    """
    path = Path(path)
    _check_regular(path)
    from ._columns import read_columns

    fast = read_columns(path, columns)
    if fast is not None:
        return _in_effect(path, *fast, None)
    with _collector_paused():
        return _read_log_file(path, columns)


def _in_effect(path: Path, steps: np.ndarray, columns: dict[str, np.ndarray], notes: list[str],
               numbers: np.ndarray | None) -> LogFile:
    keep, note = _resume_order(path, steps, numbers)
    if note:
        notes.append(note)
    if keep.size < steps.size:
        steps = steps[keep]
        columns = {name: values[keep] for name, values in columns.items()}
    return LogFile(path, steps, {"step": steps, **columns}, tuple(notes))


def _read_log_file(path: Path, wanted: tuple[str, ...] | None = None) -> LogFile:
    header, rows, numbers, notes = _read_rows(path)
    _check_header(path, header)
    width = len(header)
    if set(map(len, rows)) - {width}:
        k = next(k for k, row in enumerate(rows) if len(row) != width)
        raise _refuse(path, f"line {numbers[k]}: {len(rows[k])} cells, but the header has {width} columns")
    if not rows:
        raise _refuse(path, "the log has a header but no rows")
    cells = list(zip(*rows))  # column by column (every row has the header's width)
    steps = _steps(path, cells[header.index("step")], numbers)
    columns: dict[str, np.ndarray] = {}
    for index, name in enumerate(header):
        if name and name != "step" and (wanted is None or name in NUMERIC or name in wanted):
            values = _numbers(path, name, cells[index], numbers)
            if values is not None:
                columns[name] = values
    return _in_effect(path, steps, columns, notes, np.asarray(numbers, dtype=np.int64))


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    if len(set(keys)) < len(keys):
        raise ValueError(f"key {next(k for k in keys if keys.count(k) > 1)!r} appears twice")
    return dict(pairs)


def _event(raw: bytes) -> dict[str, Any] | str:
    """An event line as a dict, or what is wrong with it."""
    try:
        value = json.loads(raw.decode("utf-8"), object_pairs_hook=_unique_keys)
    except UnicodeDecodeError:
        return "not UTF-8 text"
    except (ValueError, RecursionError) as exc:
        return f"not JSON: {str(exc)[:60]}"
    if not isinstance(value, dict):
        return f"a JSON {type(value).__name__}, not an object"
    step, kind = value.get("step"), value.get("kind")
    if not isinstance(step, int) or isinstance(step, bool) or not 0 <= step <= MAX_STEP:
        return f"step must be a whole number >= 0 (got {json.dumps(step)[:40]})"
    if not isinstance(kind, str) or not kind:
        return f"kind must be a non-empty string (got {json.dumps(kind)[:40]})"
    if not isinstance(value.setdefault("message", ""), str):
        return "message must be a string"
    return value


def read_events(path: str | Path) -> tuple[tuple[dict[str, Any], ...], tuple[str, ...]]:
    """The events of an ``events.jsonl`` (one JSON object per line with ``step`` and ``kind``) and notes.

    The events are a side file of the run, so a line that is not an event (a torn last line after a
    kill, an edit) is left out and counted in one note rather than stopping the analysis of the log.
    A missing file is no events.
    """
    path = Path(path)
    if not path.exists():
        return (), ()
    if not is_regular(path):
        return (), (f"{path.name} is not a regular file; left out",)
    events: list[dict[str, Any]] = []
    bad: list[tuple[int, str]] = []
    with open(path, "rb") as fh:
        for number, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            event = _event(raw)
            if isinstance(event, str):
                bad.append((number, event))
            else:
                events.append(event)
    if not bad:
        return tuple(events), ()
    what = "1 line that is not an event" if len(bad) == 1 else f"{len(bad)} lines that are not events"
    also = f"; also {_lines([n for n, _ in bad[1:]])}" if len(bad) > 1 else ""
    return tuple(events), (f"{path.name}: {what} left out (line {bad[0][0]}: {bad[0][1]}{also})",)
