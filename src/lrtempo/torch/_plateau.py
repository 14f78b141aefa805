"""The adapter's reduce-on-plateau part: :meth:`LRTempoScheduler.observe` feeds the decider, records a
reduction and re-applies the rate; the decisions and the decider's state travel in the scheduler's state.

The schedule stays a pure function of the step and the recorded reductions
(:class:`lrtempo.schedules.Plateau`): a reduction decided after ``n`` updates
takes effect from update ``n`` on, the rate the optimizer holds at once.
"""

from __future__ import annotations

from typing import Any

from ..schedules import Plateau, PlateauDecider, Reduction, Schedule, find_plateau

__all__ = ["PlateauControl", "plateau_control"]


def plateau_control(schedule: Schedule) -> PlateauControl | None:
    """The plateau part of a scheduler running ``schedule``, or None when it has no plateau rule.

    ValueError for a plateau inside another schedule, or under a ``unit`` other than steps.
    """
    plateau = find_plateau(schedule)
    if plateau is None:
        return None
    unit = getattr(schedule, "unit", "steps")
    if unit != "steps":
        raise ValueError(f"type: plateau supports unit: steps only (got unit: {unit}): its reductions are "
                         "recorded at update counts")
    return PlateauControl(plateau)


def _as_float(loss: Any) -> float:
    """A watched loss as a float: a number or a one-element tensor (TypeError for anything else)."""
    if isinstance(loss, (str, bytes, bool)):
        raise TypeError(f"observe(loss): loss must be a number or a one-element tensor (got {loss!r})")
    try:
        return float(loss)
    except (TypeError, ValueError, RuntimeError):
        raise TypeError(f"observe(loss): loss must be a number or a one-element tensor (got "
                        f"{type(loss).__name__})") from None


class PlateauControl:
    """The decider of a plateau rule and where its reductions go: the scheduler's schedule."""

    __slots__ = ("decider",)

    def __init__(self, plateau: Plateau) -> None:
        self.decider = PlateauDecider(plateau)

    def observe(self, scheduler: Any, loss: Any) -> Reduction | None:
        """Count one evaluation; on a reduction, record it at the scheduler's step and re-apply the rate."""
        if not self.decider.observe(_as_float(loss)):
            return None
        step = int(scheduler.last_epoch)
        reduced = scheduler.schedule.reduced_at(step)
        if reduced is None:  # the rate would change by eps or less: torch makes no such reduction
            return None
        use_schedule(scheduler, reduced)
        return reduced.reductions[-1]

    def state_dict(self, schedule: Plateau) -> dict[str, Any]:
        return {"reductions": [[r.step, r.factor] for r in schedule.reductions],
                "decider": self.decider.state_dict()}

    def load_state_dict(self, scheduler: Any, state: Any, step: int) -> None:
        """Restore the decider and the reductions (none may lie past ``step``, the state's own); a ``state`` of
        None (a scheduler state of another schedule) restores none and a fresh decider."""
        if state is None:
            self.decider = PlateauDecider(self.decider.rule)
            use_schedule(scheduler, scheduler.schedule.with_reductions(()))
            return
        if not isinstance(state, dict) or not isinstance(state.get("reductions"), (list, tuple)):
            raise ValueError(f"state_dict['plateau'] must hold a list of reductions (got {state!r})")
        schedule = scheduler.schedule.with_reductions(state["reductions"])
        late = [r.step for r in schedule.reductions if r.step > step]
        if late:
            raise ValueError(f"state_dict['plateau'] holds a reduction at step {late[0]}, past its step {step}")
        self.decider.load_state_dict(state.get("decider"))
        use_schedule(scheduler, schedule)


def use_schedule(scheduler: Any, schedule: Schedule) -> None:
    """Make ``schedule`` the scheduler's (its buffer of precomputed rates dropped) and apply the current rate."""
    scheduler.schedule = schedule
    scheduler._buf_start, scheduler._buf = 0, []
    scheduler.apply(scheduler.last_epoch)
