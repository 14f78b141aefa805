"""Composer's schedulers (``composer.optim.scheduler``), value for value, as Composer's Trainer applies them.

A Composer scheduler is a function of the trainer's state returning a factor
of the optimizer's lr; the Trainer wraps it in a ``LambdaLR``. Durations are
Composer time strings (``"10ba"``, ``"2ep"``, ``"0.1dur"``), converted to
batches with ``context.max_duration`` and ``context.batches_per_epoch`` as
Composer's ``_convert_time`` converts them (``ep`` times the batches per
epoch; ``dur`` a fraction of ``max_duration``, truncated with ``int``).

Which batch count the factor sees: the ``LambdaLR`` is built with the
timestamp at batch 0, and the Trainer calls ``scheduler.step()`` after each
batch *before* it advances the timestamp, so batch ``k >= 1`` runs at the factor
for ``k - 1`` and batch 0 at the factor for 0. Value at step ``k`` = ``base_lr
* factor(max(k - 1, 0))``. Training stops at ``max_duration``: compat raises
past its last batch.
"""

from __future__ import annotations

import math
import re

import numpy as np

from .._base import MAX_STEPS
from ._common import MISSING, CompatError, Impl, Kwargs, build

_R = MISSING

_TIME = re.compile(r"^(.+?)(ba|ep|dur|sp|tok|iter)$", re.IGNORECASE)


class _Clock:
    """The run's length and epoch size (``context``), and Composer's conversion of time strings to batches."""

    def __init__(self, context: dict):
        problems = [(f"context.{k}", "unknown key (Composer's context takes: max_duration, batches_per_epoch)")
                    for k in context if k not in ("max_duration", "batches_per_epoch")]
        self.per_epoch = context.get("batches_per_epoch")
        if self.per_epoch is not None and (not isinstance(self.per_epoch, int) or isinstance(self.per_epoch, bool)
                                           or not 1 <= self.per_epoch <= MAX_STEPS):
            problems.append(("context.batches_per_epoch", f"must be a whole number from 1 to 2**53 "
                                                          f"(got {self.per_epoch!r})"[:200]))
            self.per_epoch = None
        raw = context.get("max_duration")
        self.max_value, self.max_unit = None, None
        if raw is None:
            problems.append(("context.max_duration", "missing: Composer's schedulers need the Trainer's "
                                                     "max_duration, e.g. '100ba' or '3ep'"))
        else:
            try:
                self.max_value, self.max_unit = _parse(raw)
                if self.max_unit not in ("ba", "ep") or self.max_value <= 0:
                    raise ValueError("must be a positive number of batches or epochs ('100ba', '3ep')")
                if self.max_unit == "ep" and self.per_epoch is None:
                    raise ValueError("is in epochs: give context.batches_per_epoch too")
            except ValueError as exc:
                problems.append(("context.max_duration", f"{exc} (got {raw!r})"[:200]))
                self.max_value = None
        if problems:
            raise CompatError(problems)
        self.total = self.max_value * self.per_epoch if self.max_unit == "ep" else self.max_value

    def batches(self, kw: Kwargs, name: str, value) -> int | None:
        """``_convert_time`` of one time string into batches (a problem recorded where Composer would fail)."""
        try:
            number, unit = _parse(value)
        except ValueError as exc:
            kw.fail(name, f"{exc} (got {value!r})"[:200])
            return None
        if unit == "dur":
            if self.max_unit == "ep":
                return int(number * int(self.per_epoch) * self.max_value)
            return int(number * self.max_value)
        if unit == "ep":
            if self.per_epoch is None:
                kw.fail(name, f"{value!r} is in epochs: give context.batches_per_epoch (Composer converts epochs "
                              "with the dataloader's length)")
                return None
            return number * self.per_epoch
        if unit != "ba":
            kw.fail(name, f"{value!r}: compat counts batches; give a duration in 'ba', 'ep' or 'dur' (samples, "
                          "tokens and iterations depend on the data)")
            return None
        return number


