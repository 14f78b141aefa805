"""Rolling statistics, each defined once and evaluated two ways: live (O(1) per push) and over a whole array.

The live monitor pushes one value per update; ``lrtempo analyze`` has the whole
log at once. Both evaluate the same definitions with the same floating-point
operations in the same order, so a statistic (and every event decided from it)
is bit-for-bit the same in both modes.

**Window sums** (:class:`RollingSlope`, :func:`rolling_sums`). The values are cut
into blocks of ``W`` (the window) in push order. The window ending at block
offset ``r`` is the tail of the previous block (offsets ``r+1 .. W-1``) and the
head of the current one (offsets ``0 .. r``), so with prefix sums ``P`` of the
current block and suffix sums ``S`` of the previous one (both within a block,
``u`` the offset in the block)::

    Sy  = S[r+1] + P[r]
    Sxy = (S_u[r+1] - (r+1) S[r+1]) + (P_u[r] + (W-r-1) P[r])      # x = position in the window
        =  tail_sums                +  head_sums

where ``S_u``, ``P_u`` sum ``u * y``. The least-squares slope over positions
``0 .. W-1`` is ``(W Sxy - Sx Sy) / (W Sxx - Sx**2)`` (:func:`slope_from_sums`).
No sum runs over more than one block, so rounding never accumulates along a long
log. Each piece of the formula is one function that takes floats or arrays:
live, a block's suffix sums (:func:`block_suffix_sums`) and their
:func:`tail_sums` are formed once when it completes (amortised O(1)) and each
push adds its :func:`head_sums`; offline the same functions run along the rows
of a ``(blocks, W)`` array.

**Median** (:class:`RollingMedian`, :func:`window_medians`): the middle of the
sorted window, the mean of the two middle values for an even count
(:func:`middle`). Live keeps the window sorted; offline selects the two order
statistics with :func:`numpy.partition`.
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from collections.abc import Iterator, Sequence

import numpy as np

__all__ = ["RollingMedian", "RollingSlope", "block_minima", "block_suffix_sums", "head_sums", "middle",
           "rolling_sum_pieces", "rolling_sums", "slope_from_sums", "tail_sums", "window_medians", "window_sums"]

_ROWS = 1 << 16  # values per offline piece: bounds the working memory of the array forms


def slope_constants(w: int) -> tuple[float, float]:
    """``(Sx, W Sxx - Sx**2)`` of the positions ``0 .. W-1``."""
    sx = w * (w - 1) / 2
    return sx, w * (w * (w - 1) * (2 * w - 1) / 6) - sx**2


def block_suffix_sums(blocks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(S, S_u)``: the suffix sums of ``y`` and ``u * y`` within each block (the last axis, ``W`` values at
    offsets ``u = 0 .. W-1``), added from the block's end, with ``S[W] = S_u[W] = 0`` after them.

    >>> [a.tolist() for a in block_suffix_sums(np.array([1.0, 2.0, 4.0]))]
    [[7.0, 6.0, 4.0, 0.0], [10.0, 10.0, 8.0, 0.0]]
    """
    w = blocks.shape[-1]
    suf = np.zeros(blocks.shape[:-1] + (w + 1,))
    suf_u = np.zeros_like(suf)
    suf[..., :w] = np.cumsum(blocks[..., ::-1], axis=-1)[..., ::-1]
    suf_u[..., :w] = np.cumsum((blocks * np.arange(w, dtype=np.float64))[..., ::-1], axis=-1)[..., ::-1]
    return suf, suf_u


def tail_sums(suf, suf_u, r):
    """The previous block's share of ``Sxy`` for the window ending at offset ``r`` (``suf``, ``suf_u``: its
    suffix sums from offset ``r + 1``; floats or arrays): see the module docstring."""
    return suf_u - (r + 1) * suf


def head_sums(pre, pre_u, r, w: int):
    """The current block's share of ``Sxy`` for the window ending at offset ``r`` (``pre``, ``pre_u``: its
    prefix sums to offset ``r``; floats or arrays): see the module docstring."""
    return pre_u + (w - r - 1) * pre


def window_sums(suf, suf_u, pre, pre_u, r, w: int):
    """``(Sy, Sxy)`` of a window from its block sums (floats, or arrays of them): see the module docstring."""
    return suf + pre, tail_sums(suf, suf_u, r) + head_sums(pre, pre_u, r, w)


def slope_from_sums(sy, sxy, w: int, constants: tuple[float, float] | None = None):
    """Least-squares slope over positions ``0 .. W-1`` from ``Sy`` and ``Sxy`` (floats or arrays);
    ``constants`` is :func:`slope_constants` of ``w`` when already at hand."""
    sx, den = constants or slope_constants(w)
    return (w * sxy - sx * sy) / den


