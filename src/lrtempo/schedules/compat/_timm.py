"""timm schedulers (``timm.scheduler``), value for value, as timm's train loop applies them.

Value at step ``k`` = the rate of update ``k`` (0-based). timm's ``train.py``
calls ``step_update(num_updates)`` after every update and ``step(epoch + 1)``
after every epoch; a scheduler acts on one of them:

- ``t_in_epochs=False`` (per update): update 0 runs at the rate set when the
  scheduler is built (``warmup_lr_init`` with a warmup, else the optimizer's
  lr) and update ``k >= 1`` at ``_get_lr(k)``;
- ``t_in_epochs=True`` (timm's default; the kwargs count epochs): the rate is
  constant within an epoch: epoch ``e = k // updates_per_epoch`` (from the
  spec's ``context``) runs at the rate built on construction for ``e = 0`` and
  at ``_get_lr(e)`` after.

Restart cycles with ``cycle_mul != 1`` are located with timm's floating-point
logarithm, as timm does.
"""

from __future__ import annotations

import math

import numpy as np

from .._base import MAX_STEPS, did_you_mean
from ._common import MISSING, CompatError, Impl, Kwargs, build

_R = MISSING

_COMMON = {"warmup_t": 0, "warmup_lr_init": 0.0, "t_in_epochs": True, "noise_range_t": None,
           "noise_pct": 0.67, "noise_std": 1.0, "noise_seed": 42, "initialize": True}
_CYCLES = {"t_initial": _R, "lr_min": 0.0, "cycle_mul": 1.0, "cycle_decay": 1.0, "cycle_limit": 1,
           "warmup_prefix": False, "k_decay": 1.0}


def _common(kw: Kwargs) -> tuple[int, float]:
    kw.boolean("t_in_epochs")
    if kw.raw_value("noise_range_t") is not None:
        kw.fail("noise_range_t", "noise draws from torch's random generator; compat reproduces noise-free "
                "schedules only")
    if kw.raw_value("initialize") is not True:
        kw.fail("initialize", "compat needs initialize: true (the optimizer's lr is the base)")
    for name in ("noise_pct", "noise_std"):
        kw.number(name)
    kw.integer("noise_seed")
    warmup_t, warmup_init = kw.integer("warmup_t"), kw.number("warmup_lr_init")
    return warmup_t, warmup_init


def _cycle_position(t, t_initial, mul):
    """timm's (cycle index, cycle length, position in cycle) for float t arrays."""
    if mul != 1:
        i = np.floor(np.log(1 - t / t_initial * (1 - mul)) / math.log(mul))
        t_i = np.power(mul, i) * t_initial
        t_curr = t - (1 - np.power(mul, i)) / (1 - mul) * t_initial
    else:
        i = t // t_initial
        t_i = np.full(t.shape, float(t_initial))
        t_curr = t - t_initial * i
    return i, t_i, t_curr


def _warmup_phases(warmup_t: int | None) -> tuple[tuple[str, int, int | None], ...]:
    """``warmup`` over ``t < warmup_t``, then the decay (no phases without a warmup: the scheduler's name is one)."""
    return (("warmup", 0, warmup_t), ("decay", warmup_t, None)) if warmup_t else ()


def _with_warmup(base, warmup_t, warmup_init, prefix, target, decay):
    """The rate of ``t`` as timm's ``_get_lr`` assembles warmup and decay, plus the update-0 rule."""
    step = (target - warmup_init) / warmup_t if warmup_t else 1.0

    def values(k):
        t = k.astype(np.float64)
        warm = warmup_init + t * step
        td = t - warmup_t if prefix else t
        out = np.where(t < warmup_t, warm, decay(np.maximum(td, 0.0)))
        return np.where(k == 0, warmup_init if warmup_t else float(base), out)

    return values


