"""transformers, optax and timm compat against their published formulas.

Each reference below is the library's documented formula written out in plain
Python for one step (transformers' lr lambdas, optax's schedule functions,
timm's ``_get_lr`` in per-update mode). When the library itself is installed,
the optional tests at the end compare against it too.
"""

from __future__ import annotations

import bisect
import math

import numpy as np
import pytest

from conftest import torch_loop_rates
from lrtempo.config import ConfigError, build_schedule

BASE = 5e-4


def compat(library, name, kwargs, base=BASE):
    spec = {"type": "compat", "library": library, "name": name, "kwargs": kwargs}
    if library != "optax":
        spec["base_lr"] = base
    return build_schedule(spec)


def check(schedule, reference, steps, rtol=1e-13):
    got = schedule.at(np.asarray(steps))
    want = np.asarray([reference(k) for k in steps], dtype=np.float64)
    np.testing.assert_allclose(got, want, rtol=rtol, atol=1e-300)


# -- transformers ---------------------------------------------------------------

def hf_warm(k, w):
    return float(k) / float(max(1, w))


def hf_cosine(k, w, t, cycles=0.5):
    if k < w:
        return hf_warm(k, w)
    p = float(k - w) / float(max(1, t - w))
    return max(0.0, 0.5 * (1.0 + math.cos(math.pi * float(cycles) * 2.0 * p)))


def hf_linear(k, w, t):
    return hf_warm(k, w) if k < w else max(0.0, float(t - k) / float(max(1, t - w)))


def hf_restarts(k, w, t, cycles=1):
    if k < w:
        return hf_warm(k, w)
    p = float(k - w) / float(max(1, t - w))
    return 0.0 if p >= 1.0 else max(0.0, 0.5 * (1.0 + math.cos(math.pi * ((float(cycles) * p) % 1.0))))


def hf_poly(k, w, t, lr_end, power, lr_init):
    if k < w:
        return hf_warm(k, w)
    if k > t:
        return lr_end / lr_init
    return ((lr_init - lr_end) * (1 - (k - w) / (t - w)) ** power + lr_end) / lr_init


def hf_isqrt(k, w, ts):
    if k < w:
        return hf_warm(k, w)
    return 1.0 / math.sqrt((k + ts - w) / ts)


def hf_cosine_min(k, w, t, rate, cycles=0.5):
    if k < w:
        return hf_warm(k, w)
    p = float(k - w) / float(max(1, t - w))
    f = 0.5 * (1.0 + math.cos(math.pi * float(cycles) * 2.0 * p))
    return max(0, f * (1 - rate) + rate)


def hf_wsd(k, w, s, d, wt, dt, ratio, cycles=0.5):
    if k < w:
        p = float(k) / float(max(1, w))
        f = {"linear": p, "cosine": 0.5 * (1.0 - math.cos(math.pi * p)), "1-sqrt": 1.0 - math.sqrt(1.0 - p)}[wt]
        return max(0.0, f * (1.0 - ratio) + ratio)
    if k < w + s:
        return 1.0
    if k < w + s + d:
        p = float(k - w - s) / float(max(1, d))
        f = {"linear": 1.0 - p, "cosine": 0.5 * (1.0 + math.cos(math.pi * float(cycles) * 2.0 * p)),
             "1-sqrt": 1.0 - math.sqrt(p)}[dt]
        return max(0.0, f * (1.0 - ratio) + ratio)
    return ratio


def hf_cosine_min_lr_rate(k, w, t, rate, warm_rate=None, cycles=0.5):
    k, w, t = float(k), float(w), float(t)
    if k < w:
        if warm_rate is None:
            return (k + 1.0) / max(1.0, w)
        return warm_rate + (1.0 - warm_rate) * k / max(1, w - 1)
    p = (k - w + 1.0) / max(1.0, t - w)
    f = 0.5 * (1.0 + math.cos(math.pi * cycles * 2.0 * p))
    return max(0, f * (1 - rate) + rate)


