"""Rolling statistics whose cost per update does not grow with the window."""

from __future__ import annotations

import bisect
from collections import deque

__all__ = ["RollingSlope", "RollingMedian"]


class RollingSlope:
    """Least-squares slope (and mean) of the last ``window`` values, O(1) per push.

    With the window's values ``y_0 .. y_{W-1}`` at positions ``0 .. W-1`` it keeps
    ``Sy = sum y`` and ``Sxy = sum i y_i``; pushing ``y`` and dropping ``y_0``
    gives ``Sxy' = Sxy - (Sy - y_0) + (W - 1) y``. The sums are recomputed
    from the buffer once per ``window`` pushes (amortised O(1)), so rounding
    never accumulates.

    >>> r = RollingSlope(4)
    >>> for v in [5.0, 4.0, 3.0, 2.0, 1.0]:
    ...     r.push(v)
    >>> r.slope(), r.mean()
    (-1.0, 2.5)
    """

    __slots__ = ("window", "values", "sy", "sxy", "_since", "_sx", "_den")

    def __init__(self, window: int):
        if window < 2:
            raise ValueError(f"window must be >= 2 (got {window})")
        self.window = window
        self.values: deque[float] = deque()
        self.sy = self.sxy = 0.0
        self._since = 0
        w = window
        self._sx = w * (w - 1) / 2
        self._den = w * (w * (w - 1) * (2 * w - 1) / 6) - self._sx**2

    @property
    def full(self) -> bool:
        return len(self.values) == self.window

    def push(self, y: float) -> None:
        values, w = self.values, self.window
        if len(values) < w:
            self.sxy += len(values) * y
            self.sy += y
            values.append(y)
            return
        old = values.popleft()
        values.append(y)
        self.sxy = self.sxy - (self.sy - old) + (w - 1) * y
        self.sy = self.sy - old + y
        self._since += 1
        if self._since >= w:
            self._since = 0
            self.sy = sum(values)
            self.sxy = sum(i * v for i, v in enumerate(values))

    def slope(self) -> float:
        """Change per step of the best-fit line through the full window (nan until full)."""
        if not self.full:
            return float("nan")
        return (self.window * self.sxy - self._sx * self.sy) / self._den

    def mean(self) -> float:
        return self.sy / len(self.values) if self.values else float("nan")


class RollingMedian:
    """Median of the last ``window`` values (a sorted list: O(log W) search, a short memmove per push)."""

    __slots__ = ("window", "values", "sorted")

    def __init__(self, window: int):
        self.window = window
        self.values: deque[float] = deque()
        self.sorted: list[float] = []

    def push(self, y: float) -> None:
        if len(self.values) == self.window:
            old = self.values.popleft()
            del self.sorted[bisect.bisect_left(self.sorted, old)]
        self.values.append(y)
        bisect.insort(self.sorted, y)

    def median(self) -> float:
        n = len(self.sorted)
        if n == 0:
            return float("nan")
        mid = n // 2
        return self.sorted[mid] if n % 2 else 0.5 * (self.sorted[mid - 1] + self.sorted[mid])
