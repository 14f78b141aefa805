"""Hypothesis properties over random valid parameters."""

from __future__ import annotations

import numpy as np
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from lrtempo.config import build_schedule, format_config, parse_config_text, schedule_to_spec, spec_hash
from lrtempo.schedules import (
    MAX_STEPS,
    WSD,
    Constant,
    CosineDecay,
    Cyclic,
    ExponentialDecay,
    InverseSqrt,
    Linear,
    MultiStepDecay,
    OneCycle,
    ParameterError,
    PolynomialDecay,
    Ramp,
    Restarts,
    Scale,
    StepDecay,
    TanhDecay,
    Warmup,
    WarmupCosine,
    WarmupPlateauCosine,
)

rates = st.floats(min_value=1e-8, max_value=10.0, allow_nan=False, allow_infinity=False)
lengths = st.integers(min_value=1, max_value=5000)


@st.composite
def peak_and_floor(draw):
    peak = draw(rates)
    floor = draw(st.floats(min_value=0.0, max_value=peak))
    return peak, floor


@st.composite
def schedules(draw):
    kind = draw(st.sampled_from([
        "linear", "ramp", "cosine", "poly", "tanh", "step", "multistep", "exp", "isqrt", "cyclic", "onecycle",
        "restarts", "warmup_cosine", "wsd", "wpc",
    ]))
    peak, floor = draw(peak_and_floor())
    n = draw(lengths)
    if kind == "linear":
        return Linear(peak, floor, n)
    if kind == "ramp":
        shape = draw(st.sampled_from(["linear", "cosine", "1-sqrt", "power", "exponential"]))
        if shape == "exponential":
            floor = max(floor, peak * 1e-6)
        return Ramp(peak, floor, n, shape=shape, power=draw(st.floats(0.1, 5.0)))
    if kind == "cosine":
        return CosineDecay(peak, n, floor)
    if kind == "poly":
        return PolynomialDecay(peak, n, floor, power=draw(st.floats(0.1, 5.0)))
    if kind == "tanh":
        return TanhDecay(peak, n, floor)
    if kind == "step":
        return StepDecay(peak, n, gamma=draw(st.floats(0.01, 1.0)))
    if kind == "multistep":
        ms = sorted(set(draw(st.lists(st.integers(1, 10_000), min_size=1, max_size=6))))
        return MultiStepDecay(peak, tuple(ms), gamma=draw(st.floats(0.01, 1.0)))
    if kind == "exp":
        return ExponentialDecay(peak, draw(st.floats(0.01, 1.0)), n, staircase=draw(st.booleans()),
                                start_step=draw(st.integers(0, 100)), end_lr=floor)
    if kind == "isqrt":
        return InverseSqrt(peak, warmup_steps=n, timescale=draw(st.one_of(st.none(), lengths)))
    if kind == "cyclic":
        return Cyclic(floor, peak, n, draw(st.one_of(st.none(), lengths)),
                      mode=draw(st.sampled_from(["triangular", "triangular2", "exp_range"])),
                      gamma=draw(st.floats(0.9, 1.0)))
    if kind == "onecycle":
        total = draw(st.integers(20, 10_000))
        three = draw(st.booleans())
        return OneCycle(peak, total, pct_start=draw(st.floats(0.1, 0.4 if three else 0.9)),
                        anneal=draw(st.sampled_from(["cosine", "linear"])), three_phase=three)
    if kind == "restarts":
        return Restarts(peak, n, floor, period_mult=draw(st.sampled_from([1, 2, 3, 1.5, 1.25])),
                        peak_decay=draw(st.floats(0.1, 1.0)), max_cycles=draw(st.one_of(st.none(), st.integers(1, 6))),
                        shape=draw(st.sampled_from(["cosine", "linear", "1-sqrt"])))
    total = draw(st.integers(2, 100_000))
    w = draw(st.integers(0, total - 1))
    if kind == "warmup_cosine":
        return WarmupCosine(peak, total, w, floor)
    if kind == "wsd":
        d = draw(st.integers(1, total - w))
        return WSD(peak, total, d, w, floor, decay_shape=draw(st.sampled_from(["linear", "cosine", "1-sqrt"])))
    p = draw(st.integers(0, total - w - 1))
    return Warmup(WarmupPlateauCosine(peak, total, 0, p, floor), w) if draw(st.booleans()) else \
        WarmupPlateauCosine(peak, total, w, p, floor)


#: --hypothesis-seed=9 drew this: its 1% point lay ~1e18 steps out, so the horizon (and 10 * horizon)
#: overflowed int64 and `show` tried to allocate 6.62 EiB
SLOW_EXPONENTIAL = ExponentialDecay(base_lr=1.0, decay_rate=0.9999999999999999, decay_steps=23, end_lr=0.0)


def probe_steps(s, draw_extra):
    h = s.horizon
    marks = [b + d for b in s.boundaries(h) for d in (-1, 0, 1)]
    return np.asarray(sorted({m for m in [*marks, *draw_extra, h, h + 1, 10 * h + 7] if m >= 0}), dtype=np.int64)


@settings(max_examples=300, deadline=None)
@given(schedules(), st.lists(st.integers(0, 200_000), max_size=20))
@example(SLOW_EXPONENTIAL, [])
def test_array_equals_scalar_bit_for_bit(s, extra):
    steps = probe_steps(s, extra)
    arr = s.at(steps)
    for k, v in zip(steps.tolist(), arr.tolist()):
        assert s(k) == v, (s, k)