HF_CASES = [
    ("get_constant_schedule", {}, lambda k: 1.0),
    ("get_constant_schedule_with_warmup", {"num_warmup_steps": 10}, lambda k: hf_warm(k, 10) if k < 10 else 1.0),
    ("get_constant_schedule_with_warmup", {"num_warmup_steps": 0}, lambda k: 1.0),
    ("get_linear_schedule_with_warmup", {"num_warmup_steps": 10, "num_training_steps": 100},
     lambda k: hf_linear(k, 10, 100)),
    ("get_linear_schedule_with_warmup", {"num_warmup_steps": 100, "num_training_steps": 100},
     lambda k: hf_linear(k, 100, 100)),
    ("get_cosine_schedule_with_warmup", {"num_warmup_steps": 10, "num_training_steps": 100},
     lambda k: hf_cosine(k, 10, 100)),
    ("get_cosine_schedule_with_warmup", {"num_warmup_steps": 0, "num_training_steps": 1, "num_cycles": 1.5},
     lambda k: hf_cosine(k, 0, 1, 1.5)),
    ("get_cosine_with_hard_restarts_schedule_with_warmup",
     {"num_warmup_steps": 5, "num_training_steps": 105, "num_cycles": 3}, lambda k: hf_restarts(k, 5, 105, 3)),
    ("get_polynomial_decay_schedule_with_warmup",
     {"num_warmup_steps": 10, "num_training_steps": 100, "lr_end": 1e-6, "power": 2.0},
     lambda k: hf_poly(k, 10, 100, 1e-6, 2.0, BASE)),
    ("get_inverse_sqrt_schedule", {"num_warmup_steps": 10}, lambda k: hf_isqrt(k, 10, 10)),
    ("get_inverse_sqrt_schedule", {"num_warmup_steps": 0}, lambda k: hf_isqrt(k, 0, 10_000)),
    ("get_inverse_sqrt_schedule", {"num_warmup_steps": 8, "timescale": 50}, lambda k: hf_isqrt(k, 8, 50)),
    ("get_cosine_with_min_lr_schedule_with_warmup",
     {"num_warmup_steps": 10, "num_training_steps": 100, "min_lr": 1e-5},
     lambda k: hf_cosine_min(k, 10, 100, 1e-5 / BASE)),
    ("get_cosine_with_min_lr_schedule_with_warmup",
     {"num_warmup_steps": 10, "num_training_steps": 100, "min_lr_rate": 0.1},
     lambda k: hf_cosine_min(k, 10, 100, 0.1)),
    ("get_wsd_schedule", {"num_warmup_steps": 10, "num_decay_steps": 30, "num_training_steps": 100},
     lambda k: hf_wsd(k, 10, 60, 30, "linear", "cosine", 0)),
    ("get_wsd_schedule", {"num_warmup_steps": 10, "num_decay_steps": 30, "num_stable_steps": 20,
                          "warmup_type": "1-sqrt", "decay_type": "1-sqrt", "min_lr_ratio": 0.1},
     lambda k: hf_wsd(k, 10, 20, 30, "1-sqrt", "1-sqrt", 0.1)),
    ("get_wsd_schedule", {"num_warmup_steps": 10, "num_decay_steps": 30, "num_training_steps": 100,
                          "warmup_type": "cosine", "decay_type": "linear", "min_lr_ratio": 0.05},
     lambda k: hf_wsd(k, 10, 60, 30, "cosine", "linear", 0.05)),
    # every option of get_wsd_schedule: each warmup and decay type, num_cycles, both totals given (the
    # stable count wins), a total shorter than warmup + decay (a negative stable phase), no warmup
    *[("get_wsd_schedule", {"num_warmup_steps": 12, "num_decay_steps": 25, "num_stable_steps": 40,
                            "warmup_type": wt, "decay_type": dt, "min_lr_ratio": 0.2, "num_cycles": 0.75},
       (lambda wt, dt: lambda k: hf_wsd(k, 12, 40, 25, wt, dt, 0.2, 0.75))(wt, dt))
      for wt in ("linear", "cosine", "1-sqrt") for dt in ("linear", "cosine", "1-sqrt")],
    ("get_wsd_schedule", {"num_warmup_steps": 10, "num_decay_steps": 30, "num_training_steps": 100,
                          "num_stable_steps": 5}, lambda k: hf_wsd(k, 10, 5, 30, "linear", "cosine", 0)),
    ("get_wsd_schedule", {"num_warmup_steps": 30, "num_decay_steps": 40, "num_training_steps": 50},
     lambda k: hf_wsd(k, 30, -20, 40, "linear", "cosine", 0)),
    ("get_wsd_schedule", {"num_warmup_steps": 0, "num_decay_steps": 1, "num_stable_steps": 0, "min_lr_ratio": 0.5},
     lambda k: hf_wsd(k, 0, 0, 1, "linear", "cosine", 0.5)),
    ("get_cosine_with_min_lr_schedule_with_warmup_lr_rate",
     {"num_warmup_steps": 10, "num_training_steps": 100, "min_lr_rate": 0.1},
     lambda k: hf_cosine_min_lr_rate(k, 10, 100, 0.1)),
    ("get_cosine_with_min_lr_schedule_with_warmup_lr_rate",
     {"num_warmup_steps": 10, "num_training_steps": 100, "min_lr": 2e-5, "warmup_lr_rate": 0.05, "num_cycles": 1.0},
     lambda k: hf_cosine_min_lr_rate(k, 10, 100, 2e-5 / BASE, 0.05, 1.0)),
    ("get_cosine_with_min_lr_schedule_with_warmup_lr_rate",
     {"num_warmup_steps": 1, "num_training_steps": 50, "min_lr_rate": 0.0, "warmup_lr_rate": 0.3},
     lambda k: hf_cosine_min_lr_rate(k, 1, 50, 0.0, 0.3)),
    ("get_cosine_with_min_lr_schedule_with_warmup_lr_rate",
     {"num_warmup_steps": 0, "num_training_steps": 80, "min_lr_rate": 0.25},
     lambda k: hf_cosine_min_lr_rate(k, 0, 80, 0.25)),
    # get_scheduler: the names of TrainingArguments.lr_scheduler_type, routed as get_scheduler routes them
    ("get_scheduler", {"name": "linear", "num_warmup_steps": 10, "num_training_steps": 100},
     lambda k: hf_linear(k, 10, 100)),
    ("get_scheduler", {"name": "cosine", "num_warmup_steps": 10, "num_training_steps": 100,
                       "scheduler_specific_kwargs": {"num_cycles": 0.7}}, lambda k: hf_cosine(k, 10, 100, 0.7)),
    ("get_scheduler", {"name": "cosine_with_restarts", "num_warmup_steps": 5, "num_training_steps": 105,
                       "scheduler_specific_kwargs": {"num_cycles": 2}}, lambda k: hf_restarts(k, 5, 105, 2)),
    ("get_scheduler", {"name": "polynomial", "num_warmup_steps": 10, "num_training_steps": 100,
                       "scheduler_specific_kwargs": {"power": 3.0}},
     lambda k: hf_poly(k, 10, 100, 1e-7, 3.0, BASE)),
    ("get_scheduler", {"name": "constant", "num_warmup_steps": 10, "num_training_steps": 100},
     lambda k: 1.0),  # get_scheduler passes neither to get_constant_schedule
    ("get_scheduler", {"name": "constant_with_warmup", "num_warmup_steps": 10, "num_training_steps": 100},
     lambda k: hf_warm(k, 10) if k < 10 else 1.0),
    ("get_scheduler", {"name": "inverse_sqrt", "num_warmup_steps": 8, "num_training_steps": 100,
                       "scheduler_specific_kwargs": {"timescale": 20}}, lambda k: hf_isqrt(k, 8, 20)),
    ("get_scheduler", {"name": "cosine_with_min_lr", "num_warmup_steps": 10, "num_training_steps": 100,
                       "scheduler_specific_kwargs": {"min_lr_rate": 0.1}}, lambda k: hf_cosine_min(k, 10, 100, 0.1)),
    ("get_scheduler", {"name": "cosine_warmup_with_min_lr", "num_warmup_steps": 10, "num_training_steps": 100,
                       "scheduler_specific_kwargs": {"min_lr_rate": 0.1}},
     lambda k: hf_cosine_min_lr_rate(k, 10, 100, 0.1)),
    ("get_scheduler", {"name": "warmup_stable_decay", "num_warmup_steps": 10, "num_training_steps": 100,
                       "scheduler_specific_kwargs": {"num_decay_steps": 20, "decay_type": "1-sqrt"}},
     lambda k: hf_wsd(k, 10, 70, 20, "linear", "1-sqrt", 0)),
]