def middle(lower: float, upper: float, n: int) -> float:
    """The median of ``n`` sorted values whose two middle ones (``n // 2 - 1`` and ``n // 2``) are given.

    >>> middle(2.0, 3.0, 4), middle(0.0, 3.0, 3)
    (2.5, 3.0)
    """
    return upper if n % 2 else 0.5 * (lower + upper)


class RollingSlope:
    """Least-squares slope (and mean) of the last ``window`` values, O(1) per push (amortised).

    Each push adds the value to the current block's prefix sums and forms the window's sums from them and
    the previous block's share (:func:`head_sums`, :func:`tail_sums`); when a block completes, its suffix
    sums (:func:`block_suffix_sums`) become the previous block's share, once per ``window`` pushes. These
    are the functions the array form evaluates, so the floats are the same.

    >>> r = RollingSlope(4)
    >>> for v in [5.0, 4.0, 3.0, 2.0, 1.0]:
    ...     r.push(v)
    >>> r.slope(), r.mean()
    (-1.0, 2.5)
    """

    __slots__ = ("window", "values", "count", "sy", "sxy", "_u", "_p", "_pu", "_suf", "_tail", "_constants")

    def __init__(self, window: int):
        if window < 2:
            raise ValueError(f"window must be >= 2 (got {window})")
        self.window = window
        self.values: deque[float] = deque(maxlen=window)
        self.count = 0  # values pushed since the start (fixes where the blocks fall)
        self.sy = self.sxy = 0.0  # the window's sums after the last push
        self._u = 0  # the block offset of the next value
        self._p = self._pu = 0.0  # the current block's prefix sums of y and u*y
        self._suf = [0.0] * window  # per offset u: the previous block's S[u+1] (none before the first block)
        self._tail = [0.0] * window  # per offset u: the previous block's share of Sxy
        self._constants = slope_constants(window)

    @property
    def full(self) -> bool:
        return self.count >= self.window

    def push(self, y: float) -> None:
        u = self._u
        if u == self.window:
            self._previous_block(self.values)
            u = 0
        if u:
            p = self._p + y
            pu = self._pu + u * y
        else:
            p = y
            pu = u * y  # 0 * y, as the array form takes it (NaN for an infinite y)
        self._p, self._pu, self._u = p, pu, u + 1
        self.values.append(y)
        self.count += 1
        self.sy = self._suf[u] + p
        self.sxy = self._tail[u] + head_sums(p, pu, u, self.window)

    def _previous_block(self, block: Sequence[float]) -> None:
        """The block just completed (``block[t]`` at offset ``t``; NaN where unknown) becomes the previous block."""
        w = self.window
        with np.errstate(all="ignore"):  # a diverged run's values: NaN or inf, silently, as Python's floats
            suf, suf_u = block_suffix_sums(np.fromiter(block, dtype=np.float64, count=w))
            self._suf = suf[1:].tolist()
            self._tail = tail_sums(suf[1:], suf_u[1:], np.arange(w)).tolist()

    def sums(self) -> tuple[float, float]:
        """``(Sy, Sxy)`` of the values in the window (``Sxy`` meaningful once it is full)."""
        return self.sy, self.sxy

    def slope(self) -> float:
        """Change per step of the best-fit line through the full window (nan until full)."""
        return self.slope_mean()[0]

    def mean(self) -> float:
        return self.slope_mean()[1]

    def slope_mean(self) -> tuple[float, float]:
        """``(slope(), mean())``."""
        if self.count < self.window:
            return math.nan, (self.sy / self.count if self.count else math.nan)
        return slope_from_sums(self.sy, self.sxy, self.window, self._constants), self.sy / self.window

    def state(self) -> dict:
        return {"values": list(self.values), "count": self.count}

    @classmethod
    def restore(cls, window: int, values: Sequence[float], count: int | None = None) -> RollingSlope:
        """The statistic as it was after ``count`` pushes ending in ``values`` (its last ``window`` values, or
        all of them). Without ``count`` (an older checkpoint) the values are pushed afresh."""
        out = cls(window)
        values = [float(v) for v in values][-window:]
        if count is None or count <= window or len(values) < window:
            for v in values:
                out.push(v)
            return out
        r = (count - 1) % window  # the block offset of the newest value
        out._previous_block([math.nan] * (r + 1) + values[:window - r - 1])  # its offsets r+1 .. W-1 known
        for v in values[window - r - 1:]:  # the current block, offsets 0 .. r
            out.push(v)
        out.values = deque(values, maxlen=window)
        out.count = count
        return out


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
        ordered = self.sorted
        n = len(ordered)
        if n == 0:
            return math.nan
        mid = n // 2  # middle(), spelled out on the hot path
        return ordered[mid] if n % 2 else 0.5 * (ordered[mid - 1] + ordered[mid])


