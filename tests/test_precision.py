"""Precision on long schedules against mpmath at 50 digits: the tail, every boundary, random steps."""

from __future__ import annotations

import math

import mpmath as mp
import numpy as np
import pytest

from conftest import MAX_ULPS, around, ulps_off
from lrtempo.schedules import WSD, CosineDecay, PolynomialDecay, Ramp, WarmupCosine

M = mp.mpf
T = 10_000_000


def _probe(total: int, *marks: int) -> list[int]:
    rng = np.random.default_rng(7)
    tail = list(range(total - 300, total + 2))
    return sorted({*around(0, *marks, total), *tail, *rng.integers(0, total, 400).tolist()})


def _worst(schedule, reference, steps) -> float:
    values = schedule.at(np.asarray(steps))
    return max(ulps_off(v, reference(k)) for k, v in zip(steps, values.tolist()))


def test_cosine_to_zero_over_ten_million_steps():
    s = CosineDecay(peak_lr=1.0, decay_steps=T)
    ref = lambda k: (1 + mp.cos(mp.pi * M(min(k, T)) / T)) / 2  # noqa: E731
    assert _worst(s, ref, _probe(T, T // 2)) <= MAX_ULPS
    # the textbook form is off by ~1e-3 relative at the last step; ours is not
    k = T - 1
    textbook = 0.5 * (1 + math.cos(math.pi * k / T))
    assert abs(M(textbook) - ref(k)) / ref(k) > 1e-4
    assert ulps_off(s(k), ref(k)) <= MAX_ULPS


def test_warmup_cosine_with_floor_long():
    w = 20_000
    s = WarmupCosine(peak_lr=3e-4, total_steps=T, warmup_steps=w, min_lr=3e-5)

    def ref(k):
        if k <= w:
            return M(3e-4) * k / w
        p = M(min(k, T) - w) / (T - w)
        return M(3e-5) + (M(3e-4) - M(3e-5)) * (1 + mp.cos(mp.pi * p)) / 2

    assert _worst(s, ref, _probe(T, w, (T + w) // 2)) <= MAX_ULPS


@pytest.mark.parametrize("shape", ["linear", "cosine", "1-sqrt", "power"])
def test_wsd_decay_tail(shape):
    d = 2_000_000
    s = WSD(peak_lr=1e-3, total_steps=T, warmup_steps=10_000, decay_steps=d, decay_shape=shape, power=2.0)
    start = T - d

    def ref(k):
        if k <= 10_000:
            return M(1e-3) * k / 10_000
        if k <= start:
            return M(1e-3)
        x = M(min(k, T) - start) / d
        f = {"linear": x, "cosine": (1 - mp.cos(mp.pi * x)) / 2, "1-sqrt": mp.sqrt(x),
             "power": 1 - (1 - x) ** 2}[shape]
        return M(1e-3) * (1 - f)

    assert _worst(s, ref, _probe(T, 10_000, start, start + d // 2)) <= MAX_ULPS


def test_polynomial_and_exponential_ramp_tails():
    n = 3_000_000
    poly = PolynomialDecay(peak_lr=2e-3, decay_steps=n, power=3.5)
    # x ** p amplifies the half-ulp rounding of x = (n - k) / n by p: allow that condition number
    assert _worst(poly, lambda k: M(2e-3) * (1 - M(min(k, n)) / n) ** M(3.5), _probe(n, n // 2)) <= MAX_ULPS + 3.5
    expo = Ramp(start_lr=1e-2, end_lr=1e-6, steps=n, shape="exponential")
    ref = lambda k: M(1e-2) * (M(1e-6) / M(1e-2)) ** (M(min(k, n)) / n)  # noqa: E731
    # the exponent's rounding is amplified by |log(end/start)| ~ 9: allow that condition number
    assert _worst(expo, ref, _probe(n, n // 2)) <= 4 * MAX_ULPS
