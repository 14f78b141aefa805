"""Evaluate a schedule over a long range of steps in fixed-size chunks, so memory does not grow with the range.

Every command that looks at every step (``show``, ``values``, ``lint``,
``budget``, the plots) goes through here: it sees a range of steps as
consecutive int64 arrays of at most :data:`CHUNK` steps, and reduces each
chunk before the next is computed. The reductions are exact, so the result does
not depend on the chunk size:

- :class:`Extremes`: min, max and the first step of each, as ``np.min`` and
  ``np.argmin`` over the whole range give them (a NaN wins, as there);
- :func:`pairwise_sum`: the sum in NumPy's own pairwise order, so it equals
  ``np.sum`` over the whole range bit for bit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

__all__ = ["CHUNK", "MAX_EVALUATED_STEPS", "Extremes", "pairwise_sum", "rate_chunks", "step_chunks"]

#: steps per chunk: 2**16 steps are 512 KiB of int64 steps plus as much of float64 rates
CHUNK = 1 << 16
#: the most steps a summary evaluates one by one (``show``'s min, max and sum, ``budget``): minutes at ~30 ns a step
MAX_EVALUATED_STEPS = 10**10
#: NumPy sums at most this many values in one block before it splits the range in two (``PW_BLOCKSIZE``)
_PAIRWISE_BLOCK = 128


def step_chunks(steps: range, size: int | None = None) -> Iterator[np.ndarray]:
    """The steps of a range as int64 arrays of at most ``size`` (default :data:`CHUNK`) steps, in order.

    >>> [c.tolist() for c in step_chunks(range(5), 2)], [c.tolist() for c in step_chunks(range(10, 20, 4))]
    ([[0, 1], [2, 3], [4]], [[10, 14, 18]])
    """
    size = CHUNK if size is None else size
    stride = size * steps.step
    for lo in range(steps.start, steps.stop, stride):  # no len(): a range may hold more than 2**63 steps
        yield np.arange(lo, min(lo + stride, steps.stop), steps.step, dtype=np.int64)


def rate_chunks(schedule, steps: range, size: int | None = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``(steps, schedule.at(steps))`` for each chunk of :func:`step_chunks`."""
    for part in step_chunks(steps, size):
        yield part, schedule.at(part)


class Extremes:
    """Running min and max of a rate and the first step holding each, fed chunk by chunk.

    The result equals ``values.min()``, ``steps[values.argmin()]`` (and the same for max) over all
    the chunks concatenated, NaN included: the first NaN is both the min and the max, as in NumPy.

    >>> e = Extremes()
    >>> e.add(np.array([10, 11]), np.array([3.0, 1.0])); e.add(np.array([12]), np.array([1.0]))
    >>> e.min, e.min_step, e.max, e.max_step
    (1.0, 11, 3.0, 10)
    """

    __slots__ = ("min", "min_step", "max", "max_step")

    def __init__(self) -> None:
        self.min = self.max = None
        self.min_step = self.max_step = None

    def add(self, steps: np.ndarray, values: np.ndarray) -> None:
        if values.size == 0:
            return
        i, j = int(values.argmin()), int(values.argmax())
        lo, hi = float(values[i]), float(values[j])
        if _replaces(self.min, lo, lambda new, old: new < old):
            self.min, self.min_step = lo, int(steps[i])
        if _replaces(self.max, hi, lambda new, old: new > old):
            self.max, self.max_step = hi, int(steps[j])


def _replaces(old: float | None, new: float, better: Callable[[float, float], bool]) -> bool:
    """A later chunk's extreme replaces the running one only if strictly better (ties keep the first step)."""
    if old is None:
        return True
    if old != old:  # a NaN seen earlier stays
        return False
    return new != new or better(new, old)


def pairwise_sum(n: int, leaf_sum: Callable[[int, int], float], block: int | None = None) -> float:
    """The sum of ``n`` values in NumPy's pairwise order, asking ``leaf_sum(lo, hi)`` for the pieces.

    NumPy sums a float64 array of more than 128 values as the sum of its two halves, the first
    ``n // 2`` rounded down to a multiple of 8, recursively. Splitting the same way until a piece
    has at most ``block`` (default :data:`CHUNK`) values and summing each piece with ``np.sum``
    gives ``np.sum`` of the whole array bit for bit, without the array.

    >>> x = np.random.default_rng(0).random(100_000)
    >>> pairwise_sum(x.size, lambda lo, hi: float(np.sum(x[lo:hi])), block=1000) == float(np.sum(x))
    True
    """
    block = max(CHUNK if block is None else block, _PAIRWISE_BLOCK)

    def node(lo: int, size: int) -> float:
        if size <= block:
            return leaf_sum(lo, lo + size)
        half = size // 2
        half -= half % 8
        return node(lo, half) + node(lo + half, size - half)

    return node(0, n) if n > 0 else 0.0
