"""A text plot of a schedule that the eye can read in a terminal.

Each column covers a range of steps and shows the lowest and highest rate in
it (so a restart or a short warmup is never lost between samples); phase
boundaries are marked under the axis.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np

from .. import _chunks
from .._chunks import step_chunks
from ..schedules import POSITION_COLUMNS, Schedule

__all__ = ["column_ranges", "text_plot"]

#: up to this many steps every step is evaluated (in chunks) and each column's min and max are exact
_EXACT_LIMIT = 1 << 27
#: beyond it, about this many evenly spread steps (plus the steps around every phase boundary) stand for them
_SAMPLES = 2_000_000


def column_ranges(schedule: Schedule, last_step: int, width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(first step, min, max) of the rate in each of ``width`` columns over ``[0, last_step]``.

    Up to ``_EXACT_LIMIT`` steps every step counts, evaluated chunk by chunk, so memory is
    O(width) whatever the range; past it each column is summarised from an even sample of its
    steps and the steps either side of every phase boundary in it.

    >>> from lrtempo.schedules import WarmupCosine
    >>> first, lows, highs = column_ranges(WarmupCosine(peak_lr=1.0, total_steps=100, warmup_steps=10), 100, 4)
    >>> first.tolist(), float(lows[0]), float(highs[0])
    ([0, 25, 50, 75], 0.0, 1.0)
    """
    edges = np.unique(np.floor(np.linspace(0, last_step + 1, width + 1)).astype(np.int64))
    lows = np.full(edges.size - 1, np.inf)
    highs = np.full(edges.size - 1, -np.inf)
    if last_step + 1 <= _EXACT_LIMIT:
        chunks = step_chunks(range(last_step + 1))
    else:
        chunks = _sampled_steps(schedule, edges, last_step)
    for steps in chunks:
        _fold(edges, steps, schedule.at(steps), lows, highs)
    return edges[:-1], lows, highs


def _fold(edges: np.ndarray, steps: np.ndarray, values: np.ndarray, lows: np.ndarray, highs: np.ndarray) -> None:
    """Fold one chunk of ascending steps into the per-column minima and maxima (NaN propagates, as in np.min)."""
    cols = np.clip(np.searchsorted(edges, steps, side="right") - 1, 0, lows.size - 1)
    starts = np.flatnonzero(np.concatenate(([True], cols[1:] != cols[:-1])))
    hit = cols[starts]
    lows[hit] = np.minimum(lows[hit], np.minimum.reduceat(values, starts))
    highs[hit] = np.maximum(highs[hit], np.maximum.reduceat(values, starts))


def _sampled_steps(schedule: Schedule, edges: np.ndarray, last_step: int) -> Iterator[np.ndarray]:
    """Ascending chunks of sample steps, column by column: an even spread and the steps around each boundary."""
    per_col = max(2, _SAMPLES // (edges.size - 1))
    marks = np.asarray(schedule.boundaries(last_step), dtype=np.int64)
    around = np.unique(np.clip(np.concatenate([marks - 1, marks]), 0, last_step))
    pending: list[np.ndarray] = []
    size = 0
    for a, b in zip(edges[:-1].tolist(), edges[1:].tolist()):
        inside = around[np.searchsorted(around, a):np.searchsorted(around, b)]
        pending.append(np.linspace(a, b - 1, per_col).astype(np.int64))
        pending.append(inside)
        size += per_col + inside.size
        if size >= _chunks.CHUNK:
            yield np.unique(np.concatenate(pending))
            pending, size = [], 0
    if pending:
        yield np.unique(np.concatenate(pending))


def _fmt(value: float) -> str:
    return f"{value:.3g}" if value != 0 and (1e-3 <= abs(value) < 1e4) else f"{value:.2e}"


def text_plot(
    schedule: Schedule,
    *,
    last_step: int | None = None,
    width: int = 72,
    height: int = 16,
    log_y: bool = False,
    title: str | None = None,
) -> str:
    """Render the schedule over ``[0, last_step]`` as ``height`` rows of ``width`` columns.

    >>> from lrtempo.schedules import WarmupCosine
    >>> out = text_plot(WarmupCosine(peak_lr=1.0, total_steps=100, warmup_steps=10), width=40, height=6)
    >>> "1" in out.splitlines()[0] and "step" in out
    True
    """
    if width < 8 or height < 3:
        raise ValueError(f"the plot needs width >= 8 and height >= 3 (got {width}x{height})")
    last = schedule.horizon if last_step is None else last_step
    first_steps, lows, highs = column_ranges(schedule, last, width)
    top, bottom = float(np.max(highs)), float(np.min(lows))
    if log_y:
        positive = np.concatenate([lows[lows > 0], highs[highs > 0]])
        if positive.size == 0:
            raise ValueError("--log-y needs positive rates; this schedule is 0 everywhere in range")
        bottom = float(positive.min())

        def to_unit(v):
            v = np.maximum(v, bottom)
            span = math.log(top) - math.log(bottom)
            return (np.log(v) - math.log(bottom)) / span if span > 0 else np.full(np.shape(v), 0.5)
    else:
        def to_unit(v):
            span = top - bottom
            return (np.asarray(v) - bottom) / span if span > 0 else np.full(np.shape(v), 0.5)

    row_lo = np.rint(to_unit(lows) * (height - 1)).astype(int)
    row_hi = np.rint(to_unit(highs) * (height - 1)).astype(int)
    cols = len(first_steps)
    grid = [[" "] * cols for _ in range(height)]
    for c in range(cols):
        for r in range(row_lo[c], row_hi[c] + 1):
            grid[height - 1 - r][c] = "*"
    labels = [""] * height
    labels[0], labels[-1] = _fmt(top), _fmt(bottom)
    if height >= 5:
        mid = (top * bottom) ** 0.5 if log_y else (top + bottom) / 2
        labels[(height - 1) // 2] = _fmt(mid)
    pad = max(len(s) for s in labels)
    lines = []
    if title:
        lines.append(title)
    for label, row in zip(labels, grid):
        lines.append(f"{label:>{pad}} |{''.join(row)}")
    lines.append(" " * pad + " +" + "-" * cols)
    marks = [" "] * cols
    for b in schedule.boundaries(last):
        if 0 < b <= last:
            c = min(cols - 1, int(np.searchsorted(first_steps, b, side="right")) - 1)
            marks[c] = "^"
    lines.append(" " * pad + "  " + "".join(marks))
    left, right = "0", f"{last}"
    gap = max(1, cols - len(left) - len(right))
    lines.append(" " * pad + "  " + left + " " * gap + right + "  " + POSITION_COLUMNS[schedule.unit])
    if any(m == "^" for m in marks):
        lines.append(" " * pad + "  ^ phase boundary" + (" (log scale)" if log_y else ""))
    elif log_y:
        lines.append(" " * pad + "  (log scale)")
    return "\n".join(lines)