def _cosine_like(kw: Kwargs, base: float, shape: str) -> Impl:
    warmup_t, warmup_init = _common(kw)
    t_initial, lr_min = kw.integer("t_initial"), kw.number("lr_min")
    mul, decay_rate, limit = kw.number("cycle_mul"), kw.number("cycle_decay"), kw.integer("cycle_limit")
    prefix = kw.boolean("warmup_prefix")
    k_decay = kw.number("k_decay") if "k_decay" in kw.signature else 1.0
    power = kw.number("power") if shape == "poly" else None
    lb, ub = (kw.number("lb"), kw.number("ub")) if shape == "tanh" else (None, None)
    if t_initial is not None and not t_initial > 0:
        kw.fail("t_initial", f"must be > 0 (timm asserts it; got {t_initial})")
    if lr_min is not None and lr_min < 0:
        kw.fail("lr_min", f"must be >= 0 (timm asserts it; got {lr_min})")
    if shape == "tanh" and lb is not None and ub is not None and not lb < ub:
        kw.fail("lb", f"must be < ub (timm asserts it; got {lb} >= {ub})")
    if shape == "tanh" and limit is not None and limit < 0:
        kw.fail("cycle_limit", f"must be >= 0 (timm's TanhLRScheduler asserts it; got {limit})")
    if shape == "tanh" and warmup_init is not None and warmup_init < 0:
        kw.fail("warmup_lr_init", f"must be >= 0 (timm's TanhLRScheduler asserts it; got {warmup_init})")
    if warmup_t is not None and warmup_t < 0:
        kw.fail("warmup_t", f"must be >= 0 (got {warmup_t})")
    kw.done()

    def decay(t):
        i, t_i, t_curr = _cycle_position(t, t_initial, mul)
        lr_max = base * np.power(decay_rate, i)
        if shape == "cosine":
            v = lr_min + 0.5 * (lr_max - lr_min) * (1 + np.cos(math.pi * np.power(t_curr, k_decay)
                                                                  / np.power(t_i, k_decay)))
        elif shape == "poly":
            v = lr_min + (lr_max - lr_min) * np.power(1 - np.power(t_curr, k_decay) / np.power(t_i, k_decay),
                                                      power)
        else:
            tr = t_curr / t_i
            v = lr_min + 0.5 * (lr_max - lr_min) * (1 - np.tanh(lb * (1.0 - tr) + ub * tr))
        return np.where(i < limit, v, lr_min)

    if shape == "tanh" and warmup_t and not prefix:
        target = float(decay(np.asarray([float(warmup_t)]))[0])
    else:
        target = float(base)
    values = _with_warmup(base, warmup_t, warmup_init, prefix, target, decay)
    if mul == 1:
        length = t_initial * max(1, limit)
    else:
        length = int(math.floor(-t_initial * (mul ** max(1, limit) - 1) / (1 - mul)))
    horizon = length + (warmup_t if prefix else 0)
    return Impl(values, max(horizon, 1), phases=_warmup_phases(warmup_t))