def _parse(value) -> tuple[float | int, str]:
    """Composer's ``Time.from_timestring``: a number (scientific notation allowed) and a unit; whole unless ``dur``."""
    match = _TIME.match(value) if isinstance(value, str) else None
    if match is None:
        raise ValueError("must be a Composer time string: a number and a unit, e.g. '100ba', '2ep', '0.1dur'")
    try:
        number = float(match.group(1))
    except ValueError:
        raise ValueError(f"{match.group(1)!r} is not a number") from None
    unit = match.group(2).lower()
    if not math.isfinite(number) or abs(number) > MAX_STEPS:
        raise ValueError("its number must be finite and within 2**53")
    if unit != "dur":
        if int(number) != number:
            raise ValueError(f"{unit} requires a whole number (Composer raises)")
        number = int(number)
    return number, unit


def _div(b: np.ndarray, span: int, what: str) -> np.ndarray:
    """``b / span`` (Composer's Time division), refused where Composer divides by zero."""
    if span == 0:
        raise CompatError([(f"kwargs.{what}", "is 0 batches: Composer divides by it (ZeroDivisionError)")])
    return b / span


def _cosine_anneal(x, min_y: float):
    x = np.minimum(np.maximum(x, 0.0), 1.0)
    return min_y + (1.0 - min_y) * (1 + np.cos(x * math.pi)) / 2


def _time_arg(kw: Kwargs, clock: _Clock, name: str) -> int | None:
    value = kw.raw_value(name)
    return None if value is None else clock.batches(kw, name, value)


def _step(kw: Kwargs, clock: _Clock):
    size, gamma = _time_arg(kw, clock, "step_size"), kw.number("gamma")
    kw.done()
    return (lambda b: np.power(gamma, np.trunc(_div(b, size, "step_size")))), [size]


def _products(gamma: float, n: int) -> np.ndarray:
    """``1.0 * gamma * gamma ...`` (i factors) for i = 0..n, multiplied one at a time as Composer does."""
    out, factor = [1.0], 1.0
    for _ in range(n):
        factor *= gamma
        out.append(factor)
    return np.asarray(out)


def _milestones(kw: Kwargs, clock: _Clock) -> list[int] | None:
    raw = kw.raw_value("milestones")
    if not isinstance(raw, list):
        kw.fail("milestones", f"must be a list of Composer time strings (got {raw!r})"[:200])
        return None
    marks = [clock.batches(kw, f"milestones[{i}]", m) for i, m in enumerate(raw)]
    return None if None in marks else marks


def _multistep_factor(marks: list[int], gamma: float):
    table, arr = _products(gamma, len(marks)), np.asarray(marks, dtype=np.float64)
    return lambda b: table[(b[:, None] >= arr[None, :]).sum(axis=1)] if marks else np.ones(b.shape)


def _multistep(kw: Kwargs, clock: _Clock):
    marks, gamma = _milestones(kw, clock), kw.number("gamma")
    kw.done()
    return _multistep_factor(marks, gamma), marks


def _constant(kw: Kwargs, clock: _Clock):
    alpha, t_max = kw.number("alpha"), _time_arg(kw, clock, "t_max")
    kw.done()
    return (lambda b: np.where(b < t_max, float(alpha), 1.0)), [t_max]


def _linear(kw: Kwargs, clock: _Clock):
    a_i, a_f, t_max = kw.number("alpha_i"), kw.number("alpha_f"), _time_arg(kw, clock, "t_max")
    kw.done()
    return (lambda b: a_i + np.minimum(1.0, _div(b, t_max, "t_max")) * (a_f - a_i)), [t_max]


def _exponential(kw: Kwargs, clock: _Clock):
    gamma, period = kw.number("gamma"), _time_arg(kw, clock, "decay_period")
    kw.done()
    return (lambda b: np.power(gamma, _div(b, period, "decay_period"))), [period]


def _cosine(kw: Kwargs, clock: _Clock):
    t_max, alpha = _time_arg(kw, clock, "t_max"), kw.number("alpha_f")
    kw.done()
    return (lambda b: _cosine_anneal(_div(b, t_max, "t_max"), alpha)), [t_max]


