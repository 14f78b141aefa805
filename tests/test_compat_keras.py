"""Keras 3 schedules against their source's formulas, and against the installed Keras (torch backend).

The references below are the ``__call__`` of each class in Keras 3's
``keras/src/optimizers/schedules/learning_rate_schedule.py`` written out in
plain Python for one step, in float64. Where Keras is installed, the optional
tests run its schedules through a Keras optimizer (update k runs at
``schedule(optimizer.iterations)``) in float32, Keras' default, and call them
with ``floatx`` float64.
"""

from __future__ import annotations

import math
import os

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from lrtempo.config import ConfigError, build_schedule, format_config, parse_config_text

os.environ.setdefault("KERAS_BACKEND", "torch")


def exponential(initial_learning_rate, decay_steps, decay_rate, staircase=False, name=None):
    def f(step):
        p = step / decay_steps
        return initial_learning_rate * decay_rate ** (math.floor(p) if staircase else p)
    return f


def inverse_time(initial_learning_rate, decay_steps, decay_rate, staircase=False, name=None):
    def f(step):
        p = step / decay_steps
        return initial_learning_rate / (1 + decay_rate * (math.floor(p) if staircase else p))
    return f


def piecewise(boundaries, values, name=None):
    def f(step):
        b = [int(x) for x in boundaries]
        out = (step <= b[0]) * values[0] + (step > b[-1]) * values[-1]
        for low, high, v in zip(b[:-1], b[1:], values[1:-1]):
            out += (low < step <= high) * v
        return float(out)
    return f


def polynomial(initial_learning_rate, decay_steps, end_learning_rate=0.0001, power=1.0, cycle=False, name=None):
    def f(step):
        ds = decay_steps
        if cycle:
            ds = decay_steps * (1.0 if step == 0 else math.ceil(step / decay_steps))
        else:
            step = min(step, decay_steps)
        return (initial_learning_rate - end_learning_rate) * (1 - step / ds) ** power + end_learning_rate
    return f


def cosine(initial_learning_rate, decay_steps, alpha=0.0, name=None, warmup_target=None, warmup_steps=0):
    def decay(step, lr):
        return lr * ((1 - alpha) * 0.5 * (1.0 + math.cos(math.pi * (step / decay_steps))) + alpha)

    def f(step):
        if warmup_target is None:
            return decay(min(step, decay_steps), initial_learning_rate)
        step = min(step, decay_steps + warmup_steps)
        if step < warmup_steps:
            return (warmup_target - initial_learning_rate) * (step / warmup_steps) + initial_learning_rate
        return decay(step - warmup_steps, warmup_target)
    return f


def restarts(initial_learning_rate, first_decay_steps, t_mul=2.0, m_mul=1.0, alpha=0.0, name=None):
    def f(step):
        cf = step / first_decay_steps
        if t_mul == 1.0:
            i = math.floor(cf)
            cf -= i
        else:
            i = math.floor(math.log(1.0 - cf * (1.0 - t_mul)) / math.log(t_mul))
            cf = (cf - (1.0 - t_mul ** i) / (1.0 - t_mul)) / t_mul ** i
        return initial_learning_rate * ((1 - alpha) * (0.5 * m_mul ** i * (1.0 + math.cos(math.pi * cf))) + alpha)
    return f


CASES = [
    ("ExponentialDecay", {"initial_learning_rate": 0.1, "decay_steps": 10, "decay_rate": 0.5}, exponential),
    ("ExponentialDecay", {"initial_learning_rate": 0.1, "decay_steps": 7, "decay_rate": 0.9, "staircase": True},
     exponential),
    ("InverseTimeDecay", {"initial_learning_rate": 0.1, "decay_steps": 5, "decay_rate": 0.5}, inverse_time),
    ("InverseTimeDecay", {"initial_learning_rate": 0.1, "decay_steps": 5, "decay_rate": 0.5, "staircase": True},
     inverse_time),
    ("PiecewiseConstantDecay", {"boundaries": [10, 25], "values": [1.0, 0.5, 0.1]}, piecewise),
    ("PiecewiseConstantDecay", {"boundaries": [-0.5, 2.5, 7], "values": [1.0, 0.5, 0.25, 0.1]}, piecewise),
    ("PiecewiseConstantDecay", {"boundaries": [20, 10], "values": [1.0, 0.5, 0.1]}, piecewise),  # unsorted: sums
    ("PolynomialDecay", {"initial_learning_rate": 0.1, "decay_steps": 30}, polynomial),
    ("PolynomialDecay", {"initial_learning_rate": 0.1, "decay_steps": 30, "end_learning_rate": 0.01, "power": 2.0},
     polynomial),
    ("PolynomialDecay", {"initial_learning_rate": 0.1, "decay_steps": 12, "power": 0.5, "cycle": True}, polynomial),
    ("CosineDecay", {"initial_learning_rate": 0.1, "decay_steps": 40}, cosine),
    ("CosineDecay", {"initial_learning_rate": 0.1, "decay_steps": 40, "alpha": 0.1}, cosine),
    ("CosineDecay", {"initial_learning_rate": 0.0, "decay_steps": 40, "warmup_target": 0.1, "warmup_steps": 10,
                     "alpha": 0.05}, cosine),
    ("CosineDecay", {"initial_learning_rate": 0.01, "decay_steps": 20, "warmup_target": 0.1, "warmup_steps": 0},
     cosine),
    ("CosineDecayRestarts", {"initial_learning_rate": 0.1, "first_decay_steps": 10}, restarts),
    ("CosineDecayRestarts", {"initial_learning_rate": 0.1, "first_decay_steps": 8, "t_mul": 1.0, "m_mul": 0.5,
                             "alpha": 0.1}, restarts),
    ("CosineDecayRestarts", {"initial_learning_rate": 0.1, "first_decay_steps": 5, "t_mul": 1.5, "m_mul": 0.8},
     restarts),
]