@pytest.mark.parametrize("name, kwargs, lam", HF_CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(HF_CASES)])
def test_transformers_formulas(name, kwargs, lam):
    check(compat("transformers", name, kwargs), lambda k: BASE * lam(k), range(0, 260))


def test_every_transformers_function_is_covered():
    from lrtempo.schedules.compat import LIBRARIES

    assert set(LIBRARIES["transformers"]) == {c[0] for c in HF_CASES}


def test_every_function_of_the_installed_transformers_is_covered_or_refused():
    optimization = pytest.importorskip("transformers.optimization")
    from lrtempo.schedules.compat import _transformers

    functions = {n for n in dir(optimization) if n.startswith("get_") and callable(getattr(optimization, n))}
    assert functions == set(_transformers.TRANSFORMERS) | set(_transformers.NOT_A_STEP_FUNCTION)
    assert {t.value for t in optimization.SchedulerType} == set(_transformers.SCHEDULER_TYPES)
    assert {t.value: f.__name__ for t, f in optimization.TYPE_TO_SCHEDULER_FUNCTION.items()} == \
        _transformers.SCHEDULER_TYPES


@pytest.mark.parametrize("name, kwargs, message", [
    ("get_reduce_on_plateau_schedule", {}, "name: get_reduce_on_plateau_schedule is torch's ReduceLROnPlateau"),
    ("get_greedy_schedule", {}, "name: get_greedy_schedule follows the loss"),
    ("get_adafactor_schedule", {}, "name: get_adafactor_schedule only reports"),
    ("get_scheduler", {"name": "reduce_lr_on_plateau"}, "kwargs.name: 'reduce_lr_on_plateau'"),
    ("get_scheduler", {"name": "cosin", "num_warmup_steps": 1, "num_training_steps": 9},
     "kwargs.name: 'cosin' is not a valid SchedulerType; did you mean 'cosine'"),
    ("get_scheduler", {"name": "linear", "num_training_steps": 9}, "kwargs.num_warmup_steps: linear requires"),
    ("get_scheduler", {"name": "cosine", "num_warmup_steps": 1}, "kwargs.num_training_steps: cosine requires"),
    ("get_scheduler", {"name": "cosine_with_min_lr", "num_warmup_steps": 1, "num_training_steps": 9},
     "kwargs.scheduler_specific_kwargs.min_lr_rate: One of min_lr or min_lr_rate should be set"),
    ("get_scheduler", {"name": "cosine", "num_warmup_steps": 1, "num_training_steps": 9,
                       "scheduler_specific_kwargs": {"num_cycle": 1}},
     "kwargs.scheduler_specific_kwargs.num_cycle: get_cosine_schedule_with_warmup has no keyword 'num_cycle'"),
    ("get_cosine_with_min_lr_schedule_with_warmup_lr_rate", {"num_warmup_steps": 1, "num_training_steps": 9},
     "kwargs.min_lr_rate: One of min_lr or min_lr_rate"),
])
def test_transformers_refusals_name_the_field(name, kwargs, message):
    with pytest.raises(ConfigError) as info:
        compat("transformers", name, kwargs)
    assert message in info.value.one_line()


def test_transformers_rejections():
    with pytest.raises(ConfigError, match="lr_end .* must be smaller than initial lr"):
        compat("transformers", "get_polynomial_decay_schedule_with_warmup",
               {"num_warmup_steps": 1, "num_training_steps": 10, "lr_end": 1.0})
    with pytest.raises(ConfigError, match="Only one of min_lr or min_lr_rate"):
        compat("transformers", "get_cosine_with_min_lr_schedule_with_warmup",
               {"num_warmup_steps": 1, "num_training_steps": 10, "min_lr": 1e-5, "min_lr_rate": 0.1})
    with pytest.raises(ConfigError, match="Unknown decay type"):
        compat("transformers", "get_wsd_schedule",
               {"num_warmup_steps": 1, "num_decay_steps": 2, "num_training_steps": 10, "decay_type": "exp"})


