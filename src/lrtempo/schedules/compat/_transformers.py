"""Hugging Face ``transformers`` schedules (``transformers.optimization``), value for value.

Each is a ``LambdaLR``: value at step ``k`` = ``base_lr * lr_lambda(k)``, with
``base_lr`` the optimizer's lr. Warmup starts at 0, ``num_training_steps``
includes the warmup, and past the end the lambdas keep their formula (the
cosine swings back up; linear and hard-restarts hold 0).
"""

from __future__ import annotations

import math

import numpy as np

from .._base import did_you_mean
from ._common import MISSING, CompatError, Impl, Kwargs, build, steps_horizon

_R = MISSING


def _warm(k: np.ndarray, w: int) -> np.ndarray:
    return k / float(max(1, w))


def _constant(kw: Kwargs, base: float) -> Impl:
    kw.done()
    return Impl(lambda k: np.full(k.shape, base * 1.0), 10)


def _constant_warmup(kw: Kwargs, base: float) -> Impl:
    w = kw.integer("num_warmup_steps")
    kw.done()
    return Impl(lambda k: base * np.where(k < w, k / float(max(1.0, w)), 1.0), steps_horizon(2 * w, 10),
                phases=(("warmup", 0, w), ("constant", w, None)))


def _warmup_then(base: float, lam, w: int, t: int) -> Impl:
    """``base * lam(k)``: a warmup over ``[0, w)`` and a decay over ``[w, t)``."""
    return Impl(lambda k: base * lam(k), steps_horizon(t, w), phases=(("warmup", 0, w), ("decay", w, t)))


def _linear(kw: Kwargs, base: float) -> Impl:
    w, t = kw.integer("num_warmup_steps"), kw.integer("num_training_steps")
    kw.done()

    def lam(k):
        return np.where(k < w, _warm(k, w), np.maximum(0.0, (t - k) / float(max(1, t - w))))

    return _warmup_then(base, lam, w, t)


def _waves(kw: Kwargs, base: float, wave) -> Impl:
    """The cosine forms: warmup, then ``wave(progress, num_cycles)`` with ``progress = (k - w) / (t - w)``."""
    w, t, cycles = kw.integer("num_warmup_steps"), kw.integer("num_training_steps"), kw.number("num_cycles")
    kw.done()

    def lam(k):
        progress = (k - w) / float(max(1, t - w))
        return np.where(k < w, _warm(k, w), wave(progress, float(cycles)))

    return _warmup_then(base, lam, w, t)


def _cosine_wave(progress, cycles: float):
    return np.maximum(0.0, 0.5 * (1.0 + np.cos(math.pi * cycles * 2.0 * progress)))


def _restart_wave(progress, cycles: float):
    wave = np.maximum(0.0, 0.5 * (1.0 + np.cos(math.pi * ((cycles * progress) % 1.0))))
    return np.where(progress >= 1.0, 0.0, wave)


def _cosine(kw: Kwargs, base: float) -> Impl:
    return _waves(kw, base, _cosine_wave)


def _hard_restarts(kw: Kwargs, base: float) -> Impl:
    return _waves(kw, base, _restart_wave)


def _polynomial(kw: Kwargs, base: float) -> Impl:
    w, t = kw.integer("num_warmup_steps"), kw.integer("num_training_steps")
    lr_end, power = kw.number("lr_end"), kw.number("power")
    if lr_end is not None and not base > lr_end:
        kw.fail("lr_end", f"lr_end ({lr_end}) must be smaller than initial lr ({base})")
    kw.done()
    lr_init = base

    def lam(k):
        decay_steps = t - w
        with np.errstate(divide="ignore", invalid="ignore"):
            pct_remaining = 1 - (k - w) / decay_steps if decay_steps else np.zeros(k.shape)
            decay = (lr_init - lr_end) * np.power(pct_remaining, power) + lr_end
        return np.where(k < w, _warm(k, w), np.where(k > t, lr_end / lr_init, decay / lr_init))

    if t == w:
        # transformers divides by num_training_steps - num_warmup_steps at step t
        def checked(k):
            if np.any(k == t) and t >= w:
                raise ValueError("get_polynomial_decay_schedule_with_warmup: num_training_steps == "
                                 "num_warmup_steps divides by zero at that step (transformers raises)")
            return base * lam(k)

        return Impl(checked, steps_horizon(t, w))
    return _warmup_then(base, lam, w, t)