STEPS = 120  # step 0, every boundary and its neighbours, the ends and well past them


def keras_spec(name, kwargs):
    return {"type": "compat", "library": "keras", "name": name, "kwargs": kwargs}


@pytest.mark.parametrize("name,kwargs,ref", CASES)
def test_keras_formulas(name, kwargs, ref):
    s = build_schedule(keras_spec(name, kwargs))
    f = ref(**kwargs)
    got = s.at(np.arange(STEPS))
    np.testing.assert_allclose(got, [f(k) for k in range(STEPS)], rtol=1e-13, atol=1e-300)
    assert [s(k) for k in range(STEPS)] == got.tolist()


def test_values_by_hand():
    s = build_schedule(keras_spec("PiecewiseConstantDecay", {"boundaries": [10, 20], "values": [1.0, 0.5, 0.1]}))
    assert [s(k) for k in (0, 10, 11, 20, 21)] == [1.0, 1.0, 0.5, 0.5, 0.1]  # a boundary belongs to the range below
    s = build_schedule(keras_spec("CosineDecay", {"initial_learning_rate": 0.0, "decay_steps": 10,
                                                  "warmup_target": 1.0, "warmup_steps": 4}))
    assert [s(k) for k in (0, 1, 4, 14, 100)] == [0.0, 0.25, 1.0, 0.0, 0.0]


@settings(max_examples=50, deadline=None)
@given(t_mul=st.floats(1.0, 3.0), m_mul=st.floats(0.1, 1.0), first=st.integers(1, 30), alpha=st.floats(0, 1))
# found by hypothesis: near the bottom of a cycle (alpha 0) 1 + cos(pi * cf) cancels, so the two float64 orders of
# evaluation differ by 4e-17 (3 ulp of the peak 0.1) on a value of 4e-5: a relative 1e-12
@example(t_mul=1.03125, m_mul=1.0, first=1, alpha=0.0)
def test_restarts_over_random_arguments(t_mul, m_mul, first, alpha):
    kwargs = {"initial_learning_rate": 0.1, "first_decay_steps": first, "t_mul": t_mul, "m_mul": m_mul,
              "alpha": alpha}
    s, f = build_schedule(keras_spec("CosineDecayRestarts", kwargs)), restarts(**kwargs)
    # relative 1e-12, or within a few ulp of the peak (0.1 * 2**-50: 6 ulp) where the bottom cancels
    np.testing.assert_allclose(s.at(np.arange(200)), [f(k) for k in range(200)], rtol=1e-12, atol=0.1 * 2**-50)


def test_spec_round_trips():
    s = build_schedule(keras_spec(*CASES[12][:2]))
    again = build_schedule(parse_config_text(format_config(s.to_spec(), "toml"), "toml"))
    assert again == s and np.array_equal(again.at(np.arange(60)), s.at(np.arange(60)))


