"""Golden values for every family: step 0, every boundary +- 1, the end and past it.

Each expected value comes from the textbook formula, evaluated at 50 digits
with mpmath (see conftest), never typed in.
"""

from __future__ import annotations

import math
import re

import mpmath as mp
import numpy as np
import pytest

from conftest import around
from lrtempo.schedules import (
    MAX_STEPS,
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
    StepDecay,
    TanhDecay,
)

M = mp.mpf


def cosine_ref(a, b, k, n):
    k = min(k, n)
    return M(b) + (M(a) - M(b)) * (1 + mp.cos(mp.pi * M(k) / n)) / 2


def linear_ref(a, b, k, n):
    k = min(k, n)
    return M(a) + (M(b) - M(a)) * M(k) / n


def test_constant(check_schedule):
    check_schedule(Constant(lr=0.3), lambda k: M(0.3), [0, 1, 10**12])
    assert Constant(0.3).end_step == 0


def test_linear(check_schedule):
    s = Linear(start_lr=1e-3, end_lr=2e-5, steps=1000)
    check_schedule(s, lambda k: linear_ref(1e-3, 2e-5, k, 1000), [*around(0, 500, 1000), 5000])
    assert s(0) == 1e-3 and s(1000) == 2e-5 and s(10**9) == 2e-5