# -- optax -------------------------------------------------------------------------

def ox_poly(k, init, end, power, steps, begin=0):
    if steps <= 0:
        return init
    count = min(max(k - begin, 0), steps)
    return (init - end) * (1 - count / steps) ** power + end


def ox_cosine(k, init, steps, alpha=0.0, exponent=1.0):
    count = min(k, steps)
    c = 0.5 * (1 + math.cos(math.pi * count / steps))
    return init * ((1 - alpha) * c ** exponent + alpha)


def ox_warmup_cosine(k, init, peak, warmup, decay, end=0.0, exponent=1.0):
    alpha = 0.0 if peak == 0.0 else end / peak
    if k < warmup:
        return ox_poly(k, init, peak, 1, warmup)
    return ox_cosine(k - warmup, peak, decay - warmup, alpha, exponent)


def ox_exp(k, init, steps, rate, begin=0, staircase=False, end=None):
    dec = k - begin
    p = dec / steps
    if staircase:
        p = math.floor(p)
    v = init if dec <= 0 else init * rate ** p
    if end is not None:
        v = max(v, end) if rate < 1 else min(v, end)
    return v


def ox_piecewise_constant(k, init, table):
    v = init
    for threshold, scale in sorted(table.items()):
        if k >= threshold:
            v *= scale
    return v


def ox_interp(k, kind, init, table):
    """optax's piecewise_interpolate_schedule: intervals of length at least 1, the indicators summed."""
    bounds = [0, *sorted(table)]
    vals = [init]
    for b in sorted(table):
        vals.append(vals[-1] * table[b])
    out = vals[-1] if bounds[-1] <= k else 0.0
    for i in range(len(bounds) - 1):
        if bounds[i] <= k < bounds[i + 1]:
            pct = (k - bounds[i]) / max(bounds[i + 1] - bounds[i], 1)
            a, b = vals[i], vals[i + 1]
            out += (b - a) * pct + a if kind == "linear" else b + (a - b) / 2.0 * (math.cos(math.pi * pct) + 1)
    return out


def ox_join(k, boundary, first, second):
    return first(k) if k < boundary else second(k - boundary)


OX_CASES = [
    ("constant_schedule", {"value": 0.3}, lambda k: 0.3),
    ("linear_schedule", {"init_value": 1.0, "end_value": 0.01, "transition_steps": 100, "transition_begin": 5},
     lambda k: ox_poly(k, 1.0, 0.01, 1, 100, 5)),
    ("polynomial_schedule", {"init_value": 1.0, "end_value": 0.01, "power": 2, "transition_steps": 100},
     lambda k: ox_poly(k, 1.0, 0.01, 2, 100)),
    ("polynomial_schedule", {"init_value": 1.0, "end_value": 0.01, "power": 2, "transition_steps": 0},
     lambda k: 1.0),
    ("cosine_decay_schedule", {"init_value": 0.1, "decay_steps": 100, "alpha": 0.05, "exponent": 2.0},
     lambda k: ox_cosine(k, 0.1, 100, 0.05, 2.0)),
    ("warmup_cosine_decay_schedule", {"init_value": 0.0, "peak_value": 1e-3, "warmup_steps": 20,
                                      "decay_steps": 120, "end_value": 1e-5},
     lambda k: ox_warmup_cosine(k, 0.0, 1e-3, 20, 120, 1e-5)),
    ("exponential_decay", {"init_value": 1.0, "transition_steps": 10, "decay_rate": 0.5, "transition_begin": 7,
                           "staircase": True, "end_value": 0.01},
     lambda k: ox_exp(k, 1.0, 10, 0.5, 7, True, 0.01)),
    ("exponential_decay", {"init_value": 1.0, "transition_steps": 10, "decay_rate": 1.5, "end_value": 20.0},
     lambda k: ox_exp(k, 1.0, 10, 1.5, 0, False, 20.0)),
    ("piecewise_constant_schedule", {"init_value": 0.1, "boundaries_and_scales": {30: 0.1, 60: 0.5}},
     lambda k: ox_piecewise_constant(k, 0.1, {30: 0.1, 60: 0.5})),
    ("piecewise_interpolate_schedule", {"interpolate_type": "cosine", "init_value": 0.1,
                                        "boundaries_and_scales": {"30": 2.0, "90": 0.01}},
     lambda k: ox_interp(k, "cosine", 0.1, {30: 2.0, 90: 0.01})),
    ("join_schedules", {"boundaries": [50], "schedules": [
        {"name": "constant_schedule", "kwargs": {"value": 0.2}},
        {"name": "cosine_decay_schedule", "kwargs": {"init_value": 0.2, "decay_steps": 100}}]},
     lambda k: 0.2 if k < 50 else ox_cosine(k - 50, 0.2, 100)),
    ("sgdr_schedule", {"cosine_kwargs": [
        {"init_value": 0.0, "peak_value": 1.0, "warmup_steps": 5, "decay_steps": 50},
        {"init_value": 0.0, "peak_value": 0.5, "warmup_steps": 5, "decay_steps": 100}]},
     lambda k: ox_warmup_cosine(k, 0.0, 1.0, 5, 50) if k < 50 else ox_warmup_cosine(k - 50, 0.0, 0.5, 5, 100)),
    ("cosine_onecycle_schedule", {"transition_steps": 100, "peak_value": 0.1},
     lambda k: ox_interp(k, "cosine", 0.1 / 25, {30: 25.0, 100: 1.0 / (25 * 1e4)})),
    ("linear_onecycle_schedule", {"transition_steps": 100, "peak_value": 0.1},
     lambda k: ox_interp(k, "linear", 0.1 / 25, {30: 25.0, 85: 1 / 25, 100: 1e-4})),
    # coincident boundaries: a boundary at 0, and onecycle tables whose keys merge
    ("piecewise_interpolate_schedule", {"interpolate_type": "linear", "init_value": 0.1,
                                        "boundaries_and_scales": {"0": 3.0, "40": 0.5, "41": 0.1}},
     lambda k: ox_interp(k, "linear", 0.1, {0: 3.0, 40: 0.5, 41: 0.1})),
    ("piecewise_interpolate_schedule", {"interpolate_type": "cosine", "init_value": 0.2, "boundaries_and_scales": {}},
     lambda k: 0.2),
    ("cosine_onecycle_schedule", {"transition_steps": 3, "peak_value": 1.0, "pct_start": 0.1},
     lambda k: ox_interp(k, "cosine", 1.0 / 25, {0: 25.0, 3: 1.0 / (25 * 1e4)})),
    ("linear_onecycle_schedule", {"transition_steps": 10, "peak_value": 1.0, "pct_start": 0.3, "pct_final": 1.0},
     lambda k: ox_interp(k, "linear", 1.0 / 25, {3: 25.0, 10: 1e-4})),
    ("warmup_constant_schedule", {"init_value": 0.01, "peak_value": 0.5, "warmup_steps": 20},
     lambda k: ox_poly(k, 0.01, 0.5, 1, 20)),
    ("warmup_constant_schedule", {"init_value": 0.01, "peak_value": 0.5, "warmup_steps": 0}, lambda k: 0.01),
    ("warmup_exponential_decay_schedule", {"init_value": 0.0, "peak_value": 1.0, "warmup_steps": 10,
                                           "transition_steps": 15, "decay_rate": 0.5},
     lambda k: ox_join(k, 10, lambda j: ox_poly(j, 0.0, 1.0, 1, 10), lambda j: ox_exp(j, 1.0, 15, 0.5))),
    ("warmup_exponential_decay_schedule", {"init_value": 0.1, "peak_value": 1.0, "warmup_steps": 10,
                                           "transition_steps": 7, "decay_rate": 0.8, "transition_begin": 12,
                                           "staircase": True, "end_value": 0.3},
     lambda k: ox_join(k, 10, lambda j: ox_poly(j, 0.1, 1.0, 1, 10), lambda j: ox_exp(j, 1.0, 7, 0.8, 12, True, 0.3))),
    ("warmup_exponential_decay_schedule", {"init_value": 0.1, "peak_value": 1.0, "warmup_steps": 0,
                                           "transition_steps": 0, "decay_rate": 0.8},
     lambda k: 1.0),
]


