"""Keras 3 schedules (``keras.optimizers.schedules``), value for value, in float64.

A Keras optimizer calls its schedule with ``optimizer.iterations``, the number
of updates already applied, so update ``k`` (0-based) runs at
``schedule(k)``. The schedules carry their own rates
(``initial_learning_rate``, ``values``): no ``base_lr``. Keras computes in
its ``floatx`` (float32 by default); compat computes the same formulas in
float64.
"""

from __future__ import annotations

import math

import numpy as np

from ._common import MISSING, CompatError, Impl, Kwargs, build, steps_horizon

_R = MISSING


def _name(kw: Kwargs) -> None:
    kw._valid("name", lambda v: isinstance(v, str), lambda v: f"must be a string (got {v!r})")


def _positive(kw: Kwargs, name: str) -> float | None:
    value = kw.number(name)
    if value is not None and value <= 0:
        kw.fail(name, f"must be > 0 (Keras raises: Argument `{name}` must be > 0; got {value})")
    return value


def _p(k: np.ndarray, decay_steps: float, staircase: bool) -> np.ndarray:
    p = k / float(decay_steps)
    return np.floor(p) if staircase else p


def _exponential(kw: Kwargs) -> Impl:
    """``initial_learning_rate * decay_rate ** (step / decay_steps)`` (the exponent floored with ``staircase``)."""
    init, steps, rate = kw.number("initial_learning_rate"), _positive(kw, "decay_steps"), kw.number("decay_rate")
    staircase = kw.boolean("staircase")
    _name(kw)
    kw.done()
    return Impl(lambda k: init * np.power(float(rate), _p(k, steps, staircase)), steps_horizon(10 * steps))


def _inverse_time(kw: Kwargs) -> Impl:
    """``initial_learning_rate / (1 + decay_rate * step / decay_steps)`` (floored with ``staircase``)."""
    init, steps, rate = kw.number("initial_learning_rate"), _positive(kw, "decay_steps"), kw.number("decay_rate")
    staircase = kw.boolean("staircase")
    _name(kw)
    kw.done()
    return Impl(lambda k: init / (1.0 + rate * _p(k, steps, staircase)), steps_horizon(10 * steps))