def _step(kw: Kwargs, base: float) -> Impl:
    warmup_t, warmup_init = _common(kw)
    decay_t, rate, prefix = kw.number("decay_t"), kw.number("decay_rate"), kw.boolean("warmup_prefix")
    if decay_t is not None and decay_t <= 0:
        kw.fail("decay_t", f"must be > 0 (timm divides by it; got {decay_t})")
    kw.done()
    values = _with_warmup(base, warmup_t, warmup_init, prefix, float(base),
                          lambda t: base * np.power(rate, t // decay_t))
    return Impl(values, int(4 * decay_t + warmup_t), phases=_warmup_phases(warmup_t))


def _multistep(kw: Kwargs, base: float) -> Impl:
    """``base * decay_rate ** bisect_right(decay_t, t + 1)``: timm (every release through 1.0.x) counts
    ``t + 1``, so the rate drops one ``t`` before each milestone."""
    warmup_t, warmup_init = _common(kw)
    marks, rate, prefix = kw.integer_list("decay_t"), kw.number("decay_rate"), kw.boolean("warmup_prefix")
    if marks is not None and marks != sorted(marks):
        kw.fail("decay_t", f"must be sorted ascending (timm bisects it as a sorted list; got {marks})"[:200])
    kw.done()
    arr = np.asarray(marks, dtype=np.float64)
    values = _with_warmup(base, warmup_t, warmup_init, prefix, float(base),
                          lambda t: base * np.power(rate, np.searchsorted(arr, t + 1, side="right")))
    return Impl(values, (max(marks) * 5 // 4 + 1 if marks else 10) + warmup_t, phases=_warmup_phases(warmup_t))


TIMM = {
    "CosineLRScheduler": ({**_CYCLES, **_COMMON}, lambda kw, base: _cosine_like(kw, base, "cosine")),
    "PolyLRScheduler": ({**_CYCLES, "power": 0.5, **_COMMON}, lambda kw, base: _cosine_like(kw, base, "poly")),
    "TanhLRScheduler": ({**{k: v for k, v in _CYCLES.items() if k != "k_decay"}, "lb": -7.0, "ub": 3.0,
                         **_COMMON}, lambda kw, base: _cosine_like(kw, base, "tanh")),
    "StepLRScheduler": ({"decay_t": _R, "decay_rate": 1.0, "warmup_prefix": True, **_COMMON}, _step),
    "MultiStepLRScheduler": ({"decay_t": _R, "decay_rate": 1.0, "warmup_prefix": True, **_COMMON}, _multistep),
}


#: names people look for in timm that it does not have, and what to use instead
_ABSENT = {
    "WSDLRScheduler": "timm has no WSDLRScheduler (its schedulers, through the 1.0.x releases and its main "
                      "branch: " + ", ".join(TIMM) + ", PlateauLRScheduler); for warmup-stable-decay use "
                      "the native type 'wsd', or library: transformers with name: get_wsd_schedule",
    "PlateauLRScheduler": "PlateauLRScheduler follows a metric, not the step; compat reproduces functions "
                          "of the step",
}

_CONTEXT_KEYS = ("updates_per_epoch",)


def make(name: str, kwargs: dict, base: float, context: dict) -> Impl:
    if name in _ABSENT:
        raise CompatError([("name", _ABSENT[name])])
    impl = build("timm", TIMM, name, kwargs, base)
    epochs = kwargs.get("t_in_epochs", True)
    per_epoch = _updates_per_epoch(context, epochs, name)
    if not epochs:
        return impl
    return Impl(lambda k: impl.values(k // per_epoch), min(impl.horizon * per_epoch, MAX_STEPS),
                phases=tuple((n, a * per_epoch, None if b is None else b * per_epoch) for n, a, b in impl.phases))


def _updates_per_epoch(context: dict, epochs: bool, name: str) -> int:
    """``context.updates_per_epoch``: required in epoch mode, refused in update mode."""
    problems = [(f"context.{key}", f"unknown key{did_you_mean(key, _CONTEXT_KEYS)} (timm's context takes: "
                                   f"{', '.join(_CONTEXT_KEYS)})") for key in context if key not in _CONTEXT_KEYS]
    n = context.get("updates_per_epoch")
    if epochs and n is None:
        problems.append(("context.updates_per_epoch", f"missing: {name} counts epochs (t_in_epochs is true, "
                         "timm's default), so compat needs the optimizer updates per epoch to give the rate of "
                         "each update; or set kwargs.t_in_epochs: false if the kwargs count updates"))
    elif not epochs and n is not None:
        problems.append(("context.updates_per_epoch", "only used with t_in_epochs: true; with false the "
                         "kwargs already count updates (leave it out)"))
    elif epochs and (not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= MAX_STEPS):
        problems.append(("context.updates_per_epoch", f"must be a whole number from 1 to 2**53 (got {n!r})"[:200]))
    if problems:
        raise CompatError(problems)
    return n
