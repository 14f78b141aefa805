"""Thinning a long series for a plot: per bucket of rows, the rows that draw the same picture.

A plot is a few thousand pixels wide, so a million-row log draws no more than
the first, last, lowest and highest value of each pixel column. Both the PNG
of ``lrtempo analyze`` and the HTML report thin their series this way before
plotting, so their cost does not grow with the log. One pass per series
(reductions over each bucket), no sort. How many points a picture needs is a
view's concern, so this lives in ``plot/``; the log keeps every row.
"""

from __future__ import annotations

import numpy as np

__all__ = ["thin_rows"]


def _first_per_bucket(rows: np.ndarray, bucket: np.ndarray) -> np.ndarray:
    """The first of ``rows`` (increasing) in each bucket."""
    if rows.size == 0:
        return rows
    b = bucket[rows]
    return rows[np.flatnonzero(np.diff(b, prepend=-1))]


def thin_rows(n: int, ys: list[np.ndarray], buckets: int, *, gaps: str = "all") -> np.ndarray:
    """Row indices that keep, per bucket of rows, the first, last, lowest and highest value of every series.

    The buckets are equal shares of the rows, in order (``row * buckets // n``); ties keep the first row. A
    row whose value is NaN or infinite is a gap: ``gaps="all"`` keeps every such row, ``"bucket"`` the first
    of each bucket (enough to break the line there).

    >>> thin_rows(10, [np.arange(10.0)], buckets=2)
    array([0, 4, 5, 9])
    >>> thin_rows(6, [np.array([1.0, np.nan, np.nan, 2.0, 0.5, 3.0])], buckets=1, gaps="bucket")
    array([0, 1, 4, 5])
    """
    bucket = np.arange(n, dtype=np.int64) * buckets // n
    starts = np.flatnonzero(np.diff(bucket, prepend=-1))
    sizes = np.diff(np.append(starts, n))
    keep = [starts, np.append(starts[1:], n) - 1]
    for y in ys:
        finite = np.isfinite(y)
        for key in (np.where(finite, y, np.inf), np.where(finite, -y, np.inf)):
            lowest = np.repeat(np.minimum.reduceat(key, starts), sizes)
            keep.append(_first_per_bucket(np.flatnonzero((key == lowest) & finite), bucket))
        bad = np.flatnonzero(~finite)
        keep.append(bad if gaps == "all" else _first_per_bucket(bad, bucket))
    return np.unique(np.concatenate(keep))