@pytest.mark.parametrize("shape", ["linear", "cosine", "1-sqrt", "power", "exponential"])
def test_ramp_shapes(check_schedule, shape):
    a, b, n, p = 1e-3, 1e-5, 997, 2.5

    def ref(k):
        x = M(min(k, n)) / n
        if shape == "linear":
            f = x
        elif shape == "cosine":
            f = (1 - mp.cos(mp.pi * x)) / 2
        elif shape == "1-sqrt":
            f = mp.sqrt(x)
        elif shape == "power":
            f = 1 - (1 - x) ** M(p)
        else:
            return M(a) * (M(b) / M(a)) ** x
        return M(a) + (M(b) - M(a)) * f

    s = Ramp(start_lr=a, end_lr=b, steps=n, shape=shape, power=p)
    check_schedule(s, ref, [*around(0, n // 2, n), 1, 333, 900, n + 50])
    assert s(0) == a and s(n) == b


def test_cosine(check_schedule):
    s = CosineDecay(peak_lr=1e-3, decay_steps=5000, min_lr=1e-5)
    check_schedule(s, lambda k: cosine_ref(1e-3, 1e-5, k, 5000), [*around(0, 2500, 5000), 10**7])
    assert s(0) == 1e-3 and s(5000) == 1e-5 and s(5001) == 1e-5


def test_polynomial(check_schedule):
    s = PolynomialDecay(peak_lr=1e-3, decay_steps=777, min_lr=1e-6, power=0.5)
    ref = lambda k: M(1e-6) + (M(1e-3) - M(1e-6)) * (1 - M(min(k, 777)) / 777) ** M(0.5)  # noqa: E731
    check_schedule(s, ref, [*around(0, 388, 777), 2000])


def test_tanh(check_schedule):
    s = TanhDecay(peak_lr=1e-3, decay_steps=1000, min_lr=1e-5, lower=-6.0, upper=4.0)

    def ref(k):
        u = M(-6) + 10 * M(min(k, 1000)) / 1000
        frac = (mp.tanh(u) - mp.tanh(-6)) / (mp.tanh(4) - mp.tanh(-6))
        return M(1e-3) - (M(1e-3) - M(1e-5)) * frac

    check_schedule(s, ref, [*around(0, 500, 1000), 1234])
    assert s(0) == 1e-3 and s(1000) == 1e-5


def test_step(check_schedule):
    s = StepDecay(base_lr=0.1, step_size=30, gamma=0.5)
    check_schedule(s, lambda k: M(0.1) * M(0.5) ** (k // 30), [*around(0, 30, 60, 90), 10**6])
    assert s.end_step is None
    assert StepDecay(base_lr=0.1, step_size=3, gamma=1.0).end_step == 0


def test_multistep(check_schedule):
    s = MultiStepDecay(base_lr=0.1, milestones=(100, 250), gamma=0.2)
    ref = lambda k: M(0.1) * M(0.2) ** sum(k >= m for m in (100, 250))  # noqa: E731
    check_schedule(s, ref, [*around(0, 100, 250), 10**6])
    assert s.end_step == 250


@pytest.mark.parametrize("staircase", [False, True])
def test_exponential(check_schedule, staircase):
    s = ExponentialDecay(base_lr=1e-3, decay_rate=0.5, decay_steps=100, staircase=staircase,
                         start_step=40, end_lr=1e-5)

    def ref(k):
        t = max(0, k - 40)
        e = M(t // 100) if staircase else M(t) / 100
        return max(M(1e-3) * M(0.5) ** e, M(1e-5))

    end = s.end_step
    # the end is the first step where the decayed value reaches end_lr
    assert ref(end) == M(1e-5) and ref(end - 1) > M(1e-5)
    check_schedule(s, ref, [*around(0, 40, 140, 240, end), end + 1000], max_ulps=8)


def test_exponential_endless():
    s = ExponentialDecay(base_lr=1.0, decay_rate=0.9, decay_steps=10)
    assert s.end_step is None and s(10**6) < 1e-300 and s(10**6) >= 0


def test_inverse_sqrt(check_schedule):
    s = InverseSqrt(peak_lr=1e-3, warmup_steps=400, timescale=1000)

    def ref(k):
        if k < 400:
            return M(1e-3) * k / 400
        return M(1e-3) * mp.sqrt(M(1000) / (1000 + k - 400))

    check_schedule(s, ref, [*around(0, 200, 400), 10**6])
    assert s(400) == 1e-3


def test_inverse_sqrt_transformer_form(check_schedule):
    from lrtempo.schedules import Noam

    s = Noam(d_model=512, warmup_steps=4000)

    def ref(k):
        if k == 0:
            return M(0)
        return M(512) ** M(-0.5) * min(M(k) ** M(-0.5), M(k) * M(4000) ** M(-1.5))

    check_schedule(s, ref, [*around(0, 4000), 10**5], max_ulps=6)


@pytest.mark.parametrize("mode", ["triangular", "triangular2", "exp_range"])
def test_cyclic(check_schedule, mode):
    s = Cyclic(base_lr=1e-4, max_lr=1e-3, step_size_up=20, step_size_down=30, mode=mode, gamma=0.99)

    def ref(k):
        c, j = divmod(k, 50)
        frac = M(j) / 20 if j <= 20 else M(50 - j) / 30
        amp = {"triangular": M(1), "triangular2": M(0.5) ** c, "exp_range": M(0.99) ** k}[mode]
        return M(1e-4) + (M(1e-3) - M(1e-4)) * frac * amp

    check_schedule(s, ref, [*around(0, 20, 50, 70, 100, 150), 777], max_ulps=8)


@pytest.mark.parametrize("three_phase", [False, True])
@pytest.mark.parametrize("anneal", ["cosine", "linear"])
def test_one_cycle(check_schedule, three_phase, anneal):
    s = OneCycle(max_lr=0.1, total_steps=1000, pct_start=0.25, anneal=anneal, div_factor=20.0,
                 final_div_factor=100.0, three_phase=three_phase)
    init, final, up = M(0.1) / 20, M(0.1) / 20 / 100, 250

    def leg(a, b, k, n):
        return cosine_ref(a, b, k, n) if anneal == "cosine" else linear_ref(a, b, k, n)

    def ref(k):
        k = min(k, 1000)
        if k <= up:
            return leg(init, 0.1, k, up)
        if not three_phase:
            return leg(0.1, final, k - up, 1000 - up)
        if k <= 2 * up:
            return leg(0.1, init, k - up, up)
        return leg(init, final, k - 2 * up, 1000 - 2 * up)

    marks = (0, up, 2 * up, 1000) if three_phase else (0, up, 1000)
    check_schedule(s, ref, [*around(*marks), 5000], max_ulps=6)


@pytest.mark.parametrize(
    "make, field",
    [
        (lambda: Constant(lr=-1.0), "lr"),
        (lambda: Constant(lr=float("nan")), "lr"),
        (lambda: Constant(lr="0.1"), "lr"),
        (lambda: Linear(0.0, 1.0, steps=0), "steps"),
        (lambda: Linear(0.0, 1.0, steps=2.5), "steps"),
        (lambda: CosineDecay(peak_lr=0.1, decay_steps=10, min_lr=0.2), "min_lr"),
        (lambda: StepDecay(base_lr=0.1, step_size=10, gamma=0.0), "gamma"),
        (lambda: MultiStepDecay(base_lr=0.1, milestones=(5, 5)), "milestones"),
        (lambda: MultiStepDecay(base_lr=0.1, milestones=()), "milestones"),
        (lambda: ExponentialDecay(base_lr=0.1, decay_rate=1.5), "decay_rate"),
        (lambda: InverseSqrt(peak_lr=0.1), "timescale"),
        (lambda: Cyclic(base_lr=0.2, max_lr=0.1, step_size_up=5), "base_lr"),
        (lambda: Cyclic(base_lr=0.1, max_lr=0.2, step_size_up=5, mode="triangle"), "mode"),
        (lambda: OneCycle(max_lr=0.1, total_steps=10, pct_start=0.01), "pct_start"),
        (lambda: TanhDecay(peak_lr=0.1, decay_steps=10, lower=3.0, upper=-7.0), "lower"),
        (lambda: Ramp(0.0, 1.0, 10, shape="exponential"), "start_lr"),
    ],
)
def test_validation_names_the_field(make, field):
    with pytest.raises(ParameterError, match=rf"^(.*; )?{field}: "):
        make()


def test_every_problem_reported_at_once():
    with pytest.raises(ParameterError) as info:
        CosineDecay(peak_lr=-1.0, decay_steps=0, min_lr=float("inf"))
    assert {f for f, _ in info.value.problems} == {"peak_lr", "decay_steps", "min_lr"}


def test_choice_suggests_near_miss():
    with pytest.raises(ParameterError, match="did you mean 'exp_range'"):
        Cyclic(base_lr=0.1, max_lr=0.2, step_size_up=5, mode="exp-range")


def test_bad_steps():
    s = Constant(0.1)
    with pytest.raises(ValueError, match="step must be >= 0"):
        s(-1)
    with pytest.raises(TypeError, match="non-negative integer"):
        s(1.5)
    with pytest.raises(TypeError):
        s(True)
    with pytest.raises(ValueError, match="steps must be >= 0"):
        s.at([0, -3])
    with pytest.raises(ValueError, match="steps must be integers"):
        s.at([0.5])
    import numpy as np

    assert s(np.int64(3)) == 0.1
    assert s.at(np.zeros((2, 3), dtype=np.int32)).shape == (2, 3)


# -- every schedule is at most MAX_STEPS long, and finite at every step ------------------

LONG = [
    (CosineDecay, {"peak_lr": 1.0}, "decay_steps"),
    (Linear, {"start_lr": 0.0, "end_lr": 1.0}, "steps"),
    (Ramp, {"start_lr": 1.0, "end_lr": 0.5, "shape": "exponential"}, "steps"),
    (PolynomialDecay, {"peak_lr": 1.0}, "decay_steps"),
    (TanhDecay, {"peak_lr": 1.0}, "decay_steps"),
    (StepDecay, {"base_lr": 1.0}, "step_size"),
    (ExponentialDecay, {"base_lr": 1.0, "decay_rate": 0.5}, "start_step"),
    (InverseSqrt, {"peak_lr": 1.0}, "warmup_steps"),
    (Cyclic, {"base_lr": 0.0, "max_lr": 1.0}, "step_size_up"),
    (OneCycle, {"max_lr": 1.0}, "total_steps"),
]


@pytest.mark.parametrize("cls, kwargs, field", LONG, ids=[c.__name__ for c, _, _ in LONG])
def test_step_counts_are_at_most_max_steps(cls, kwargs, field):
    s = cls(**kwargs, **{field: MAX_STEPS})  # the longest schedule is accepted ...
    values = s.at([0, 1, MAX_STEPS - 1, MAX_STEPS, MAX_STEPS + 1, 2**62])
    assert np.all(np.isfinite(values)) and np.all(values >= 0)
    for too_long in (MAX_STEPS + 1, 2**63, 2**64 + 5):  # ... one more step is refused, naming the field
        with pytest.raises(ParameterError, match=rf"^{field}: must be <= 2\*\*53 = {MAX_STEPS}, the longest "):
            cls(**kwargs, **{field: too_long})


def test_the_longest_cosine_is_exact_at_its_ends(check_schedule):
    s = CosineDecay(peak_lr=1.0, min_lr=0.25, decay_steps=MAX_STEPS)
    steps = around(0, MAX_STEPS // 3, MAX_STEPS // 2, MAX_STEPS - 10**9, MAX_STEPS)
    check_schedule(s, lambda k: cosine_ref(1.0, 0.25, k, MAX_STEPS), steps)
    assert s(0) == 1.0 and s(MAX_STEPS) == 0.25 and s(MAX_STEPS - 10**9) > 0.25


def test_multistep_milestones_at_most_max_steps():
    MultiStepDecay(base_lr=1.0, milestones=(5, MAX_STEPS))
    with pytest.raises(ParameterError, match=r"^milestones: every milestone must be <= 2\*\*53"):
        MultiStepDecay(base_lr=1.0, milestones=(5, MAX_STEPS + 1))


def test_multistep_with_a_million_milestones_locates_levels_by_bisection():
    ms = tuple(range(3, 3 * 10**6 + 1, 3))
    s = MultiStepDecay(base_lr=1.0, milestones=ms, gamma=0.999999)
    probe = np.array([0, 2, 3, 4, 299_999, 300_000, 3 * 10**6 - 1, 3 * 10**6, 10**12])
    expected = np.power(0.999999, np.searchsorted(np.asarray(ms), probe, side="right"))
    assert np.array_equal(s.at(probe), expected)
    assert [s(int(k)) for k in probe] == expected.tolist()
    assert s.end_step == 3 * 10**6


def test_multistep_messages_stay_short_for_long_lists():
    with pytest.raises(ParameterError) as info:
        MultiStepDecay(base_lr=1.0, milestones=(*range(1, 10**5), 5))
    assert len(str(info.value)) < 200 and "... 99992 more ..., 99998, 99999, 5]" in str(info.value)


@pytest.mark.parametrize("a, b, field, message", [
    (1e-320, 1e-3, "start_lr", "must be >= 2.2250738585072014e-308 (the smallest normal float64)"),
    (1e-3, 1e-320, "end_lr", "must be >= 2.2250738585072014e-308"),
    (0.0, 1e-3, "start_lr", "must be > 0 for the exponential shape"),
    (3e-308, 1e3, "start_lr", "the exponential shape needs start_lr / end_lr within float64's range"),
    (1e300, 1e-10, "end_lr",
     "the exponential shape needs start_lr / end_lr within float64's range (got 1e+300 / 1e-10)"),
])
def test_exponential_ramp_ends_must_keep_it_finite(a, b, field, message):
    with pytest.raises(ParameterError, match=rf"^{field}: {re.escape(message)}"):
        Ramp(start_lr=a, end_lr=b, steps=10, shape="exponential")


@pytest.mark.parametrize("a, b", [(1e-300, 1e-3), (2.2250738585072014e-308, 1e-3), (1e300, 1e-8), (1e-3, 1e300)])
def test_exponential_ramp_near_the_limits_is_finite_at_every_step(a, b):
    s = Ramp(start_lr=a, end_lr=b, steps=10, shape="exponential")
    values = s.at(np.arange(12))
    assert np.all(np.isfinite(values)) and values[0] == a and values[10] == b and values[11] == b
    assert np.all(np.diff(values[:11]) > 0) if b > a else np.all(np.diff(values[:11]) < 0)


def test_exponential_decay_end_by_bisection_even_with_long_stairs():
    s = ExponentialDecay(base_lr=1.0, decay_rate=0.5, decay_steps=10**9, staircase=True, end_lr=0.3)
    assert s.end_step == 2 * 10**9  # 0.25 <= 0.3 first on the second stair
    assert s(2 * 10**9 - 1) == 0.5 and s(2 * 10**9) == 0.3 and s(10**15) == 0.3


@pytest.mark.parametrize("rate, steps, start, staircase", [
    (0.5, 1, 0, False), (0.9, 7, 3, False), (0.9, 7, 3, True), (0.99, 1, 100, False), (0.3, 5, 0, True),
])
def test_exponential_decay_end_is_the_first_step_at_the_floor(rate, steps, start, staircase):
    s = ExponentialDecay(base_lr=2.0, decay_rate=rate, decay_steps=steps, start_step=start,
                         staircase=staircase, end_lr=0.01)
    raw = [2.0 * rate ** ((max(0, k - start) // steps) if staircase else (max(0, k - start) / steps))
           for k in range(20_000)]
    first = next(k for k, v in enumerate(raw) if v <= 0.01 * (1 + 1e-15))
    assert abs(s.end_step - first) <= 1  # the reference uses Python's pow, the schedule NumPy's
    assert s(s.end_step) == 0.01 and s(s.end_step - 1) > 0.01


def test_exponential_decay_within_an_ulp_of_one_has_a_finite_horizon():
    # the hypothesis failure (--hypothesis-seed=9): the 1% point lies ~1e18 steps out
    s = ExponentialDecay(base_lr=1.0, decay_rate=0.9999999999999999, decay_steps=23, end_lr=0.0)
    assert s.end_step is None and s.horizon == 10**7
    assert 0.99 < s(s.horizon) < 1.0
    assert ExponentialDecay(base_lr=1.0, decay_rate=0.5, decay_steps=10, start_step=7).horizon == \
        7 + math.ceil(10 * math.log(0.01) / math.log(0.5))
    slow_floor = ExponentialDecay(base_lr=1.0, decay_rate=0.9999999999999999, decay_steps=23, end_lr=0.5)
    assert slow_floor.end_step is None and slow_floor.horizon == 10**7  # reaches 0.5 only past 2**53


def test_steps_beyond_int64_hold_the_end_or_are_refused():
    ended, endless = CosineDecay(peak_lr=1.0, min_lr=0.5, decay_steps=10), StepDecay(base_lr=1.0, step_size=10)
    assert ended(2**63) == 0.5 and ended(2**80) == 0.5  # held past the end, however far
    assert endless(2**63 - 1) == 0.0  # the last int64 step still evaluates (the rate has underflowed)
    for bad in (2**63, 2**80):
        with pytest.raises(ValueError, match=r"^step must be < 2\*\*63"):
            endless(bad)
        with pytest.raises(ValueError, match=r"^steps must be < 2\*\*63"):
            endless.at([1, bad])
    with pytest.raises(ValueError, match=r"^steps must be < 2\*\*63"):
        ended.at(np.array([2**63], dtype=np.uint64))
    assert ended.at([1, 2**62]).tolist() == [ended(1), 0.5]
