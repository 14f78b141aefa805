"""Branches: a schedule changed at one step of a run, recorded as a spec (``lrtempo branch``).

A branch is its parent schedule up to step ``at_step`` joined with a new tail from
``at_step`` on. The parent stays inside the spec (with its hash, recorded when the
branch was made), so the branch is again a pure function of the step: ``show``,
``values`` and ``plot`` draw the whole curve, and a resume checks it like any
other schedule.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from ._base import MAX_STEPS, Checks, ParameterError, Phase, Schedule, piecewise_values
from ._shapes import Shape, ramp_values, shape_names

__all__ = ["Branch", "BRANCH_KINDS", "stretched_values"]

#: what a branch does at ``at_step``, and the fields each kind takes (besides ``parent``, ``at_step``, ``parent_hash``)
BRANCH_KINDS: dict[str, tuple[str, ...]] = {
    "cooldown": ("steps", "shape", "min_lr"),
    "extend": ("total_steps",),
    "rewarm": ("steps", "peak_lr"),
    "rewind": ("from_step",),
}
_COOLDOWN_SHAPES = shape_names("linear", "cosine", "1-sqrt")
_OPTIONAL = ("steps", "min_lr", "peak_lr", "total_steps", "from_step")
_HASH = re.compile(r"[0-9a-f]{64}")
#: where ``j * R`` of a stretch may be formed in int64 (beyond it: Python integers)
_INT64_PRODUCT = 2**62


def stretched_values(parent: Schedule, start: int, length: int, new_length: int, j: np.ndarray) -> np.ndarray:
    """The parent's curve over ``[start, start + length]`` stretched onto ``[0, new_length]``, at local steps ``j``.

    Local step ``j`` sits at parent position ``p = start + j * length / new_length``. With the exact integers
    ``q = (j * length) // new_length`` and ``r = (j * length) % new_length``, the value is the parent's at the
    integer step ``start + q`` when ``r == 0``, else the linear interpolation to the next step:
    ``a + (r / new_length) * (b - a)`` with ``a = parent(start + q)``, ``b = parent(start + q + 1)``. The
    position is never rounded; only that last line is float64 arithmetic.

    >>> from lrtempo.schedules import Linear
    >>> stretched_values(Linear(1.0, 0.0, 4), 0, 4, 8, np.arange(9)).tolist()
    [1.0, 0.875, 0.75, 0.625, 0.5, 0.375, 0.25, 0.125, 0.0]
    """
    j = np.minimum(j, new_length)
    if length * new_length < _INT64_PRODUCT:
        q, r = np.divmod(j * length, new_length)
    else:  # beyond int64: the same division in Python integers
        num = j.astype(object) * length
        q, r = (num // new_length).astype(np.int64), (num % new_length).astype(np.int64)
    a = parent._at_steps(start + q)
    nxt = parent._at_steps(np.minimum(start + q + 1, start + length))
    return np.where(r == 0, a, a + (r / new_length) * (nxt - a))


@dataclass(frozen=True, slots=True)
class Branch(Schedule):
    """A run's schedule changed at step ``at_step``: the parent's rate before it, a new tail from it on.

    ``lr(k) = parent(k)`` for ``k < at_step``. From ``at_step`` on, with ``s = parent(at_step)``,
    ``j = k - at_step``, ``E`` the parent's end and ``floor`` its final value, by ``kind``:

    * ``cooldown``: a ramp of ``shape`` (linear, cosine, 1-sqrt) from ``s`` to ``min_lr`` (default
      ``floor``) over ``steps`` updates, then ``min_lr``. 1-sqrt is ``min_lr + (s - min_lr) * (1 -
      sqrt(j / steps))`` (Hägele et al. 2024). Continuous at ``at_step``.
    * ``extend``: what remained of the parent, ``[at_step, E]``, stretched onto ``[at_step, total_steps]``
      (:func:`stretched_values`: exact integer positions, linear interpolation between the parent's two
      neighbouring steps). Continuous at ``at_step``; ends at ``floor`` at ``total_steps``.
    * ``rewarm``: a linear ramp from ``s`` to ``peak_lr`` over ``steps`` updates, then the parent's remaining
      curve ``[at_step, E]`` stretched onto ``[at_step + steps, E]`` and rescaled so that it starts at ``peak_lr`` and
      ends at ``floor``: ``floor + (peak_lr - floor) * u`` with ``u = (v - floor) / (s - floor)``, ``v`` the
      stretched value. Needs ``s > floor`` and no rate above ``s`` after ``at_step``.
    * ``rewind``: the parent's curve as it was from ``from_step``: ``parent(from_step + j)`` (LR rewinding,
      Renda et al. 2020). Jumps from ``s`` to ``parent(from_step)``.

    ``parent_hash`` is the parent's spec hash when the branch was made (a record; config computes hashes).

    >>> from lrtempo.schedules import Constant
    >>> b = Branch(Constant(1.0), at_step=2, kind="cooldown", steps=4, min_lr=0.0)
    >>> b.end_step, [b(k) for k in range(8)]
    (6, [1.0, 1.0, 1.0, 0.75, 0.5, 0.25, 0.0, 0.0])
    """

    parent: Schedule
    at_step: int
    kind: str
    parent_hash: str = ""
    steps: int | None = None
    shape: str = "linear"
    min_lr: float | None = None
    peak_lr: float | None = None
    total_steps: int | None = None
    from_step: int | None = None
    type_name: ClassVar[str] = "branch"
    field_choices: ClassVar[dict] = {"kind": tuple(BRANCH_KINDS), "shape": _COOLDOWN_SHAPES}
    _start: float = field(init=False, repr=False, compare=False)
    _floor: float = field(init=False, repr=False, compare=False)
    _end: int | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        c = Checks(self)
        c.schedule("parent")
        c.integer("at_step", low=1)
        c.choice("kind", self.field_choices["kind"])
        c.choice("shape", self.field_choices["shape"])
        if not isinstance(self.parent_hash, str) or (self.parent_hash and not _HASH.fullmatch(self.parent_hash)):
            c.fail("parent_hash", f"must be a spec hash (64 hex digits) or empty (got {self.parent_hash!r})")
        c.done()
        uses = BRANCH_KINDS[self.kind]
        for name in _OPTIONAL:
            if getattr(self, name) is not None and name not in uses:
                c.fail(name, f"is not used by a {self.kind} branch (it takes {', '.join(uses)})")
        if self.shape != "linear" and "shape" not in uses:
            c.fail("shape", f"is not used by a {self.kind} branch (it takes {', '.join(uses)})")
        c.done()
        object.__setattr__(self, "_start", self.parent._f(self.at_step))
        object.__setattr__(self, "_floor", self.parent.final_value)
        getattr(self, f"_check_{self.kind}")(c)
        c.done()
        object.__setattr__(self, "_end", self._end_of())
        if self._end is not None and self._end > MAX_STEPS:
            raise ParameterError([("at_step", f"the branch ends after step 2**53 (at {self._end})")])

    # -- validation, one method per kind ----------------------------------------------------------------------------
    def _required(self, c: Checks, name: str, why: str) -> bool:
        if getattr(self, name) is None:
            c.fail(name, f"missing: {why}")
            return False
        return True

    def _remaining(self, c: Checks, name: str) -> int | None:
        """``E - at_step``, the updates of the parent's schedule left at ``at_step``, or None (and why) if none are."""
        end = self.parent.end_step
        if end is None:
            c.fail(name, "needs a parent schedule that ends (this one never does)")
            return None
        if end <= self.at_step:
            c.fail(name, f"the parent's schedule ends at step {end}, at or before the branch point {self.at_step}: "
                         "nothing of it remains (use a cooldown)")
            return None
        return end - self.at_step

    def _check_cooldown(self, c: Checks) -> None:
        if self._required(c, "steps", "the cooldown's length in updates"):
            c.integer("steps", low=1)
        if self.min_lr is None:
            if self._floor is None:
                c.fail("min_lr", "missing: the parent's schedule never ends, so it has no floor to cool down to")
            return
        c.real("min_lr", low=0.0)
        if c.ok("min_lr") and self.min_lr > self._start:
            c.fail("min_lr", f"must be <= the rate at step {self.at_step}, {self._start!r}, for a cooldown "
                             f"(got {self.min_lr!r})")

    def _check_extend(self, c: Checks) -> None:
        if not self._required(c, "total_steps", "the new total number of updates"):
            return
        c.integer("total_steps", low=self.at_step + 1)
        if c.ok("total_steps"):
            self._remaining(c, "total_steps")

    def _check_rewarm(self, c: Checks) -> None:
        if self._required(c, "steps", "the rewarm's length in updates"):
            c.integer("steps", low=1)
        if self._required(c, "peak_lr", "the rate to warm up to"):
            c.real("peak_lr", low=0.0, low_open=True)
        left = self._remaining(c, "steps")
        if left is None or not c.ok("steps", "peak_lr"):
            return
        if self.steps >= left:
            c.fail("steps", f"must be < the {left} updates left of the parent's schedule at step {self.at_step} "
                            f"(got {self.steps})")
        elif not self._start > self._floor:
            c.fail("at_step", f"the parent's rate at step {self.at_step}, {self._start!r}, is not above its floor "
                              f"{self._floor!r}: nothing of its decay remains to rescale (use an extend, or a new "
                              "schedule)")
        else:
            top, where = _largest_after(self.parent, self.at_step)
            if top > self._start:
                c.fail("at_step", f"the parent's rate rises after step {self.at_step} (to {top!r} at step {where}): "
                             "rewarm from a step in its decay")

    def _check_rewind(self, c: Checks) -> None:
        if self._required(c, "from_step", "the step whose rate the branch replays from"):
            c.integer("from_step", low=0)
            if c.ok("from_step") and self.from_step >= self.at_step:
                c.fail("from_step", f"must be < at_step ({self.at_step}), a step before the branch point "
                                    f"(got {self.from_step})")

    # -- evaluation ---------------------------------------------------------------------------------------------------
    def _end_of(self) -> int | None:
        at, end = self.at_step, self.parent.end_step
        if self.kind == "cooldown":
            return at + self.steps
        if self.kind == "extend":
            return self.total_steps
        if self.kind == "rewarm":
            return end
        return None if end is None else at + max(0, end - self.from_step)

    @property
    def end_step(self) -> int | None:
        return self._end

    @property
    def jump(self) -> float:
        """The rate at ``at_step`` minus the parent's there: 0 for a cooldown, an extension and a rewarm.

        >>> from lrtempo.schedules import Linear
        >>> Branch(Linear(1.0, 0.0, 10), at_step=6, kind="rewind", from_step=2).jump
        0.4
        """
        return self._f(self.at_step) - self._start

    def _endless_horizon(self) -> int:
        return min(self.at_step + self.parent.horizon, MAX_STEPS)

    def _tail(self, j: np.ndarray) -> np.ndarray:
        """The rate at local steps ``j = k - at_step >= 0``."""
        if self.kind == "cooldown":
            floor = self._floor if self.min_lr is None else self.min_lr
            return ramp_values(Shape(self.shape), self._start, floor, np.minimum(j, self.steps), self.steps)
        left = self.parent.end_step - self.at_step if self.kind in ("extend", "rewarm") else 0
        if self.kind == "extend":
            return stretched_values(self.parent, self.at_step, left, self.total_steps - self.at_step, j)
        if self.kind == "rewarm":
            return self._rewarmed(j, left)
        return self.parent._at_steps(self.from_step + j)

    def _rewarmed(self, j: np.ndarray, left: int) -> np.ndarray:
        n, s, floor, peak = self.steps, self._start, self._floor, self.peak_lr
        up = ramp_values(Shape("linear"), s, peak, np.minimum(j, n), n)
        v = stretched_values(self.parent, self.at_step, left, left - n, np.maximum(j - n, 0))
        u = (v - floor) / (s - floor)
        # from the nearer end, so that u = 1 gives peak_lr and u = 0 the floor exactly
        down = np.where(u >= 0.5, peak - (peak - floor) * (1.0 - u), floor + (peak - floor) * u)
        return np.where(j < n, up, down)

    def _values(self, steps: np.ndarray) -> np.ndarray:
        return piecewise_values(steps, (0, self.at_step), (self.parent._at_steps, self._tail))

    # -- phases -------------------------------------------------------------------------------------------------------
    def _phases(self, horizon: int) -> list[Phase]:
        at = self.at_step
        out = [p.cut(at) for p in self.parent.phases(max(1, min(horizon, at)))]
        if self.kind == "cooldown":
            return [*out, Phase("cooldown", at, at + self.steps, "decay")]
        end = self.parent.end_step
        if self.kind == "rewind":
            shift, src = at - self.from_step, self.parent.phases(max(1, horizon - at + self.from_step))
            return out + [Phase(p.name, max(p.start, self.from_step), p.stop, p.kind).shifted(shift)
                          for p in src if p.stop is None or p.stop > self.from_step]
        if self.kind == "extend":
            return out + _mapped(self.parent.phases(end + 1), at, end, at, self.total_steps)
        return [*out, Phase("rewarm", at, at + self.steps, "warmup"),
                *_mapped(self.parent.phases(end + 1), at, end, at + self.steps, end)]


def _mapped(phases: Any, lo: int, hi: int, new_lo: int, new_hi: int) -> list[Phase]:
    """The phases within ``[lo, hi)`` carried onto ``[new_lo, new_hi)`` by the stretch (boundaries rounded up)."""
    length, new_length = hi - lo, new_hi - new_lo

    def place(k: int) -> int:
        return new_lo + -(-(k - lo) * new_length // length)

    out = []
    for p in phases:
        start, stop = max(p.start, lo), hi if p.stop is None else min(p.stop, hi)
        if stop > start:
            out.append(Phase(p.name, place(start), place(stop), p.kind))
    return out


def _largest_after(parent: Schedule, at: int) -> tuple[float, int]:
    """The parent's largest rate on ``[at, end]`` and a step where it is (phases are monotone: their edges)."""
    end = parent.end_step
    marks = np.asarray([m for m in parent.boundaries(end + 1) if at <= m <= end] + [at, end], dtype=np.int64)
    probe = np.unique(np.clip(np.concatenate([marks - 1, marks, marks + 1]), at, end))
    values = parent._at_steps(probe)
    i = int(np.argmax(values))
    return float(values[i]), int(probe[i])