@pytest.mark.parametrize("name,kwargs,message", [
    ("ExponentialDecay", {"initial_learning_rate": 0.1, "decay_steps": 0, "decay_rate": 0.5},
     "kwargs.decay_steps: must be > 0"),
    ("CosineDecayRestarts", {"initial_learning_rate": 0.1, "first_decay_steps": -1},
     "kwargs.first_decay_steps: must be > 0"),
    ("PiecewiseConstantDecay", {"boundaries": [10], "values": [1.0]}, "should be 1 less than the length of values"),
    ("PiecewiseConstantDecay", {"boundaries": [], "values": [1.0]}, "kwargs.boundaries: must not be empty"),
    ("PiecewiseConstantDecay", {"boundaries": [10], "values": [1, 0.5]}, "kwargs.values: values[0] must be a float"),
    ("PiecewiseConstantDecay", {"boundaries": "10", "values": [1.0, 0.5]}, "kwargs.boundaries: must be a list"),
    ("CosineDecay", {"initial_learning_rate": 0.1, "decay_steps": 10, "warmup": 3}, "has no keyword 'warmup'"),
    ("CosineDecay", {"decay_steps": 10}, "kwargs.initial_learning_rate: missing"),
    ("ExponentialDecay", {"initial_learning_rate": 0.1, "decay_steps": 1, "decay_rate": 2.0},
     "is not finite at step"),
    ("CosineDecayRestarts", {"initial_learning_rate": 0.1, "first_decay_steps": 5, "t_mul": 0.5},
     "is not finite at step"),
    ("LearningRateSchedule", {}, "name: LearningRateSchedule is Keras' base class"),
])
def test_what_keras_refuses_is_refused(name, kwargs, message):
    with pytest.raises(ConfigError) as info:
        build_schedule(keras_spec(name, kwargs))
    assert message in info.value.one_line()


def test_keras_schedules_carry_their_own_rates():
    with pytest.raises(ConfigError, match="base_lr: keras schedules carry their own values"):
        build_schedule({**keras_spec(*CASES[0][:2]), "base_lr": 0.1})


# -- against the installed Keras ------------------------------------------------------------------

def _keras():
    keras = pytest.importorskip("keras")
    if keras.backend.backend() != "torch":
        pytest.skip("the Keras tests run with KERAS_BACKEND=torch")
    return keras


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # Keras' torch backend and NumPy 2's copy keyword
@pytest.mark.parametrize("name,kwargs,ref", CASES)
def test_against_keras_in_its_optimizer(name, kwargs, ref):
    """Update k of a Keras optimizer runs at the compat value of step k (Keras' float32 to its precision)."""
    keras = _keras()
    keras.config.set_floatx("float32")
    schedule = getattr(keras.optimizers.schedules, name)(**kwargs)
    opt = keras.optimizers.SGD(learning_rate=schedule)
    var = keras.Variable(np.zeros(1, dtype="float32"))
    rates = []
    for _ in range(60):
        rates.append(float(keras.ops.convert_to_numpy(opt.learning_rate)))
        opt.apply_gradients([(keras.ops.ones(1), var)])
    got = build_schedule(keras_spec(name, kwargs)).at(np.arange(60))
    np.testing.assert_allclose(got, rates, rtol=2e-6, atol=1e-7)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize("name,kwargs,ref", CASES)
def test_against_keras_in_float64(name, kwargs, ref):
    keras = _keras()
    keras.config.set_floatx("float64")
    try:
        schedule = getattr(keras.optimizers.schedules, name)(**kwargs)
        want = [float(keras.ops.convert_to_numpy(schedule(k))) for k in range(STEPS)]
    finally:
        keras.config.set_floatx("float32")
    got = build_schedule(keras_spec(name, kwargs)).at(np.arange(STEPS))
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-300)


def test_every_keras_schedule_is_covered():
    keras = _keras()
    from lrtempo.schedules.compat import LIBRARIES

    offered = {n for n in dir(keras.optimizers.schedules) if n[0].isupper() and n != "LearningRateSchedule"}
    assert offered == set(LIBRARIES["keras"]) == {c[0] for c in CASES}


def test_lint_names_initial_learning_rate():
    from lrtempo.analysis import lint_mapping

    spec = keras_spec("CosineDecay", {"initial_learning_rate": 0.0, "decay_steps": 1000, "warmup_target": 1e-3,
                                      "warmup_steps": 50})
    (finding,) = [f for f in lint_mapping(spec) if f.rule == "LR005"]
    assert finding.field == "kwargs.initial_learning_rate" and "above 0" in finding.fix
    assert not any("no warmup" in f.message for f in lint_mapping(spec))


@pytest.mark.parametrize("name,kwargs,message", [
    ("PiecewiseConstantDecay", {"boundaries": [20, 10], "values": [1.0, 0.5, 0.1]}, "increasing boundaries"),
    ("PolynomialDecay", {"initial_learning_rate": 0.1, "decay_steps": 12, "cycle": True}, "cycle: true"),
    ("CosineDecay", {"initial_learning_rate": 0.1, "decay_steps": 12.5}, "convert when whole"),
    ("InverseTimeDecay", {"initial_learning_rate": 0.1, "decay_steps": 5, "decay_rate": 0.5}, "no native form"),
])
def test_what_has_no_native_form_says_why(name, kwargs, message):
    from lrtempo.schedules.compat._convert import NotConvertible, to_native

    with pytest.raises(NotConvertible, match=message):
        to_native(build_schedule(keras_spec(name, kwargs)))
