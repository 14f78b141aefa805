"""Momentum and weight-decay schedules: the values they may take, checked over the steps of a run.

A run config (and :class:`lrtempo.torch.LRTempoScheduler`) may schedule two
hyperparameters besides the rate, each with any schedule spec whose value is
the hyperparameter itself:

- ``momentum``: SGD's ``momentum`` (in ``[0, 1]``) or Adam's and AdamW's
  ``betas[0]`` (in ``[0, 1)``);
- ``weight_decay``: the weight decay of every decayed param group (finite,
  ``>= 0``).

SGD with a momentum of 0 neither reads nor updates its momentum buffer, and
makes one from the gradient at its first update with a momentum above 0 (as a
new optimizer does). So a momentum schedule for SGD may start at 0, but once
above 0 it must not come back to 0 and rise again: the buffer would sit
frozen while the momentum is 0 and the rise would resume from the stale one.

This module holds those rules once, without torch: the training config checks
a run's every step with them, the adapter each block of values it computes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._chunks import rate_chunks
from .._rundir_schema import HYPER_COLUMNS

__all__ = ["HYPER_NAMES", "Bounds", "MOMENTUM_SGD", "MOMENTUM_BETA1", "WEIGHT_DECAY", "bounds_problem",
           "hyper_problem", "kind_problem"]

#: the hyperparameters a schedule may drive besides the rate: run config keys, adapter keywords and log columns
HYPER_NAMES = HYPER_COLUMNS


@dataclass(frozen=True, slots=True)
class Bounds:
    """The values a scheduled hyperparameter may take: finite, ``>= low``, ``<= high`` (``< high`` if open).

    >>> MOMENTUM_BETA1.rule
    'in [0, 1)'
    """

    what: str
    low: float
    high: float = float("inf")
    high_open: bool = False

    @property
    def rule(self) -> str:
        if self.high == float("inf"):
            return f"finite and >= {self.low:g}"
        return f"in [{self.low:g}, {self.high:g}{')' if self.high_open else ']'}"

    def bad(self, values: np.ndarray) -> np.ndarray:
        """A mask of the values outside the bounds (NaN and infinities included)."""
        with np.errstate(invalid="ignore"):
            above = values >= self.high if self.high_open else values > self.high
            return ~np.isfinite(values) | (values < self.low) | above


MOMENTUM_SGD = Bounds("SGD's momentum", 0.0, 1.0)
MOMENTUM_BETA1 = Bounds("Adam's beta1 (betas[0])", 0.0, 1.0, high_open=True)
WEIGHT_DECAY = Bounds("weight decay", 0.0)


def bounds_problem(name: str, bounds: Bounds, steps: np.ndarray, values: np.ndarray) -> str | None:
    """Why ``values`` (the ``name`` schedule at ``steps``) cannot be applied, naming the first bad step; or None.

    >>> bounds_problem("momentum", MOMENTUM_BETA1, np.array([0, 1]), np.array([0.9, 1.0]))
    "the momentum schedule gives 1.0 at step 1, but Adam's beta1 (betas[0]) must be in [0, 1)"
    """
    bad = np.flatnonzero(bounds.bad(values))
    if not bad.size:
        return None
    i = int(bad[0])
    return (f"the {name} schedule gives {float(values[i])!r} at step {int(steps[i])}, but {bounds.what} must be "
            f"{bounds.rule}")


def kind_problem(name: str, schedule) -> str | None:
    """Why ``schedule`` cannot be a ``name`` schedule at all, or None: these count updates (``unit: steps``) and
    are functions of the step alone, so a ``plateau`` schedule (which follows the run's losses) is not one.

    >>> from lrtempo.schedules import Constant
    >>> kind_problem("momentum", Constant(0.9)) is None
    True
    """
    unit = getattr(schedule, "unit", "steps")
    if unit != "steps":
        return f"a {name} schedule supports unit: steps only (got unit: {unit}); give its durations in updates"
    if getattr(schedule, "type_name", "") == "plateau":
        return (f"a {name} schedule is a function of the step alone, and a plateau schedule follows the run's "
                "losses: give the schedule it would reduce")
    return None


def hyper_problem(name: str, schedule, steps: int, optimizer: str) -> str | None:
    """Why the ``name`` schedule cannot drive ``optimizer`` (``adamw`` or ``sgd``) over updates ``0..steps-1``.

    Every step is evaluated, chunk by chunk: the bounds of :data:`MOMENTUM_SGD`, :data:`MOMENTUM_BETA1` or
    :data:`WEIGHT_DECAY`, and for SGD's momentum a return to 0 followed by a rise (see the module).
    """
    problem = kind_problem(name, schedule)
    if problem is not None:
        return problem
    if name == "weight_decay":
        bounds = WEIGHT_DECAY
    else:
        bounds = MOMENTUM_SGD if optimizer == "sgd" else MOMENTUM_BETA1
    zero_at: int | None = None  # the first step at 0 after a step above 0
    seen_positive = False
    for part, values in rate_chunks(schedule, range(steps)):
        problem = bounds_problem(name, bounds, part, values)
        if problem is not None:
            return problem
        if name != "momentum" or optimizer != "sgd":
            continue
        positive = values > 0
        if zero_at is None:
            start = 0 if seen_positive else int(np.argmax(positive)) if positive.any() else len(part)
            seen_positive = seen_positive or start < len(part)
            zeros = np.flatnonzero(~positive[start:])
            if not zeros.size:
                continue
            zero_at = int(part[start + zeros[0]])
            positive[:start + zeros[0]] = False
        if positive.any():
            return _stale_buffer(zero_at, int(part[np.argmax(positive)]))
    return None


def _stale_buffer(zero_at: int, rise: int) -> str:
    return (f"the momentum schedule comes back to 0 at step {zero_at} and rises again at step {rise}: SGD keeps "
            "its momentum buffer frozen while the momentum is 0, so the rise would resume from a stale one; keep "
            "the momentum above 0 once it is (or use a small value such as 1e-3 instead of 0)")
