"""Combinators: schedules built from other schedules.

``Join`` runs pieces one after another, ``Warmup`` puts a ramp in front of a
schedule, ``Restarts`` repeats a decay in cycles (SGDR), ``Clamp`` bounds a
schedule and ``Scale`` multiplies it.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field
from fractions import Fraction
from typing import ClassVar

import numpy as np

from ._base import MAX_STEPS, PARAM_KINDS, Checks, Phase, Schedule, piecewise_values, too_long
from ._shapes import Shape, check_ends, geometric_problem, is_geometric, make_ramp, ramp_values, shape_names

__all__ = ["Piece", "Join", "Warmup", "Restarts", "Clamp", "Scale", "MAX_CYCLES", "cycle_starts", "largest_value"]


@dataclass(frozen=True, slots=True)
class Piece:
    """One piece of a :class:`Join`: a schedule and how many steps it runs.

    ``steps`` may be left out (None) on the last piece only: it then runs to
    its own end.
    """

    schedule: Schedule
    steps: int | None = None

    def __post_init__(self) -> None:
        c = Checks(self)
        c.schedule("schedule")
        c.optional_integer("steps", low=1)
        c.done()


PARAM_KINDS[tuple[Piece, ...]] = "pieces"  # a join's pieces: read by config as a list of {schedule, steps}


@dataclass(frozen=True, slots=True)
class Join(Schedule):
    """Pieces one after another; each sees its own local step from 0.

    Piece ``i`` covers ``[start_i, start_i + steps_i)`` with ``start_0 = 0``, and
    ``lr(k) = piece_i.schedule(k - start_i)`` there. The join ends where its
    last piece ends (after ``steps`` local steps, or at the piece's own end if
    sooner), and holds that value after.

    >>> from lrtempo.schedules import Linear, Constant
    >>> j = Join((Piece(Linear(0.0, 1.0, 2), 2), Piece(Constant(0.5))))
    >>> [j(k) for k in range(4)]
    [0.0, 0.5, 0.5, 0.5]
    """

    pieces: tuple[Piece, ...]
    type_name: ClassVar[str] = "join"
    _starts: tuple[int, ...] = field(init=False, repr=False, compare=False)
    _end: int | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        c = Checks(self)
        pieces = self.pieces
        if isinstance(pieces, (str, bytes)) or not hasattr(pieces, "__iter__"):
            c.fail("pieces", f"must be a list of pieces (got {pieces!r})")
            c.done()
        pieces = tuple(pieces)
        if not pieces:
            c.fail("pieces", "must not be empty")
        for i, p in enumerate(pieces):
            if not isinstance(p, Piece):
                c.fail(f"pieces[{i}]", f"must be a Piece (got {p!r})")
            elif p.steps is None and i < len(pieces) - 1:
                c.fail(f"pieces[{i}].steps", "is required on every piece but the last")
        c.done()
        object.__setattr__(self, "pieces", pieces)
        starts = [0]
        for p in pieces[:-1]:
            starts.append(starts[-1] + p.steps)
        last = pieces[-1]
        own_end = last.schedule.end_step
        if last.steps is None:
            end = None if own_end is None else starts[-1] + own_end
        else:
            end = starts[-1] + (last.steps if own_end is None else min(last.steps, own_end))
        if max(starts[-1], end or 0) > MAX_STEPS:
            c.fail("pieces", too_long(max(starts[-1], end or 0), "the pieces' total number of steps"))
            c.done()
        object.__setattr__(self, "_starts", tuple(starts))
        object.__setattr__(self, "_end", end)

    @property
    def end_step(self) -> int | None:
        return self._end

    def _endless_horizon(self) -> int:
        return self._starts[-1] + self.pieces[-1].schedule.horizon

    def _make_f(self):
        starts, fs, end = self._starts, tuple(p.schedule._f for p in self.pieces), self._end
        find = bisect.bisect_right

        def join(k: int) -> float:
            if end is not None and k > end:
                k = end
            i = find(starts, k) - 1
            return fs[i](k - starts[i])

        return join

    def _values(self, steps: np.ndarray) -> np.ndarray:
        evs = tuple(p.schedule._at_steps for p in self.pieces)
        return piecewise_values(steps, self._starts, evs)

    def _phases(self, horizon: int) -> list[Phase]:
        out: list[Phase] = []
        for start, p in zip(self._starts, self.pieces):
            if start >= horizon:
                break
            stop = None if p.steps is None else start + p.steps
            inner_horizon = horizon - start if stop is None else min(horizon, stop) - start
            for ph in p.schedule.phases(max(inner_horizon, 1)):
                ph = ph.shifted(start)
                if stop is not None:
                    if ph.start >= stop:
                        continue
                    ph = ph.cut(stop)
                out.append(ph)
        return out

    def _simplified(self) -> Schedule:
        """A join of one open-ended piece is that piece's schedule."""
        only = self.pieces[0]
        return only.schedule if len(self.pieces) == 1 and only.steps is None else self


