"""The columnar log reader: a plain log into typed NumPy columns at the speed of NumPy's own C parser.

A trainer's log is plain: ASCII, no quotes, one row per line. Such a file is
read a chunk of whole lines at a time, and each chunk goes straight into
typed columns that grow as the file is read (their size guessed from the
file's size, so no per-chunk table is kept and nothing is concatenated):

* the separators are found once (one vectorized pass over the bytes); every
  line must have the header's number of cells, which fixes where each cell
  starts and how long it is;
* ``step`` is parsed from its digits with integer arithmetic (int64, never
  through a float);
* a column with no blank cell in the chunk is parsed by :func:`numpy.loadtxt`
  (correctly rounded, so every number reads back bit-exactly), all such
  columns in one call; a column with blank cells ("no value", NaN) has only
  its written cells parsed, by Python's own ``float`` (what the exact reader
  uses), and the blanks are NaN;
* the rules of :mod:`._logfile` are then checked on the arrays.

Anything this reader does not accept as it is (a quote, a UTF-8 character, a
blank line, a ``12.0`` step, a space in a cell it reads, a bad or
out-of-range cell, a column that turns to text) makes it return None, and the
exact row reader reads the file again: it accepts the same files and refuses
with the line and cell. So this reader is only ever faster, never different.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np

from ..config import ConfigError
from ._logfile import _INF_WORDS, NUMERIC, _check_header, parse_number

__all__ = ["read_columns"]

CHUNK = 1 << 22  # bytes read at a time (whole lines): bounds the parser's working memory
_FIELD_LIMIT = 131_072  # the csv module's cell limit: a longer cell goes to the exact reader to be judged
_HEADER_LIMIT = 1 << 16  # a header line is read whole up to this length (a longer one: the exact reader)
_MAX_DIGITS = 18  # a step of up to 18 digits fits int64 whatever its digits; a longer one goes to the exact reader
_INF = frozenset(w.encode() for w in _INF_WORDS)
_COMMA, _NEWLINE, _UNDERSCORE, _ZERO = 44, 10, 95, 48


def _header(first: bytes) -> list[str] | None:
    line = first.rstrip(b"\r")
    if not line.isascii() or b'"' in line or b"\r" in line or b"\x00" in line:
        return None
    return [h.strip() for h in line.decode("ascii").split(",")]


def _plain(body: bytes) -> bytes | None:
    """The chunk with CRLF as LF, or None when it is not plain (see the module docstring)."""
    if not body.isascii() or b'"' in body or b"\x00" in body:
        return None
    if b"\r" in body:
        body = body.replace(b"\r\n", b"\n")
        if b"\r" in body:
            return None
    if body.startswith(b"\n") or b"\n\n" in body:
        return None  # a blank line: the exact reader skips it and keeps the line numbers
    return body


def _cells(buf: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray] | None:
    """``(starts, lengths)`` of every cell, each ``(rows, width)``, when every line has ``width`` cells and none is
    too long; else None.

    ``width`` separators per line, the last of them the line break, is the same as ``width - 1`` commas on
    every line (the count of line breaks is the count of lines).

    >>> starts, lengths = _cells(np.frombuffer(b"1,22,\\n4,,666\\n", np.uint8), 3)
    >>> starts.tolist(), lengths.tolist()
    ([[0, 2, 5], [6, 8, 9]], [[1, 2, 0], [1, 0, 3]])
    """
    seps = np.flatnonzero((buf == _COMMA) | (buf == _NEWLINE))
    rows = seps.size // width
    if rows == 0 or seps.size != rows * width or int(np.count_nonzero(buf == _NEWLINE)) != rows \
            or not np.all(buf[seps[width - 1::width]] == _NEWLINE):
        return None
    starts = np.empty_like(seps)
    starts[0] = 0
    starts[1:] = seps[:-1] + 1
    lengths = seps - starts
    if int(lengths.max()) > _FIELD_LIMIT:
        return None
    return starts.reshape(rows, width), lengths.reshape(rows, width)


def _padded(buf: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """The cells as the rows of a byte matrix, zero-padded to the longest."""
    size = int(lengths.max())
    at = np.arange(size)
    inside = at < lengths[:, None]
    return np.where(inside, buf[np.minimum(starts[:, None] + at, buf.size - 1)], 0).astype(np.uint8)


def _whole_numbers(buf: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray | None:
    """Cells of plain digits (1 to 18 of them) as int64, exactly; None when any cell is something else.

    >>> _whole_numbers(np.frombuffer(b"7,0012,305", np.uint8), np.array([0, 2, 7]), np.array([1, 4, 3])).tolist()
    [7, 12, 305]
    """
    if int(lengths.min()) < 1 or int(lengths.max()) > _MAX_DIGITS:
        return None
    digits = _padded(buf, starts, lengths).astype(np.int64) - _ZERO
    inside = np.arange(digits.shape[1]) < lengths[:, None]
    if np.any(inside & ((digits < 0) | (digits > 9))):
        return None
    out = np.zeros(starts.size, dtype=np.int64)
    for k in range(digits.shape[1]):  # Horner, one digit position at a time (a padding position leaves it)
        out = np.where(inside[:, k], out * 10 + digits[:, k], out)
    return out


def _written(buf: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray | None:
    """A column with blank cells: NaN there, Python's ``float`` of each written cell (the exact reader's parse);
    None when a written cell is not a number by the log's rules."""
    out = np.full(starts.size, np.nan)
    rows = np.flatnonzero(lengths > 0)
    if rows.size:
        text = _padded(buf, starts[rows], lengths[rows])
        if np.any(text == _UNDERSCORE):
            return None  # float() reads "1_0"; the log's rules do not
        try:
            out[rows] = text.view(f"S{text.shape[1]}").ravel().astype(np.float64)
        except ValueError:
            return None
    return out


