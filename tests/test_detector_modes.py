"""One set of detector formulas, two evaluation modes: the live detectors row by row and the array form agree.

``lrtempo analyze`` evaluates the detectors over whole arrays (``detect_log``); the live monitor pushes one
update at a time (``detect_live`` feeds the live classes). On random logs with NaN and infinite values,
restarts, spikes and flat tails (traps), both give the same events at the same steps with the same messages
and values, and the same trap status on every row; the rolling statistics are the same floats.
"""

from __future__ import annotations

import json
import math
from unittest import mock

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lrtempo.analysis._analyze import _detect
from lrtempo.monitor import RollingMedian, RollingSlope, TrapDetector, _rolling
from lrtempo.monitor._offline import DetectorSettings, detect_live, detect_log
from lrtempo.monitor._rolling import rolling_sums, slope_from_sums, window_medians

_KINDS = ("decay", "flat", "spike", "nan", "inf", "restart", "noise")


def _log(seed: int, segments: list[tuple[str, int]]) -> tuple[np.ndarray, ...]:
    """A log built from segments: a decaying loss, a flat tail (a trap when the rate is low), a norm spike,
    missing values, a rate restart, plain noise."""
    rng = np.random.default_rng(seed)
    lr, loss, norm = [], [], []
    rate, level, g = 1e-3, 3.0, 1.0
    for kind, length in segments:
        for i in range(length):
            if kind == "restart" and i == 0:
                rate = 1e-3
            rate *= 0.97
            if kind == "decay":
                level -= 1e-2 * rng.random()
            elif kind == "flat":
                g *= 0.99
            elif kind == "noise":
                level += 0.3 * rng.normal()
                g = abs(g + rng.normal())
            f = level + (1e-7 * rng.normal() if kind == "flat" else 1e-3 * rng.normal())
            n = g * (1 + 0.05 * rng.random())
            if kind == "spike" and i == length // 2:
                n, f = n * 50, f * 3
            if kind == "nan" and i % 2:
                f, n = (math.nan, n) if i % 4 == 1 else (f, math.nan)
            if kind == "inf" and i == 0:
                n = math.inf
            lr.append(rate)
            loss.append(f)
            norm.append(n)
    steps = np.cumsum(np.random.default_rng(seed + 1).integers(1, 3, len(lr))).astype(np.int64)
    return steps, np.array(lr), np.array(norm), np.array(loss)


_segments = st.lists(st.tuples(st.sampled_from(_KINDS), st.integers(1, 60)), min_size=1, max_size=8)
_settings = st.builds(DetectorSettings, trap_window=st.integers(2, 40), trap_threshold=st.sampled_from([1e-4, 1e-2]),
                      spike_window=st.integers(1, 30), spike_factor=st.sampled_from([1.5, 5.0]),
                      min_history=st.integers(0, 25), restart_window=st.integers(1, 12))


def _same(a, b) -> None:
    """Events equal to the bit: step, kind, message and every value (NaN included)."""
    dump = lambda events: [json.dumps(e.to_json(), default=repr, sort_keys=True) for e in events]  # noqa: E731
    assert dump(a) == dump(b)


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 2**32 - 1), _segments, _settings, st.sampled_from([1 << 16, 1, 37, 100]))
def test_array_mode_gives_the_live_events_and_statuses(seed, segments, s, piece):
    """Also with the array mode's pieces of rows small (the default evaluates 65,536 rows at a time), so the
    statistics carried from piece to piece are checked on these short logs."""
    steps, lr, norm, loss = _log(seed, segments)
    peak = float(lr.max())
    remaining = steps[-1] - steps
    restarts = steps[np.flatnonzero(np.diff(lr) > 0.5 * peak) + 1].tolist()
    live, live_codes = detect_live(steps, lr, norm, loss, peak, remaining, restarts, s)
    with mock.patch.object(_rolling, "_ROWS", piece):
        array, codes = detect_log(steps, lr, norm, loss, peak, remaining, restarts, s)
    _same(live, array)
    assert live_codes.tolist() == codes.tolist()


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 2**32 - 1), _segments, st.integers(2, 40))
def test_analyze_finds_what_the_live_detectors_find(seed, segments, window):
    """Through analyze's own pipeline (rows without a finite loss and norm left out, the status timeline)."""
    steps, lr, norm, loss = _log(seed, segments)
    settings_ = {"spike_window": 7, "restart_window": 3}
    live = _detect(steps, lr, norm, loss, window, None, settings_, mode=detect_live)
    assert _detect(steps, lr, norm, loss, window, None, settings_) == live


