"""The branch combinator: each kind's tail from its formula, continuity and jumps at the branch point, the stretch
rule, validation, and the spec round trip and hash."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lrtempo.config import ConfigError, build_schedule, format_config, parse_config_text, schedule_to_spec, spec_hash
from lrtempo.schedules import WSD, Branch, CosineDecay, InverseSqrt, Join, Linear, ParameterError, Piece, WarmupCosine
from lrtempo.schedules._branch import stretched_values

PARENT = WSD(peak_lr=1e-3, total_steps=400, warmup_steps=40, decay_steps=80, min_lr=1e-5)
COSINE = WarmupCosine(peak_lr=2e-3, total_steps=300, warmup_steps=30, min_lr=2e-4)


def _lerp_expected(parent, start, length, new_length, j):
    """The stretch rule written out with exact rationals: the position, then the interpolation."""
    pos = Fraction(start) + Fraction(j * length, new_length)
    q, frac = divmod(pos, 1)
    a = parent(int(q))
    if frac == 0:
        return a
    b = parent(min(int(q) + 1, start + length))
    return a + (frac.numerator / frac.denominator) * (b - a)


@pytest.mark.parametrize("shape", ["linear", "cosine", "1-sqrt"])
def test_cooldown_is_the_ramp_from_the_rate_at_the_branch_point(shape):
    at, n = 200, 60
    b = Branch(PARENT, at_step=at, kind="cooldown", steps=n, shape=shape)
    s, floor = PARENT(at), PARENT.final_value
    fraction = {"linear": lambda x: x, "cosine": lambda x: (1 - math.cos(math.pi * x)) / 2,
                "1-sqrt": lambda x: math.sqrt(x)}[shape]
    for k in [*range(at - 2, at + n + 3), 1000]:
        got = b(k)
        if k < at:
            assert got == PARENT(k)
        else:
            x = min(k - at, n) / n
            want = s + (floor - s) * fraction(x)  # 1-sqrt: floor + (s - floor) * (1 - sqrt(x))
            assert got == pytest.approx(want, rel=1e-14, abs=1e-18), k
    assert b(at) == s and b.jump == 0.0  # continuous
    assert b(at + n) == floor and b.end_step == at + n and b.final_value == floor


def test_cooldown_to_another_floor_and_refusals():
    b = Branch(PARENT, at_step=100, kind="cooldown", steps=10, min_lr=0.0)
    assert b(110) == 0.0 and b(109) > 0.0
    with pytest.raises(ParameterError, match=r"min_lr: must be <= the rate at step 100, 0.001, for a cooldown"):
        Branch(PARENT, at_step=100, kind="cooldown", steps=10, min_lr=0.5)
    with pytest.raises(ParameterError, match=r"steps: missing: the cooldown's length"):
        Branch(PARENT, at_step=100, kind="cooldown")
    with pytest.raises(ParameterError, match=r"min_lr: missing: the parent's schedule never ends"):
        Branch(InverseSqrt(peak_lr=1.0, warmup_steps=5), at_step=10, kind="cooldown", steps=5)


def test_extend_stretches_the_remainder_exactly_by_the_documented_rule():
    at, total = 150, 650  # 250 updates left become 500: every other step is one of the parent's
    b = Branch(PARENT, at_step=at, kind="extend", total_steps=total)
    left, new = PARENT.end_step - at, total - at
    for k in [*range(at - 2, at + 5), *range(total - 200, total + 3)]:
        want = PARENT(k) if k < at else _lerp_expected(PARENT, at, left, new, min(k - at, new))
        assert b(k) == want, k
    assert b(at + 2 * 37) == PARENT(at + 37)  # integer positions are the parent's values bit for bit
    assert b.jump == 0.0 and b(total) == PARENT.final_value and b.end_step == total
    # the stable phase stretched: the parent's decay starts at 320 and now at 150 + (320 - 150) * 2
    assert b(at + 340 - 1) == 1e-3 and b(at + 341) < 1e-3


def test_extend_to_a_shorter_total_compresses_and_an_odd_ratio_interpolates():
    b = Branch(COSINE, at_step=100, kind="extend", total_steps=233)
    for j in range(0, 134):
        assert b(100 + j) == _lerp_expected(COSINE, 100, 200, 133, j)
    with pytest.raises(ParameterError, match=r"total_steps: must be >= 101"):
        Branch(COSINE, at_step=100, kind="extend", total_steps=100)
    with pytest.raises(ParameterError, match=r"ends at step 300, at or before the branch point 300"):
        Branch(COSINE, at_step=300, kind="extend", total_steps=400)


def test_the_stretch_beyond_int64_products_uses_exact_integers():
    parent = Linear(1.0, 0.0, 2**52)
    j = np.array([0, 1, 3, 2**40 + 7, 2**51 + 3], dtype=np.int64)
    got = stretched_values(parent, 0, 2**52, 2**51 + 5, j)
    want = [_lerp_expected(parent, 0, 2**52, 2**51 + 5, int(x)) for x in j]
    assert got.tolist() == want


def test_rewarm_warms_up_then_follows_the_remainder_rescaled():
    at, n, peak = 200, 10, 1.5e-3
    b = Branch(COSINE, at_step=at, kind="rewarm", steps=n, peak_lr=peak)
    s, floor, end = COSINE(at), COSINE.final_value, COSINE.end_step
    assert b(at) == s and b.jump == 0.0
    for j in range(n + 1):
        assert b(at + j) == pytest.approx(s + (peak - s) * j / n, rel=1e-15)
    assert b(at + n) == peak  # the end of the warmup and the start of the rescaled decay agree exactly
    for j in range(0, end - at - n + 1):
        v = _lerp_expected(COSINE, at, end - at, end - at - n, j)
        want = floor + (peak - floor) * (v - floor) / (s - floor)
        assert b(at + n + j) == pytest.approx(want, rel=1e-14), j
    assert b(end) == floor and b.end_step == end


def test_rewarm_refusals():
    with pytest.raises(ParameterError, match=r"at_step: the parent's rate rises after step 10"):
        Branch(COSINE, at_step=10, kind="rewarm", steps=5, peak_lr=1.0)
    rising_end = Join((Piece(Linear(1.0, 0.1, 50), 50), Piece(Linear(0.1, 0.5, 50))))
    with pytest.raises(ParameterError, match=r"at_step: the parent's rate at step 50, 0.1, is not above its floor "
                                             r"0.5: nothing of its decay remains to rescale"):
        Branch(rising_end, at_step=50, kind="rewarm", steps=5, peak_lr=1.0)
    with pytest.raises(ParameterError, match=r"steps: must be < the 100 updates left"):
        Branch(COSINE, at_step=200, kind="rewarm", steps=100, peak_lr=1.0)
    with pytest.raises(ParameterError, match=r"peak_lr: missing: the rate to warm up to"):
        Branch(COSINE, at_step=200, kind="rewarm", steps=10)


def test_rewind_replays_the_curve_from_an_earlier_step_and_declares_its_jump():
    at, back = 250, 100
    b = Branch(COSINE, at_step=at, kind="rewind", from_step=back)
    for k in range(0, 460):
        assert b(k) == (COSINE(k) if k < at else COSINE(back + k - at))
    assert b.jump == COSINE(back) - COSINE(at) > 0
    assert b.end_step == at + COSINE.end_step - back
    with pytest.raises(ParameterError, match=r"from_step: must be < at_step \(250\)"):
        Branch(COSINE, at_step=at, kind="rewind", from_step=250)


def test_fields_of_another_kind_and_bad_fields_are_refused():
    with pytest.raises(ParameterError, match=r"peak_lr: is not used by a cooldown branch \(it takes steps, shape, "
                                             r"min_lr\)"):
        Branch(PARENT, at_step=100, kind="cooldown", steps=5, peak_lr=1.0)
    with pytest.raises(ParameterError, match=r"shape: is not used by a rewind branch"):
        Branch(PARENT, at_step=100, kind="rewind", from_step=5, shape="cosine")
    with pytest.raises(ParameterError, match=r"kind: must be one of 'cooldown', 'extend', 'rewarm', 'rewind' "
                                             r"\(got 'cooldwn'\); did you mean 'cooldown'\?"):
        Branch(PARENT, at_step=100, kind="cooldwn", steps=5)
    with pytest.raises(ParameterError, match=r"at_step: must be >= 1 \(got 0\)"):
        Branch(PARENT, at_step=0, kind="cooldown", steps=5)
    with pytest.raises(ParameterError, match=r"parent_hash: must be a spec hash"):
        Branch(PARENT, at_step=10, kind="cooldown", steps=5, parent_hash="abc")


def test_config_reads_writes_and_hashes_a_branch():
    b = Branch(PARENT, at_step=200, kind="cooldown", steps=60, shape="1-sqrt", parent_hash=spec_hash(PARENT))
    spec = schedule_to_spec(b)
    assert spec["parent"] == schedule_to_spec(PARENT) and spec["at_step"] == 200
    for fmt in ("yaml", "json", "toml"):
        assert build_schedule(parse_config_text(format_config(spec, fmt), fmt)) == b
    h = spec_hash(b)
    assert h == spec_hash(build_schedule(spec))
    other_parent = {**spec, "parent": {**spec["parent"], "peak_lr": 2e-3}}
    assert spec_hash(other_parent) != h  # the parent is part of the branch's identity
    assert spec_hash({**spec, "at_step": 201}) != h and spec_hash({**spec, "steps": 61}) != h
    # a parent written in another form of the same schedule: the same hash (canonical forms)
    warm = {"type": "warmup", "warmup_steps": 0, "schedule": spec["parent"]}
    assert spec_hash({**spec, "parent": warm}) == h
    with pytest.raises(ConfigError, match=r"schedule.steps: must be >= 1"):
        build_schedule({**spec, "steps": 0}, "schedule")


def test_phases_follow_the_parent_then_the_tail():
    b = Branch(PARENT, at_step=200, kind="cooldown", steps=60)
    assert [(p.name, p.start, p.stop, p.kind) for p in b.phases()] == [
        ("warmup", 0, 40, "warmup"), ("stable", 40, 200, "hold"), ("cooldown", 200, 260, "decay")]
    r = Branch(COSINE, at_step=200, kind="rewarm", steps=10, peak_lr=1e-3)
    assert [(p.kind, p.start, p.stop) for p in r.phases()][-3:] == [("decay", 30, 200), ("warmup", 200, 210),
                                                                   ("decay", 210, 300)]


@st.composite
def _branches(draw):
    parent = draw(st.sampled_from([PARENT, COSINE, CosineDecay(peak_lr=1.0, decay_steps=97, min_lr=0.01)]))
    end = parent.end_step
    kind = draw(st.sampled_from(["cooldown", "extend", "rewarm", "rewind"]))
    if kind == "rewarm":
        at = draw(st.integers(max(parent.boundaries()[-2], 1), end - 3))
        return Branch(parent, at_step=at, kind=kind, steps=draw(st.integers(1, end - at - 1)),
                      peak_lr=draw(st.floats(1e-4, 1.0)))
    at = draw(st.integers(1, end - 1))
    if kind == "cooldown":
        return Branch(parent, at_step=at, kind=kind, steps=draw(st.integers(1, 500)),
                      shape=draw(st.sampled_from(["linear", "cosine", "1-sqrt"])))
    if kind == "extend":
        return Branch(parent, at_step=at, kind=kind, total_steps=draw(st.integers(at + 1, 5 * end)))
    return Branch(parent, at_step=at, kind=kind, from_step=draw(st.integers(0, at - 1)))


@settings(max_examples=150, deadline=None)
@given(_branches())
def test_any_branch_is_its_parent_before_the_point_and_one_function_of_the_step(b):
    end = b.end_step
    steps = np.arange(0, end + 5)
    values = b.at(steps)
    assert values[: b.at_step].tolist() == b.parent.at(steps[: b.at_step]).tolist()
    assert [b(int(k)) for k in steps] == values.tolist()  # the one-step path gives the array's bits
    assert np.all(np.isfinite(values)) and np.all(values >= 0)
    assert values[-1] == values[end] == b.final_value
    assert b(b.at_step) - b.parent(b.at_step) == b.jump
    if b.kind != "rewind":
        assert b.jump == 0.0
    assert build_schedule(schedule_to_spec(b)) == b
