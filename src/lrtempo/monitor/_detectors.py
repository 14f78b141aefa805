"""Training-health detectors: plain host-side logic over per-update values.

The live :class:`~lrtempo.monitor.Monitor` and ``lrtempo analyze`` (offline,
over a log) feed the same detectors, so a signal means the same thing in both.
Every detector's state is a small dict of plain values (``state_dict``), so a
resumed run continues exactly where it stopped.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from ._rolling import RollingMedian, RollingSlope, slope_constants, slope_from_sums

__all__ = ["Event", "TrapDetector", "SpikeDetector", "RestartTracker", "StalenessTracker",
           "INSUFFICIENT", "NORMAL", "TRAP", "STALE", "ALIGNED", "restart_event", "spike_events", "trap_details",
           "trap_event"]

INSUFFICIENT, NORMAL, TRAP = "insufficient_history", "normal", "ASYMPTOTIC_TRAP"
STALE, ALIGNED = "HIGH_MOMENTUM_STALENESS", "momentum_aligned"


@dataclass(frozen=True)
class Event:
    """One thing worth a line: its step, kind, the values behind it and a message."""

    step: int
    kind: str
    message: str
    values: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"step": self.step, "kind": self.kind, "values": self.values, "message": self.message}


def _finite(x: float) -> float | None:
    return x if isinstance(x, float) and math.isfinite(x) else None


def trap_details(per_step: float, ratio: float, trend: float, mean_norm: float,
                 expected: float | None) -> dict[str, Any]:
    """The values behind a trap status (both modes report these, by these names)."""
    return {"loss_improvement_per_step": per_step, "lr_ratio": ratio, "grad_norm_trend": trend,
            "mean_grad_norm": mean_norm, "expected_remaining_improvement": expected}


def trap_event(step: int, status: str, details: dict[str, Any], remaining_steps: int | None) -> Event:
    """The event of the trap status changing to ``status`` (``TRAP``, or out of it)."""
    per_step, ratio, expected = (details["loss_improvement_per_step"], details["lr_ratio"],
                                 details["expected_remaining_improvement"])
    if status == TRAP:
        left = (f"the {remaining_steps} steps the schedule has left are expected to improve the loss by "
                f"{expected:.3g}" if expected is not None else "the loss has stopped improving")
        return Event(step, TRAP, f"asymptotic trap: rate at {ratio:.1%} of peak, loss improving "
                     f"{per_step:.2e}/step, gradient norm falling; {left}. Consider a warm restart or "
                     "stopping early.", dict(details))
    return Event(step, "TRAP_CLEARED", f"out of the trap: loss improving {per_step:.2e}/step at {ratio:.1%} of "
                 "peak", dict(details))


def spike_events(step: int, grad_norm: float, median: float, factor: float, loss: float, loss_median: float,
                 loss_factor: float) -> list[Event]:
    """The spike rule: the norm above ``factor`` times its rolling median, the loss above ``loss_factor``
    times its own (each median > 0)."""
    events = []
    if grad_norm > factor * median > 0:
        events.append(Event(step, "GRAD_NORM_SPIKE", f"gradient norm {grad_norm:.3g} is "
                            f"{grad_norm / median:.1f}x its rolling median {median:.3g}: divergence risk",
                            {"grad_l2_norm": grad_norm, "rolling_median": median}))
    if loss > loss_factor * loss_median > 0:
        events.append(Event(step, "LOSS_DIVERGENCE", f"loss {loss:.4g} is {loss / loss_median:.1f}x its "
                            f"rolling median {loss_median:.4g}", {"loss": loss, "rolling_median": loss_median}))
    return events


def restart_event(step: int, prev_step: int, prev: float, level: float) -> Event:
    """Whether the cycle from the restart at ``prev_step`` (loss level ``prev``) to ``step`` lowered the loss."""
    gain = prev - level
    kind = "RESTART_PRODUCTIVE" if gain > 0 else "RESTART_UNPRODUCTIVE"
    verdict = "lowered" if gain > 0 else "did not lower"
    return Event(step, kind, f"the cycle from step {prev_step} to {step} {verdict} the loss: {prev:.4g} -> "
                 f"{level:.4g}", {"loss_before": prev, "loss_now": level, "improvement": gain,
                                  "previous_restart": prev_step})


class TrapDetector:
    """Is the run in the asymptotic trap: a low rate, a loss that no longer moves, shrinking gradients?

    Over a rolling window of ``window`` updates: the loss slope (improvement
    per step), the rate relative to the peak, the gradient-norm trend, and the
    improvement the steps the schedule has left would buy at the current pace.
    ``ASYMPTOTIC_TRAP`` when the rate is below ``lr_ratio`` of the peak, the
    improvement per step is below ``threshold`` and the gradient norm is
    falling. Cost per update: O(1), whatever the window.
    """

    def __init__(self, window: int = 200, threshold: float = 1e-4, lr_ratio: float = 0.1):
        self.window, self.threshold, self.lr_ratio = window, threshold, lr_ratio
        self.loss = RollingSlope(window)
        self.norm = RollingSlope(window)
        self._constants = slope_constants(window)
        self.status = INSUFFICIENT
        self._values: tuple[float, float, float, float, float | None] | None = None

    @property
    def details(self) -> dict[str, Any]:
        """The values behind the last status (:func:`trap_details`; formed when asked, not on every update)."""
        return trap_details(*self._values) if self._values else {}

    def update(self, step: int, lr: float, loss: float, grad_norm: float, peak_lr: float,
               remaining_steps: int | None) -> Event | None:
        self.loss.push(loss)
        self.norm.push(grad_norm)
        w = self.window
        if self.loss.count < w:
            return None
        loss_sums, norm_sums = self.loss, self.norm
        per_step = max(0.0, -slope_from_sums(loss_sums.sy, loss_sums.sxy, w, self._constants))
        ratio = lr / peak_lr if peak_lr > 0 else float("nan")
        trend = slope_from_sums(norm_sums.sy, norm_sums.sxy, w, self._constants)
        expected = per_step * remaining_steps if remaining_steps is not None else None
        trapped = ratio < self.lr_ratio and per_step < self.threshold and trend < 0
        self._values = (per_step, ratio, trend, norm_sums.sy / w, expected)
        status = TRAP if trapped else NORMAL
        previous, self.status = self.status, status
        if status == previous or (previous == INSUFFICIENT and status == NORMAL):
            return None
        return trap_event(step, status, self.details, remaining_steps)

    def state_dict(self) -> dict[str, Any]:
        return {"loss": list(self.loss.values), "norm": list(self.norm.values), "status": self.status,
                "pushes": self.loss.count}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pushes = state.get("pushes")  # absent in an older checkpoint: the window is pushed afresh
        self.loss = RollingSlope.restore(self.window, state["loss"], pushes)
        self.norm = RollingSlope.restore(self.window, state["norm"], pushes)
        self.status = state["status"]


class SpikeDetector:
    """A gradient-norm spike against its rolling median, usually a step or more before the loss moves.

    ``GRAD_NORM_SPIKE`` when the norm exceeds ``factor`` times the median of the
    last ``window`` norms (after ``min_history`` updates); ``LOSS_DIVERGENCE``
    when the loss rises above ``loss_factor`` times its rolling median.
    """

    def __init__(self, window: int = 100, factor: float = 5.0, loss_factor: float = 2.0, min_history: int = 20):
        self.window, self.factor, self.loss_factor, self.min_history = window, factor, loss_factor, min_history
        self.norms = RollingMedian(window)
        self.losses = RollingMedian(window)

    def update(self, step: int, loss: float, grad_norm: float) -> list[Event]:
        events = []
        if len(self.norms.values) >= self.min_history:
            events = spike_events(step, grad_norm, self.norms.median(), self.factor, loss, self.losses.median(),
                                  self.loss_factor)
        if math.isfinite(grad_norm):
            self.norms.push(grad_norm)
        if math.isfinite(loss):
            self.losses.push(loss)
        return events

    def state_dict(self) -> dict[str, Any]:
        return {"norms": list(self.norms.values), "losses": list(self.losses.values)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.norms, self.losses = RollingMedian(self.window), RollingMedian(self.window)
        for v in state["norms"]:
            self.norms.push(v)
        for v in state["losses"]:
            self.losses.push(v)


class RestartTracker:
    """Restart productivity: the loss at each restart against the one at the previous restart.

    The loss "at" a restart is the mean over the ``window`` updates before it
    (one update's loss is too noisy). A restart is productive when the cycle
    it closes lowered that loss.
    """

    def __init__(self, restart_steps: list[int], window: int = 20):
        self.restarts = sorted(set(int(s) for s in restart_steps if s > 0))
        self._restart_set = frozenset(self.restarts)
        self.window = window
        self.recent = RollingSlope(max(2, window))
        self.at_restart: list[tuple[int, float]] = []

    def update(self, step: int, loss: float) -> Event | None:
        event = None
        if step in self._restart_set and self.recent.values:
            level = self.recent.mean()
            if self.at_restart:
                event = restart_event(step, *self.at_restart[-1], level)
            self.at_restart.append((step, level))
        self.recent.push(loss)
        return event

    def state_dict(self) -> dict[str, Any]:
        return {"recent": list(self.recent.values), "at_restart": [list(x) for x in self.at_restart],
                "pushes": self.recent.count}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.recent = RollingSlope.restore(max(2, self.window), state["recent"], state.get("pushes"))
        self.at_restart = [(int(a), float(b)) for a, b in state["at_restart"]]


class StalenessTracker:
    """Momentum/gradient alignment over the ``window`` updates after the end of warmup.

    The alignment is the cosine similarity of Adam's first moment (before this
    update) and the current gradient. A mean below ``threshold`` is
    ``HIGH_MOMENTUM_STALENESS``: the decay starts with momentum built for a
    different regime; the fix is a hold at the peak before decay.
    """

    def __init__(self, boundary: int | None, window: int = 100, threshold: float = 0.5):
        self.boundary, self.window, self.threshold = boundary, window, threshold
        self.values: list[float] = []
        self.status: str | None = None

    def wants(self, step: int) -> bool:
        return self.boundary is not None and self.boundary <= step < self.boundary + self.window

    def update(self, step: int, alignment: float | None) -> Event | None:
        if not self.wants(step) or alignment is None or not math.isfinite(alignment):
            return None
        self.values.append(alignment)
        if step != self.boundary + self.window - 1:
            return None
        mean = sum(self.values) / len(self.values)
        self.status = STALE if mean < self.threshold else ALIGNED
        if self.status == STALE:
            message = (f"momentum/gradient cosine similarity {mean:.3f} over the {len(self.values)} updates after "
                       f"warmup (below {self.threshold}): stale momentum at the warmup-to-decay boundary. "
                       "Hold the rate at its peak before decaying (warmup_plateau_cosine, or wsd).")
        else:
            message = f"momentum/gradient cosine similarity {mean:.3f} after warmup: aligned"
        return Event(step, self.status, message, {"momentum_alignment": mean, "updates": len(self.values)})

    def state_dict(self) -> dict[str, Any]:
        return {"values": list(self.values), "status": self.status}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.values, self.status = list(state["values"]), state["status"]
