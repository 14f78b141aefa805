"""Progress of a long command on stderr: a bar with an ETA on a terminal, a line every few seconds otherwise.

The estimate is linear: ``eta = elapsed * (total - done) / done``. On a
terminal the bar is redrawn in place (``\\r``) at most ten times a second;
anywhere else (a log file, a pipe, CI) one line is written every
``interval`` seconds and a last one when the work ends, so a log stays
readable. Work that ends within the first interval writes nothing, and
``enabled=False`` (the commands' ``--quiet``) writes nothing at all.

>>> import io
>>> out = io.StringIO()
>>> ticks = iter([0.0, 10.0, 12.0, 20.0])
>>> with Progress("sweep", 4, stream=out, tty=False, clock=lambda: next(ticks)) as p:
...     p.update(2)
...     p.update(4)
>>> print(out.getvalue(), end="")
sweep: 2/4 (50%), 10 s elapsed, ETA 10 s
sweep: 4/4 (100%) in 20 s
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

__all__ = ["Progress", "format_seconds", "DEFAULT_INTERVAL"]

_BAR = 24
_TTY_REDRAW = 0.1

#: seconds between two lines when the output is not a terminal
DEFAULT_INTERVAL = 5.0


def format_seconds(seconds: float) -> str:
    """A short duration: ``42 s``, ``3 min 05 s``, ``2 h 07 min``.

    >>> format_seconds(42.4), format_seconds(185), format_seconds(7625)
    ('42 s', '3 min 05 s', '2 h 07 min')
    """
    s = max(0, int(round(seconds)))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


class Progress:
    """Report ``done`` out of ``total`` units of work under ``label``; use as a context manager."""

    def __init__(self, label: str, total: int, *, stream: TextIO | None = None, enabled: bool = True,
                 tty: bool | None = None, interval: float | None = None, clock: Callable[[], float] = time.monotonic):
        self.label, self.total = label, max(1, int(total))
        self.stream = sys.stderr if stream is None else stream
        self.enabled = enabled
        self.tty = _isatty(self.stream) if tty is None else tty
        self.interval = DEFAULT_INTERVAL if interval is None else interval
        self.clock = clock
        self.done, self.note = 0, ""
        self._t0 = clock()
        self._last = self._t0
        self._width = 0
        self._closed = False
        self._drawn = False  # nothing written yet: work done within one interval ends silently

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def update(self, done: int, note: str = "", total: int | None = None) -> None:
        """``done`` units are finished (absolute, not an increment); ``note`` is shown after the numbers.

        ``total`` replaces the total given at the start (for work whose size is known only once it begins).
        """
        if total is not None:
            self.total = max(1, int(total))
        self.done, self.note = min(int(done), self.total), note
        if not self.enabled or self._closed:
            return
        now = self.clock()
        if now - self._last < (_TTY_REDRAW if self.tty else self.interval):
            return
        self._last = now
        self._write(self._bar(now) if self.tty else self._line(now))

    def close(self) -> None:
        """Write the final state (once)."""
        if self._closed:
            return
        self._closed = True
        if not self.enabled or not self._drawn:
            return
        now = self.clock()
        if self.tty:
            self._write(self._bar(now))
            self.stream.write("\n")
        else:
            self._write(f"{self.label}: {self.done}/{self.total} ({self._pct()}%) in {format_seconds(now - self._t0)}"
                        + (f"; {self.note}" if self.note else ""))
        self.stream.flush()

    def _pct(self) -> int:
        return 100 * self.done // self.total

    def _eta(self, now: float) -> str:
        elapsed = now - self._t0
        if self.done == 0:
            return f"{format_seconds(elapsed)} elapsed"
        eta = elapsed * (self.total - self.done) / self.done
        return f"{format_seconds(elapsed)} elapsed, ETA {format_seconds(eta)}"

    def _line(self, now: float) -> str:
        return f"{self.label}: {self.done}/{self.total} ({self._pct()}%), {self._eta(now)}" + \
            (f"; {self.note}" if self.note else "")

    def _bar(self, now: float) -> str:
        filled = _BAR * self.done // self.total
        bar = "#" * filled + "." * (_BAR - filled)
        return f"\r{self.label} [{bar}] {self.done}/{self.total} {self._eta(now)}" + \
            (f"  {self.note}" if self.note else "")

    def _write(self, text: str) -> None:
        self._drawn = True
        if self.tty:
            width = len(text)
            text += " " * max(0, self._width - width)  # erase what a longer previous bar left
            self._width = width
            self.stream.write(text)
        else:
            self.stream.write(text + "\n")
        self.stream.flush()


def _isatty(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False