@pytest.mark.parametrize("name, kwargs, ref", OX_CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(OX_CASES)])
def test_optax_formulas(name, kwargs, ref):
    check(compat("optax", name, kwargs), ref, range(0, 260))


def test_every_optax_function_is_covered():
    from lrtempo.schedules.compat import LIBRARIES

    assert set(LIBRARIES["optax"]) == {c[0] for c in OX_CASES}


def test_every_schedule_of_the_installed_optax_is_covered():
    schedules = pytest.importorskip("optax.schedules")
    from lrtempo.schedules.compat import LIBRARIES

    # optax.schedules also exports the hyperparameter-injection wrappers and the Schedule types
    names = {n for n in dir(schedules) if n.endswith(("_schedule", "_schedules", "_decay")) and n[0] != "_"}
    assert names == set(LIBRARIES["optax"])


def test_optax_rejections():
    with pytest.raises(ConfigError, match="requires positive decay_steps"):
        compat("optax", "cosine_decay_schedule", {"init_value": 1.0, "decay_steps": 0})
    with pytest.raises(ConfigError, match="decay_steps - warmup_steps"):
        compat("optax", "warmup_cosine_decay_schedule",
               {"init_value": 0.0, "peak_value": 1.0, "warmup_steps": 10, "decay_steps": 10})
    with pytest.raises(ConfigError, match="non-negative scale factors"):
        compat("optax", "piecewise_constant_schedule", {"init_value": 1.0, "boundaries_and_scales": {5: -1}})
    with pytest.raises(ConfigError, match="must be either 'cosine' or 'linear'"):
        compat("optax", "piecewise_interpolate_schedule", {"interpolate_type": "cos", "init_value": 1.0})
    with pytest.raises(ConfigError, match="base_lr: optax schedules carry their own values"):
        build_schedule({"type": "compat", "library": "optax", "name": "constant_schedule", "base_lr": 0.1,
                        "kwargs": {"value": 1.0}})


# -- timm --------------------------------------------------------------------------