def _inverse_sqrt(kw: Kwargs, base: float) -> Impl:
    w = kw.integer("num_warmup_steps")
    ts = kw.integer("timescale", allow_none=True)
    kw.done()
    if ts is None:
        ts = w or 10_000
    shift = ts - w

    def lam(k):
        with np.errstate(divide="ignore"):
            decay = 1.0 / np.sqrt((np.maximum(k, w) + shift) / ts)
        return np.where(k < w, _warm(k, w), decay)

    return Impl(lambda k: base * lam(k), steps_horizon(10 * max(w, 1), 10 * ts if ts < 10_000 else 0, 100),
                phases=(("warmup", 0, w), ("decay", w, None)))


def _min_lr_rate(kw: Kwargs, base: float) -> float | None:
    """``min_lr_rate``, or ``min_lr / base_lr`` (transformers divides by the optimizer's default lr)."""
    min_lr = kw.number("min_lr", allow_none=True)
    rate = kw.number("min_lr_rate", allow_none=True)
    if min_lr is not None and rate is not None:
        kw.fail("min_lr", "Only one of min_lr or min_lr_rate should be set")
    elif min_lr is not None:
        if base == 0:
            kw.fail("min_lr", "transformers divides min_lr by the optimizer's lr, which is 0 (ZeroDivisionError)")
            return None
        rate = min_lr / base
    elif rate is None:
        kw.fail("min_lr_rate", "One of min_lr or min_lr_rate should be set through the `lr_scheduler_kwargs`")
    return rate


def _cosine_min_lr(kw: Kwargs, base: float) -> Impl:
    w, t, cycles = kw.integer("num_warmup_steps"), kw.integer("num_training_steps"), kw.number("num_cycles")
    rate = _min_lr_rate(kw, base)
    kw.done()

    def lam(k):
        progress = (k - w) / float(max(1, t - w))
        factor = 0.5 * (1.0 + np.cos(math.pi * float(cycles) * 2.0 * progress))
        factor = factor * (1 - rate) + rate
        return np.where(k < w, _warm(k, w), np.maximum(0, factor))

    return _warmup_then(base, lam, w, t)


def _cosine_min_lr_rate(kw: Kwargs, base: float) -> Impl:
    """``get_cosine_with_min_lr_schedule_with_warmup_lr_rate``: its warmup starts above 0 and its
    decay is shifted one step earlier than the other cosines.

    warmup (``k < w``): ``(k + 1) / max(1, w)``, or with ``warmup_lr_rate = r``:
    ``r + (1 - r) * k / max(1, w - 1)``; then ``progress = (k - w + 1) / max(1, t - w)`` and
    ``max(0, rate + (1 - rate) * 0.5 * (1 + cos(2 pi num_cycles progress)))``.
    """
    w, t, cycles = kw.integer("num_warmup_steps"), kw.integer("num_training_steps"), kw.number("num_cycles")
    rate = _min_lr_rate(kw, base)
    warm_rate = kw.number("warmup_lr_rate", allow_none=True)
    kw.done()

    def lam(k):
        kf = k.astype(np.float64)
        if warm_rate is None:
            warm = (kf + 1.0) / max(1.0, float(w))
        else:
            warm = float(warm_rate) + (1.0 - float(warm_rate)) * kf / max(1, w - 1)
        progress = (kf - float(w) + 1.0) / max(1.0, float(t) - float(w))
        factor = 0.5 * (1.0 + np.cos(math.pi * float(cycles) * 2.0 * progress))
        factor = factor * (1 - rate) + rate
        return np.where(kf < w, warm, np.maximum(0, factor))

    return _warmup_then(base, lam, w, t)


_WSD_TYPES = ("linear", "cosine", "1-sqrt")


