"""The columnar log reader: a plain log into typed NumPy columns at the speed of NumPy's own C parser.

A trainer's log is plain: ASCII, no quotes, one row per line. Such a file is
read a chunk of whole lines at a time: the chunk's shape is checked on its
bytes (every line has the header's number of cells, no line is blank, none
is longer than a cell may be), its blank cells become ``nan``, and
:func:`numpy.loadtxt` parses it into one structured array (``step`` as int64,
never through a float; the rest float64, correctly rounded, so every number
reads back bit-exactly). The rules of :mod:`._logfile` are then checked on the
arrays. Anything this reader does not accept as it is (a quote, a UTF-8
character, a blank line, a ``12.0`` step, a bad or out-of-range cell, a column
that turns to text) makes it return None, and the exact row reader reads the
file again: it accepts the same files and refuses with the line and cell.
So this reader is only ever faster, never different.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np

from ..config import ConfigError
from ._logfile import _INF_WORDS, NUMERIC, _check_header, parse_number

__all__ = ["read_columns"]

CHUNK = 1 << 22  # bytes read at a time (whole lines): bounds the parser's working memory
_FIELD_LIMIT = 131_072  # the csv module's cell limit: a longer line goes to the exact reader to be judged
_INF = frozenset(w.encode() for w in _INF_WORDS)


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


def _nan_blanks(body: bytes) -> bytes:
    """Blank cells as ``nan`` (a blank cell is "no value"), so the C parser reads them.

    >>> _nan_blanks(b",1,,2,\\n3,,,\\n")
    b'nan,1,nan,2,nan\\n3,nan,nan,nan\\n'
    """
    if body.startswith(b","):
        body = b"nan" + body
    body = body.replace(b",\n", b",nan\n").replace(b"\n,", b"\nnan,")
    while b",," in body:  # twice at most: a run of blanks is filled every other cell per pass
        body = body.replace(b",,", b",nan,")
    return body


def _shape_ok(buf: np.ndarray, width: int) -> np.ndarray | None:
    """The positions of the line breaks when every line has ``width`` cells and none is too long."""
    breaks = np.flatnonzero(buf == 10)
    commas = np.flatnonzero(buf == 44)
    per_line = np.diff(np.searchsorted(commas, breaks), prepend=0)
    lengths = np.diff(breaks, prepend=-1)
    if per_line.size == 0 or np.any(per_line != width - 1) or int(lengths.max()) > _FIELD_LIMIT:
        return None
    return breaks


def _infinities_written(body: bytes, breaks: np.ndarray, rows: np.ndarray, index: int) -> bool:
    """Whether each infinite value was written as infinity (``inf``), not a number beyond float64 (``1e400``)."""
    starts = np.concatenate([[0], breaks[:-1] + 1])
    for r in rows.tolist():
        cell = body[starts[r]:breaks[r]].split(b",")[index]
        if cell.strip().lower() not in _INF:
            return False
    return True


class _Chunks:
    """Parses chunks of whole lines with one structured dtype; remembers what it read."""

    def __init__(self, header: list[str], first_row: list[str], wanted: tuple[str, ...] | None):
        self.width = len(header)
        self.step = header.index("step")
        # a column not drawn is read as numbers when it is one on the first row (if it turns to text later,
        # the chunk fails and the exact reader decides); an unnamed column (a pandas index) is never read
        self.cols = [i for i, name in enumerate(header) if name and (name in NUMERIC or (
                     (wanted is None or name in wanted) and parse_number(first_row[i]) is not None))]
        self.names = [header[i] for i in self.cols]
        self.dtype = np.dtype([(f"c{i}", np.int64 if i == self.step else np.float64) for i in self.cols])
        self.parts: list[np.ndarray] = []

    def add(self, body: bytes) -> bool:
        plain = _plain(body)
        if plain is None:
            return False
        plain = _nan_blanks(plain)
        buf = np.frombuffer(plain, dtype=np.uint8)
        breaks = _shape_ok(buf, self.width)
        if breaks is None:
            return False
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # "parsing 12.0 as an integer" is a warning: the exact reader decides
            try:
                table = np.loadtxt(io.StringIO(plain.decode("ascii")), delimiter=",", dtype=self.dtype,
                                   usecols=self.cols, comments=None, quotechar=None, ndmin=1)
            except (ValueError, Warning):
                return False
        if table.size != breaks.size:
            return False
        for i in self.cols:
            if i != self.step:
                inf = np.flatnonzero(np.isinf(table[f"c{i}"]))
                if inf.size and not _infinities_written(plain, breaks, inf, i):
                    return False
        self.parts.append(table)
        return True

    def columns(self) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        parts, self.parts = self.parts, []
        out = {}
        for name, i in zip(self.names, self.cols):  # column by column: the chunks plus the columns at most
            out[name] = np.concatenate([part[f"c{i}"] for part in parts])
        del parts
        return out.pop("step"), out


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
        data = fh.read(CHUNK)
        if data.startswith(b"\xef\xbb\xbf"):
            data = data[3:]
        cut = data.find(b"\n")
        header = _header(data[:cut]) if cut > 0 else None
        if header is None or "step" not in header:
            return None
        try:
            _check_header(path, header)
        except ConfigError:
            return None  # refused: the exact reader words it (after any earlier problem it finds first)
        data, chunks, lines = data[cut + 1:], None, 1
        while True:
            more = fh.read(CHUNK)
            data += more
            cut = data.rfind(b"\n")
            body, data = data[:cut + 1], data[cut + 1:]
            if body:
                first = body[:body.find(b"\n")].rstrip(b"\r").decode("latin-1").split(",")
                chunks = chunks or _Chunks(header, first, wanted)
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
    if chunks is None or not chunks.parts:
        return None
    steps, columns = chunks.columns()
    return (steps, columns, notes) if _values_ok(steps, columns) else None
