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
medians are taken only at those rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

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
from ._rolling import rolling_min, rolling_sums, slope_from_sums, window_medians

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
    """Trap status codes of every row, and the trap events (row, event)."""
    w, n = s.trap_window, steps.size
    codes = np.zeros(n, dtype=np.int8)
    if n < w:
        return codes, []
    with np.errstate(all="ignore"):  # a diverged run's values overflow the sums: NaN or inf, as live
        return _trap_rules(steps, lr, norm, loss, peak, remaining, s, codes)


def _trap_rules(steps, lr, norm, loss, peak, remaining, s: DetectorSettings, codes: np.ndarray):
    w, n = s.trap_window, steps.size
    sy, sxy = rolling_sums(loss, w)
    slope = slope_from_sums(sy[w - 1:], sxy[w - 1:], w)
    del sy, sxy
    per_step = np.where(-slope > 0, -slope, 0.0)  # max(0.0, -slope), as the live detector takes it
    del slope
    ratio = lr[w - 1:] / peak if peak > 0 else np.full(n - w + 1, np.nan)
    ny, nxy = rolling_sums(norm, w)
    trend = slope_from_sums(ny[w - 1:], nxy[w - 1:], w)
    del nxy
    trapped = (ratio < s.lr_ratio) & (per_step < s.trap_threshold) & (trend < 0)
    codes[w - 1:] = np.where(trapped, 2, 1)
    previous = np.concatenate([[0], codes[:-1]])
    change = np.flatnonzero((codes != previous) & ~((previous == 0) & (codes == 1)))
    events = []
    for k in change.tolist():
        j = k - w + 1
        left = int(remaining[k]) if remaining is not None else None
        expected = float(per_step[j]) * left if left is not None else None
        details = trap_details(float(per_step[j]), float(ratio[j]), float(trend[j]), float(ny[k]) / w, expected)
        events.append((k, trap_event(int(steps[k]), STATUSES[codes[k]], details, left)))
    return codes, events


def _medians_where(values: np.ndarray, factor: float, w: int, gate: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows where ``values`` may exceed ``factor`` times the median of its last ``w`` finite values before the
    row, and those medians (the live :class:`~lrtempo.monitor.RollingMedian`'s floats)."""
    finite = np.isfinite(values)
    before = np.cumsum(finite) - finite  # finite values before each row
    kept = values[finite]
    low = rolling_min(kept, w)
    floor = np.full(values.size, np.nan)
    has = before > 0
    floor[has] = low[before[has] - 1]
    with np.errstate(invalid="ignore", over="ignore"):
        rows = np.flatnonzero(gate & (values > factor * floor))
    return rows, window_medians(kept, before[rows], w)


def _spikes(steps, norm, loss, s: DetectorSettings):
    finite_norms = np.cumsum(np.isfinite(norm)) - np.isfinite(norm)
    gate = np.minimum(finite_norms, s.spike_window) >= s.min_history  # the live window holding this many norms
    rows_g, med_g = _medians_where(norm, s.spike_factor, s.spike_window, gate)
    rows_f, med_f = _medians_where(loss, s.loss_factor, s.spike_window, gate)
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
    with np.errstate(all="ignore"):
        sy, _ = rolling_sums(loss[:int(rows[-1])], w)
        levels = sy[rows - 1] / np.minimum(rows, w)
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
