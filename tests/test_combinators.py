"""Combinators and recipes: boundaries, the DESIGN §2 schedule of record, restarts."""

from __future__ import annotations

import mpmath as mp
import numpy as np
import pytest

from conftest import around
from lrtempo.schedules import (
    WSD,
    Clamp,
    Constant,
    CosineDecay,
    Join,
    Linear,
    ParameterError,
    Piece,
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
    c = Clamp(Linear(0.0, 1.0, 10), min_lr=0.2, max_lr=0.5)
    assert [c(k) for k in (0, 3, 9)] == [0.2, 0.30000000000000004, 0.5] or c(3) == pytest.approx(0.3)
    s = Scale(CosineDecay(1.0, 10), factor=0.25)
    assert s(0) == 0.25 and s(10) == 0.0


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
