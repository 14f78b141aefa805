"""torchtitan's LRSchedulersContainer schedule against a transcription of torchtitan's code, run by torch.

The oracle is ``LRSchedulersContainer.Config.build`` and its
``linear_warmup_stable_decay`` lambda (``torchtitan/components/optimizer/
lr_scheduler.py``) written out in plain Python, wrapped in the real
``torch.optim.lr_scheduler.LambdaLR`` and stepped as torchtitan's trainer steps
it (``optimizers.step()``, then ``lr_schedulers.step()``). It is written from
torchtitan's source, not from the compat module.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import torch_loop_rates
from lrtempo.config import ConfigError, build_schedule, format_config, parse_config_text

BASE = 3e-4


def titan_lambda(warmup_steps=200, total_steps=None, decay_ratio=None, decay_type="linear", min_lr_factor=0.0, *,
                 training_steps):
    total_steps = total_steps if total_steps is not None else training_steps
    warmup_steps = int(warmup_steps)
    if warmup_steps > total_steps:
        warmup_steps = total_steps
    if decay_ratio is not None:
        decay_steps = round(total_steps * decay_ratio)
        if warmup_steps + decay_steps > total_steps:
            decay_steps = total_steps - warmup_steps
    else:
        decay_steps = total_steps - warmup_steps
    stable_steps = total_steps + 1 - warmup_steps - decay_steps

    def linear_warmup_stable_decay(current_step, warmup_steps, stable_steps, decay_steps, lr_decay_type,
                                   min_lr_factor):
        warmup_stable_steps = warmup_steps + stable_steps
        if current_step < warmup_steps:
            current_step += 1
            assert warmup_steps != 0
            curr_adjustment = float(current_step / warmup_steps)
        elif current_step < warmup_stable_steps:
            curr_adjustment = 1.0
        else:
            current_step += 1
            assert decay_steps != 0
            progress = float(current_step - warmup_stable_steps) / decay_steps
            if lr_decay_type == "linear":
                curr_adjustment = 1 - progress
            elif lr_decay_type == "sqrt":
                curr_adjustment = 1 - math.sqrt(progress)
            elif lr_decay_type == "cosine":
                curr_adjustment = 0.5 * (1.0 + math.cos(math.pi * progress))
            else:
                raise ValueError(f"Unknown lr_decay_type: {lr_decay_type}")
            curr_adjustment = min_lr_factor + (1 - min_lr_factor) * curr_adjustment
        return curr_adjustment

    return functools.partial(linear_warmup_stable_decay, warmup_steps=warmup_steps, stable_steps=stable_steps,
                             decay_steps=decay_steps, lr_decay_type=decay_type, min_lr_factor=min_lr_factor)


def torchtitan_rates(kwargs, training_steps, base=BASE):
    """The rate of updates 0..training_steps-1: a LambdaLR of the lambda, stepped after each update."""
    import torch

    lam = titan_lambda(**kwargs, training_steps=training_steps)
    return torch_loop_rates(lambda opt: torch.optim.lr_scheduler.LambdaLR(opt, lam), training_steps, base,
                            optimizer="AdamW")


def titan(kwargs, training_steps, base=BASE):
    return build_schedule({"type": "compat", "library": "torchtitan", "name": "LRSchedulersContainer",
                           "base_lr": base, "kwargs": kwargs, "context": {"training_steps": training_steps}})


CASES = [
    ({"warmup_steps": 10}, 100),  # decay from the end of the warmup (decay_ratio unset)
    ({}, 1000),  # torchtitan's default warmup of 200
    ({"warmup_steps": 10, "decay_ratio": 0.2}, 100),  # WSD
    ({"warmup_steps": 10, "decay_ratio": 0.2, "decay_type": "sqrt", "min_lr_factor": 0.1}, 100),
    ({"warmup_steps": 10, "decay_ratio": 0.25, "decay_type": "cosine", "min_lr_factor": 0.05}, 90),  # round(22.5)
    ({"warmup_steps": 0, "decay_type": "cosine"}, 40),
    ({"warmup_steps": 1, "decay_ratio": 0.5}, 20),
    ({"warmup_steps": 50, "decay_ratio": 0.9}, 100),  # the decay is capped at what the warmup leaves
    ({"warmup_steps": 150}, 100),  # the warmup is capped at the total
    ({"warmup_steps": 7.9, "decay_ratio": 0.3}, 50),  # int() truncates
    ({"warmup_steps": 10, "total_steps": 200, "decay_ratio": 0.1}, 120),  # a longer schedule, stopped early
    ({"warmup_steps": 10, "total_steps": 99, "decay_type": "cosine"}, 100),  # one update past its total
    ({"warmup_steps": 5, "total_steps": 30, "decay_type": "cosine"}, 60),  # the cosine climbs back past it
    ({"warmup_steps": 5, "total_steps": 30, "decay_ratio": 0.5, "min_lr_factor": 0.5}, 31),
]


@pytest.mark.parametrize("kwargs,training_steps", CASES)
def test_every_update_the_trainer_runs(kwargs, training_steps):
    s = titan(kwargs, training_steps)
    want = torchtitan_rates(kwargs, training_steps)
    got = s.at(np.arange(training_steps))
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=0)
    assert [s(k) for k in range(training_steps)] == got.tolist()
    with pytest.raises(ValueError, match=f"past torchtitan's last update, training_steps - 1 = {training_steps - 1}"):
        s(training_steps)


def test_values_by_hand():
    s = titan({"warmup_steps": 4, "decay_ratio": 0.5}, 12, base=1.0)
    # warmup (k + 1) / W reaches 1 at k = W - 1; the stable phase has one step more than 12 - 4 - 6
    assert [s(k) for k in (0, 3, 4, 6, 7, 11)] == [0.25, 1.0, 1.0, 1.0, 1 - 1 / 6, 1 - 5 / 6]
    assert [(p.name, p.start, p.stop) for p in s.phases(12)] == [("warmup", 0, 4), ("stable", 4, 7),
                                                                 ("decay", 7, None)]


@settings(max_examples=60, deadline=None)
@given(warmup=st.integers(0, 60), training=st.integers(1, 80), extra=st.integers(-1, 40),
       ratio=st.one_of(st.none(), st.floats(0, 1)), decay_type=st.sampled_from(["linear", "sqrt", "cosine"]),
       m=st.floats(0, 1))
def test_random_arguments_match_torchtitan(warmup, training, extra, ratio, decay_type, m):
    kwargs = {"warmup_steps": warmup, "total_steps": training + extra, "decay_ratio": ratio,
              "decay_type": decay_type, "min_lr_factor": m}
    lam = titan_lambda(**kwargs, training_steps=training)
    try:
        want = np.asarray([BASE * lam(k) for k in range(training + 1)])[:-1]  # step() runs after the last update
    except AssertionError:  # torchtitan fails on one of the updates: compat refuses it
        with pytest.raises(ConfigError, match="asserts decay_steps != 0"):
            titan(kwargs, training)
        return
    np.testing.assert_allclose(titan(kwargs, training).at(np.arange(training)), want, rtol=1e-13, atol=1e-300)


def test_spec_round_trips():
    s = titan(*CASES[3])
    again = build_schedule(parse_config_text(format_config(s.to_spec(), "json"), "json"))
    assert again == s and np.array_equal(again.at(np.arange(100)), s.at(np.arange(100)))


@pytest.mark.parametrize("kwargs,context,message", [
    ({}, {}, "context.training_steps: missing"),
    ({}, {"steps": 10}, "context.steps: unknown key"),
    ({"decay_type": "exp"}, {"training_steps": 10}, "kwargs.decay_type: must be one of 'linear', 'sqrt', 'cosine'"),
    ({"lr_min": 0.1}, {"training_steps": 10}, "kwargs.lr_min: LRSchedulersContainer has no keyword"),
    ({"warmup_steps": 2, "total_steps": 10}, {"training_steps": 20}, "kwargs: the rate is negative at update 11"),
    ({"warmup_steps": 2, "min_lr_factor": -0.5}, {"training_steps": 20}, "kwargs: the rate is negative"),
    ({"warmup_steps": 5, "total_steps": 5}, {"training_steps": 10}, "kwargs: the decay has 0 steps"),
    # reached only by the step() after the last update, which torchtitan's trainer also runs
    ({"warmup_steps": 9, "total_steps": 9}, {"training_steps": 10}, "reached at update 10"),
])
def test_refusals_name_the_field(kwargs, context, message):
    with pytest.raises(ConfigError) as info:
        build_schedule({"type": "compat", "library": "torchtitan", "name": "LRSchedulersContainer", "base_lr": BASE,
                        "kwargs": kwargs, "context": context})
    assert message in info.value.one_line()


def test_lint_first_rate():
    from lrtempo.analysis import lint_mapping

    spec = {"type": "compat", "library": "torchtitan", "name": "LRSchedulersContainer", "base_lr": BASE,
            "kwargs": {"warmup_steps": 100}, "context": {"training_steps": 1000}}
    assert not [f for f in lint_mapping(spec) if f.rule == "LR005"]  # the warmup's first rate is base_lr / W


def test_conversion_past_total_steps_is_the_nearest_form():
    from lrtempo.schedules.compat._convert import NotConvertible, to_native

    conversion = to_native(titan({"warmup_steps": 10, "total_steps": 80, "decay_type": "cosine"}, 100))
    assert not conversion.exact and conversion.agrees_until == 80
    assert to_native(titan({"warmup_steps": 10, "total_steps": 99}, 100)).exact
    with pytest.raises(NotConvertible, match="a decay of at least 1 step"):
        to_native(titan({"warmup_steps": 200}, 100))