@settings(max_examples=300, deadline=None)
@given(schedules(), st.lists(st.integers(0, 200_000), max_size=20))
@example(SLOW_EXPONENTIAL, [])
def test_bounded_finite_and_never_negative(s, extra):
    steps = probe_steps(s, extra)
    values = s.at(steps)
    assert np.all(np.isfinite(values)) and np.all(values >= 0)
    inner = getattr(s, "schedule", s)
    hi = max(getattr(x, f, 0.0) or 0.0 for x in (s, inner) for f in ("peak_lr", "start_lr", "max_lr", "base_lr"))
    assert np.all(values <= hi * (1 + 4e-16))


@settings(max_examples=200, deadline=None)
@given(schedules())
def test_holds_final_value_past_the_end(s):
    end = s.end_step
    assume(end is not None)
    final = s(end)
    assert s(end + 1) == final and s(end + 12345) == final and s(max(end, 2**62)) == final
    assert np.all(s.at([end, end + 1, end + 2**40]) == final)


@settings(max_examples=200, deadline=None)
@given(peak_and_floor(), st.integers(2, 10**7), st.data())
def test_warmup_cosine_continuous_and_monotone(pf, total, data):
    peak, floor = pf
    w = data.draw(st.integers(0, total - 1))
    s = WarmupCosine(peak, total, w, floor)
    assert s(w) == peak and s(total) == floor
    probe = np.unique(np.clip(np.concatenate([np.arange(w - 3, w + 4), np.arange(total - 3, total + 4),
                                              np.linspace(0, total, 50).astype(np.int64)]), 0, None))
    v = s.at(probe)
    warm, decay = probe <= w, probe >= w
    assert np.all(np.diff(v[warm]) >= 0) and np.all(np.diff(v[decay]) <= 0)
    # continuity: one step moves the rate by at most the steepest slope of either phase
    step_bound = peak / max(w, 1) + np.pi / 2 * (peak - floor) / max(1, total - w)
    assert np.all(np.abs(np.diff(s.at(np.arange(max(0, w - 2), w + 3)))) <= step_bound * (1 + 1e-12) + 8e-16 * peak)


@settings(max_examples=150, deadline=None)
@given(schedules(), st.sampled_from(["yaml", "json", "toml"]))
@example(SLOW_EXPONENTIAL, "yaml")
def test_config_round_trip(s, fmt):
    spec = schedule_to_spec(s)
    text = format_config(spec, fmt)
    back = parse_config_text(text, fmt)
    assert back == spec
    rebuilt = build_schedule(back)
    assert rebuilt == s
    assert spec_hash(rebuilt) == spec_hash(s)
    steps = probe_steps(s, [])
    assert np.array_equal(rebuilt.at(steps), s.at(steps))


def test_the_seed_9_schedule_has_a_horizon_that_can_be_shown():
    s = SLOW_EXPONENTIAL
    assert s.end_step is None and 1 <= s.horizon <= 10**7
    steps = probe_steps(s, [])
    assert steps.max() < 2**62 and np.all(np.isfinite(s.at(steps)))


# -- finite at every step, or refused at construction -------------------------------

#: any positive float64, subnormals and the largest included
any_rate = st.one_of(st.floats(min_value=5e-324, max_value=1.7976931348623157e308),
                     st.sampled_from([5e-324, 1e-320, 2.2250738585072014e-308, 1e-300, 1e300, 1.7976931348623157e308]))


@st.composite
def wild_schedules(draw):
    """Families whose values come from products, ratios or powers of their parameters, over every float."""
    kind = draw(st.sampled_from(["ramp", "warmup", "restarts", "wsd", "scale", "step", "exp"]))
    a, b = draw(any_rate), draw(any_rate)
    n = draw(st.integers(1, 10**6))
    if kind == "ramp":
        return Ramp(a, b, n, shape="exponential")
    if kind == "warmup":
        return Warmup(Constant(b), n, shape="exponential", start_lr=a)
    if kind == "restarts":
        hi, lo = max(a, b), min(a, b)
        return Restarts(hi, n, lo, shape="exponential", period_mult=draw(st.sampled_from([1, 2, 1.5])))
    if kind == "wsd":
        hi, lo = max(a, b), min(a, b)
        return WSD(hi, 2 * n, n, 0, lo, decay_shape="exponential")
    if kind == "scale":
        inner = draw(st.sampled_from([Constant(a), Cyclic(0.0, a, n), Warmup(Constant(a), n)]))
        return Scale(inner, factor=b)
    if kind == "step":
        return StepDecay(a, n, gamma=draw(st.floats(5e-324, 1.0)))
    return ExponentialDecay(a, draw(st.floats(5e-324, 1.0)), n, end_lr=min(a, b) if draw(st.booleans()) else 0.0)


@settings(max_examples=400, deadline=None)
@given(st.data())
def test_finite_at_every_step_or_refused(data):
    try:
        s = data.draw(wild_schedules())
    except ParameterError:
        return  # refused at construction, naming the field
    marks = [b + d for b in s.boundaries(s.horizon) for d in (-1, 0, 1)]
    steps = np.unique(np.clip(np.asarray([*marks, *np.linspace(0, s.horizon, 200).astype(np.int64),
                                          s.horizon + 1, MAX_STEPS, 2**62], dtype=np.int64), 0, None))
    with np.errstate(over="raise", invalid="raise", divide="raise", under="ignore"):  # none on the way
        values = s.at(steps)
    assert np.all(np.isfinite(values)) and np.all(values >= 0), s