def timm_cycle_lr(t, base, t_initial, lr_min=0.0, mul=1.0, decay=1.0, limit=1, warmup_t=0, warmup_init=0.0,
                  prefix=False, k_decay=1.0, kind="cosine", power=0.5, lb=-7.0, ub=3.0):
    """timm's _get_lr(t), written out; update 0 runs at the rate set on construction."""
    if kind == "tanh" and warmup_t and not prefix:
        target = timm_cycle_lr(warmup_t, base, t_initial, lr_min, mul, decay, limit, 0, 0.0, False, k_decay,
                               kind, power, lb, ub)
    else:
        target = base
    if t == 0:
        return warmup_init if warmup_t else base
    if t < warmup_t:
        return warmup_init + t * ((target - warmup_init) / warmup_t)
    if prefix:
        t = t - warmup_t
    if mul != 1:
        i = math.floor(math.log(1 - t / t_initial * (1 - mul), mul))
        t_i = mul**i * t_initial
        t_curr = t - (1 - mul**i) / (1 - mul) * t_initial
    else:
        i = t // t_initial
        t_i = t_initial
        t_curr = t - t_initial * i
    if i >= limit:
        return lr_min
    lr_max = base * decay**i
    if kind == "cosine":
        return lr_min + 0.5 * (lr_max - lr_min) * (1 + math.cos(math.pi * t_curr**k_decay / t_i**k_decay))
    if kind == "poly":
        return lr_min + (lr_max - lr_min) * (1 - t_curr**k_decay / t_i**k_decay) ** power
    tr = t_curr / t_i
    return lr_min + 0.5 * (lr_max - lr_min) * (1 - math.tanh(lb * (1.0 - tr) + ub * tr))