def _wsd(kw: Kwargs, base: float) -> Impl:
    w, d = kw.integer("num_warmup_steps"), kw.integer("num_decay_steps")
    t = kw.integer("num_training_steps", allow_none=True)
    s = kw.integer("num_stable_steps", allow_none=True)
    wt = kw.raw_value("warmup_type")
    dt = kw.raw_value("decay_type")
    ratio, cycles = kw.number("min_lr_ratio"), kw.number("num_cycles")
    if t is None and s is None:
        kw.fail("num_training_steps", "Either num_training_steps or num_stable_steps must be specified.")
    if wt not in _WSD_TYPES:
        kw.fail("warmup_type", f"Unknown warmup type: {wt}, expected 'linear', 'cosine' or '1-sqrt'")
    if dt not in _WSD_TYPES:
        kw.fail("decay_type", f"Unknown decay type: {dt}, expected 'linear', 'cosine' or '1-sqrt'")
    kw.done()
    if s is None:
        s = t - w - d

    def lam(k):
        p_w = k / float(max(1, w))
        if wt == "linear":
            fw = p_w
        elif wt == "cosine":
            fw = 0.5 * (1.0 - np.cos(math.pi * p_w))
        else:
            fw = 1.0 - np.sqrt(np.maximum(1.0 - p_w, 0.0))
        warm = np.maximum(0.0, fw * (1.0 - ratio) + ratio)
        p_d = (k - w - s) / float(max(1, d))
        if dt == "linear":
            fd = 1.0 - p_d
        elif dt == "cosine":
            fd = 0.5 * (1.0 + np.cos(math.pi * float(cycles) * 2.0 * p_d))
        else:
            fd = 1.0 - np.sqrt(np.maximum(p_d, 0.0))
        decay = np.maximum(0.0, fd * (1.0 - ratio) + ratio)
        return np.select([k < w, k < w + s, k < w + s + d], [warm, 1.0, decay], ratio)

    end = w + s + d
    return Impl(lambda k: base * lam(k), steps_horizon(end),
                phases=(("warmup", 0, w), ("stable", w, w + s), ("decay", w + s, end)))


TRANSFORMERS = {
    "get_constant_schedule": ({}, _constant),
    "get_constant_schedule_with_warmup": ({"num_warmup_steps": _R}, _constant_warmup),
    "get_linear_schedule_with_warmup": ({"num_warmup_steps": _R, "num_training_steps": _R}, _linear),
    "get_cosine_schedule_with_warmup": (
        {"num_warmup_steps": _R, "num_training_steps": _R, "num_cycles": 0.5}, _cosine),
    "get_cosine_with_hard_restarts_schedule_with_warmup": (
        {"num_warmup_steps": _R, "num_training_steps": _R, "num_cycles": 1}, _hard_restarts),
    "get_polynomial_decay_schedule_with_warmup": (
        {"num_warmup_steps": _R, "num_training_steps": _R, "lr_end": 1e-7, "power": 1.0}, _polynomial),
    "get_inverse_sqrt_schedule": ({"num_warmup_steps": _R, "timescale": None}, _inverse_sqrt),
    "get_cosine_with_min_lr_schedule_with_warmup": (
        {"num_warmup_steps": _R, "num_training_steps": _R, "num_cycles": 0.5, "min_lr": None,
         "min_lr_rate": None}, _cosine_min_lr),
    "get_cosine_with_min_lr_schedule_with_warmup_lr_rate": (
        {"num_warmup_steps": _R, "num_training_steps": _R, "num_cycles": 0.5, "min_lr": None,
         "min_lr_rate": None, "warmup_lr_rate": None}, _cosine_min_lr_rate),
    "get_wsd_schedule": (
        {"num_warmup_steps": _R, "num_decay_steps": _R, "num_training_steps": None, "num_stable_steps": None,
         "warmup_type": "linear", "decay_type": "cosine", "min_lr_ratio": 0, "num_cycles": 0.5}, _wsd),
}