def _infinities_written(body: bytes, starts: np.ndarray, lengths: np.ndarray, values: np.ndarray) -> bool:
    """Whether each infinite value was written as infinity (``inf``), not a number beyond float64 (``1e400``)."""
    for r in np.flatnonzero(np.isinf(values)).tolist():
        a = int(starts[r])
        if body[a:a + int(lengths[r])].strip().lower() not in _INF:
            return False
    return True


class _Growing:
    """Typed columns filled chunk by chunk: grown by half when full, cut to their length at the end."""

    def __init__(self, dtypes: dict[str, np.dtype], capacity: int):
        self.size = 0
        self.arrays = {name: np.empty(max(1, capacity), dtype=dt) for name, dt in dtypes.items()}

    def append(self, parts: dict[str, np.ndarray]) -> None:
        n = next(iter(parts.values())).size
        capacity = next(iter(self.arrays.values())).size
        if self.size + n > capacity:
            grown = max(self.size + n, capacity + capacity // 2)
            for a in self.arrays.values():
                a.resize(grown, refcheck=False)  # in place where the allocator can; the only reference is here
        for name, part in parts.items():
            self.arrays[name][self.size:self.size + n] = part
        self.size += n

    def finish(self) -> dict[str, np.ndarray]:
        for a in self.arrays.values():
            a.resize(self.size, refcheck=False)
        return self.arrays


class _Chunks:
    """Parses chunks of whole lines into typed columns."""

    def __init__(self, header: list[str], first_row: list[str], wanted: tuple[str, ...] | None, rows_guess: int):
        self.width = len(header)
        self.step = header.index("step")
        # a column not drawn is read as numbers when it is one on the first row (if it turns to text later,
        # the chunk fails and the exact reader decides); an unnamed column (a pandas index) is never read
        self.cols = [i for i, name in enumerate(header) if i != self.step and name and (name in NUMERIC or (
                     (wanted is None or name in wanted) and parse_number(first_row[i]) is not None))]
        self.names = {i: header[i] for i in self.cols}
        dtypes = {"step": np.dtype(np.int64), **{header[i]: np.dtype(np.float64) for i in self.cols}}
        self.out = _Growing(dtypes, rows_guess)

    def add(self, body: bytes) -> bool:
        plain = _plain(body)
        if plain is None:
            return False
        buf = np.frombuffer(plain, dtype=np.uint8)
        cells = _cells(buf, self.width)
        if cells is None:
            return False
        starts, lengths = cells
        steps = _whole_numbers(buf, starts[:, self.step], lengths[:, self.step])
        if steps is None:
            return False
        parts = {"step": steps}
        dense = [i for i in self.cols if int(lengths[:, i].min()) > 0]  # no blank cell in this chunk
        if dense:
            try:
                table = np.loadtxt(io.BytesIO(plain), delimiter=",", dtype=np.float64, usecols=dense,
                                   comments=None, quotechar=None, ndmin=2)
            except ValueError:
                return False
            if table.shape[0] != steps.size:
                return False
            parts.update((self.names[i], table[:, k]) for k, i in enumerate(dense))
        for i in self.cols:
            if i not in dense:
                values = _written(buf, starts[:, i], lengths[:, i])
                if values is None:
                    return False
                parts[self.names[i]] = values
        if not all(_infinities_written(plain, starts[:, i], lengths[:, i], parts[self.names[i]]) for i in self.cols):
            return False
        self.out.append(parts)
        return True

    def columns(self) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        out = self.out.finish()
        return out.pop("step"), out


def _rows_guess(fh, body: bytes) -> int:
    """The file's rows, guessed from its size and the first chunk's lines (a little over, so rarely grown)."""
    size = os.fstat(fh.fileno()).st_size
    return int(size / (len(body) / body.count(b"\n")) * 1.02) + 1


def _values_ok(steps: np.ndarray, columns: dict[str, np.ndarray]) -> bool:
    """The rules on values that the parser does not enforce (the exact reader words each refusal)."""
    lr, norm = columns["lr"], columns["grad_l2_norm"]
    return bool(steps.min() >= 0 and np.all(np.isfinite(lr) & (lr >= 0)) and not np.any(norm < 0))


def read_columns(path: Path, wanted: tuple[str, ...] | None = None
                 ) -> tuple[np.ndarray, dict[str, np.ndarray], list[str]] | None:
    """``(steps, columns, notes)`` of a plain log read columnar, or None: read it with the exact reader.

    The steps are as written (a resumed run's repeated steps included); the caller keeps the rows in effect.
    """
    with open(path, "rb") as fh:
        first = fh.readline(max(CHUNK, _HEADER_LIMIT))
        if first.startswith(b"\xef\xbb\xbf"):
            first = first[3:]
        header = _header(first[:-1]) if first.endswith(b"\n") and len(first) > 1 else None
        if header is None or "step" not in header:
            return None
        try:
            _check_header(path, header)
        except ConfigError:
            return None  # refused: the exact reader words it (after any earlier problem it finds first)
        data, chunks, lines = b"", None, 1
        while True:
            more = fh.read(CHUNK)
            data += more
            cut = data.rfind(b"\n")
            body, data = data[:cut + 1], data[cut + 1:]
            if body:
                row = body[:body.find(b"\n")].rstrip(b"\r").decode("latin-1").split(",")
                chunks = chunks or _Chunks(header, row, wanted, _rows_guess(fh, body))
                if not chunks.add(body):
                    return None
                lines += body.count(b"\n")
            if not more:
                break
    notes: list[str] = []
    if data:  # a last line with no line break
        if not data.isascii() or b"\r" in data or b'"' in data or not data.strip(b","):
            return None
        cells = data.count(b",") + 1
        if cells < len(header):
            notes.append(f"{path.name}: its last line ({lines + 1}) has no line break and {cells} of "
                         f"{len(header)} cells (a write cut short): left out")
        elif chunks is None or not chunks.add(data + b"\n"):
            return None
    if chunks is None or chunks.out.size == 0:
        return None
    steps, columns = chunks.columns()
    return (steps, columns, notes) if _values_ok(steps, columns) else None
