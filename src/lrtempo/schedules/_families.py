"""Native schedule families.

Every family is a frozen dataclass whose fields are its parameters, checked on
construction. ``step`` is the number of optimizer updates already applied;
past ``end_step`` every family holds its final value (docs/contract.md).
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field, replace
from fractions import Fraction
from typing import ClassVar

import numpy as np

from ._base import MAX_STEPS, Checks, Composed, Phase, Schedule, piecewise_values, too_long
from ._shapes import Shape, check_ends, make_ramp, ramp_values, shape_names

__all__ = [
    "Constant",
    "Linear",
    "Ramp",
    "StepDecay",
    "MultiStepDecay",
    "ExponentialDecay",
    "PolynomialDecay",
    "CosineDecay",
    "InverseSqrt",
    "TanhDecay",
    "Cyclic",
    "OneCycle",
    "steps_from_fraction",
]

_LINEAR = Shape("linear")
_COSINE = Shape("cosine")
#: the longest an endless exponential decay is shown (its horizon) past start_step
_SLOW_DECAY_HORIZON = 10**7


def steps_from_fraction(fraction: float, total_steps: int) -> int:
    """Resolve a duration given as a fraction of ``total_steps`` to whole steps.

    The rule: ``fraction * total_steps`` computed exactly on the decimal as
    written (``0.3`` is 3/10, not the nearest binary float), rounded half up.

    >>> steps_from_fraction(0.3, 5), steps_from_fraction(0.02, 1000), steps_from_fraction(0.25, 10)
    (2, 20, 3)
    """
    exact = Fraction(repr(float(fraction))) * total_steps
    return math.floor(exact + Fraction(1, 2))


@dataclass(frozen=True, slots=True)
class Constant(Schedule):
    """``lr(step) = lr`` for every step.

    >>> Constant(lr=0.1)(0), Constant(lr=0.1)(10**9)
    (0.1, 0.1)
    """

    lr: float
    type_name: ClassVar[str] = "constant"

    def __post_init__(self) -> None:
        c = Checks(self)
        c.real("lr", low=0.0)
        c.done()

    @property
    def end_step(self) -> int:
        return 0

    def _make_f(self):
        lr = self.lr
        return lambda k: lr

    def _phases(self, horizon: int) -> list[Phase]:
        return [Phase("constant", 0, None, "hold")]

    def _values(self, steps: np.ndarray) -> np.ndarray:
        return np.full(steps.shape, self.lr)


class _RampFamily(Schedule):
    """A family that is one ramp of :mod:`._shapes`, ``(shape, a, b, n)`` from ``_ramp()``.

    The value goes from ``a`` at step 0 to ``b`` at step ``n`` and is held at
    ``b`` from then on. A subclass names its three fields in ``_ends`` and has a
    ``_shape`` (a class variable, or a field that ``_bind`` sets); it adds its
    own checks in ``_check``. The ramp does the rest.
    """

    __slots__ = ()

    #: the fields that are the ramp's start rate, end rate and length, in that order
    _ends: ClassVar[tuple[str, str, str]] = ("start_lr", "end_lr", "steps")

    def __post_init__(self) -> None:
        c = Checks(self)
        first, last, length = self._ends
        c.real(first, low=0.0)
        c.real(last, low=0.0)
        c.integer(length, low=1)
        self._check(c)
        c.done()
        self._bind()

    def _check(self, c: Checks) -> None:
        """The family's checks beyond its two rates and its length (none here)."""

    def _bind(self) -> None:
        """Set what evaluation needs beyond the fields, once they are checked (nothing here)."""

    def _ramp(self) -> tuple[Shape, float, float, int]:
        a, b, n = self._ends
        return self._shape, getattr(self, a), getattr(self, b), getattr(self, n)  # type: ignore[attr-defined]

    @property
    def end_step(self) -> int:
        return self._ramp()[3]

    def _make_f(self):
        return make_ramp(*self._ramp())

    def _values(self, steps: np.ndarray) -> np.ndarray:
        shape, a, b, n = self._ramp()
        return ramp_values(shape, a, b, steps, n)


