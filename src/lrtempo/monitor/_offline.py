"""The detectors over a whole log at once: the live detectors' statistics as arrays, their rules on the arrays.

``lrtempo analyze`` has every row of a log before it starts, so instead of
pushing rows one by one through :class:`~lrtempo.monitor.TrapDetector`,
:class:`~lrtempo.monitor.SpikeDetector` and
:class:`~lrtempo.monitor.RestartTracker` (:func:`detect_live`, kept as the
reference), :func:`detect_log` evaluates the same statistics over the arrays
(:mod:`._rolling`: the same floats) and applies the same rules to them, building
each event with the live detectors' own functions. Both return the same events
at the same steps with the same values, and the same trap status on every row
(a property test holds them to it on random logs).

The spike rule needs a rolling median only where a spike is possible: a value
can exceed ``factor`` times the window's median only if it exceeds ``factor``
times the window's minimum (the median is at least the minimum), so the
medians are taken only at the rows that pass a cheaper test implied by that one
(:class:`_SpikeCandidates`).

Each statistic is evaluated a piece of rows at a time, so the working memory is
bounded by the piece and what is kept per row is the trap status code (one
byte), whatever the length of the log.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import _rolling
from ._detectors import (
    INSUFFICIENT,
    NORMAL,
    TRAP,
    Event,
    RestartTracker,
    SpikeDetector,
    TrapDetector,
    restart_event,
    spike_events,
    trap_details,
    trap_event,
)
from ._rolling import block_minima, rolling_sum_pieces, slope_from_sums, window_medians

__all__ = ["DetectorSettings", "STATUSES", "detect_live", "detect_log"]

#: trap status codes of :func:`detect_log`'s per-row array
STATUSES = (INSUFFICIENT, NORMAL, TRAP)


@dataclass(frozen=True)
class DetectorSettings:
    """The settings both modes share (the live detectors' constructor arguments)."""

    trap_window: int = 200
    trap_threshold: float = 1e-4
    lr_ratio: float = 0.1
    spike_window: int = 100
    spike_factor: float = 5.0
    loss_factor: float = 2.0
    min_history: int = 20
    restart_window: int = 20


def detect_live(steps: np.ndarray, lr: np.ndarray, norm: np.ndarray, loss: np.ndarray, peak: float,
                remaining: np.ndarray | None, restart_steps: list[int], s: DetectorSettings
                ) -> tuple[list[Event], np.ndarray]:
    """The live detectors fed row by row (the reference): events, and the trap status code of every row."""
    trap = TrapDetector(s.trap_window, s.trap_threshold, s.lr_ratio)
    spikes = SpikeDetector(s.spike_window, s.spike_factor, s.loss_factor, s.min_history)
    restarts = RestartTracker(restart_steps, s.restart_window)
    events: list[Event] = []
    codes = np.zeros(steps.size, dtype=np.int8)
    left = remaining.tolist() if remaining is not None else [None] * steps.size
    for k, (step, r, g, f) in enumerate(zip(steps.tolist(), lr.tolist(), norm.tolist(), loss.tolist())):
        e = trap.update(step, r, f, g, peak, left[k])
        if e:
            events.append(e)
        events += spikes.update(step, f, g)
        e = restarts.update(step, f)
        if e:
            events.append(e)
        codes[k] = STATUSES.index(trap.status)
    return events, codes


def _trap(steps, lr, norm, loss, peak, remaining, s: DetectorSettings):
    """Trap status codes of every row, and the trap events (row, event), a piece of rows at a time (the window
    sums come in pieces: :func:`~lrtempo.monitor._rolling.rolling_sum_pieces`), so the working memory is
    the piece's, not the log's."""
    w, n = s.trap_window, steps.size
    codes = np.zeros(n, dtype=np.int8)
    events: list[tuple[int, Event]] = []
    if n < w:
        return codes, events
    with np.errstate(all="ignore"):  # a diverged run's values overflow the sums: NaN or inf, as live
        for (lo, hi, sy, sxy), (_, _, ny, nxy) in zip(rolling_sum_pieces(loss, w), rolling_sum_pieces(norm, w)):
            first = max(lo, w - 1)  # rows before hold less than a window: insufficient history (code 0)
            if first < hi:
                at = slice(first - lo, hi - lo)
                stats = _TrapStats(slope_from_sums(sy[at], sxy[at], w), lr[first:hi], peak,
                                   slope_from_sums(ny[at], nxy[at], w), ny[at] / w)
                events += _trap_rules(steps, remaining, s, codes, first, hi, stats)
    return codes, events


@dataclass(frozen=True)
class _TrapStats:
    """The trap detector's statistics over a piece of rows (arrays), as the live detector takes them."""

    slope: np.ndarray
    lr: np.ndarray
    peak: float
    trend: np.ndarray
    mean_norm: np.ndarray

    @property
    def per_step(self) -> np.ndarray:
        return np.where(-self.slope > 0, -self.slope, 0.0)  # max(0.0, -slope), as the live detector takes it

    @property
    def ratio(self) -> np.ndarray:
        return self.lr / self.peak if self.peak > 0 else np.full(self.lr.size, np.nan)


def _trap_rules(steps, remaining, s: DetectorSettings, codes: np.ndarray, first: int, hi: int,
                stats: _TrapStats) -> list[tuple[int, Event]]:
    """The trap rule on rows ``first .. hi-1`` (their codes set in ``codes``) and the events where the status
    changes (out of insufficient history into normal is no event)."""
    per_step, ratio = stats.per_step, stats.ratio
    trapped = (ratio < s.lr_ratio) & (per_step < s.trap_threshold) & (stats.trend < 0)
    piece = np.where(trapped, 2, 1).astype(np.int8)
    codes[first:hi] = piece
    previous = np.concatenate([codes[first - 1:first], piece[:-1]])
    change = np.flatnonzero((piece != previous) & ~((previous == 0) & (piece == 1)))
    events = []
    for j in change.tolist():
        k = first + j
        left = int(remaining[k]) if remaining is not None else None
        expected = float(per_step[j]) * left if left is not None else None
        details = trap_details(float(per_step[j]), float(ratio[j]), float(stats.trend[j]),
                               float(stats.mean_norm[j]), expected)
        events.append((k, trap_event(int(steps[k]), STATUSES[piece[j]], details, left)))
    return events


class _SpikeCandidates:
    """Rows where a value may exceed ``factor`` times the median of the last ``w`` finite values before it.

    A value can exceed ``factor`` times a window's median only if it exceeds ``factor`` times the window's
    minimum, and the window (at most ``w`` values) lies within two consecutive blocks of ``w``, so the smaller
    of those two blocks' minima is at most the window's minimum: the rows passing that test include every row
    where the rule can fire (the exact medians are then taken at those rows only).
    """

    def __init__(self, values: np.ndarray, factor: float, w: int):
        self.values, self.factor, self.w = values, factor, w
        finite = np.isfinite(values)
        self.kept = values if finite.all() else values[finite]  # the live window holds finite values only
        self.low = block_minima(self.kept, w)
        self.seen = 0  # finite values before the piece
        self.rows: list[np.ndarray] = [np.zeros(0, dtype=np.int64)]
        self.ends: list[np.ndarray] = [np.zeros(0, dtype=np.int64)]

    def finite_before(self, lo: int, hi: int) -> np.ndarray:
        """The finite values before each of rows ``lo .. hi-1`` (the next piece starts at ``hi``)."""
        finite = np.isfinite(self.values[lo:hi])
        before = self.seen + np.cumsum(finite) - finite
        self.seen += int(np.count_nonzero(finite))
        return before

    def add(self, lo: int, before: np.ndarray, gate: np.ndarray) -> None:
        """The candidates among the rows from ``lo`` on (``before``: :meth:`finite_before`) where ``gate`` holds."""
        if self.kept.size == 0:
            return  # no finite value: no window, no spike
        hi = lo + before.size
        has = before > 0
        end = np.maximum(before, 1) - 1
        floor = np.minimum(self.low[np.maximum(end - self.w + 1, 0) // self.w], self.low[end // self.w])
        with np.errstate(invalid="ignore", over="ignore"):
            hit = np.flatnonzero(gate & has & (self.values[lo:hi] > self.factor * floor))
        self.rows.append(lo + hit)
        self.ends.append(before[hit])

    def medians(self) -> tuple[np.ndarray, np.ndarray]:
        """The candidate rows and their windows' medians (the live :class:`~lrtempo.monitor.RollingMedian`'s
        floats)."""
        rows, ends = np.concatenate(self.rows), np.concatenate(self.ends)
        return rows, window_medians(self.kept, ends, self.w)


def _spikes(steps, norm, loss, s: DetectorSettings):
    w = s.spike_window
    norms, losses = _SpikeCandidates(norm, s.spike_factor, w), _SpikeCandidates(loss, s.loss_factor, w)
    for lo in range(0, steps.size, _rolling._ROWS):
        hi = min(steps.size, lo + _rolling._ROWS)
        before = norms.finite_before(lo, hi)
        gate = np.minimum(before, w) >= s.min_history  # the live window holding this many norms
        norms.add(lo, before, gate)
        losses.add(lo, losses.finite_before(lo, hi), gate)
    (rows_g, med_g), (rows_f, med_f) = norms.medians(), losses.medians()
    nan = float("nan")
    at: dict[int, list[float]] = {}
    for k, m in zip(rows_g.tolist(), med_g.tolist()):
        at.setdefault(k, [nan, nan])[0] = m
    for k, m in zip(rows_f.tolist(), med_f.tolist()):
        at.setdefault(k, [nan, nan])[1] = m
    events = []
    for k in sorted(at):  # a row that cannot fire on one signal gets NaN there: the rule says no
        mg, mf = at[k]
        for e in spike_events(int(steps[k]), float(norm[k]), mg, s.spike_factor, float(loss[k]), mf, s.loss_factor):
            events.append((k, e))
    return events


def _restarts(steps, loss, restart_steps: list[int], s: DetectorSettings):
    w = max(2, s.restart_window)
    rows = np.flatnonzero(np.isin(steps, np.asarray(sorted({int(x) for x in restart_steps if x > 0}),
                                                      dtype=np.int64)))
    rows = rows[rows > 0]  # the live tracker needs a loss before the restart
    if rows.size == 0:
        return []
    before = rows - 1
    sums = np.empty(rows.size)
    with np.errstate(all="ignore"):
        for lo, hi, sy, _ in rolling_sum_pieces(loss[:int(rows[-1])], w):
            inside = (before >= lo) & (before < hi)
            sums[inside] = sy[before[inside] - lo]
        levels = sums / np.minimum(rows, w)
    events, previous = [], None
    for k, level in zip(rows.tolist(), levels.tolist()):
        if previous is not None:
            events.append((k, restart_event(int(steps[k]), *previous, level)))
        previous = (int(steps[k]), level)
    return events


def detect_log(steps: np.ndarray, lr: np.ndarray, norm: np.ndarray, loss: np.ndarray, peak: float,
               remaining: np.ndarray | None, restart_steps: list[int], s: DetectorSettings
               ) -> tuple[list[Event], np.ndarray]:
    """What :func:`detect_live` returns, from whole arrays: the events (in the live order: by row, then trap,
    spikes, restart) and the trap status code of every row."""
    lr, norm, loss = (np.asarray(a, dtype=np.float64) for a in (lr, norm, loss))
    codes, trap_events = _trap(steps, lr, norm, loss, peak, remaining, s)
    ranked = [(k, 0, e) for k, e in trap_events] + [(k, 1, e) for k, e in _spikes(steps, norm, loss, s)]
    ranked += [(k, 2, e) for k, e in _restarts(steps, loss, restart_steps, s)]
    ranked.sort(key=lambda t: (t[0], t[1]))  # stable: a row's spike events keep their order
    return [e for _, _, e in ranked], codes