TIMM_CASES = [
    ("CosineLRScheduler", {"t_initial": 100, "lr_min": 1e-6, "warmup_t": 10, "warmup_lr_init": 1e-6},
     lambda t: timm_cycle_lr(t, BASE, 100, 1e-6, warmup_t=10, warmup_init=1e-6)),
    ("CosineLRScheduler", {"t_initial": 50, "lr_min": 1e-5, "cycle_mul": 2.0, "cycle_decay": 0.5, "cycle_limit": 3,
                           "warmup_t": 5, "warmup_lr_init": 1e-6, "warmup_prefix": True},
     lambda t: timm_cycle_lr(t, BASE, 50, 1e-5, 2.0, 0.5, 3, 5, 1e-6, True)),
    ("CosineLRScheduler", {"t_initial": 40, "cycle_limit": 4, "k_decay": 1.5},
     lambda t: timm_cycle_lr(t, BASE, 40, limit=4, k_decay=1.5)),
    ("PolyLRScheduler", {"t_initial": 120, "power": 2.0, "lr_min": 1e-6, "warmup_t": 3},
     lambda t: timm_cycle_lr(t, BASE, 120, 1e-6, warmup_t=3, kind="poly", power=2.0)),
    ("TanhLRScheduler", {"t_initial": 100, "lr_min": 1e-6},
     lambda t: timm_cycle_lr(t, BASE, 100, 1e-6, kind="tanh")),
    ("TanhLRScheduler", {"t_initial": 100, "warmup_t": 10, "warmup_lr_init": 1e-6, "cycle_limit": 2},
     lambda t: timm_cycle_lr(t, BASE, 100, 0.0, limit=2, warmup_t=10, warmup_init=1e-6, kind="tanh")),
    ("StepLRScheduler", {"decay_t": 30, "decay_rate": 0.5, "warmup_t": 5, "warmup_lr_init": 1e-6},
     lambda t: (1e-6 if t == 0 else 1e-6 + t * (BASE - 1e-6) / 5) if t < 5 else BASE * 0.5 ** ((t - 5) // 30)),
    # timm counts t + 1 (every release through 1.0.x): the rate drops one t before each milestone
    ("MultiStepLRScheduler", {"decay_t": [30, 80], "decay_rate": 0.1},
     lambda t: BASE * 0.1 ** bisect.bisect_right([30, 80], t + 1)),
    ("MultiStepLRScheduler", {"decay_t": [1, 5, 5, 9], "decay_rate": 0.5, "warmup_t": 3, "warmup_lr_init": 1e-5},
     lambda t: (1e-5 + t * (BASE - 1e-5) / 3) if t < 3 else BASE * 0.5 ** bisect.bisect_right([1, 5, 5, 9], t - 3 + 1)),
    ("MultiStepLRScheduler", {"decay_t": [0, 4], "decay_rate": 0.3},  # update 0 runs at the built rate
     lambda t: BASE if t == 0 else BASE * 0.3 ** bisect.bisect_right([0, 4], t + 1)),
]
TIMM_CASES = [(name, {**kwargs, "t_in_epochs": False}, ref) for name, kwargs, ref in TIMM_CASES]


@pytest.mark.parametrize("name, kwargs, ref", TIMM_CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(TIMM_CASES)])
def test_timm_formulas(name, kwargs, ref):
    check(compat("timm", name, kwargs), ref, range(0, 400), rtol=1e-12)


def test_every_timm_class_is_covered():
    from lrtempo.schedules.compat import LIBRARIES

    assert set(LIBRARIES["timm"]) == {c[0] for c in TIMM_CASES}


@pytest.mark.parametrize("per_epoch", [1, 7])
@pytest.mark.parametrize("name, kwargs, ref", TIMM_CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(TIMM_CASES)])
def test_timm_epoch_mode_holds_each_epoch(name, kwargs, ref, per_epoch):
    """t_in_epochs: true (timm's default): the kwargs count epochs, and update k runs at epoch k // N's rate."""
    kwargs = {k: v for k, v in kwargs.items() if k != "t_in_epochs"}  # timm's default is true
    spec = {"type": "compat", "library": "timm", "name": name, "base_lr": BASE, "kwargs": kwargs,
            "context": {"updates_per_epoch": per_epoch}}
    check(build_schedule(spec), lambda k: ref(k // per_epoch), range(0, 300 * per_epoch))
    s = build_schedule(spec)
    assert s.to_spec()["context"] == {"updates_per_epoch": per_epoch}
    assert build_schedule(s.to_spec()).at(np.arange(50)).tolist() == s.at(np.arange(50)).tolist()


@pytest.mark.parametrize("spec_extra, message", [
    ({"kwargs": {"t_initial": 10}}, "context.updates_per_epoch: missing: CosineLRScheduler counts epochs"),
    ({"kwargs": {"t_initial": 10, "t_in_epochs": True}, "context": {"updates_per_epoch": 0}},
     "context.updates_per_epoch: must be a whole number from 1"),
    ({"kwargs": {"t_initial": 10, "t_in_epochs": False}, "context": {"updates_per_epoch": 5}},
     "context.updates_per_epoch: only used with t_in_epochs: true"),
    ({"kwargs": {"t_initial": 10}, "context": {"updates_per_epoch": 5, "epochs": 3}},
     "context.epochs: unknown key"),
    ({"kwargs": {"t_initial": 10}, "context": [5]}, "context: must be a mapping"),
    ({"kwargs": {"t_initial": 10, "t_in_epochs": "yes"}}, "kwargs.t_in_epochs: must be true or false"),
])
def test_timm_context_errors_name_the_field(spec_extra, message):
    spec = {"type": "compat", "library": "timm", "name": "CosineLRScheduler", "base_lr": BASE, **spec_extra}
    with pytest.raises(ConfigError) as info:
        build_schedule(spec)
    assert message in info.value.one_line()


def test_context_is_refused_where_a_library_takes_none():
    with pytest.raises(ConfigError, match="context: torch schedules take no context"):
        build_schedule({"type": "compat", "library": "torch", "name": "StepLR", "base_lr": 0.1,
                        "kwargs": {"step_size": 2}, "context": {"updates_per_epoch": 3}})


def test_timm_names_it_lacks_are_explained():
    with pytest.raises(ConfigError, match="name: timm has no WSDLRScheduler .* native type 'wsd'"):
        compat("timm", "WSDLRScheduler", {})
    with pytest.raises(ConfigError, match="PlateauLRScheduler follows a metric"):
        compat("timm", "PlateauLRScheduler", {})


def test_timm_multistep_refuses_unsorted_milestones():
    with pytest.raises(ConfigError, match="kwargs.decay_t: must be sorted ascending"):
        compat("timm", "MultiStepLRScheduler", {"decay_t": [30, 10], "t_in_epochs": False})


def test_timm_rejections():
    with pytest.raises(ConfigError, match="noise"):
        compat("timm", "CosineLRScheduler", {"t_initial": 10, "noise_range_t": 5, "t_in_epochs": False})
    with pytest.raises(ConfigError, match="t_initial: must be > 0"):
        compat("timm", "CosineLRScheduler", {"t_initial": 0, "t_in_epochs": False})
    with pytest.raises(ConfigError, match="cycle_limit: must be >= 0"):
        compat("timm", "TanhLRScheduler", {"t_initial": 5, "cycle_limit": -1, "t_in_epochs": False})
    with pytest.raises(ConfigError, match="warmup_lr_init: must be >= 0"):
        compat("timm", "TanhLRScheduler", {"t_initial": 5, "warmup_t": 2, "warmup_lr_init": -1.0, "t_in_epochs": False})


# -- the libraries themselves, when installed ------------------------------------------

@pytest.mark.parametrize("name, kwargs, lam", HF_CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(HF_CASES)])
def test_against_transformers_itself(name, kwargs, lam):
    transformers = pytest.importorskip("transformers")
    want = torch_loop_rates(lambda opt: getattr(transformers, name)(optimizer=opt, **kwargs), 200, BASE, "AdamW")
    np.testing.assert_allclose(compat("transformers", name, kwargs).at(np.arange(200)), want, rtol=1e-12)


def optax_values(optax, name, kwargs, steps):
    """The installed optax's schedule at each step, in the dtype JAX is set to compute in."""
    import jax

    if name == "join_schedules":
        fn = optax.join_schedules([getattr(optax, c["name"])(**c["kwargs"]) for c in kwargs["schedules"]],
                                  kwargs["boundaries"])
    else:
        kw = dict(kwargs)
        if "boundaries_and_scales" in kw:
            kw["boundaries_and_scales"] = {int(k): v for k, v in kw["boundaries_and_scales"].items()}
        fn = getattr(optax, name)(**kw)
    return np.asarray(jax.vmap(fn)(jax.numpy.asarray(steps)), dtype=np.float64)


@pytest.mark.parametrize("name, kwargs, ref", OX_CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(OX_CASES)])
def test_against_optax_itself(name, kwargs, ref):
    """optax computes in JAX's default float32: against that, float32's tolerance. With JAX's float64
    enabled optax computes the same formulas in float64, and compat matches it to 1e-12."""
    optax = pytest.importorskip("optax")
    import jax

    steps = np.arange(260)
    got = compat("optax", name, kwargs).at(steps)
    np.testing.assert_allclose(got, optax_values(optax, name, kwargs, steps), rtol=2e-6, atol=1e-7)
    with jax.enable_x64(True):
        want64 = optax_values(optax, name, kwargs, steps)
    np.testing.assert_allclose(got, want64, rtol=1e-12, atol=0)


