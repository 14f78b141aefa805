"""The shape registry: one formula per shape, the one-step and array paths give the same bits, and every
list of shape names (families, docs) comes from it."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from lrtempo.schedules import NATIVE_TYPES, InverseSqrt, Warmup
from lrtempo.schedules._shapes import SHAPES, Shape, is_geometric, make_ramp, ramp_values, shape_names

DOCS = Path(__file__).parent.parent / "docs" / "schedules.md"


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(list(SHAPES)), st.floats(1e-6, 2.0), st.floats(1e-6, 2.0),
       st.one_of(st.integers(1, 50), st.integers(1, 10**7), st.just(2**52 + 1)), st.data())
@example("cosine", 1.0, 0.0 + 1e-6, 7, None)
def test_one_step_and_array_paths_agree_bit_for_bit_for_every_shape(name, a, b, n, data):
    shape = Shape(name, power=2.5, lower=-4.0, upper=2.0)
    f = make_ramp(shape, a, b, n)
    half = n // 2
    picks = [0, 1, half - 1, half, half + 1, n - 1, n]
    if data is not None:
        picks += data.draw(st.lists(st.integers(0, n), max_size=10))
    picks = [k for k in picks if 0 <= k <= n]
    chunks = [np.asarray(sorted(set(picks)), dtype=np.int64),  # both halves: the selects
              np.arange(0, min(half, 300) + 1, dtype=np.int64),  # the head half alone
              np.arange(max(half + 1, n - 300), n + 1, dtype=np.int64),  # the tail half alone
              np.asarray(picks[::-1], dtype=np.int64)]  # unsorted
    for k in chunks:
        if k.size == 0:
            continue
        values = ramp_values(shape, a, b, k, n)
        assert [f(int(x)) for x in k] == values.tolist(), (name, a, b, n)
    assert f(0) == a and f(n) == b and f(n + 10) == b


def test_the_array_path_takes_per_step_ends_and_lengths():
    # restarts pass one peak and one length per step: each value is the ramp of its own cycle
    k = np.array([0, 3, 5, 1], dtype=np.int64)
    a = np.array([1.0, 0.8, 0.5, 0.25])
    n = np.array([4, 8, 10, 2], dtype=np.int64)
    for name in SHAPES:
        shape = Shape(name, power=2.0)
        got = ramp_values(shape, a, 0.01, k, n)
        assert got.tolist() == [make_ramp(shape, float(ai), 0.01, int(ni))(int(ki)) for ai, ni, ki in zip(a, n, k)]


def test_shape_names_come_from_the_registry():
    assert shape_names("cosine", "linear") == ("cosine", "linear")
    with pytest.raises(ValueError, match=r"unknown shapes \['cosin'\] \(known: linear, cosine, 1-sqrt, power, tanh, "
                                         r"exponential\)"):
        shape_names("linear", "cosin")
    assert [n for n in SHAPES if is_geometric(n)] == ["exponential"] and not is_geometric(["exponential"])
    offered = {name: choices for cls in NATIVE_TYPES.values() for field, choices in cls.field_choices.items()
               if field in ("shape", "decay_shape", "anneal") for name in [f"{cls.type_name}.{field}"]}
    assert offered == {"ramp.shape": ("linear", "cosine", "1-sqrt", "power", "exponential"),
                       "one_cycle.anneal": ("cosine", "linear"),
                       "warmup.shape": ("linear", "cosine", "exponential"),
                       "restarts.shape": ("cosine", "linear", "1-sqrt", "exponential"),
                       "wsd.decay_shape": ("linear", "cosine", "1-sqrt", "power", "exponential"),
                       "branch.shape": ("linear", "cosine", "1-sqrt")}


def test_the_docs_table_of_shapes_is_the_registry():
    text = DOCS.read_text()
    table = text[text.index("| shape | F(x) |"):].split("\n\n")[0]
    rows = [line.split("|")[1].strip() for line in table.splitlines()[2:]]
    assert rows == list(SHAPES)


def test_the_docs_tables_list_every_native_family():
    text = DOCS.read_text()
    listed = re.findall(r"^\| `([a-z_0-9]+)` \|", text, flags=re.M) + re.findall(r"^\*\*`([a-z_0-9]+)`\*\*", text,
                                                                                     flags=re.M)
    assert sorted(listed) == sorted(NATIVE_TYPES)


def test_inverse_sqrt_is_its_decay_behind_the_warmup_combinator():
    s = InverseSqrt(peak_lr=2.0, warmup_steps=8, timescale=3)
    assert isinstance(s._inner, Warmup) and s._inner.warmup_steps == 8 and s._inner.start_lr == 0.0
    steps = np.arange(40)
    expected = [2.0 * k / 8 for k in range(8)] + [float(2.0 * np.sqrt(3 / (3 + k - 8))) for k in range(8, 40)]
    assert s.at(steps).tolist() == expected == [s(int(k)) for k in steps]
    assert s.horizon == 8 + 30 and [(p.name, p.start, p.stop) for p in s.phases(40)] == [("warmup", 0, 8),
                                                                                          ("decay", 8, None)]
