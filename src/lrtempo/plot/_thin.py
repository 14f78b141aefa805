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


#: rows thinned at a time (whole buckets): bounds the working memory, whatever the length of the log
PIECE_ROWS = 1 << 16


def _first_per_bucket(rows: np.ndarray, bucket: np.ndarray) -> np.ndarray:
    """The first of ``rows`` (increasing) in each bucket."""
    if rows.size == 0:
        return rows
    b = bucket[rows]
    return rows[np.flatnonzero(np.diff(b, prepend=-1))]


def _bucket_starts(n: int, buckets: int) -> np.ndarray:
    """The first row of each non-empty bucket, bucket ``b`` holding the rows with ``row * buckets // n == b``
    (its first row is ``ceil(b * n / buckets)``).

    >>> _bucket_starts(10, 4).tolist(), _bucket_starts(3, 5).tolist()
    ([0, 3, 5, 8], [0, 1, 2])
    """
    starts = (np.arange(buckets, dtype=np.int64) * n + buckets - 1) // buckets
    return np.unique(starts[starts < n])


def _thin_piece(ys: list[np.ndarray], starts: np.ndarray, gaps: str) -> np.ndarray:
    """:func:`thin_rows` of a piece of whole buckets (``starts``: their first rows, the first one 0)."""
    n = ys[0].size
    sizes = np.diff(np.append(starts, n))
    bucket = np.repeat(np.arange(starts.size), sizes)
    keep = [starts, np.append(starts[1:], n) - 1]
    for y in ys:
        finite = np.isfinite(y)
        for key in (np.where(finite, y, np.inf), np.where(finite, -y, np.inf)):
            lowest = np.repeat(np.minimum.reduceat(key, starts), sizes)
            keep.append(_first_per_bucket(np.flatnonzero((key == lowest) & finite), bucket))
        bad = np.flatnonzero(~finite)
        keep.append(bad if gaps == "all" else _first_per_bucket(bad, bucket))
    return np.unique(np.concatenate(keep))


def thin_rows(n: int, ys: list[np.ndarray], buckets: int, *, gaps: str = "all") -> np.ndarray:
    """Row indices that keep, per bucket of rows, the first, last, lowest and highest value of every series.

    The buckets are equal shares of the rows, in order (``row * buckets // n``); ties keep the first row. A
    row whose value is NaN or infinite is a gap: ``gaps="all"`` keeps every such row, ``"bucket"`` the first
    of each bucket (enough to break the line there). The rows are thinned a piece of whole buckets at a time
    (:data:`PIECE_ROWS` rows or one bucket), so the working memory does not grow with the log.

    >>> thin_rows(10, [np.arange(10.0)], buckets=2)
    array([0, 4, 5, 9])
    >>> thin_rows(6, [np.array([1.0, np.nan, np.nan, 2.0, 0.5, 3.0])], buckets=1, gaps="bucket")
    array([0, 1, 4, 5])
    """
    starts = _bucket_starts(n, buckets)
    edges = np.append(starts, n)
    parts, b = [], 0
    while b < starts.size:  # buckets b .. e-1: at least one, at most PIECE_ROWS rows when more than one
        e = max(b + 1, int(np.searchsorted(edges, edges[b] + PIECE_ROWS, side="right")) - 1)
        lo, hi = int(edges[b]), int(edges[e])
        parts.append(lo + _thin_piece([y[lo:hi] for y in ys], starts[b:e] - lo, gaps))
        b = e
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