@pytest.mark.parametrize("name, kwargs, ref", TIMM_CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(TIMM_CASES)])
def test_against_timm_itself(name, kwargs, ref):
    scheduler = pytest.importorskip("timm.scheduler")
    import torch

    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([param], lr=BASE)
    sched = getattr(scheduler, name)(opt, **{"t_in_epochs": False, **kwargs})
    want = []
    for k in range(300):
        want.append(opt.param_groups[0]["lr"])
        sched.step_update(num_updates=k + 1)
    np.testing.assert_allclose(compat("timm", name, kwargs).at(np.arange(300)), want, rtol=1e-12)


@pytest.mark.parametrize("name, kwargs, ref", TIMM_CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(TIMM_CASES)])
def test_against_timm_itself_in_epoch_mode(name, kwargs, ref):
    """timm's train.py: step_update(num_updates) after every update, step(epoch + 1) after every epoch."""
    scheduler = pytest.importorskip("timm.scheduler")
    import torch

    per_epoch = 3
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([param], lr=BASE)
    kwargs = {**kwargs, "t_in_epochs": True}
    sched = getattr(scheduler, name)(opt, **kwargs)
    want, updates = [], 0
    for epoch in range(100):
        for _ in range(per_epoch):
            want.append(opt.param_groups[0]["lr"])
            updates += 1
            sched.step_update(num_updates=updates)
        sched.step(epoch + 1)
    spec = {"type": "compat", "library": "timm", "name": name, "base_lr": BASE, "kwargs": kwargs,
            "context": {"updates_per_epoch": per_epoch}}
    np.testing.assert_allclose(build_schedule(spec).at(np.arange(len(want))), want, rtol=1e-12)


# -- finite at every step, or refused -----------------------------------------------------

def compat_spec(library, name, kwargs, base=0.1):
    spec = {"type": "compat", "library": library, "name": name, "kwargs": kwargs}
    if base is not None:
        spec["base_lr"] = base
    return spec


@pytest.mark.parametrize("library, name, kwargs, base, message", [
    ("torch", "ExponentialLR", {"gamma": 1.01}, 0.1, "kwargs: the schedule is not finite at step 100000"),
    ("torch", "StepLR", {"step_size": 10, "gamma": 2.0}, 0.1, "kwargs: the schedule is not finite at step"),
    ("torch", "CyclicLR", {"base_lr": 0.1, "max_lr": 1.0, "mode": "exp_range", "gamma": 1.5}, None,
     "kwargs: the schedule is not finite at step"),
    ("torch", "MultiStepLR", {"milestones": [10, 20], "gamma": 1e300}, 1e10, "not finite at step 10"),
    ("optax", "exponential_decay", {"init_value": 1.0, "transition_steps": 10, "decay_rate": 2.0}, None,
     "kwargs: the schedule is not finite at step"),
    ("optax", "piecewise_constant_schedule", {"init_value": 1e300, "boundaries_and_scales": {5: 1e10}}, None,
     "not finite at step 5"),
    ("torch", "OneCycleLR", {"max_lr": 1.0, "total_steps": 100, "div_factor": 0.0}, None,
     "kwargs: the library's formula fails on these arguments (ZeroDivisionError"),
    ("optax", "cosine_onecycle_schedule", {"transition_steps": 100, "peak_value": 1.0, "div_factor": 0.0}, None,
     "ZeroDivisionError"),
    ("torch", "StepLR", {"step_size": 2**63}, 0.1, "kwargs.step_size: must be within -2**53..2**53"),
    ("torch", "StepLR", {"step_size": 10, "gamma": 10**400}, 0.1, "kwargs.gamma: must be finite (got an integer"),
    ("torch", "MultiStepLR", {"milestones": [10, 2**60]}, 0.1, "kwargs.milestones: every entry must be within"),
    ("torch", "StepLR", {"step_size": 10}, 10**400, "base_lr: must be a finite number >= 0"),
])
def test_compat_schedules_that_leave_the_finite_range_are_refused(library, name, kwargs, base, message):
    with pytest.raises(ConfigError) as info:
        build_schedule(compat_spec(library, name, kwargs, base))
    assert message in info.value.one_line()


@pytest.mark.parametrize("library, name, kwargs, base", [
    ("torch", "ExponentialLR", {"gamma": 0.99}, 0.1),
    ("torch", "MultiStepLR", {"milestones": [10, 20], "gamma": 2.0}, 0.1),  # grows, but only twice
    ("optax", "exponential_decay", {"init_value": 1.0, "transition_steps": 10, "decay_rate": 2.0, "end_value": 5.0},
     None),  # capped by end_value
    ("torch", "CosineAnnealingWarmRestarts", {"T_0": 10, "T_mult": 2}, 0.1),
    ("torch", "StepLR", {"step_size": 2**53}, 0.1),
])
def test_bounded_compat_schedules_are_kept(library, name, kwargs, base):
    s = build_schedule(compat_spec(library, name, kwargs, base))
    steps = np.asarray([0, 1, 10, 25, 10**6, 2**53], dtype=np.int64)
    assert np.all(np.isfinite(s.at(steps))) and 1 <= s.horizon <= 2**53


def test_the_json_schema_accepts_a_context():
    jsonschema = pytest.importorskip("jsonschema")
    from lrtempo.config import json_schema

    validator = jsonschema.Draft202012Validator(json_schema())
    spec = {"type": "compat", "library": "timm", "name": "CosineLRScheduler", "base_lr": BASE,
            "kwargs": {"t_initial": 10}, "context": {"updates_per_epoch": 4}}
    assert validator.is_valid(build_schedule(spec).to_spec())
    assert not validator.is_valid({**spec, "contxt": {}})
