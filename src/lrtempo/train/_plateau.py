"""``lrtempo train``'s side of a ``type: plateau`` schedule: after each evaluation, the watched loss goes to
the scheduler (:meth:`lrtempo.torch.LRTempoScheduler.observe`); a reduction is recorded in the run directory
(``reductions.jsonl``) and as a ``plateau`` event, and said on the console.

The watched loss is the validation loss (``monitor: val_loss``, evaluated on
rank 0 and sent to every rank) or the mean training loss of the updates since
the previous evaluation (``monitor: loss``). The decisions live in the
scheduler's state, so in the checkpoint; what this part keeps itself (the sum
of that window) is saved next to it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from ..config import ConfigError, Problem
from ..rundir import RunDir, append_event
from ..schedules import Plateau, find_plateau
from ..torch._plateau import plateau_control
from ._runconfig import RunConfig
from .tasks._base import Task

__all__ = ["PlateauWatch", "plateau_watch", "evaluates"]


def evaluates(config: RunConfig, done: int) -> bool:
    """Whether the validation loss is evaluated after ``done`` updates: every ``eval_every`` and at the end."""
    return bool(config.eval_every) and (done % config.eval_every == 0 or done == config.steps)


def plateau_watch(config: RunConfig, task: Task, run: RunDir | None,
                  console: Callable[[str], None] | None) -> PlateauWatch | None:
    """The watch of a run whose schedule reduces on plateau (None otherwise); a ConfigError, before anything is
    built or written, for a plateau rule the run cannot follow."""
    try:
        found = plateau_control(config.schedule) and find_plateau(config.schedule)
    except ValueError as exc:
        raise ConfigError([Problem("schedule", str(exc))]) from None
    if not found:
        return None
    if not config.eval_every:
        raise ConfigError([Problem("eval_every", f"type: plateau watches {found.monitor} after each evaluation, "
                                                 "and eval_every is 0 (never): give the updates between them")])
    if found.monitor == "val_loss" and type(task).evaluate is Task.evaluate:
        raise ConfigError([Problem("schedule.monitor", f"'val_loss' needs a task with a validation set and "
                                   f"{config.task} has none: watch the training loss with monitor: loss")])
    return PlateauWatch(config, found, run, console)


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


class PlateauWatch:
    """Feeds the scheduler the watched loss after each evaluation and records what it decides (rank 0)."""

    def __init__(self, config: RunConfig, rule: Plateau, run: RunDir | None,
                 console: Callable[[str], None] | None) -> None:
        self.config, self.rule, self.run, self.console = config, rule, run, console
        self.loss_sum, self.updates = 0.0, 0  # the training losses since the last evaluation

    def after_update(self, scheduler: Any, step: int, loss: float, val: float | None, dist: Any) -> None:
        """After update ``step`` (its training ``loss``; ``val``: the validation loss rank 0 evaluated, if it did)."""
        self.loss_sum += loss
        self.updates += 1
        if not evaluates(self.config, step + 1):
            return
        if self.rule.monitor == "val_loss":
            value = dist.broadcast(val)
            if value is None:
                raise RuntimeError(f"the task gave no validation loss after update {step}, and the schedule "
                                   "reduces on plateau of val_loss")
        else:
            value = self.loss_sum / self.updates
        self.loss_sum, self.updates = 0.0, 0
        before = scheduler.rate(scheduler.last_epoch)
        reduction = scheduler.observe(value)
        if reduction is not None and self.run is not None:
            self._record(scheduler, step, reduction, value, before)

    def _record(self, scheduler: Any, step: int, reduction: Any, value: float, before: float) -> None:
        after = scheduler.rate(reduction.step)
        best = scheduler._plateau.decider.best
        self.run.record_reduction(reduction.to_json())
        message = (f"plateau: {self.rule.monitor} {value:.6g} has not improved on {best:.6g} for more than "
                   f"{self.rule.patience} evaluations: lr times {reduction.factor:g} from step {reduction.step} "
                   f"({before:.4g} -> {after:.4g})")
        append_event(self.run.events, {"step": step, "kind": "plateau", "message": message, "values": {
            "from_step": reduction.step, "factor": reduction.factor, "monitor": self.rule.monitor,
            "value": _finite(value), "best": _finite(best), "lr_before": before, "lr_after": after}})
        if self.console is not None:
            self.console(message)

    def state_dict(self) -> dict[str, Any]:
        return {"loss_sum": self.loss_sum, "updates": self.updates}

    def load_state_dict(self, state: dict[str, Any] | None) -> None:
        if state is not None:
            self.loss_sum, self.updates = float(state["loss_sum"]), int(state["updates"])
