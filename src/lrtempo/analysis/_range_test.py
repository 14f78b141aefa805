"""The LR range test: sweep the rate up exponentially and watch the loss.

The rate of update ``i`` is ``start_lr * (end_lr / start_lr) ** (i / (updates - 1))``
(an exponential :class:`~lrtempo.schedules.Ramp`). The loss is smoothed with a
bias-corrected moving average, ``avg = beta * avg + (1 - beta) * loss``,
``smoothed = avg / (1 - beta ** (i + 1))``, and the test stops when the smoothed
loss exceeds ``stop_factor`` times its best (or is not finite). The model and
the optimizer are restored afterwards.

Suggestions:

* ``steepest``: the rate where the smoothed loss falls fastest against
  ``log(lr)``;
* ``valley``: on the smoothed curve up to its minimum, the longest stretch
  where the loss keeps falling; the rate two thirds of the way along it
  (a rate well inside the region that trains, short of the minimum where the
  loss is about to blow up).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..plot import range_test_png as plot_range_test
from ..schedules import Ramp

__all__ = ["RangeTestResult", "lr_range_test", "suggest", "range_test_png"]


@dataclass
class RangeTestResult:
    lrs: list[float]
    losses: list[float]
    smoothed: list[float]
    stopped_early: bool
    steepest: float | None = None
    valley: float | None = None
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"steepest": self.steepest, "valley": self.valley, "stopped_early": self.stopped_early,
                "updates": len(self.lrs), "lrs": self.lrs, "losses": self.losses, "smoothed": self.smoothed,
                "notes": self.notes}


def suggest(lrs: list[float], smoothed: list[float]) -> tuple[float | None, float | None, list[str]]:
    """(steepest, valley, notes) from a range test's rates and smoothed losses."""
    notes: list[str] = []
    n = len(lrs)
    if n < 8:
        return None, None, ["fewer than 8 updates before the loss blew up: no suggestion"]
    x, y = np.log(np.asarray(lrs)), np.asarray(smoothed)
    skip = max(1, n // 20)  # the first updates' smoothing has not settled
    end = int(np.argmin(y))
    if end <= skip + 2:
        notes.append("the loss never fell: the start rate may already be too high")
        return None, None, notes
    slope = np.gradient(y[: end + 1], x[: end + 1])
    i_steep = skip + int(np.argmin(slope[skip:]))
    best_len, best_start, run_start = 0, skip, skip
    for i in range(skip + 1, end + 1):
        if y[i] >= y[i - 1]:
            run_start = i
        elif i - run_start > best_len:
            best_len, best_start = i - run_start, run_start
    i_valley = best_start + (2 * best_len) // 3
    return float(lrs[i_steep]), float(lrs[i_valley]), notes


def lr_range_test(
    model: Any,
    optimizer: Any,
    loss_fn: Callable[[Any, Any], Any],
    batches: Iterator[Any],
    *,
    start_lr: float = 1e-7,
    end_lr: float = 10.0,
    updates: int = 100,
    smoothing: float = 0.98,
    stop_factor: float = 4.0,
    on_update: Callable[[int], None] | None = None,
) -> RangeTestResult:
    """Run the range test on any model and data (``batches`` yields one batch per update).

    ``on_update(done)``, if given, is called after every update with the number done so far (for progress).
    """
    if not 0 < start_lr < end_lr:
        raise ValueError(f"need 0 < start_lr < end_lr (got {start_lr!r}, {end_lr!r})")
    if updates < 2:
        raise ValueError(f"updates must be >= 2 (got {updates})")
    if not 0 <= smoothing < 1:
        raise ValueError(f"smoothing must be in [0, 1) (got {smoothing!r})")
    if not stop_factor > 1:
        raise ValueError(f"stop_factor must be > 1 (got {stop_factor!r})")
    ramp = Ramp(start_lr, end_lr, updates - 1, shape="exponential")
    rates = ramp.at(np.arange(updates))
    saved_model = copy.deepcopy(model.state_dict())
    saved_opt = copy.deepcopy(optimizer.state_dict())
    lrs, losses, smoothed = [], [], []
    avg, best, stopped = 0.0, math.inf, False
    try:
        model.train()
        for i in range(updates):
            lr = float(rates[i])
            for group in optimizer.param_groups:  # the adapter's rule: each group's multiplier (former name lr_scale)
                group["lr"] = lr * group.get("group_multiplier", group.get("lr_scale", 1.0))
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model, next(batches))
            loss.backward()
            optimizer.step()
            value = float(loss.detach())
            if not math.isfinite(value):
                stopped = True
                break
            avg = smoothing * avg + (1 - smoothing) * value
            smooth = avg / (1 - smoothing ** (i + 1))
            lrs.append(lr)
            losses.append(value)
            smoothed.append(smooth)
            best = min(best, smooth)
            if on_update is not None:
                on_update(i + 1)
            if smooth > stop_factor * best:
                stopped = True
                break
    finally:
        model.load_state_dict(saved_model)
        optimizer.load_state_dict(saved_opt)
        optimizer.zero_grad(set_to_none=True)
    steepest, valley, notes = suggest(lrs, smoothed)
    return RangeTestResult(lrs, losses, smoothed, stopped, steepest, valley, notes)


def range_test_png(result: RangeTestResult, path: str | Path, title: str = "LR range test") -> Path:
    """Loss against rate (log scale) with both suggestions marked (:func:`lrtempo.plot.range_test_png`)."""
    return plot_range_test(path, result.lrs, result.losses, result.smoothed,
                           {"steepest": result.steepest, "valley": result.valley}, title)