def _polynomial(kw: Kwargs, clock: _Clock):
    power, t_max, alpha = kw.number("power"), _time_arg(kw, clock, "t_max"), kw.number("alpha_f")
    kw.done()

    def factor(b):
        frac = np.minimum(1.0, _div(b, t_max, "t_max"))
        return alpha + np.power(1 - frac, power) * (1.0 - alpha)

    return factor, [t_max]


def _restarts(kw: Kwargs, clock: _Clock):
    """Intervals of ``t_0``, then ``int(t_mult * previous)`` batches each, walked as Composer walks them; where
    an interval has shrunk to 0 batches Composer raises, so compat raises from there on."""
    t_0, t_mult, alpha = _time_arg(kw, clock, "t_0"), kw.number("t_mult"), kw.number("alpha_f")
    if t_0 is not None and t_0 < 0:
        kw.fail("t_0", f"must be >= 0 batches (Composer's restart loop never ends on a negative interval; got {t_0})")
    if t_mult is not None and t_mult < 0:
        kw.fail("t_mult", f"must be >= 0 (a negative factor makes Composer's restart loop walk backwards; got "
                          f"{t_mult})")
    kw.done()
    ends, lengths, length, end = [t_0], [t_0], t_0, t_0
    dead = None  # the first batch count at which Composer raises
    while end <= clock.total + 1:
        if length == 0:
            dead = end
            break
        new = int(t_mult * length)
        if new == length:  # a fixed point: every later interval has this length
            break
        length, end = new, end + new
        ends.append(end)
        lengths.append(length)
    ends_arr, lengths_arr = np.asarray(ends, dtype=np.int64), np.asarray(lengths, dtype=np.int64)

    def factor(b):
        if dead is not None and b.size and int(b.max()) >= dead:
            raise CompatError([("kwargs.t_mult", f"the interval between restarts shrinks to 0 batches at batch "
                                                 f"{dead} (Composer raises there)")])
        i = np.searchsorted(ends_arr, b, side="right")  # the first interval whose end is past b
        past = i >= len(ends)
        i = np.minimum(i, len(ends) - 1)
        end, length = ends_arr[i], lengths_arr[i]
        if past.any():  # beyond the walked intervals every interval has the last length
            extra = (b[past] - ends_arr[-1]) // lengths_arr[-1] + 1
            end = end.copy()
            end[past] = ends_arr[-1] + extra * lengths_arr[-1]
        start = end - length
        return _cosine_anneal((b - start) / length, alpha)

    return factor, [*ends[:64]]


def _warm(b, w: int, top: float):
    """The warmup, Composer's ``LinearScheduler(alpha_i=0.0, alpha_f=top, t_max=t_warmup)``."""
    return 0.0 + np.minimum(1.0, b / w) * (top - 0.0)


def _after_warmup(kw: Kwargs, clock: _Clock, shape: str):
    """LinearWithWarmup, ConstantWithWarmup, CosineAnnealingWithWarmup, PolynomialWithWarmup."""
    w, t_max = _time_arg(kw, clock, "t_warmup"), _time_arg(kw, clock, "t_max")
    kw.boolean("scale_warmup")
    if shape == "constant":
        a_i = a_f = kw.number("alpha")
    elif shape == "linear":
        a_i, a_f = kw.number("alpha_i"), kw.number("alpha_f")
    else:
        a_i, a_f = 1.0, kw.number("alpha_f")
    power = kw.number("power") if shape == "poly" else None
    if t_max is not None and t_max < clock.total:
        kw.fail("t_max", f"is {t_max} batches, shorter than max_duration ({clock.total} batches); Composer raises: "
                         "t_max must be greater than or equal to max_duration")
    kw.done()

    def factor(b):
        frac = np.minimum(1.0, (b - w) / (t_max - w)) if t_max > w else np.zeros(b.shape)
        if shape == "cos":
            late = _cosine_anneal(frac, a_f)
        elif shape == "poly":
            late = a_f + np.power(1 - frac, power) * (1.0 - a_f)
        else:
            late = a_i + frac * (a_f - a_i)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(b < w, _warm(b, w, a_i), late)

    return factor, [w, t_max]


