"""Time units: a schedule whose position counts samples or tokens instead of optimizer updates.

A schedule is a pure function of a monotone counter, the *position*. By default
the position is the number of optimizer updates applied (``steps``); a schedule
in another unit counts the ``samples`` or the ``tokens`` consumed before the
update. Every duration of the schedule counts the same unit, and the rate of an
update is the schedule at the position before it. :class:`InUnit` names the unit
of a whole schedule; evaluating it is evaluating the schedule it wraps.

With a constant batch of ``B`` samples per update, update ``n`` is at position
``n * B``; a samples schedule whose durations are ``B`` times those of a steps
schedule gives the same rates bit for bit, because every native formula is a
function of integer ratios ``d / n`` (one correctly rounded division, the same
for ``d * B / (n * B)``). The exceptions are formulas of the absolute count
(``noam``'s ``k ** -0.5``, ``cyclic``'s ``exp_range`` amplitude ``gamma ** k``)
and durations rounded from a fraction or a non-integer ``period_mult``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ._base import Checks, Phase, Schedule

__all__ = ["UNITS", "POSITION_COLUMNS", "InUnit", "ByUpdate", "position_name"]

#: the units a schedule's position may count; ``steps`` (optimizer updates applied) is the default
UNITS = ("steps", "samples", "tokens")
#: the word for one position of each unit, as the CLI prints it (``at step 5``, ``at sample 640``)
_ONE = {"steps": "step", "samples": "sample", "tokens": "token"}
#: the CSV column of a position in each unit: the run log's column counting it (``step``, ``samples``, ``tokens``)
POSITION_COLUMNS = {"steps": "step", "samples": "samples", "tokens": "tokens"}


@dataclass(frozen=True, slots=True)
class InUnit(Schedule):
    """``schedule`` with its position counted in ``unit`` (``steps``, ``samples`` or ``tokens``).

    ``lr(p) = schedule(p)`` where ``p`` is the position: the updates applied
    (steps), or the samples or tokens consumed before the update. Its end,
    horizon and phases are the schedule's, in the unit. The unit is set on the
    outermost schedule only: a child schedule counts its parent's unit.

    >>> from lrtempo.schedules import Linear
    >>> s = InUnit(Linear(start_lr=0.0, end_lr=1.0, steps=512), unit="samples")
    >>> s.unit, s(128), s(512), s(10**6)
    ('samples', 0.25, 1.0, 1.0)
    """

    schedule: Schedule
    unit: str = "steps"
    field_choices: ClassVar[dict] = {"unit": UNITS}

    def __post_init__(self) -> None:
        c = Checks(self)
        c.schedule("schedule")
        c.choice("unit", UNITS)
        c.done()

    @property
    def end_step(self) -> int | None:
        return self.schedule.end_step

    def _make_f(self):
        return self.schedule._f

    def _values(self, steps: np.ndarray) -> np.ndarray:
        return self.schedule._at_steps(steps)

    def _endless_horizon(self) -> int:
        return self.schedule.horizon

    def _phases(self, horizon: int) -> list[Phase]:
        return list(self.schedule.phases(horizon))

    def _simplified(self) -> Schedule:
        """A schedule counted in steps is the schedule itself (steps is every schedule's unit)."""
        return self.schedule if self.unit == "steps" else self


class ByUpdate(Schedule):
    """A schedule counted in samples or tokens, seen as a function of the update count ``n``:
    ``lr(n) = schedule(positions(n))``, for readers that go by update (the monitor, ``analyze``).

    ``positions`` maps an int64 array of updates to their positions (the units consumed before each, a
    non-decreasing function), ``updates_for(p)`` is the first update at position ``p`` or past it. Its
    phases and end are the updates where the schedule's begin and end.

    >>> from lrtempo.schedules import Linear
    >>> s = ByUpdate(InUnit(Linear(start_lr=0.0, end_lr=1.0, steps=512), "samples"),
    ...              lambda n: n * 128, lambda p: -(-p // 128))
    >>> s.end_step, s(1), s.at([2, 9]).tolist()
    (4, 0.25, [0.5, 1.0])
    """

    __slots__ = ("schedule", "positions", "updates_for")

    def __init__(self, schedule: Schedule, positions: Callable[[np.ndarray], np.ndarray],
                 updates_for: Callable[[int], int]) -> None:
        self.schedule, self.positions, self.updates_for = schedule, positions, updates_for

    @property
    def end_step(self) -> int | None:
        end = self.schedule.end_step
        return None if end is None else self.updates_for(end)

    def _values(self, steps: np.ndarray) -> np.ndarray:
        return self.schedule.at(self.positions(steps))

    def _endless_horizon(self) -> int:
        return max(1, self.updates_for(self.schedule.horizon))

    def _phases(self, horizon: int) -> list[Phase]:
        at = self.updates_for
        return [Phase(p.name, at(p.start), None if p.stop is None else at(p.stop), p.kind)
                for p in self.schedule.phases(self.schedule.horizon)]


def position_name(unit: str, *, plural: bool = False) -> str:
    """The word for a position of ``unit``: ``step`` / ``sample`` / ``token`` (``plural``: the unit's name).

    >>> position_name("steps"), position_name("tokens"), position_name("samples", plural=True)
    ('step', 'token', 'samples')
    """
    return unit if plural else _ONE[unit]
