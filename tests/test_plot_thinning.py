"""A long log's plots draw a bounded number of points and lines: each pixel bucket keeps what it shows.

The PNG of ``lrtempo analyze`` and the HTML report thin their series per bucket of rows (first, last, lowest
and highest value, a gap where the series breaks), and the PNG thins its event lines to one per bucket of
steps, so their cost does not grow with the log. (The cost itself is measured in benchmarks/bench_analyze.py.)
"""

from __future__ import annotations

from unittest import mock

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lrtempo.plot import _thin
from lrtempo.plot._png import PNG_BUCKETS, _mark_lines, _mark_steps
from lrtempo.plot._thin import thin_rows

_values = st.lists(st.sampled_from([0.0, 1.0, 2.0, -3.0, 5.5, np.nan, np.inf]), min_size=1, max_size=80)


@settings(max_examples=300, deadline=None)
@given(_values, _values, st.integers(1, 12), st.sampled_from(["all", "bucket"]), st.sampled_from([1 << 16, 1, 9]))
def test_thinned_rows_keep_each_buckets_first_last_lowest_highest_and_gaps(a, b, buckets, gaps, piece):
    """Also thinned a few rows at a time (the default takes 65,536 rows a piece)."""
    n = min(len(a), len(b))
    ys = [np.asarray(a[:n]), np.asarray(b[:n])]
    with mock.patch.object(_thin, "PIECE_ROWS", piece):
        kept = thin_rows(n, ys, buckets, gaps=gaps)
    assert kept.tolist() == sorted(set(kept.tolist()))
    bucket = np.arange(n) * buckets // n
    for k in np.unique(bucket).tolist():
        rows = np.flatnonzero(bucket == k)
        want = {int(rows[0]), int(rows[-1])}
        for y in ys:
            finite = rows[np.isfinite(y[rows])]
            if finite.size:
                want |= {int(finite[np.argmin(y[finite])]), int(finite[np.argmax(y[finite])])}
            bad = rows[~np.isfinite(y[rows])]
            want |= set(bad.tolist()) if gaps == "all" else set(bad[:1].tolist())
        assert set(kept[bucket[kept] == k].tolist()) == want


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 20_000), st.integers(1, 10**7), st.integers(0, 2**32 - 1))
def test_event_lines_are_one_per_bucket_of_steps_holding_an_event(count, spread, seed):
    steps = np.random.default_rng(seed).integers(0, spread, count).tolist()
    events = [{"step": s} for s in steps]
    first, last = 0, 10**7
    kept = _mark_steps(events, first, last)
    unique = np.unique(steps)
    if unique.size <= PNG_BUCKETS:
        assert kept.tolist() == unique.tolist()
        return
    bucket = (unique - first) * PNG_BUCKETS // (last - first + 1)
    firsts = [int(unique[bucket == k][0]) for k in np.unique(bucket).tolist()]
    assert kept.tolist() == firsts and kept.size <= PNG_BUCKETS


def test_event_lines_are_one_artist_however_many():
    plt = pytest.importorskip("matplotlib.pyplot")
    fig, ax = plt.subplots()
    try:
        _mark_lines(ax, np.array([3, 10, 2**40]))
        (line,) = ax.get_lines()
        x, y = line.get_data()
        assert np.array_equal(x, [3, 3, np.nan, 10, 10, np.nan, 2**40, 2**40, np.nan], equal_nan=True)
        assert np.array_equal(y, [0, 1, np.nan] * 3, equal_nan=True)
        probe = [[10.0, 0.0], [10.0, 1.0]]  # x in data, y in axes fraction: bottom to top at step 10
        assert np.array_equal(line.get_transform().transform(probe), ax.get_xaxis_transform().transform(probe))
    finally:
        plt.close(fig)