def _multistep_warmup(kw: Kwargs, clock: _Clock):
    w, marks, gamma = _time_arg(kw, clock, "t_warmup"), _milestones(kw, clock), kw.number("gamma")
    kw.boolean("scale_warmup")
    kw.done()
    steps = _multistep_factor(marks, gamma)

    def factor(b):
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(b < w, _warm(b, w, 1.0), steps(b))

    return factor, [w, *marks]


_WARMUP = {"t_warmup": _R}
COMPOSER = {
    "StepScheduler": ({"step_size": _R, "gamma": 0.1}, _step),
    "MultiStepScheduler": ({"milestones": _R, "gamma": 0.1}, _multistep),
    "ConstantScheduler": ({"alpha": 1.0, "t_max": "1dur"}, _constant),
    "LinearScheduler": ({"alpha_i": 1.0, "alpha_f": 0.0, "t_max": "1dur"}, _linear),
    "ExponentialScheduler": ({"gamma": _R, "decay_period": "1ep"}, _exponential),
    "CosineAnnealingScheduler": ({"t_max": "1dur", "alpha_f": 0.0}, _cosine),
    "CosineAnnealingWarmRestartsScheduler": ({"t_0": _R, "t_mult": 1.0, "alpha_f": 0.0}, _restarts),
    "PolynomialScheduler": ({"power": _R, "t_max": "1dur", "alpha_f": 0.0}, _polynomial),
    "MultiStepWithWarmupScheduler": ({**_WARMUP, "milestones": _R, "gamma": 0.1, "scale_warmup": False},
                                     _multistep_warmup),
    "ConstantWithWarmupScheduler": ({**_WARMUP, "alpha": 1.0, "t_max": "1dur", "scale_warmup": False},
                                    lambda kw, c: _after_warmup(kw, c, "constant")),
    "LinearWithWarmupScheduler": ({**_WARMUP, "alpha_i": 1.0, "alpha_f": 0.0, "t_max": "1dur",
                                   "scale_warmup": False}, lambda kw, c: _after_warmup(kw, c, "linear")),
    "CosineAnnealingWithWarmupScheduler": ({**_WARMUP, "t_max": "1dur", "alpha_f": 0.0, "scale_warmup": False},
                                           lambda kw, c: _after_warmup(kw, c, "cos")),
    "PolynomialWithWarmupScheduler": ({**_WARMUP, "power": 2.0, "t_max": "1dur", "alpha_f": 0.0,
                                       "scale_warmup": False}, lambda kw, c: _after_warmup(kw, c, "poly")),
}

_WARMUPS = ("MultiStepWithWarmupScheduler", "ConstantWithWarmupScheduler", "LinearWithWarmupScheduler",
            "CosineAnnealingWithWarmupScheduler", "PolynomialWithWarmupScheduler")


def make(name: str, kwargs: dict, base: float, context: dict) -> Impl:
    clock = _Clock(context)
    factor, marks = build("composer", COMPOSER, name, kwargs, clock)
    last = clock.total - 1

    def values(k: np.ndarray) -> np.ndarray:
        if k.size and int(k.max()) > last:
            raise ValueError(f"{name}: step {int(k.max())} is past Composer's last batch, max_duration - 1 = {last} "
                             "(the Trainer stops at max_duration)")
        b = np.maximum(k.astype(np.int64) - 1, 0)  # batch k runs at the factor the Trainer computed after k - 1
        return base * factor(b)

    # the Trainer computes the factor for every batch count 0..max_duration - 1 (the last one after the last
    # batch, for a batch that never runs): where Composer raises on one of them, fail now
    probe = sorted({min(max(m + d, 0), last) for m in [0, last, *(x for x in marks if x is not None)]
                    for d in (-1, 0, 1)})
    factor(np.asarray(probe, dtype=np.int64))
    phases = ()
    if name in _WARMUPS:
        w = min(max(marks[0] + 1, 0), clock.total)
        phases = tuple(p for p in (("warmup", 0, w), ("decay", w, None)) if p[2] is None or p[1] < p[2])
    return Impl(values, last, last_valid_step=last, phases=phases)