_WARMUP_SHAPES = shape_names("linear", "cosine", "exponential")


@dataclass(frozen=True, slots=True)
class Warmup(Schedule):
    """A warmup ramp in front of ``schedule``.

    For ``k <= warmup_steps``: a ramp of ``shape`` (linear, cosine or
    exponential) from ``start_lr`` at step 0 to ``schedule(0)`` at
    ``warmup_steps``. After it: ``lr(k) = schedule(k - warmup_steps)``. The
    default ``start_lr = 0`` makes the first update's rate 0 (docs/contract.md).

    >>> from lrtempo.schedules import Constant
    >>> w = Warmup(Constant(1.0), warmup_steps=4)
    >>> [w(k) for k in range(6)]
    [0.0, 0.25, 0.5, 0.75, 1.0, 1.0]
    """

    schedule: Schedule
    warmup_steps: int
    shape: str = "linear"
    start_lr: float = 0.0
    type_name: ClassVar[str] = "warmup"
    start_field: ClassVar[str] = "start_lr"
    field_choices: ClassVar[dict] = {"shape": _WARMUP_SHAPES}
    _target: float = field(init=False, repr=False, compare=False)
    _shape: Shape = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        c = Checks(self)
        c.schedule("schedule")
        c.integer("warmup_steps", low=0)
        c.choice("shape", self.field_choices["shape"])
        c.real("start_lr", low=0.0)
        c.done()
        target = self.schedule._f(0)
        if is_geometric(self.shape):
            problem = geometric_problem(self.start_lr, target, "start_lr", "the schedule's first value")
            if problem is not None:
                name, message = problem
                c.fail("start_lr", message if name == "start_lr" else
                       f"an exponential warmup ends at the schedule's first value, which {message}")
                c.done()
        end = self.schedule.end_step
        if end is not None and self.warmup_steps + end > MAX_STEPS:
            c.fail("warmup_steps", too_long(self.warmup_steps + end, "warmup_steps + the schedule's end step"))
            c.done()
        object.__setattr__(self, "_target", target)
        object.__setattr__(self, "_shape", Shape(self.shape))

    @property
    def end_step(self) -> int | None:
        end = self.schedule.end_step
        return None if end is None else self.warmup_steps + end

    def _endless_horizon(self) -> int:
        return self.warmup_steps + self.schedule.horizon

    def _make_f(self):
        w, inner = self.warmup_steps, self.schedule._f
        if w == 0:
            return inner
        up = make_ramp(self._shape, self.start_lr, self._target, w)
        return lambda k: up(k) if k < w else inner(k - w)

    def _values(self, steps: np.ndarray) -> np.ndarray:
        w = self.warmup_steps
        if w == 0:
            return self.schedule._at_steps(steps)
        evs = (lambda k: ramp_values(self._shape, self.start_lr, self._target, k, w),
               self.schedule._at_steps)
        return piecewise_values(steps, (0, w), evs)

    def _phases(self, horizon: int) -> list[Phase]:
        w = self.warmup_steps
        inner = [p.shifted(w) for p in self.schedule.phases(max(horizon - w, 1))]
        return ([Phase("warmup", 0, w, "warmup")] if w else []) + inner

    def _simplified(self) -> Schedule:
        """A warmup of 0 steps is the schedule it warms up (its shape and start rate are idle)."""
        return self.schedule if self.warmup_steps == 0 else self


