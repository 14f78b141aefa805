"""The phase of every step, from the schedule (or, for a foreign log, from its rate column).

Phases: ``warmup``, ``plateau`` (a hold at the peak: WSD's stable phase,
warmup_plateau_cosine's plateau, a constant), ``early_decay`` (rate above 50% of peak),
``mid_decay`` (10-50%), ``late_decay`` (at or below 10% of peak: the tail) and
``past_end`` (steps past the schedule's end). They are found from the kinds of
the schedule's own phases (``Phase.kind``: warmup, hold, decay, cycle, ramp), never
from their names, and from its values.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from ..schedules import Phase, Schedule

__all__ = ["PHASES", "PhaseMap", "phase_labels", "phase_labels_from_rates", "restart_points"]

PHASES = ("warmup", "plateau", "early_decay", "mid_decay", "late_decay", "past_end")
_LAST_EXACT = 2.0**63 - 1024  # the largest float64 below 2**63: probes of a horizon near 2**63 stay int64


def _classify(steps: np.ndarray, rates: np.ndarray, peak: float, warmup_end: int, holds: list[tuple[int, int]],
              end: int | None) -> np.ndarray:
    labels = np.full(steps.shape, 4, dtype=np.int8)  # late_decay unless shown otherwise
    if peak > 0:
        ratio = rates / peak
        labels[ratio > 0.1] = 3
        labels[ratio > 0.5] = 2
    else:
        labels[:] = 2
    for a, b in holds:
        labels[(steps >= a) & (steps < b)] = 1
    labels[steps < warmup_end] = 0
    if end is not None:
        labels[steps > end] = 5
    return labels


class PhaseMap:
    """What labelling needs from a schedule, found once: warmup end, holds at peak, the peak, the end."""

    def __init__(self, schedule: Schedule, horizon: int):
        self.schedule = schedule
        phases = schedule.phases(horizon)
        self.warmup_end = next((p.stop or 0 for p in phases if p.kind == "warmup"), 0)
        if not self.warmup_end and phases and phases[0].start == 0 and phases[0].stop and phases[0].stop > 1:
            first = phases[0]  # a leading ramp up of another kind (a join's first piece, say) is a warmup too
            if schedule(0) < schedule(first.stop - 1) and first.kind not in ("hold", "cycle"):
                self.warmup_end = first.stop
        self.holds = [(p.start, p.stop if p.stop is not None else horizon) for p in phases if p.kind == "hold"]
        probe = np.unique(np.concatenate([np.asarray(schedule.boundaries(horizon), dtype=np.int64),
                                          np.minimum(np.linspace(0, horizon, 4097), _LAST_EXACT).astype(np.int64)]))
        self.peak = float(schedule.at(probe).max())
        self.end = schedule.end_step

    def coarse_counts(self, stop: int) -> dict[str, int]:
        """Steps of ``0 .. stop - 1`` in ``warmup``, ``plateau`` (a hold), ``decay`` (the three decay
        classes together) and ``past_end``: :meth:`labels` counted over ``np.arange(stop)``, found from
        the phase intervals alone, so any ``stop`` costs the same.

        >>> from lrtempo.schedules import WSD
        >>> PhaseMap(WSD(peak_lr=1.0, total_steps=100, warmup_steps=10, decay_steps=40), 100).coarse_counts(105)
        {'warmup': 10, 'plateau': 50, 'decay': 41, 'past_end': 4}
        """
        stop = max(0, stop)
        live = stop if self.end is None else max(0, min(stop, self.end + 1))  # past the end wins over all
        warmup = min(self.warmup_end, live)  # the warmup wins over a hold
        hold, covered = 0, warmup
        for a, b in sorted(self.holds):
            a, b = max(a, covered), min(b, live)
            if b > a:
                hold += b - a
                covered = b
        return {"warmup": warmup, "plateau": hold, "decay": live - warmup - hold, "past_end": stop - live}

    def labels(self, steps: np.ndarray, rates: np.ndarray | None = None) -> np.ndarray:
        steps = np.asarray(steps, dtype=np.int64)
        rates = self.schedule.at(steps) if rates is None else rates
        return _classify(steps, rates, self.peak, self.warmup_end, self.holds, self.end)


def restart_points(phases: Iterable[Phase]) -> list[int]:
    """The steps where a cycle phase starts (after step 0): where a repeating schedule restarts.

    >>> from lrtempo.schedules import Restarts
    >>> restart_points(Restarts(peak_lr=1.0, period=10).phases(35))
    [10, 20, 30]
    """
    return [p.start for p in phases if p.kind == "cycle" and p.start > 0]


def phase_labels(schedule: Schedule, steps: np.ndarray) -> np.ndarray:
    """Phase index (into :data:`PHASES`) of each step under ``schedule``.

    >>> from lrtempo.schedules import WSD
    >>> s = WSD(peak_lr=1.0, total_steps=100, warmup_steps=10, decay_steps=40)
    >>> [PHASES[i] for i in phase_labels(s, np.array([0, 10, 59, 70, 90, 99, 101]))]
    ['warmup', 'plateau', 'plateau', 'early_decay', 'mid_decay', 'late_decay', 'past_end']
    """
    steps = np.asarray(steps, dtype=np.int64)
    horizon = max(int(steps.max()) + 1 if steps.size else 1, schedule.horizon)
    return PhaseMap(schedule, horizon).labels(steps)


def phase_labels_from_rates(steps: np.ndarray, rates: np.ndarray) -> np.ndarray:
    """Phases of a log without its schedule: warmup while the rate rises to its peak, a plateau while it
    holds the peak, then the decay classes by the ratio to the peak."""
    steps, rates = np.asarray(steps), np.asarray(rates, dtype=np.float64)
    if rates.size == 0:
        return np.zeros(0, dtype=np.int8)
    peak = float(np.nanmax(rates))
    at_peak = np.flatnonzero(rates >= peak * (1 - 1e-12))
    first, last = int(at_peak[0]), int(at_peak[-1])
    warmup_end = int(steps[first]) if first > 0 and rates[0] < peak else int(steps[0])
    holds = [(int(steps[first]), int(steps[last]) + 1)] if last > first else []
    return _classify(steps, rates, peak, warmup_end, holds, None)