class _DecayFamily(_RampFamily):
    """A ramp from ``peak_lr`` down to ``min_lr <= peak_lr`` over ``decay_steps``."""

    __slots__ = ()
    _ends: ClassVar[tuple[str, str, str]] = ("peak_lr", "min_lr", "decay_steps")
    phase_kind: ClassVar[str] = "decay"

    def _check(self, c: Checks) -> None:
        self._check_shape(c)
        c.order("min_lr", "peak_lr")

    def _check_shape(self, c: Checks) -> None:
        """The checks of the shape's own parameters (none here)."""


@dataclass(frozen=True, slots=True)
class Linear(_RampFamily):
    """Linear ramp: ``lr(k) = start_lr + (end_lr - start_lr) * min(k, steps) / steps``.

    >>> s = Linear(start_lr=0.0, end_lr=1.0, steps=4)
    >>> [s(k) for k in (0, 1, 4, 5)]
    [0.0, 0.25, 1.0, 1.0]
    """

    start_lr: float
    end_lr: float
    steps: int
    type_name: ClassVar[str] = "linear"
    start_field: ClassVar[str] = "start_lr"
    _shape: ClassVar[Shape] = _LINEAR


@dataclass(frozen=True, slots=True)
class Ramp(_RampFamily):
    """From ``start_lr`` at step 0 to ``end_lr`` at ``steps`` with a given ``shape``.

    ``lr(k) = start_lr + (end_lr - start_lr) * F(k / steps)`` with ``F`` the
    shape (linear, cosine, 1-sqrt, power, exponential; see ``_shapes``); held
    at ``end_lr`` from ``steps`` on. ``power`` is used by the power shape.

    >>> r = Ramp(start_lr=1.0, end_lr=0.0, steps=4, shape="1-sqrt")
    >>> [round(r(k), 4) for k in range(6)]
    [1.0, 0.5, 0.2929, 0.134, 0.0, 0.0]
    """

    start_lr: float
    end_lr: float
    steps: int
    shape: str = "linear"
    power: float = 1.0
    type_name: ClassVar[str] = "ramp"
    start_field: ClassVar[str] = "start_lr"
    field_choices: ClassVar[dict] = {"shape": shape_names("linear", "cosine", "1-sqrt", "power", "exponential")}
    _shape: Shape = field(init=False, repr=False, compare=False)

    def _check(self, c: Checks) -> None:
        c.choice("shape", self.field_choices["shape"])
        c.real("power", low=0.0, low_open=True)
        check_ends(c, self.shape, "start_lr", "end_lr")

    def _bind(self) -> None:
        object.__setattr__(self, "_shape", Shape(self.shape, power=self.power))

    def _simplified(self) -> Schedule:
        """``power`` is idle unless the shape is power: the canonical form has the default."""
        return replace(self, power=1.0) if self.shape != "power" and self.power != 1.0 else self


