"""Time units: a schedule counted in samples or tokens (``unit:``), in specs, the CLI and the torch adapter."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from lrtempo.config import ConfigError, build_schedule, canonical_spec, schedule_to_spec, spec_hash
from lrtempo.config._files import format_config, parse_config_text
from lrtempo.schedules import Constant, CosineDecay, InUnit, Linear, Scale, Schedule, WarmupCosine

PEAK, FLOOR = 3e-3, 3e-5


# -- specs ---------------------------------------------------------------------------------------------------------

def test_every_schedule_counts_steps_unless_it_says_otherwise():
    assert Schedule.unit == "steps" and CosineDecay(peak_lr=1.0, decay_steps=5).unit == "steps"
    s = build_schedule({"type": "cosine", "unit": "tokens", "peak_lr": 1.0, "decay_steps": 5})
    assert isinstance(s, InUnit) and s.unit == "tokens" and s.end_step == 5


def test_unit_steps_is_no_key_of_the_canonical_spec_so_hashes_hold():
    spec = {"type": "warmup_cosine", "peak_lr": PEAK, "total_steps": 100, "warmup_steps": 10}
    with_steps = {**spec, "unit": "steps"}
    assert canonical_spec(with_steps) == canonical_spec(spec) and "unit" not in canonical_spec(with_steps)
    assert spec_hash(with_steps) == spec_hash(spec)
    for unit in ("samples", "tokens"):
        counted = {**spec, "unit": unit}
        assert canonical_spec(counted)["unit"] == unit and spec_hash(counted) != spec_hash(spec)
    assert spec_hash({**spec, "unit": "samples"}) != spec_hash({**spec, "unit": "tokens"})


@pytest.mark.parametrize("fmt", ["yaml", "json", "toml"])
def test_a_spec_with_a_unit_round_trips_through_every_format(fmt):
    spec = schedule_to_spec(build_schedule({"type": "wsd", "unit": "samples", "peak_lr": PEAK, "total_steps": 6400,
                                            "decay_steps": 640, "warmup_steps": 64}))
    back = parse_config_text(format_config(spec, fmt), fmt)
    assert back == spec and schedule_to_spec(build_schedule(back)) == spec


@pytest.mark.parametrize("spec, path, message", [
    ({"type": "cosine", "peak_lr": 1.0, "decay_steps": 5, "unit": "sample"}, "unit",
     "must be one of 'steps', 'samples', 'tokens' (got 'sample'); did you mean 'samples'?"),
    ({"type": "cosine", "peak_lr": 1.0, "decay_steps": 5, "unit": 3}, "unit", "must be one of"),
    ({"type": "scale", "factor": 2.0, "schedule": {"type": "constant", "lr": 0.1, "unit": "tokens"}},
     "schedule.unit", "a unit is set on the top-level schedule only"),
    ({"type": "join", "pieces": [{"schedule": {"type": "constant", "lr": 0.1}, "steps": 3},
                                 {"schedule": {"type": "constant", "lr": 0.2, "unit": "steps"}}]},
     "pieces[1].schedule.unit", "a unit is set on the top-level schedule only"),
])
def test_a_bad_or_nested_unit_is_refused_with_its_path(spec, path, message):
    with pytest.raises(ConfigError) as info:
        build_schedule(spec)
    assert [p.path for p in info.value.problems][0] == path and message in str(info.value)


def test_a_nested_unit_is_reported_with_the_other_problems():
    spec = {"type": "scale", "factor": -1.0, "schedule": {"type": "constant", "lr": "x", "unit": "tokens"}}
    with pytest.raises(ConfigError) as info:
        build_schedule(spec)
    assert sorted(p.path for p in info.value.problems) == ["factor", "schedule.lr", "schedule.unit"]


def test_a_child_schedule_with_a_unit_is_refused_in_python_too():
    with pytest.raises(ValueError, match="schedule: must not set a unit of its own"):
        Scale(InUnit(Constant(lr=0.1), "tokens"), 2.0)
    with pytest.raises(ValueError, match="schedule: must not set a unit of its own"):
        InUnit(InUnit(Constant(lr=0.1), "tokens"), "samples")
    with pytest.raises(ValueError, match="unit: must be one of"):
        InUnit(Constant(lr=0.1), "sample")


# -- exactness, as for steps ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("unit", ["samples", "tokens"])
def test_golden_values_at_every_boundary_of_a_counted_warmup_cosine(unit):
    w, t = 4096, 65536  # positions in the unit
    s = build_schedule({"type": "warmup_cosine", "unit": unit, "peak_lr": PEAK, "min_lr": FLOOR,
                        "total_steps": t, "warmup_steps": w})

    def formula(p: int) -> float:
        if p <= w:
            return PEAK * p / w
        if p <= t:
            return FLOOR + 0.5 * (PEAK - FLOOR) * (1 + math.cos(math.pi * (p - w) / (t - w)))
        return FLOOR

    marks = [0, 1, w - 1, w, w + 1, (w + t) // 2, t - 1, t, t + 1, 10 * t, 2**62]
    for p in marks:
        assert s(p) == pytest.approx(formula(p), rel=1e-12, abs=1e-18), p
    assert s(0) == 0.0 and s(w) == PEAK and s(t) == FLOOR and s(2**62) == FLOOR
    assert s.at(marks).tolist() == [s(p) for p in marks]  # the array path, bit for bit


# -- with a constant batch, bit for bit the steps schedule --------------------------------------------------------

#: the integer fields that count the schedule's unit (durations, positions, periods)
DURATIONS = {"steps", "step_size", "milestones", "decay_steps", "start_step", "total_steps", "warmup_steps",
             "plateau_steps", "timescale", "step_size_up", "step_size_down", "period", "restart_period"}


def _in_unit(spec: dict, factor: int) -> dict:
    """``spec`` with every duration times ``factor`` (positions in a unit ``factor`` times finer)."""
    out = {}
    for key, value in spec.items():
        if key in DURATIONS and value is not None:
            out[key] = [v * factor for v in value] if isinstance(value, list) else value * factor
        elif isinstance(value, dict):
            out[key] = _in_unit(value, factor)
        elif key == "pieces":
            out[key] = [_in_unit(piece, factor) for piece in value]
        else:
            out[key] = value
    return out


_len = st.integers(1, 60)
_rate = st.sampled_from([1e-3, 0.1, 3e-4, 1.0, 0.7])
_shape = st.sampled_from(["linear", "cosine", "1-sqrt", "power", "exponential"])


@st.composite
def _steps_specs(draw) -> dict:
    """A native schedule (every scale-free family and combinator) whose durations are whole steps."""
    kind = draw(st.sampled_from(["warmup_cosine", "wsd", "cosine", "linear", "ramp", "polynomial", "exponential",
                                 "step", "multistep", "inverse_sqrt", "tanh", "cyclic", "one_cycle", "restarts",
                                 "warmup", "join", "warmup_plateau_cosine"]))
    peak = draw(_rate)
    if kind == "warmup_cosine":
        t = draw(st.integers(2, 80))
        return {"type": kind, "peak_lr": peak, "total_steps": t, "warmup_steps": draw(st.integers(0, t - 1)),
                "min_lr": peak / 100, "warmup_start_lr": draw(st.sampled_from([0.0, peak / 10]))}
    if kind == "wsd":
        t = draw(st.integers(3, 80))
        d = draw(st.integers(1, t - 1))
        return {"type": kind, "peak_lr": peak, "total_steps": t, "decay_steps": d, "warmup_steps":
                draw(st.integers(0, t - d)), "min_lr": peak / 50, "decay_shape": draw(_shape), "power": 2.0}
    if kind in ("cosine", "polynomial", "tanh"):
        extra = {"power": draw(st.sampled_from([0.5, 1.0, 2.0]))} if kind == "polynomial" else {}
        return {"type": kind, "peak_lr": peak, "decay_steps": draw(_len), "min_lr": peak / 10, **extra}
    if kind == "linear":
        return {"type": kind, "start_lr": peak, "end_lr": peak / 7, "steps": draw(_len)}
    if kind == "ramp":
        return {"type": kind, "start_lr": peak / 3, "end_lr": peak, "steps": draw(_len), "shape": draw(_shape),
                "power": 3.0}
    if kind == "exponential":
        return {"type": kind, "base_lr": peak, "decay_rate": 0.5, "decay_steps": draw(_len),
                "staircase": draw(st.booleans()), "start_step": draw(st.integers(0, 20)), "end_lr": peak / 1000}
    if kind == "step":
        return {"type": kind, "base_lr": peak, "step_size": draw(_len), "gamma": 0.3}
    if kind == "multistep":
        marks = sorted(draw(st.sets(st.integers(1, 80), min_size=1, max_size=4)))
        return {"type": kind, "base_lr": peak, "milestones": marks, "gamma": 0.5}
    if kind == "inverse_sqrt":
        w = draw(st.integers(1, 30))
        return {"type": kind, "peak_lr": peak, "warmup_steps": w, "timescale": draw(st.one_of(st.none(), _len))}
    if kind == "cyclic":  # exp_range's amplitude gamma ** k is of the absolute count: not scale-free
        return {"type": kind, "base_lr": peak / 10, "max_lr": peak, "step_size_up": draw(_len),
                "step_size_down": draw(st.one_of(st.none(), _len)), "mode": draw(st.sampled_from(
                    ["triangular", "triangular2"]))}
    if kind == "one_cycle":  # pct_start x total_steps a whole number: the rounding of a fraction is in the unit
        tens = draw(st.integers(1, 8))
        return {"type": kind, "max_lr": peak, "total_steps": 10 * tens, "pct_start": 0.3,
                "anneal": draw(st.sampled_from(["cosine", "linear"])), "three_phase": draw(st.booleans())}
    if kind == "restarts":  # an integer period_mult: the cycle lengths round in the unit otherwise
        return {"type": kind, "peak_lr": peak, "period": draw(_len), "min_lr": peak / 20,
                "period_mult": draw(st.sampled_from([1.0, 2.0, 3.0])), "peak_decay": 0.5,
                "max_cycles": draw(st.integers(1, 4)), "shape": draw(st.sampled_from(["cosine", "linear"]))}
    if kind == "warmup":
        return {"type": kind, "warmup_steps": draw(_len), "shape": draw(st.sampled_from(["linear", "cosine"])),
                "start_lr": 0.0, "schedule": {"type": "cosine", "peak_lr": peak, "decay_steps": draw(_len)}}
    if kind == "join":
        return {"type": kind, "pieces": [
            {"schedule": {"type": "linear", "start_lr": 0.0, "end_lr": peak, "steps": draw(_len)},
             "steps": draw(_len)},
            {"schedule": {"type": "clamp", "min_lr": peak / 4, "schedule": {"type": "cosine", "peak_lr": peak,
                                                                              "decay_steps": draw(_len)}},
             "steps": draw(_len)},
            {"schedule": {"type": "scale", "factor": 0.5, "schedule": {"type": "constant", "lr": peak}}}]}
    w, p = draw(st.integers(0, 10)), draw(st.integers(0, 10))
    return {"type": kind, "peak_lr": peak, "total_steps": w + p + draw(st.integers(2, 60)), "warmup_steps": w,
            "plateau_steps": p, "min_lr": peak / 10, "restart_period": draw(st.one_of(st.none(), _len)),
            "period_mult": 2.0, "peak_decay": 0.7}


def _positions(schedule: Schedule) -> np.ndarray:
    end = schedule.end_step if schedule.end_step is not None else schedule.horizon
    return np.arange(0, end + 3, dtype=np.int64)


@settings(max_examples=400, deadline=None)
@given(_steps_specs(), st.integers(2, 5000), st.sampled_from(["samples", "tokens"]))
@example({"type": "cosine", "peak_lr": 1.0, "decay_steps": 7, "min_lr": 0.1}, 3, "samples")
@example({"type": "warmup_cosine", "peak_lr": 3e-3, "total_steps": 97, "warmup_steps": 13, "min_lr": 3e-5,
          "warmup_start_lr": 0.0}, 4095, "tokens")
def test_with_a_constant_batch_a_counted_schedule_is_its_steps_equivalent_bit_for_bit(spec, batch, unit):
    steps = build_schedule(spec)
    counted = build_schedule({**_in_unit(spec, batch), "unit": unit})
    n = _positions(steps)
    assert counted.at(n * batch).tobytes() == steps.at(n).tobytes()
    assert [counted(int(k) * batch) for k in n] == steps.at(n).tolist()  # the one-step path too


def test_the_cosine_forms_its_angle_from_the_progress_so_a_finer_unit_gives_the_same_bits():
    # before: the angle was k * (pi / 2 / n), which differs in the last bit from k B * (pi / 2 / (n B))
    steps = CosineDecay(peak_lr=1.0, decay_steps=10, min_lr=0.1)
    counted = CosineDecay(peak_lr=1.0, decay_steps=10 * 5, min_lr=0.1)
    k = np.arange(11)
    assert counted.at(k * 5).tobytes() == steps.at(k).tobytes()


def test_noam_depends_on_the_absolute_count_and_is_no_steps_equivalent():
    # lr = scale * d_model ** -0.5 * min(k ** -0.5, k * w ** -1.5): durations times B give the curve / sqrt(B)
    steps = build_schedule({"type": "noam", "d_model": 512, "warmup_steps": 40})
    counted = build_schedule({"type": "noam", "d_model": 512, "warmup_steps": 40 * 16, "unit": "samples"})
    assert counted(40 * 16) == pytest.approx(steps(40) / 4, rel=1e-12)


def test_the_wrapped_schedule_keeps_its_phases_end_and_horizon():
    base = WarmupCosine(peak_lr=1.0, total_steps=6400, warmup_steps=640)
    s = InUnit(base, "samples")
    assert s.phases() == base.phases() and s.end_step == base.end_step and s.horizon == base.horizon
    assert s.boundaries() == base.boundaries() and s.final_value == base.final_value
    assert InUnit(base, "steps").canonical() == base and InUnit(base, "samples").canonical() == s
    assert copy.deepcopy(s) == s and s(640) == 1.0


def test_linear_ramp_in_a_unit():
    s = InUnit(Linear(start_lr=0.0, end_lr=1.0, steps=512), "samples")
    assert [s(p) for p in (0, 128, 512, 10**6)] == [0.0, 0.25, 1.0, 1.0]


def test_a_counted_schedule_is_not_fitted_to_a_number_of_updates():
    from lrtempo.config._stretch import stretch

    counted = build_schedule({"type": "warmup_cosine", "unit": "tokens", "peak_lr": 1.0, "total_steps": 6400,
                              "warmup_steps": 640})
    with pytest.raises(ValueError, match="it counts tokens, so its end is no number of updates"):
        stretch(counted, 300)
    pytest.importorskip("torch")
    from lrtempo.train._race import Contender, fit_contenders

    with pytest.raises(ConfigError, match="schedule 'c' counts tokens; a race compares schedules over updates"):
        fit_contenders([Contender("c", counted)], 6400, "updates", fit=False, warn=print)