def test_a_trap_a_spike_and_restarts_are_found_the_same_way():
    """The generator does make every kind of event (so the property tests compare something)."""
    steps, lr, norm, loss = _log(3, [("decay", 60), ("spike", 40), ("flat", 120), ("restart", 1), ("decay", 60),
                                     ("restart", 1), ("flat", 80), ("restart", 1), ("decay", 30)])
    s = DetectorSettings(trap_window=30, spike_window=20, restart_window=5)
    peak = float(lr.max())
    restarts = steps[np.flatnonzero(np.diff(lr) > 0.5 * peak) + 1].tolist()
    events, _ = detect_log(steps, lr, norm, loss, peak, steps[-1] - steps, restarts, s)
    kinds = {e.kind for e in events}
    assert {"ASYMPTOTIC_TRAP", "TRAP_CLEARED", "GRAD_NORM_SPIKE", "RESTART_PRODUCTIVE"} <= kinds, kinds
    _same(events, detect_live(steps, lr, norm, loss, peak, steps[-1] - steps, restarts, s)[0])


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=300), st.integers(2, 50))
def test_rolling_sums_are_the_live_floats(values, w):
    live = RollingSlope(w)
    sy, sxy = rolling_sums(np.array(values), w)
    for k, v in enumerate(values):
        live.push(v)
        assert live.sums()[0] == sy[k]
        if live.full:
            assert live.slope() == slope_from_sums(sy[k], sxy[k], w)
            window = np.array(values[k - w + 1:k + 1])
            assert live.slope() == pytest.approx(np.polyfit(np.arange(w), window, 1)[0], rel=1e-6, abs=1e-6)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=200), st.integers(1, 30))
def test_window_medians_are_the_live_floats(values, w):
    live, medians = RollingMedian(w), []
    for v in values:
        medians.append(live.median())
        live.push(v)
    got = window_medians(np.array(values), np.arange(len(values)), w)
    assert np.array_equal(np.array(medians), got, equal_nan=True)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(-10, 10), min_size=2, max_size=200), st.integers(2, 30), st.data())
def test_a_restored_detector_continues_bit_for_bit(values, w, data):
    """A resumed run's trap detector (state saved, loaded into a fresh one) sees the same floats as one that
    never stopped, wherever the save falls in the block structure."""
    cut = data.draw(st.integers(1, len(values) - 1))
    whole, first = TrapDetector(window=w), TrapDetector(window=w)
    for k, v in enumerate(values[:cut]):
        whole.update(k, 1e-5, v, 1.0 - k * 1e-3, 1e-3, 100)
        first.update(k, 1e-5, v, 1.0 - k * 1e-3, 1e-3, 100)
    resumed = TrapDetector(window=w)
    resumed.load_state_dict(json.loads(json.dumps(first.state_dict())))
    for k, v in enumerate(values[cut:], start=cut):
        a = whole.update(k, 1e-5, v, 1.0 - k * 1e-3, 1e-3, 100)
        b = resumed.update(k, 1e-5, v, 1.0 - k * 1e-3, 1e-3, 100)
        assert (a and a.to_json()) == (b and b.to_json())
        assert whole.details == resumed.details and whole.loss.sums() == resumed.loss.sums()