@dataclass(frozen=True, slots=True)
class StepDecay(Schedule):
    """``lr(k) = base_lr * gamma ** (k // step_size)``; never ends (unless gamma is 1).

    >>> s = StepDecay(base_lr=1.0, gamma=0.5, step_size=10)
    >>> [s(k) for k in (0, 9, 10, 25)]
    [1.0, 1.0, 0.5, 0.25]
    """

    base_lr: float
    step_size: int
    gamma: float = 0.1
    type_name: ClassVar[str] = "step"
    period_fields: ClassVar[tuple[str, ...]] = ("step_size",)

    def __post_init__(self) -> None:
        c = Checks(self)
        c.real("base_lr", low=0.0)
        c.integer("step_size", low=1)
        c.real("gamma", low=0.0, low_open=True, high=1.0)
        c.done()

    @property
    def end_step(self) -> int | None:
        return 0 if self.gamma == 1.0 else None

    def _values(self, steps: np.ndarray) -> np.ndarray:
        return self.base_lr * np.power(self.gamma, steps // self.step_size)

    def _endless_horizon(self) -> int:
        return 5 * self.step_size

    def _phases(self, horizon: int) -> list[Phase]:
        n = -(-horizon // self.step_size)
        return [Phase(f"level {i}", i * self.step_size, (i + 1) * self.step_size, "decay") for i in range(n)]


def _listed(values: tuple) -> str:
    """A list for a message: in full when short, else its first and last few items."""
    if len(values) <= 12:
        return repr(list(values))
    head, tail = ", ".join(map(repr, values[:5])), ", ".join(map(repr, values[-3:]))
    return f"[{head}, ... {len(values) - 8} more ..., {tail}]"


@dataclass(frozen=True, slots=True)
class MultiStepDecay(Schedule):
    """``lr(k) = base_lr * gamma ** (number of milestones <= k)``.

    >>> s = MultiStepDecay(base_lr=1.0, milestones=(3, 5), gamma=0.1)
    >>> [s(k) for k in (0, 2, 3, 5, 100)]
    [1.0, 1.0, 0.1, 0.01, 0.01]
    """

    base_lr: float
    milestones: tuple[int, ...]
    gamma: float = 0.1
    type_name: ClassVar[str] = "multistep"
    period_fields: ClassVar[tuple[str, ...]] = ("milestones",)
    _marks: np.ndarray = field(init=False, repr=False, compare=False)
    _levels: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        c = Checks(self)
        c.real("base_lr", low=0.0)
        c.real("gamma", low=0.0, low_open=True, high=1.0)
        ms = self.milestones
        if isinstance(ms, (str, bytes)) or not hasattr(ms, "__iter__"):
            c.fail("milestones", f"must be a list of step numbers (got {ms!r})")
        else:
            ms = tuple(ms)
            if not ms:
                c.fail("milestones", "must not be empty")
            elif not all(isinstance(m, int) and not isinstance(m, bool) and m > 0 for m in ms):
                c.fail("milestones", f"must be positive integers (got {_listed(ms)})")
            elif any(b <= a for a, b in zip(ms, ms[1:])):
                c.fail("milestones", f"must be strictly increasing (got {_listed(ms)})")
            elif ms[-1] > MAX_STEPS:
                c.fail("milestones", too_long(ms[-1], "every milestone"))
            object.__setattr__(self, "milestones", ms)
        c.done()
        object.__setattr__(self, "_marks", np.asarray(ms, dtype=np.int64))
        # the rate of every level, once: a step's level is found by bisection (O(log n) per step)
        count = np.arange(len(self.milestones) + 1, dtype=np.int64)
        object.__setattr__(self, "_levels", self.base_lr * np.power(self.gamma, count))

    @property
    def end_step(self) -> int:
        return self.milestones[-1]

    def _make_f(self):
        marks, levels, find = self.milestones, self._levels.tolist(), bisect.bisect_right
        return lambda k: levels[find(marks, k)]

    def _values(self, steps: np.ndarray) -> np.ndarray:
        return self._levels[np.searchsorted(self._marks, steps, side="right")]

    def _phases(self, horizon: int) -> list[Phase]:
        starts = (0, *self.milestones)
        return [Phase(f"level {i}", a, b, "decay") for i, (a, b) in enumerate(zip(starts, starts[1:]))]


@dataclass(frozen=True, slots=True)
class ExponentialDecay(Schedule):
    """``lr(k) = max(end_lr, base_lr * decay_rate ** (t / decay_steps))``, ``t = max(0, k - start_step)``.

    With ``staircase`` the exponent is ``t // decay_steps``. Before
    ``start_step`` the rate is ``base_lr``. With ``end_lr > 0`` the schedule ends
    at the first step where it reaches ``end_lr``; with ``end_lr = 0`` it
    decays forever.

    >>> s = ExponentialDecay(base_lr=1.0, decay_rate=0.5, decay_steps=2)
    >>> [s(k) for k in (0, 1, 2, 4)]
    [1.0, 0.7071067811865476, 0.5, 0.25]
    >>> ExponentialDecay(base_lr=1.0, decay_rate=0.5, decay_steps=1, end_lr=0.2).end_step
    3
    """

    base_lr: float
    decay_rate: float
    decay_steps: int = 1
    staircase: bool = False
    start_step: int = 0
    end_lr: float = 0.0
    type_name: ClassVar[str] = "exponential"
    phase_kind: ClassVar[str] = "decay"
    _end: int | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        c = Checks(self)
        c.real("base_lr", low=0.0)
        c.real("decay_rate", low=0.0, low_open=True, high=1.0)
        c.integer("decay_steps", low=1)
        c.boolean("staircase")
        c.integer("start_step", low=0)
        c.real("end_lr", low=0.0)
        c.order("end_lr", "base_lr")
        c.done()
        object.__setattr__(self, "_end", self._find_end())

    def _raw(self, step):
        t = np.maximum(step - self.start_step, 0)
        e = t // self.decay_steps if self.staircase else t / self.decay_steps
        return self.base_lr * np.power(self.decay_rate, e)

    def _find_end(self) -> int | None:
        if self.decay_rate == 1.0 or self.base_lr == 0.0 or self.base_lr == self.end_lr:
            return 0
        if self.end_lr == 0.0:
            return None
        raw = lambda k: float(self._raw(np.array([k], dtype=np.int64))[0])  # noqa: E731 - the array path
        if raw(MAX_STEPS) > self.end_lr:
            return None  # reaches end_lr only after 2**53 steps: endless (it decays toward end_lr forever)
        # the first step whose raw value is <= end_lr, by bisection (the raw value never increases):
        # exact, and bounded work however long a staircase step is
        lo, hi = self.start_step, MAX_STEPS
        while lo < hi:
            mid = (lo + hi) // 2
            if raw(mid) <= self.end_lr:
                hi = mid
            else:
                lo = mid + 1
        return lo

    @property
    def end_step(self) -> int | None:
        return self._end

    def _endless_horizon(self) -> int:
        """Until the rate is 1% of base_lr, at most ``_SLOW_DECAY_HORIZON`` steps past the start.

        A decay_rate within an ulp or so of 1 would otherwise put that point
        ~1e18 steps out, a range nothing can show.
        """
        to_one_percent = self.decay_steps * math.log(0.01) / math.log(self.decay_rate)
        return self.start_step + math.ceil(min(to_one_percent, _SLOW_DECAY_HORIZON))

    def _values(self, steps: np.ndarray) -> np.ndarray:
        return np.maximum(self._raw(steps), self.end_lr)

    def _simplified(self) -> Schedule:
        """A staircase of 1-step stairs is the smooth decay (``t // 1 == t / 1``)."""
        return replace(self, staircase=False) if self.staircase and self.decay_steps == 1 else self


@dataclass(frozen=True, slots=True)
class PolynomialDecay(_DecayFamily):
    """``lr(k) = min_lr + (peak_lr - min_lr) * (1 - k / decay_steps) ** power``, then ``min_lr``.

    >>> s = PolynomialDecay(peak_lr=1.0, decay_steps=4, power=2.0)
    >>> [s(k) for k in (0, 2, 4, 9)]
    [1.0, 0.25, 0.0, 0.0]
    """

    peak_lr: float
    decay_steps: int
    min_lr: float = 0.0
    power: float = 1.0
    type_name: ClassVar[str] = "polynomial"
    _shape: Shape = field(init=False, repr=False, compare=False)

    def _check_shape(self, c: Checks) -> None:
        c.real("power", low=0.0, low_open=True)

    def _bind(self) -> None:
        object.__setattr__(self, "_shape", Shape("power", power=self.power))


@dataclass(frozen=True, slots=True)
class CosineDecay(_DecayFamily):
    """Cosine from ``peak_lr`` to the floor ``min_lr`` over ``decay_steps``.

    ``lr(k) = min_lr + (peak_lr - min_lr) * (1 + cos(pi * k / decay_steps)) / 2``
    for ``k <= decay_steps``, then ``min_lr``. Evaluated without cancellation
    (see ``_shapes``): exact at both ends, a few ulp everywhere.

    >>> s = CosineDecay(peak_lr=1.0, min_lr=0.1, decay_steps=10)
    >>> s(0), s(5), s(10), s(11)
    (1.0, 0.55, 0.1, 0.1)
    """

    peak_lr: float
    decay_steps: int
    min_lr: float = 0.0
    type_name: ClassVar[str] = "cosine"
    _shape: ClassVar[Shape] = _COSINE


@dataclass(frozen=True, slots=True)
class _InverseSqrtDecay(Schedule):
    """The decay of :class:`InverseSqrt` (which checks the fields): ``peak_lr * sqrt(timescale / (timescale + k))``."""

    peak_lr: float
    timescale: int

    @property
    def end_step(self) -> None:
        return None

    def _make_f(self):
        peak, ts = self.peak_lr, self.timescale
        return lambda k: float(peak * np.sqrt(ts / (ts + k)))  # int / int: correctly rounded

    def _values(self, steps: np.ndarray) -> np.ndarray:
        return self.peak_lr * np.sqrt(self.timescale / (self.timescale + steps))


@dataclass(frozen=True, slots=True)
class InverseSqrt(Composed):
    """Linear warmup to ``peak_lr``, then ``peak_lr * sqrt(timescale / (timescale + k - warmup_steps))``.

    ``timescale`` defaults to ``warmup_steps``; then the decay is
    ``peak_lr * sqrt(warmup_steps / k)``, the original Transformer form (see
    :class:`~lrtempo.schedules.Noam` for its ``d_model`` parameterisation). It
    never ends. It is the decay behind a :class:`~lrtempo.schedules.Warmup`
    of ``warmup_steps`` (linear from 0).

    >>> s = InverseSqrt(peak_lr=1.0, warmup_steps=4)
    >>> [s(k) for k in (0, 2, 4, 16)]
    [0.0, 0.5, 1.0, 0.5]
    >>> InverseSqrt(peak_lr=1.0, timescale=3)(9)
    0.5
    """

    peak_lr: float
    warmup_steps: int = 0
    timescale: int | None = None
    type_name: ClassVar[str] = "inverse_sqrt"
    _ts: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        c = Checks(self)
        c.real("peak_lr", low=0.0)
        c.integer("warmup_steps", low=0)
        c.optional_integer("timescale", low=1)
        if self.timescale is None and c.ok("warmup_steps") and self.warmup_steps == 0:
            c.fail("timescale", "must be given when warmup_steps is 0")
        c.done()
        ts = self.timescale if self.timescale is not None else self.warmup_steps
        object.__setattr__(self, "_ts", ts)
        from ._combinators import Warmup  # here: the combinators' classes register after the families'

        object.__setattr__(self, "_inner", Warmup(_InverseSqrtDecay(self.peak_lr, ts), self.warmup_steps))

    def _endless_horizon(self) -> int:
        return self.warmup_steps + 10 * self._ts

    def _phases(self, horizon: int) -> list[Phase]:
        w = self.warmup_steps
        return [Phase("warmup", 0, w, "warmup"), Phase("decay", w, None, "decay")]


@dataclass(frozen=True, slots=True)
class TanhDecay(_DecayFamily):
    """tanh decay from ``peak_lr`` to ``min_lr`` over ``decay_steps``.

    ``u = lower + (upper - lower) * k / decay_steps``;
    ``lr = peak_lr - (peak_lr - min_lr) * (tanh(u) - tanh(lower)) / (tanh(upper) - tanh(lower))``.
    Normalised, so it is exactly ``peak_lr`` at 0 and ``min_lr`` at the end (timm's
    un-normalised form is ``compat``).

    >>> s = TanhDecay(peak_lr=1.0, decay_steps=10)
    >>> s(0), s(10), round(s(7), 6)
    (1.0, 0.0, 0.498761)
    """

    peak_lr: float
    decay_steps: int
    min_lr: float = 0.0
    lower: float = -7.0
    upper: float = 3.0
    type_name: ClassVar[str] = "tanh"
    _shape: Shape = field(init=False, repr=False, compare=False)

    def _check_shape(self, c: Checks) -> None:
        c.real("lower", low=-30.0)
        c.real("upper", high=30.0)
        c.order("lower", "upper", strict=True)

    def _bind(self) -> None:
        object.__setattr__(self, "_shape", Shape("tanh", lower=self.lower, upper=self.upper))


@dataclass(frozen=True, slots=True)
class Cyclic(Schedule):
    """Cyclical rate between ``base_lr`` and ``max_lr`` (Smith's CLR).

    A cycle is ``step_size_up`` steps up then ``step_size_down`` (default: the
    same) down. With ``c = k // (up + down)`` and ``j = k % (up + down)``:
    ``lr = base_lr + (max_lr - base_lr) * frac * amplitude`` where ``frac`` is
    ``j / up`` going up and ``(up + down - j) / down`` going down, and the
    amplitude is 1 (``triangular``), ``0.5 ** c`` (``triangular2``) or
    ``gamma ** k`` (``exp_range``). It never ends.

    >>> s = Cyclic(base_lr=0.1, max_lr=1.0, step_size_up=2)
    >>> [round(s(k), 3) for k in range(5)]
    [0.1, 0.55, 1.0, 0.55, 0.1]
    """

    base_lr: float
    max_lr: float
    step_size_up: int
    step_size_down: int | None = None
    mode: str = "triangular"
    gamma: float = 1.0
    type_name: ClassVar[str] = "cyclic"
    period_fields: ClassVar[tuple[str, ...]] = ("step_size_up",)
    field_choices: ClassVar[dict] = {"mode": ("triangular", "triangular2", "exp_range")}
    _down: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        c = Checks(self)
        c.real("base_lr", low=0.0)
        c.real("max_lr", low=0.0)
        c.integer("step_size_up", low=1)
        c.optional_integer("step_size_down", low=1)
        c.choice("mode", self.field_choices["mode"])
        c.real("gamma", low=0.0, low_open=True, high=1.0)
        c.order("base_lr", "max_lr")
        c.done()
        down = self.step_size_down if self.step_size_down is not None else self.step_size_up
        object.__setattr__(self, "_down", down)

    @property
    def end_step(self) -> int | None:
        return 0 if self.base_lr == self.max_lr else None

    def _amplitude(self, step, cycle):
        if self.mode == "triangular2":
            return np.power(0.5, cycle)
        if self.mode == "exp_range":
            return np.power(self.gamma, step)
        return 1.0

    def _values(self, steps: np.ndarray) -> np.ndarray:
        up, period = self.step_size_up, self.step_size_up + self._down
        cycle, j = np.divmod(steps, period)
        frac = np.where(j <= up, j / up, (period - j) / self._down)
        return self.base_lr + (self.max_lr - self.base_lr) * frac * self._amplitude(steps, cycle)

    def _endless_horizon(self) -> int:
        return 3 * (self.step_size_up + self._down)

    def _phases(self, horizon: int) -> list[Phase]:
        period = self.step_size_up + self._down
        out = []
        for i in range(-(-horizon // period)):
            out.append(Phase(f"cycle {i} up", i * period, i * period + self.step_size_up, "cycle"))
            out.append(Phase(f"cycle {i} down", i * period + self.step_size_up, (i + 1) * period, "decay"))
        return out


@dataclass(frozen=True, slots=True)
class OneCycle(Schedule):
    """Smith's one-cycle policy.

    ``initial = max_lr / div_factor``, ``final = initial / final_div_factor``,
    ``up = round(pct_start * total_steps)`` (see :func:`steps_from_fraction`).
    Two phases: ``initial -> max_lr`` over ``[0, up]``, ``max_lr -> final``
    over ``[up, total_steps]``. Three phases: ``initial -> max_lr`` over
    ``[0, up]``, ``max_lr -> initial`` over ``[up, 2 up]``, ``initial -> final``
    over ``[2 up, total_steps]``. Each ramp has the ``anneal`` shape (cosine or
    linear). ``final`` is held from ``total_steps`` on.

    >>> s = OneCycle(max_lr=1.0, total_steps=10, pct_start=0.3, anneal="linear", div_factor=10.0)
    >>> s(0), s(3), s(10)
    (0.1, 1.0, 1e-05)
    """

    max_lr: float
    total_steps: int
    pct_start: float = 0.3
    anneal: str = "cosine"
    div_factor: float = 25.0
    final_div_factor: float = 1e4
    three_phase: bool = False
    type_name: ClassVar[str] = "one_cycle"
    field_choices: ClassVar[dict] = {"anneal": shape_names("cosine", "linear")}
    _up: int = field(init=False, repr=False, compare=False)
    _legs: tuple = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        c = Checks(self)
        c.real("max_lr", low=0.0)
        c.integer("total_steps", low=2)
        c.real("pct_start", low=0.0, low_open=True, high=1.0, high_open=True)
        c.choice("anneal", self.field_choices["anneal"])
        c.real("div_factor", low=1.0)
        c.real("final_div_factor", low=1.0)
        c.boolean("three_phase")
        c.done()
        up = steps_from_fraction(self.pct_start, self.total_steps)
        legs_needed = 2 if self.three_phase else 1
        if up < 1 or legs_needed * up >= self.total_steps:
            need = "2 * pct_start * total_steps" if self.three_phase else "pct_start * total_steps"
            c.fail("pct_start", f"{need} must round to at least 1 step and leave at least 1 step "
                   f"for the last phase (got {up} warmup steps of {self.total_steps})")
            c.done()
        initial = self.max_lr / self.div_factor
        final = initial / self.final_div_factor
        shape = Shape(self.anneal)
        if self.three_phase:
            legs = ((0, up, initial, self.max_lr), (up, up, self.max_lr, initial),
                    (2 * up, self.total_steps - 2 * up, initial, final))
        else:
            legs = ((0, up, initial, self.max_lr), (up, self.total_steps - up, self.max_lr, final))
        object.__setattr__(self, "_up", up)
        object.__setattr__(self, "_legs", tuple((start, n, a, b, shape) for start, n, a, b in legs))

    @property
    def end_step(self) -> int:
        return self.total_steps

    def _make_f(self):
        legs = tuple((start, make_ramp(shape, a, b, n)) for start, n, a, b, shape in reversed(self._legs))

        def one_cycle(k: int) -> float:
            for start, leg in legs:
                if k >= start:
                    return leg(k - start)
            raise AssertionError("unreachable")  # pragma: no cover

        return one_cycle

    def _values(self, steps: np.ndarray) -> np.ndarray:
        starts = tuple(leg[0] for leg in self._legs)
        evs = tuple((lambda k, leg=leg: ramp_values(leg[4], leg[2], leg[3], k, leg[1])) for leg in self._legs)
        return piecewise_values(steps, starts, evs)

    def _phases(self, horizon: int) -> list[Phase]:
        names = ("warmup", "anneal down", "annihilate") if self.three_phase else ("warmup", "anneal")
        kinds = ("warmup", "decay", "decay")
        return [Phase(name, start, start + n, kind) for name, kind, (start, n, *_rest) in zip(names, kinds, self._legs)]