def _piecewise(kw: Kwargs) -> Impl:
    """``values[0]`` for ``step <= boundaries[0]``, ``values[i]`` on ``(boundaries[i-1], boundaries[i]]``,
    ``values[-1]`` past the last: Keras sums one indicator per range, which compat sums the same way (so
    unsorted boundaries add up as they do in Keras). Boundaries are truncated to integers, as Keras casts them."""
    bounds, values = kw.raw_value("boundaries"), kw.raw_value("values")
    ok = True
    for name, seq in (("boundaries", bounds), ("values", values)):
        if not isinstance(seq, list) or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                and math.isfinite(v) for v in seq):
            kw.fail(name, f"must be a list of finite numbers (got {seq!r})"[:200])
            ok = False
    if ok and len(bounds) != len(values) - 1:
        kw.fail("boundaries", f"the length of boundaries should be 1 less than the length of values (Keras raises; "
                              f"got {len(bounds)} boundaries and {len(values)} values)")
    elif ok and not bounds:
        kw.fail("boundaries", "must not be empty (Keras indexes boundaries[0] when it computes a rate)")
    elif ok and isinstance(values[0], int):
        kw.fail("values", f"values[0] must be a float such as {float(values[0])!r} (Keras gives every rate the "
                          f"dtype of values[0]: an integer there makes the rates integers; got {values[0]!r})")
    elif ok and any(abs(x) >= 2**53 for x in bounds):
        kw.fail("boundaries", "every boundary must be within -2**53..2**53, the longest schedule")
    _name(kw)
    kw.done()
    b = [float(math.trunc(x)) for x in bounds]  # Keras casts the boundaries to the step's integer dtype

    def rate(k: np.ndarray) -> np.ndarray:
        out = (k <= b[0]) * float(values[0]) + (k > b[-1]) * float(values[-1])
        for low, high, value in zip(b[:-1], b[1:], values[1:-1]):
            out = out + ((k > low) & (k <= high)) * float(value)
        return out

    marks = [int(x) + 1 for x in b]
    return Impl(rate, steps_horizon(*(m * 5 // 4 + 1 for m in marks), 10))


def _polynomial(kw: Kwargs) -> Impl:
    """``(init - end) * (1 - step / decay_steps) ** power + end``, the step capped at ``decay_steps``; with
    ``cycle`` the decay restarts over ``decay_steps * ceil(step / decay_steps)`` (1 at step 0)."""
    init, steps = kw.number("initial_learning_rate"), _positive(kw, "decay_steps")
    end, power, cycle = kw.number("end_learning_rate"), kw.number("power"), kw.boolean("cycle")
    _name(kw)
    kw.done()

    def rate(k: np.ndarray) -> np.ndarray:
        s = k.astype(np.float64)
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
            if cycle:
                span = steps * np.where(s == 0, 1.0, np.ceil(s / steps))
            else:
                s, span = np.minimum(s, steps), float(steps)
            return (init - end) * np.power(1 - s / span, power) + end

    return Impl(rate, steps_horizon(steps), phases=() if cycle else (("decay", 0, math.ceil(steps)),
                                                                    ("constant", math.ceil(steps), None)))


def _cosine(kw: Kwargs) -> Impl:
    """Without ``warmup_target``: ``init * ((1 - alpha) * (1 + cos(pi * min(step, D) / D)) / 2 + alpha)``. With it:
    a linear warmup from ``init`` to ``warmup_target`` over ``warmup_steps``, then that cosine from the target."""
    init, steps, alpha = kw.number("initial_learning_rate"), _positive(kw, "decay_steps"), kw.number("alpha")
    target, warmup = kw.number("warmup_target", allow_none=True), kw.number("warmup_steps")
    _name(kw)
    kw.done()

    def decay(s, peak):
        cosine = 0.5 * (1.0 + np.cos(math.pi * (s / steps)))
        return peak * ((1 - alpha) * cosine + alpha)

    def rate(k: np.ndarray) -> np.ndarray:
        s = k.astype(np.float64)
        if target is None:
            return decay(np.minimum(s, steps), init)
        s = np.minimum(s, steps + warmup)
        with np.errstate(divide="ignore", invalid="ignore"):
            warm = (target - init) * (s / warmup) + init
        return np.where(s < warmup, warm, decay(s - warmup, target))

    w = 0 if target is None else max(0, math.ceil(warmup))
    phases = (("warmup", 0, w), ("decay", w, w + math.ceil(steps)), ("constant", w + math.ceil(steps), None))
    return Impl(rate, steps_horizon(w + steps), phases=tuple(p for p in phases if p[2] is None or p[1] < p[2]))


def _restarts(kw: Kwargs) -> Impl:
    """SGDR: cycle ``i`` of ``first_decay_steps * t_mul ** i`` steps, located with Keras' logarithm when
    ``t_mul != 1``; ``init * ((1 - alpha) * m_mul ** i * (1 + cos(pi * f)) / 2 + alpha)``."""
    init, first, alpha = kw.number("initial_learning_rate"), _positive(kw, "first_decay_steps"), kw.number("alpha")
    t_mul, m_mul = kw.number("t_mul"), kw.number("m_mul")
    _name(kw)
    kw.done()

    def rate(k: np.ndarray) -> np.ndarray:
        f = k.astype(np.float64) / first
        with np.errstate(divide="ignore", invalid="ignore"):
            if t_mul == 1.0:
                i = np.floor(f)
                f = f - i
            else:
                i = np.floor(np.log(1.0 - f * (1.0 - t_mul)) / math.log(t_mul))
                f = (f - (1.0 - np.power(t_mul, i)) / (1.0 - t_mul)) / np.power(t_mul, i)
            cosine = 0.5 * np.power(m_mul, i) * (1.0 + np.cos(math.pi * f))
        return init * ((1 - alpha) * cosine + alpha)

    return Impl(rate, steps_horizon(first * (1 + t_mul + t_mul * t_mul)))


KERAS = {
    "ExponentialDecay": ({"initial_learning_rate": _R, "decay_steps": _R, "decay_rate": _R, "staircase": False,
                          "name": "ExponentialDecay"}, _exponential),
    "PiecewiseConstantDecay": ({"boundaries": _R, "values": _R, "name": "PiecewiseConstant"}, _piecewise),
    "PolynomialDecay": ({"initial_learning_rate": _R, "decay_steps": _R, "end_learning_rate": 0.0001, "power": 1.0,
                         "cycle": False, "name": "PolynomialDecay"}, _polynomial),
    "InverseTimeDecay": ({"initial_learning_rate": _R, "decay_steps": _R, "decay_rate": _R, "staircase": False,
                          "name": "InverseTimeDecay"}, _inverse_time),
    "CosineDecay": ({"initial_learning_rate": _R, "decay_steps": _R, "alpha": 0.0, "name": "CosineDecay",
                     "warmup_target": None, "warmup_steps": 0}, _cosine),
    "CosineDecayRestarts": ({"initial_learning_rate": _R, "first_decay_steps": _R, "t_mul": 2.0, "m_mul": 1.0,
                             "alpha": 0.0, "name": "SGDRDecay"}, _restarts),
}


def make(name: str, kwargs: dict) -> Impl:
    if name == "LearningRateSchedule":
        raise CompatError([("name", "LearningRateSchedule is Keras' base class (a schedule written in code); "
                                    f"compat reproduces the named schedules: {', '.join(KERAS)}")])
    return build("keras", KERAS, name, kwargs)
