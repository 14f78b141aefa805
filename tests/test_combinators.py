"""Combinators and recipes: boundaries, the DESIGN §2 schedule of record, restarts."""

from __future__ import annotations

import mpmath as mp
import numpy as np
import pytest

from conftest import around
from lrtempo.schedules import (
    MAX_CYCLES,
    MAX_STEPS,
    WSD,
    Clamp,
    Constant,
    CosineDecay,
    Cyclic,
    Join,
    Linear,
    ParameterError,
    Piece,
    Ramp,
    Restarts,
    Scale,
    StepDecay,
    Warmup,
    WarmupCosine,
    WarmupPlateauCosine,
)

M = mp.mpf


def design_ref(peak, min_lr, w, t):
    """DESIGN §2 transcribed literally."""

    def ref(k):
        if w > 0 and 0 <= k <= w:
            return M(peak) * k / w
        if k > t:
            return M(min_lr)
        progress = M(k - w) / max(1, t - w)
        return M(min_lr) + M(0.5) * (M(peak) - M(min_lr)) * (1 + mp.cos(mp.pi * progress))

    return ref


@pytest.mark.parametrize("w, t", [(400, 20_000), (0, 1000), (1, 2), (7, 8), (3, 10_000_000)])
def test_warmup_cosine_is_design_section_2(check_schedule, w, t):
    s = WarmupCosine(peak_lr=3e-4, total_steps=t, warmup_steps=w, min_lr=3e-5)
    check_schedule(s, design_ref(3e-4, 3e-5, w, t), [*around(0, w, (w + t) // 2, t), t + 10**6])
    assert s(w) == 3e-4 and s(t) == 3e-5 and s(t + 1) == 3e-5
    assert s(0) == (0.0 if w else 3e-4)
    assert s.end_step == t


def test_warmup_cosine_start_value():
    s = WarmupCosine(peak_lr=1.0, total_steps=100, warmup_steps=10, warmup_start_lr=0.1)
    assert s(0) == 0.1 and s(10) == 1.0 and s(5) == pytest.approx(0.55, abs=1e-15)


def test_warmup_cosine_rejects_warmup_not_shorter_than_total():
    with pytest.raises(ParameterError, match="warmup_steps: must be < total_steps"):
        WarmupCosine(peak_lr=1.0, total_steps=100, warmup_steps=100)


def test_join_local_steps_and_end():
    j = Join((Piece(Linear(0.0, 1.0, 10), 10), Piece(Constant(0.5), 5), Piece(CosineDecay(0.5, 20, 0.1))))
    assert [j(k) for k in (0, 5, 9, 10, 14, 15)] == [0.0, 0.5, 0.9, 0.5, 0.5, 0.5]
    assert j(35) == 0.1 and j.end_step == 35 and j(10**9) == 0.1
    # a truncated last piece holds its value at the cut
    cut = Join((Piece(Linear(0.0, 1.0, 10), 3),))
    assert cut.end_step == 3 and cut(100) == cut(3) == 0.30000000000000004 or cut(100) == cut(3)


def test_join_requires_steps_on_all_but_last():
    with pytest.raises(ParameterError, match=r"pieces\[0\].steps: is required"):
        Join((Piece(Constant(1.0)), Piece(Constant(0.5))))


@pytest.mark.parametrize("shape", ["linear", "cosine", "exponential"])
def test_warmup_shapes(shape):
    w = Warmup(Constant(1.0), warmup_steps=100, shape=shape, start_lr=0.01)
    assert w(0) == 0.01 and w(100) == 1.0 and w(10**6) == 1.0
    values = w.at(np.arange(101))
    assert np.all(np.diff(values) > 0)
    if shape == "exponential":
        assert w(50) == pytest.approx(0.1, rel=1e-14)  # geometric midpoint


def test_warmup_shifts_the_schedule():
    w = Warmup(StepDecay(base_lr=1.0, step_size=10, gamma=0.5), warmup_steps=5)
    assert [w(k) for k in (0, 5, 14, 15)] == [0.0, 1.0, 1.0, 0.5]


def test_restarts_integer_multiplier_boundaries():
    r = Restarts(peak_lr=1.0, period=10, period_mult=2, min_lr=0.0, peak_decay=0.5)
    # cycles start at 0, 10, 30, 70, 150; the step before a restart is the
    # previous cycle's last: prev_peak * sin(pi / (2 L)) ** 2
    import math

    cycles = [(0, 10, 1.0), (10, 20, 0.5), (30, 40, 0.25), (70, 80, 0.125), (150, 160, 0.0625)]
    for (start, _length, peak), (_prev_start, prev_len, prev_peak) in zip(cycles[1:], cycles):
        assert r(start) == peak
        assert r(start - 1) == pytest.approx(prev_peak * math.sin(math.pi / (2 * prev_len)) ** 2, rel=1e-14)
        assert r(start + 1) < peak
    assert r(0) == 1.0 and r.end_step is None


def test_restarts_cycle_index_is_exact_where_float_log_fails():
    # with period_mult 3 the float-log formula floor(log(1 + k (m-1)/T0, m)) lands
    # on the wrong side of some cycle starts; integer arithmetic does not
    r = Restarts(peak_lr=1.0, period=2, period_mult=3, shape="linear")
    starts = [0]
    for i in range(30):
        starts.append(starts[-1] + 2 * 3**i)
    for s in starts[:30]:
        assert r(s) == 1.0
        if s:
            assert r(s - 1) < 1.0
    assert np.all(r.at(starts[:30]) == 1.0)
    import math

    wrong = [s for i, s in enumerate(starts[:30]) if math.floor(math.log(1 + s * 2 / 2, 3)) != i]
    assert wrong, "the float formula should misplace at least one restart here"


def test_restarts_float_multiplier_rounds_half_up():
    r = Restarts(peak_lr=1.0, period=10, period_mult=1.5, shape="linear", max_cycles=4)
    # lengths round(10 * 1.5 ** i) = 10, 15, 22.5 -> 23, 33.75 -> 34
    assert r.end_step == 10 + 15 + 23 + 34
    assert r(10) == 1.0 and r(25) == 1.0 and r(48) == 1.0
    assert r(r.end_step) == 0.0 and r(10**6) == 0.0
    assert [p.start for p in r.phases()] == [0, 10, 25, 48]


def test_clamp_and_scale():
    inner = Linear(0.0, 1.0, 10)
    c = Clamp(inner, min_lr=0.2, max_lr=0.5)
    steps = list(range(12))
    expected = [min(max(inner(k), 0.2), 0.5) for k in steps]
    assert [c(k) for k in steps] == expected and c.at(steps).tolist() == expected
    assert c(0) == 0.2 and c(1) == 0.2 and c(2) == 0.2  # the floor (the inner rate is 0, 0.1, 0.2)
    assert c(3) == inner(3) and c(5) == 0.5 and c(9) == 0.5  # untouched inside, then the cap
    assert Clamp(inner, min_lr=0.2)(10) == 1.0  # no cap by default
    s = Scale(CosineDecay(1.0, 10), factor=0.25)
    assert s(0) == 0.25 and s(10) == 0.0 and s(5) == 0.25 * CosineDecay(1.0, 10)(5)


@pytest.mark.parametrize("shape", ["linear", "cosine", "1-sqrt", "power", "exponential"])
def test_wsd_phases(shape):
    s = WSD(peak_lr=1e-3, total_steps=1000, warmup_steps=100, decay_steps=200, decay_shape=shape,
            min_lr=1e-5, power=2.0)
    assert s(0) == 0.0 and s(100) == 1e-3 and s(799) == 1e-3 and s(800) == 1e-3
    assert s(1000) == 1e-5 and s(5000) == 1e-5
    assert s(801) < 1e-3
    decay = s.at(np.arange(800, 1001))
    assert np.all(np.diff(decay) <= 0)
    assert [p.name for p in s.phases()] == ["warmup", "stable", "decay"]


def test_wsd_rejects_overlong_phases():
    with pytest.raises(ParameterError, match="warmup_steps \\+ decay_steps must be <= total_steps"):
        WSD(peak_lr=1.0, total_steps=100, warmup_steps=50, decay_steps=60)


def test_warmup_plateau_cosine():
    s = WarmupPlateauCosine(peak_lr=1.0, total_steps=1000, warmup_steps=100, plateau_steps=200, min_lr=0.1)
    assert s(100) == 1.0 and s(299) == 1.0 and s(300) == 1.0 and s(301) < 1.0
    assert s(1000) == 0.1 and s(650) == pytest.approx(0.55, rel=1e-15)


def test_warmup_plateau_cosine_with_restarts_ends_at_the_floor():
    s = WarmupPlateauCosine(peak_lr=1.0, total_steps=1000, warmup_steps=100, plateau_steps=100, min_lr=0.1,
                            restart_period=300, period_mult=1, peak_decay=0.5)
    assert s(200) == 1.0 and s(500) == 0.5 and s(800) == 0.25
    assert s(1000) == 0.1 and s(10**6) == 0.1


# -- restarts: exact cycle starts, bounded work, never mutated ---------------------------

def exact_starts(period, mult, count):
    from fractions import Fraction

    m = Fraction(repr(mult)) if isinstance(mult, float) else Fraction(mult)
    starts = [0]
    for i in range(count):
        x = period * m**i
        starts.append(starts[-1] + int(x + Fraction(1, 2)))  # half up
    return starts


@pytest.mark.parametrize("period, mult", [
    (10, 1.5), (10, 1.1), (7, 1.25), (3, 1.01), (1, 1.001), (100, 2.5), (5, 3), (1, 2), (13, 1.0625),
    (2, 1.5000000000000002), (1000, 1.0009765625),
])
def test_restarts_cycle_starts_equal_exact_rational_arithmetic(period, mult):
    from lrtempo.schedules._combinators import cycle_starts

    starts = cycle_starts(period, mult, None)
    count = min(len(starts) - 1, 1500)
    assert list(starts[:count + 1]) == exact_starts(period, mult, count)
    assert starts[-2] <= MAX_STEPS < starts[-1]  # cycles run until one starts past 2**53
    r = Restarts(peak_lr=1.0, period=period, period_mult=mult, shape="linear")
    probe = np.asarray(starts[1:count], dtype=np.int64)
    after_long = probe[np.diff(np.asarray(starts[:count], dtype=np.int64)) > 1]  # last step of a cycle of 2+ steps
    assert np.all(r.at(probe) == 1.0) and np.all(r.at(after_long - 1) < 1.0)


@pytest.mark.parametrize("period, mult", [(10, 1.5), (4, 1.5), (3, 1.1), (7, 1.25), (1, 1.01), (5, 2.5)])
def test_restarts_cycle_starts_stay_exact_when_the_fixed_point_is_coarse(monkeypatch, period, mult):
    # with 3 fractional bits almost every length is ambiguous and recomputed in exact rationals
    from lrtempo.schedules import _combinators

    monkeypatch.setattr(_combinators, "_FIXED", 3)
    starts = _combinators.cycle_starts(period, mult, 300)
    assert list(starts) == exact_starts(period, mult, 300)[:len(starts)]


def test_half_up_is_exact():
    from fractions import Fraction

    from lrtempo.schedules._combinators import _half_up

    for num, den in [(45, 2), (44, 2), (43, 2), (1, 3), (2, 3), (5, 10), (15, 10), (10**40 + 5, 10)]:
        assert _half_up(num, den) == int(Fraction(num, den) + Fraction(1, 2)), (num, den)


def test_restarts_ties_round_half_up():
    from lrtempo.schedules._combinators import cycle_starts

    # 10 * 1.5**2 = 22.5 -> 23, 10 * 1.5**3 = 33.75 -> 34, 4 * 1.5**3 = 13.5 -> 14: exact ties
    assert cycle_starts(10, 1.5, 4) == (0, 10, 25, 48, 82)
    assert cycle_starts(4, 1.5, 4) == (0, 4, 10, 19, 33)


def test_restarts_that_end_past_max_steps_are_refused():
    # the IndexError: 500 cycles growing by 1.1 pass 2**53 after 337
    with pytest.raises(ParameterError, match=r"^max_cycles: 500 cycles of period 10 growing by 1.1 end after "
                                             r"step 2\*\*53, the longest schedule; at most 337 fit$"):
        Restarts(peak_lr=1.0, period=10, period_mult=1.1, max_cycles=500)
    r = Restarts(peak_lr=1.0, period=10, period_mult=1.1, max_cycles=337)
    assert r.end_step == exact_starts(10, 1.1, 337)[-1] <= MAX_STEPS
    assert r(r.end_step) == 0.0 and r(r.end_step - 1) > 0.0 and r(2**62) == 0.0
    with pytest.raises(ParameterError, match=r"^max_cycles: max_cycles \* period \(900719925474100 \* 10\) must be <="):
        Restarts(peak_lr=1.0, period=10, max_cycles=MAX_STEPS // 10 + 1)
    assert Restarts(peak_lr=1.0, period=10, max_cycles=MAX_STEPS // 10).end_step == MAX_STEPS // 10 * 10


def test_restarts_with_too_many_cycles_are_refused_at_once():
    with pytest.raises(ParameterError, match=rf"^max_cycles: must be <= {MAX_CYCLES} when period_mult is not 1"):
        Restarts(peak_lr=1.0, period=1, period_mult=1.0000000001, max_cycles=10**12)
    with pytest.raises(ParameterError, match=rf"^period_mult: 1.0000000001 with period 1 makes more than "
                                             rf"{MAX_CYCLES} cycles before step 2\*\*53"):
        Restarts(peak_lr=1.0, period=1, period_mult=1.0000000001)
    r = Restarts(peak_lr=1.0, period=1, period_mult=1.0000000001, max_cycles=MAX_CYCLES)
    assert r.end_step == MAX_CYCLES  # every cycle rounds to one step
    with pytest.raises(ParameterError, match="^period_mult: "):
        WarmupPlateauCosine(peak_lr=1.0, total_steps=1000, restart_period=1, period_mult=1.0000000001)


def test_restarts_evaluation_never_changes_the_schedule():
    r = Restarts(peak_lr=1.0, period=10, period_mult=1.5, peak_decay=0.5)
    starts = r._cycle_starts
    assert isinstance(starts, tuple)
    values = r.at([0, 10**6, 10**15, MAX_STEPS, 2**62])
    assert r._cycle_starts is starts and r == Restarts(peak_lr=1.0, period=10, period_mult=1.5, peak_decay=0.5)
    assert np.all(np.isfinite(values)) and values[0] == 1.0 and values[-1] == 0.0
    assert r(2**62) == 0.0  # past 2**53 an endless restarts sits at the end of its last cycle


def test_scale_refuses_an_overflowing_product():
    with pytest.raises(ParameterError, match=r"^factor: 1e\+300 times the schedule's largest value 1e\+300 "
                                             r"overflows"):
        Scale(Constant(1e300), factor=1e300)
    with pytest.raises(ParameterError, match=r"largest value 1e\+200 overflows"):
        Scale(Cyclic(base_lr=0.0, max_lr=1e200, step_size_up=7), factor=1e110)  # the peak is mid-cycle
    with pytest.raises(ParameterError, match=r"^factor: "):
        Scale(Warmup(Constant(1e300), warmup_steps=5), factor=1e10)  # the largest value is after the warmup
    s = Scale(Scale(Constant(1e300), factor=100.0), factor=10.0)
    assert s(0) == 1e303 and np.isfinite(s(10**9))
    assert Scale(Constant(1.7e308), factor=1.0)(0) == 1.7e308 and Scale(Constant(1e308), factor=0.5)(0) == 5e307


def test_exponential_warmup_and_restarts_keep_every_value_finite():
    with pytest.raises(ParameterError, match=r"^start_lr: must be >= 2.2250738585072014e-308"):
        Warmup(Constant(1e-3), warmup_steps=10, shape="exponential", start_lr=1e-320)
    with pytest.raises(ParameterError, match=r"^start_lr: an exponential warmup ends at the schedule's first "
                                             r"value, which must be > 0"):
        Warmup(Linear(0.0, 1.0, 10), warmup_steps=10, shape="exponential", start_lr=1e-6)
    with pytest.raises(ParameterError, match=r"^min_lr: must be >= 2.2250738585072014e-308"):
        Restarts(peak_lr=1.0, period=10, min_lr=1e-310, shape="exponential")
    with pytest.raises(ParameterError, match=r"^min_lr: must be >= 2.2250738585072014e-308"):
        WSD(peak_lr=1.0, total_steps=100, decay_steps=10, min_lr=1e-310, decay_shape="exponential")
    w = Warmup(Constant(1e-3), warmup_steps=10, shape="exponential", start_lr=1e-300)
    values = w.at(np.arange(12))
    assert np.all(np.isfinite(values)) and values[0] == 1e-300 and values[10] == 1e-3
    assert np.all(np.diff(values[:11]) > 0)


def test_combined_lengths_are_at_most_max_steps():
    half = MAX_STEPS // 2 + 1
    with pytest.raises(ParameterError, match=r"^pieces: the pieces' total number of steps must be <= 2\*\*53"):
        Join((Piece(Constant(1.0), half), Piece(Linear(1.0, 0.0, half))))
    with pytest.raises(ParameterError, match=r"^warmup_steps: warmup_steps \+ the schedule's end step must be <= 2"):
        Warmup(Linear(1.0, 0.0, half), warmup_steps=half)
    j = Join((Piece(Constant(1.0), half - 1), Piece(Linear(1.0, 0.0, half - 1))))
    assert j.end_step == MAX_STEPS and j(j.end_step) == 0.0 and j(MAX_STEPS // 2) == 1.0
    assert Warmup(Constant(1.0), warmup_steps=MAX_STEPS)(MAX_STEPS) == 1.0
    with pytest.raises(ParameterError, match=r"must be <= 2\*\*53"):
        Ramp(1.0, 0.0, MAX_STEPS + 1)