# -- the same statistics over whole arrays ----------------------------------------------------------------------

def _blocks(y: np.ndarray, w: int, b0: int, b1: int) -> np.ndarray:
    """Blocks ``b0 .. b1-1`` of ``y`` as rows (the last one padded with zeros, never read)."""
    seg = y[b0 * w:b1 * w]
    if seg.size < (b1 - b0) * w:
        seg = np.concatenate([seg, np.zeros((b1 - b0) * w - seg.size)])
    return seg.reshape(b1 - b0, w)


def rolling_sum_pieces(y: np.ndarray, w: int) -> Iterator[tuple[int, int, np.ndarray, np.ndarray]]:
    """``(lo, hi, Sy, Sxy)`` for consecutive pieces of rows ``lo .. hi-1`` (a few of :data:`_ROWS` rows each, whole
    blocks of ``w``): the sums after each push of ``y`` into a :class:`RollingSlope` of window ``w``, the same
    floats, in working memory bounded by the piece, whatever the length of ``y``."""
    y = np.asarray(y, dtype=np.float64)
    n = y.size
    u = np.arange(w, dtype=np.float64)
    r = np.arange(w)
    prev = np.zeros((2, w + 1))  # suffix sums (y, u*y) of the block before the piece
    per = max(1, _ROWS // w)
    nb = -(-n // w)
    for b0 in range(0, nb, per):
        b1 = min(nb, b0 + per)
        blk = _blocks(y, w, b0, b1)
        blk_u = blk * u
        suf = np.zeros((b1 - b0 + 1, w + 1))
        suf_u = np.zeros_like(suf)
        suf[0], suf_u[0] = prev
        suf[1:], suf_u[1:] = block_suffix_sums(blk)
        prev = np.stack([suf[-1], suf_u[-1]])
        sy, sxy = window_sums(suf[:-1, 1:], suf_u[:-1, 1:], np.cumsum(blk, axis=1), np.cumsum(blk_u, axis=1), r, w)
        lo, hi = b0 * w, min(n, b1 * w)
        yield lo, hi, sy.reshape(-1)[:hi - lo], sxy.reshape(-1)[:hi - lo]


def rolling_sums(y: np.ndarray, w: int) -> tuple[np.ndarray, np.ndarray]:
    """``(Sy, Sxy)`` after each push of ``y`` into a :class:`RollingSlope` of window ``w``: the same floats
    (:func:`rolling_sum_pieces`, gathered).

    >>> sy, sxy = rolling_sums(np.array([5.0, 4.0, 3.0, 2.0, 1.0]), 4)
    >>> sy.tolist(), float(slope_from_sums(sy[-1], sxy[-1], 4))
    ([5.0, 9.0, 12.0, 14.0, 10.0], -1.0)
    """
    n = np.asarray(y).size
    out_sy, out_sxy = np.empty(n), np.empty(n)
    for lo, hi, sy, sxy in rolling_sum_pieces(y, w):
        out_sy[lo:hi], out_sxy[lo:hi] = sy, sxy
    return out_sy, out_sxy


def block_minima(v: np.ndarray, w: int) -> np.ndarray:
    """The minimum of each block of ``w`` values of ``v`` (the last block may be short).

    >>> block_minima(np.array([3.0, 1.0, 4.0, 1.5, 5.0, 9.0, 2.0]), 3).tolist()
    [1.0, 1.5, 2.0]
    """
    return np.minimum.reduceat(v, np.arange(0, v.size, w)) if v.size else v.copy()


def window_medians(v: np.ndarray, ends: np.ndarray, w: int) -> np.ndarray:
    """The :class:`RollingMedian` median of ``v[max(0, e-w) .. e-1]`` for each ``e`` in ``ends`` (NaN when the
    window is empty): the same floats as the live sorted window."""
    out = np.full(ends.size, np.nan)
    full = np.flatnonzero(ends >= w)
    if full.size:
        views = np.lib.stride_tricks.sliding_window_view(v, w)
        mid = w // 2
        kth = [mid - 1, mid] if w > 1 else [0]
        for lo in range(0, full.size, max(1, _ROWS // w)):
            part = full[lo:lo + max(1, _ROWS // w)]
            win = np.partition(views[ends[part] - w], kth, axis=1)
            upper = win[:, mid]
            out[part] = upper if w % 2 else 0.5 * (win[:, mid - 1] + upper)
    for k in np.flatnonzero((ends > 0) & (ends < w)).tolist():  # a window still filling: short, few
        win = np.sort(v[:ends[k]])
        n = win.size
        out[k] = middle(float(win[n // 2 - 1]) if n > 1 else 0.0, float(win[n // 2]), n)
    return out