_CYCLE_SHAPES = shape_names("cosine", "linear", "1-sqrt", "exponential")
#: the most cycles a restarts schedule with period_mult != 1 may have before it ends or passes MAX_STEPS
MAX_CYCLES = 100_000
#: fractional bits of the fixed-point cycle lengths (see :func:`cycle_starts`)
_FIXED = 128


def _half_up(numerator: int, denominator: int) -> int:
    """``round(numerator / denominator)`` with halves rounded up, in exact integers."""
    return (2 * numerator + denominator) // (2 * denominator)


def cycle_starts(period: int, mult: int | float, limit: int | None) -> tuple[int, ...] | None:
    """Cycle starts ``S_0 = 0, S_{i+1} = S_i + L_i`` with ``L_i = round(period * mult ** i)`` (half up).

    Exact: ``mult`` is the decimal as written (``1.1`` is 11/10). Stops after
    ``limit`` cycles, or for ``limit`` None at the first start beyond
    :data:`MAX_STEPS`; returns None when that takes more than
    :data:`MAX_CYCLES` cycles. Each length comes from a 128-bit fixed-point
    running product whose error is tracked as an exact integer bound; only
    where that bound straddles a rounding point (a half, e.g. 22.5) is the
    length recomputed in exact rationals. Cost: a few big-integer operations a
    cycle.

    >>> cycle_starts(10, 1.5, 4)
    (0, 10, 25, 48, 82)
    >>> cycle_starts(1, 2, None)[-1] > 2**53
    True
    """
    frac = Fraction(mult) if isinstance(mult, int) else Fraction(repr(float(mult)))
    p, q = frac.numerator, frac.denominator
    one = 1 << _FIXED
    value, error = period << _FIXED, 0  # period * mult**i in fixed point, true value in [value, value + error]
    starts = [0]
    while (limit is None and starts[-1] <= MAX_STEPS) or (limit is not None and len(starts) <= limit):
        i = len(starts) - 1
        if i >= MAX_CYCLES:
            return None
        low, high = (value + one // 2) >> _FIXED, (value + error + one // 2) >> _FIXED
        length = low if low == high else _half_up(period * p**i, q**i)
        starts.append(starts[-1] + length)
        if starts[-1] > MAX_STEPS and limit is not None:
            break  # the caller refuses an end past MAX_STEPS
        value, error = value * p // q, -(-error * p // q) + 1
    return tuple(starts)


@dataclass(frozen=True, slots=True)
class Restarts(Schedule):
    """Warm restarts (SGDR): cycles that decay from a peak to ``min_lr``.

    Cycle ``i`` lasts ``L_i`` steps: ``L_0 = period`` and
    ``L_i = round(period * period_mult ** i)`` (exact rational arithmetic,
    half up; with an integer multiplier simply ``period * period_mult ** i``).
    Inside cycle ``i``, at local step ``j``, the rate is a ramp of ``shape``
    from ``peak_i = max(min_lr, peak_lr * peak_decay ** i)`` to ``min_lr`` over
    ``L_i`` steps; the cycle index comes from integer arithmetic, never from a
    floating-point logarithm: the cycle starts are computed exactly once, at
    construction, and a step's cycle is found by bisection among them. With
    ``max_cycles`` the schedule ends after that many cycles and holds
    ``min_lr``. With ``period_mult != 1`` at most :data:`MAX_CYCLES` cycles
    may start before the end (or before step 2**53).

    >>> r = Restarts(peak_lr=1.0, period=2, period_mult=2, shape="linear")
    >>> [r(k) for k in range(8)]
    [1.0, 0.5, 1.0, 0.75, 0.5, 0.25, 1.0, 0.875]
    """

    peak_lr: float
    period: int
    min_lr: float = 0.0
    period_mult: float = 1
    peak_decay: float = 1.0
    max_cycles: int | None = None
    shape: str = "cosine"
    type_name: ClassVar[str] = "restarts"
    period_fields: ClassVar[tuple[str, ...]] = ("period",)
    field_choices: ClassVar[dict] = {"shape": _CYCLE_SHAPES}
    _cycle_starts: tuple = field(init=False, repr=False, compare=False)
    _starts: np.ndarray = field(init=False, repr=False, compare=False)
    _shape: Shape = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        c = Checks(self)
        c.real("peak_lr", low=0.0)
        c.real("min_lr", low=0.0)
        c.integer("period", low=1)
        mult = self.period_mult
        if isinstance(mult, float) and mult.is_integer():
            mult = int(mult)
        object.__setattr__(self, "period_mult", mult)
        if isinstance(mult, int) and not isinstance(mult, bool):
            if mult < 1:
                c.fail("period_mult", f"must be >= 1 (got {mult})")
        else:
            c.real("period_mult", low=1.0)
        c.real("peak_decay", low=0.0, low_open=True, high=1.0)
        c.optional_integer("max_cycles", low=1)
        c.choice("shape", self.field_choices["shape"])
        c.order("min_lr", "peak_lr")
        check_ends(c, self.shape, "peak_lr", "min_lr")
        c.done()
        object.__setattr__(self, "_cycle_starts", self._locate_cycles(c))
        object.__setattr__(self, "_starts", np.asarray(self._cycle_starts, dtype=np.int64))
        object.__setattr__(self, "_shape", Shape(self.shape))

    def _locate_cycles(self, c: Checks) -> tuple[int, ...]:
        """The cycle starts (period_mult != 1), or ``()``; refuses an end beyond 2**53 or too many cycles."""
        period, mult, limit = self.period, self.period_mult, self.max_cycles
        if mult == 1:
            if limit is not None and period * limit > MAX_STEPS:
                c.fail("max_cycles", too_long(period * limit, f"max_cycles * period ({limit} * {period})"))
            c.done()
            return ()
        if limit is not None and limit > MAX_CYCLES:
            c.fail("max_cycles", f"must be <= {MAX_CYCLES} when period_mult is not 1 (got {limit})")
            c.done()
        starts = cycle_starts(period, mult, limit)
        if starts is None:
            c.fail("period_mult", f"{mult!r} with period {period} makes more than {MAX_CYCLES} cycles before "
                   "step 2**53; use period_mult: 1, a larger period_mult or period, or max_cycles")
        elif limit is not None and starts[-1] > MAX_STEPS:
            fit = sum(1 for s in starts[1:] if s <= MAX_STEPS)
            c.fail("max_cycles", f"{limit} cycles of period {period} growing by {mult!r} end after step 2**53, "
                   f"the longest schedule; at most {fit} fit")
        c.done()
        return starts

    @property
    def end_step(self) -> int | None:
        if self.max_cycles is None:
            return 0 if self.peak_lr == self.min_lr else None
        return self.period * self.max_cycles if self.period_mult == 1 else self._cycle_starts[-1]

    def _endless_horizon(self) -> int:
        if self.period_mult == 1:
            return 4 * self.period
        return self._cycle_starts[min(4, len(self._cycle_starts) - 1)]

    def _peak(self, cycle):
        return np.maximum(self.min_lr, self.peak_lr * np.power(self.peak_decay, cycle))

    def _values(self, steps: np.ndarray) -> np.ndarray:
        if self.period_mult == 1:
            cycle, j = np.divmod(steps, self.period)
            length = self.period
        else:
            starts = self._starts
            # the cycle holding each step, by bisection; a step past the last start (beyond 2**53, or
            # the end) lies at the end of the last cycle
            cycle = np.minimum(np.searchsorted(starts, steps, side="right") - 1, starts.size - 2)
            length = starts[cycle + 1] - starts[cycle]
            j = np.minimum(steps - starts[cycle], length)
        out = ramp_values(self._shape, self._peak(cycle), self.min_lr, j, length)
        if self.max_cycles is not None and self.period_mult == 1:
            out = np.where(cycle >= self.max_cycles, self.min_lr, out)
        return out

    def _phases(self, horizon: int) -> list[Phase]:
        if self.period_mult == 1:
            count = -(-horizon // self.period)
            if self.max_cycles is not None:
                count = min(count, self.max_cycles)
            return [Phase(f"cycle {i}", i * self.period, (i + 1) * self.period, "cycle") for i in range(count)]
        starts = self._cycle_starts
        return [Phase(f"cycle {i}", a, b, "cycle") for i, (a, b) in enumerate(zip(starts, starts[1:])) if a < horizon]


class _Transform(Schedule):
    """A schedule that maps each value of one ``schedule``: its end, horizon and phases are the child's."""

    __slots__ = ()

    @property
    def end_step(self) -> int | None:
        return self.schedule.end_step  # type: ignore[attr-defined]

    def _endless_horizon(self) -> int:
        return self.schedule.horizon  # type: ignore[attr-defined]

    def _phases(self, horizon: int) -> list[Phase]:
        return list(self.schedule.phases(horizon))  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class Clamp(_Transform):
    """``lr(k) = min(max(schedule(k), min_lr), max_lr)``; ``max_lr`` None means no cap.

    >>> from lrtempo.schedules import Linear
    >>> c = Clamp(Linear(0.0, 1.0, 10), min_lr=0.2, max_lr=0.5)
    >>> [c(k) for k in (0, 3, 9)]
    [0.2, 0.3, 0.5]
    """

    schedule: Schedule
    min_lr: float = 0.0
    max_lr: float | None = None
    type_name: ClassVar[str] = "clamp"

    def __post_init__(self) -> None:
        c = Checks(self)
        c.schedule("schedule")
        c.real("min_lr", low=0.0)
        if self.max_lr is not None:
            c.real("max_lr", low=0.0)
            c.order("min_lr", "max_lr")
        c.done()

    def _make_f(self):
        inner, low, high = self.schedule._f, self.min_lr, self.max_lr
        if high is None:
            return lambda k: max(inner(k), low)
        return lambda k: min(max(inner(k), low), high)

    def _values(self, steps: np.ndarray) -> np.ndarray:
        v = np.maximum(self.schedule._at_steps(steps), self.min_lr)
        return v if self.max_lr is None else np.minimum(v, self.max_lr)


def largest_value(schedule: Schedule) -> float:
    """The largest value of a schedule, at any step.

    Every phase of a native schedule is monotone and an endless one repeats or
    decays past its horizon, so the largest value lies at a phase boundary or
    next to one within the horizon; those are the steps evaluated. (A
    ``compat`` schedule is also sampled at 1025 points across its horizon.)

    >>> from lrtempo.schedules import Cyclic
    >>> largest_value(Cyclic(base_lr=0.1, max_lr=2.0, step_size_up=3))
    2.0
    """
    horizon = schedule.horizon
    marks = np.asarray(schedule.boundaries(horizon), dtype=np.int64)
    probe = [marks - 1, marks, marks + 1]
    if schedule.type_name == "compat" or any(p.stop is None for p in schedule.phases(horizon)):
        probe.append(np.linspace(0, horizon, 1025).astype(np.int64))
    steps = np.unique(np.clip(np.concatenate(probe), 0, None))
    return float(np.max(schedule._at_steps(steps)))


@dataclass(frozen=True, slots=True)
class Scale(_Transform):
    """``lr(k) = factor * schedule(k)``.

    >>> from lrtempo.schedules import Constant
    >>> Scale(Constant(0.5), factor=0.1)(0)
    0.05
    """

    schedule: Schedule
    factor: float
    type_name: ClassVar[str] = "scale"

    def __post_init__(self) -> None:
        c = Checks(self)
        c.schedule("schedule")
        c.real("factor", low=0.0)
        c.done()
        if self.factor > 1.0:
            largest = largest_value(self.schedule)
            if not math.isfinite(self.factor * largest):
                c.fail("factor", f"{self.factor!r} times the schedule's largest value {largest!r} overflows "
                       "float64 (the product must stay below 1.8e308)")
                c.done()

    def _make_f(self):
        inner, factor = self.schedule._f, self.factor
        return lambda k: factor * inner(k)

    def _values(self, steps: np.ndarray) -> np.ndarray:
        return self.factor * self.schedule._at_steps(steps)

    def _simplified(self) -> Schedule:
        """A scale by 1 is the schedule it scales."""
        return self.schedule if self.factor == 1.0 else self