#: ``get_scheduler`` / ``TrainingArguments.lr_scheduler_type`` names -> the function they select
SCHEDULER_TYPES = {
    "linear": "get_linear_schedule_with_warmup",
    "cosine": "get_cosine_schedule_with_warmup",
    "cosine_with_restarts": "get_cosine_with_hard_restarts_schedule_with_warmup",
    "polynomial": "get_polynomial_decay_schedule_with_warmup",
    "constant": "get_constant_schedule",
    "constant_with_warmup": "get_constant_schedule_with_warmup",
    "inverse_sqrt": "get_inverse_sqrt_schedule",
    "reduce_lr_on_plateau": "get_reduce_on_plateau_schedule",
    "cosine_with_min_lr": "get_cosine_with_min_lr_schedule_with_warmup",
    "cosine_warmup_with_min_lr": "get_cosine_with_min_lr_schedule_with_warmup_lr_rate",
    "warmup_stable_decay": "get_wsd_schedule",
    "greedy": "get_greedy_schedule",
}

#: functions of ``transformers.optimization`` that are not a function of the step, and why
NOT_A_STEP_FUNCTION = {
    "get_reduce_on_plateau_schedule": "is torch's ReduceLROnPlateau: the rate follows a metric, not the step "
                                      "(use lrtempo's plateau reductions, recorded in the run)",
    "get_greedy_schedule": "follows the loss it is given each step, not the step alone",
    "get_adafactor_schedule": "only reports the rate Adafactor computes inside the optimizer from its "
                              "parameters' scale; it does not set one",
}


def _get_scheduler(kw: Kwargs, base: float) -> Impl:
    """``get_scheduler(name, ...)``: the arguments it passes on to the function ``name`` selects."""
    name = kw.raw_value("name")
    if name not in SCHEDULER_TYPES:
        kw.fail("name", f"{name!r} is not a valid SchedulerType{did_you_mean(name, SCHEDULER_TYPES)} "
                f"(valid: {', '.join(SCHEDULER_TYPES)})")
        kw.done()
    function = SCHEDULER_TYPES[name]
    if function in NOT_A_STEP_FUNCTION:
        kw.fail("name", f"{name!r} ({function}) {NOT_A_STEP_FUNCTION[function]}")
    warmup, total = kw.raw_value("num_warmup_steps"), kw.raw_value("num_training_steps")
    specific = kw.raw_value("scheduler_specific_kwargs") or {}
    if not isinstance(specific, dict):
        kw.fail("scheduler_specific_kwargs", f"must be a mapping (got {specific!r})"[:200])
    kw.done()
    if name == "constant":
        passed: dict = {}  # get_scheduler passes nothing else to get_constant_schedule
    elif warmup is None:
        raise CompatError([("kwargs.num_warmup_steps", f"{name} requires `num_warmup_steps`, please provide "
                                                       "that argument.")])
    elif name == "constant_with_warmup":
        passed = {"num_warmup_steps": warmup}
    elif name == "inverse_sqrt":
        passed = {"num_warmup_steps": warmup, **specific}
    elif name == "warmup_stable_decay":
        passed = {"num_warmup_steps": warmup, "num_training_steps": total, **specific}
    elif total is None:
        raise CompatError([("kwargs.num_training_steps", f"{name} requires `num_training_steps`, please provide "
                                                         "that argument.")])
    else:
        passed = {"num_warmup_steps": warmup, "num_training_steps": total, **specific}
    try:
        return make(function, passed, base)
    except CompatError as exc:
        raise CompatError([(_reroot(f), f"{m} (as {function}, which get_scheduler calls)")
                           for f, m in exc.problems]) from None


def _reroot(field: str) -> str:
    """A problem of the selected function's kwargs, under get_scheduler's own field names."""
    key = field.removeprefix("kwargs.")
    if key.split(".")[0].split("[")[0] in ("num_warmup_steps", "num_training_steps"):
        return field
    return f"kwargs.scheduler_specific_kwargs.{key}" if field.startswith("kwargs.") else field


TRANSFORMERS["get_scheduler"] = ({"name": _R, "num_warmup_steps": None, "num_training_steps": None,
                                   "scheduler_specific_kwargs": None}, _get_scheduler)


def make(name: str, kwargs: dict, base: float) -> Impl:
    if name in NOT_A_STEP_FUNCTION:
        raise CompatError([("name", f"{name} {NOT_A_STEP_FUNCTION[name]}; compat reproduces functions of the step")])
    return build("transformers", TRANSFORMERS, name, kwargs, base)
