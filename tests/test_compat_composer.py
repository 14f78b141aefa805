"""Composer's schedulers against a transcription of Composer's code and Trainer loop, run by torch.

The oracle is ``composer/optim/scheduler.py`` (each scheduler's ``__call__``
and ``_convert_time``) written out in plain Python over a minimal state (the
batch count, ``max_duration``, the dataloader's length), wrapped in the real
``torch.optim.lr_scheduler.LambdaLR`` as ``compile_composer_scheduler`` wraps it
and stepped as ``Trainer._train_loop`` steps it: the scheduler's ``step()``
after each batch, *then* the timestamp moves to the next batch. It is written
from Composer's source, not from the compat module.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from lrtempo.config import ConfigError, build_schedule, format_config, parse_config_text

BASE = 0.1


class State:
    def __init__(self, max_duration, dataloader_len):
        self.max_value, self.max_unit = parse(max_duration)
        self.dataloader_len = dataloader_len
        self.batch = 0


def parse(s):
    for unit in ("dur", "ba", "ep"):
        if s.endswith(unit):
            v = float(s[: -len(unit)])
            return (v if unit == "dur" else int(v)), unit
    raise ValueError(s)


def convert(t, state):
    """Composer's _convert_time, to batches (ssr 1)."""
    value, unit = parse(t)
    if unit == "dur":
        if state.max_unit == "ep":
            return int(value * int(state.dataloader_len) * state.max_value)
        return int(value * state.max_value)
    if unit == "ep":
        return value * int(state.dataloader_len)
    return value


def total(state):
    return state.max_value * state.dataloader_len if state.max_unit == "ep" else state.max_value


def cosine_anneal(x, min_y=0.0, max_y=1.0):
    x = min(max(x, 0.0), 1.0)
    return min_y + (max_y - min_y) * (1 + math.cos(x * math.pi)) / 2


def step_s(step_size, gamma=0.1):
    return lambda st: gamma ** int(st.batch / convert(step_size, st))


def multistep_s(milestones, gamma=0.1):
    def f(st):
        factor = 1.0
        for m in milestones:
            if st.batch >= convert(m, st):
                factor *= gamma
        return factor
    return f


def constant_s(alpha=1.0, t_max="1dur"):
    return lambda st: alpha if st.batch < convert(t_max, st) else 1.0


def linear_s(alpha_i=1.0, alpha_f=0.0, t_max="1dur"):
    return lambda st: alpha_i + min(1.0, st.batch / convert(t_max, st)) * (alpha_f - alpha_i)


def exponential_s(gamma, decay_period="1ep"):
    return lambda st: gamma ** float(st.batch / convert(decay_period, st))


def cosine_s(t_max="1dur", alpha_f=0.0):
    return lambda st: cosine_anneal(st.batch / convert(t_max, st), min_y=alpha_f)


def restarts_s(t_0, t_mult=1.0, alpha_f=0.0):
    def f(st):
        t0 = convert(t_0, st)
        length, end = t0, t0
        while end <= st.batch:
            if length == 0:
                raise ValueError("Interval between restarts has decayed to 0.")
            length = int(t_mult * length)
            end += length
        return cosine_anneal((st.batch - (end - length)) / length, min_y=alpha_f)
    return f


def polynomial_s(power, t_max="1dur", alpha_f=0.0):
    def f(st):
        frac = min(1.0, st.batch / convert(t_max, st))
        return alpha_f + (1 - frac) ** power * (1.0 - alpha_f)
    return f


def check_t_max(t_max, st):
    if convert(t_max, st) < total(st):
        raise ValueError("t_max must be greater than or equal to max_duration")


def with_warmup(t_warmup, after, top=1.0, t_max=None):
    def f(st):
        if t_max is not None:
            check_t_max(t_max, st)
        w = convert(t_warmup, st)
        if st.batch < w:
            return 0.0 + min(1.0, st.batch / w) * (top - 0.0)
        return after(st, w)
    return f


def frac_after(st, w, t_max):
    t = convert(t_max, st)
    return min(1.0, (st.batch - w) / (t - w) if t > w else 0.0)


def multistep_warmup_s(t_warmup, milestones, gamma=0.1, scale_warmup=False):
    return with_warmup(t_warmup, lambda st, w: multistep_s(milestones, gamma)(st))


def linear_warmup_s(t_warmup, alpha_i=1.0, alpha_f=0.0, t_max="1dur", scale_warmup=False):
    return with_warmup(t_warmup, lambda st, w: alpha_i + frac_after(st, w, t_max) * (alpha_f - alpha_i), alpha_i,
                       t_max)


def constant_warmup_s(t_warmup, alpha=1.0, t_max="1dur", scale_warmup=False):
    return linear_warmup_s(t_warmup, alpha, alpha, t_max)


def cosine_warmup_s(t_warmup, t_max="1dur", alpha_f=0.0, scale_warmup=False):
    return with_warmup(t_warmup, lambda st, w: cosine_anneal(frac_after(st, w, t_max), min_y=alpha_f), 1.0, t_max)


def poly_warmup_s(t_warmup, power=2.0, t_max="1dur", alpha_f=0.0, scale_warmup=False):
    return with_warmup(t_warmup, lambda st, w: alpha_f + (1 - frac_after(st, w, t_max)) ** power * (1.0 - alpha_f),
                       1.0, t_max)


ORACLES = {"StepScheduler": step_s, "MultiStepScheduler": multistep_s, "ConstantScheduler": constant_s,
           "LinearScheduler": linear_s, "ExponentialScheduler": exponential_s,
           "CosineAnnealingScheduler": cosine_s, "CosineAnnealingWarmRestartsScheduler": restarts_s,
           "PolynomialScheduler": polynomial_s, "MultiStepWithWarmupScheduler": multistep_warmup_s,
           "ConstantWithWarmupScheduler": constant_warmup_s, "LinearWithWarmupScheduler": linear_warmup_s,
           "CosineAnnealingWithWarmupScheduler": cosine_warmup_s, "PolynomialWithWarmupScheduler": poly_warmup_s}


def trainer_rates(name, kwargs, max_duration, dataloader_len, base=BASE):
    """The rate of every batch the Trainer trains: LambdaLR built at batch 0; after each batch step(), then
    the timestamp moves on."""
    import torch

    state = State(max_duration, dataloader_len)
    scheduler = ORACLES[name](**kwargs)
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([param], lr=base)
    lam = torch.optim.lr_scheduler.LambdaLR(opt, lambda epoch: scheduler(state))
    out = []
    while state.batch < total(state):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        lam.step()
        state.batch += 1
    return np.asarray(out)


def composer(name, kwargs, max_duration, per_epoch=None, base=BASE):
    context = {"max_duration": max_duration}
    if per_epoch is not None:
        context["batches_per_epoch"] = per_epoch
    return build_schedule({"type": "compat", "library": "composer", "name": name, "base_lr": base, "kwargs": kwargs,
                           "context": context})


CASES = [
    ("StepScheduler", {"step_size": "10ba", "gamma": 0.5}, "50ba", None),
    ("StepScheduler", {"step_size": "1ep"}, "5ep", 7),
    ("StepScheduler", {"step_size": "-4ba", "gamma": 0.5}, "30ba", None),  # int() truncates towards 0
    ("MultiStepScheduler", {"milestones": ["10ba", "25ba"], "gamma": 0.3}, "40ba", None),
    ("MultiStepScheduler", {"milestones": ["1ep", "0.5dur", "1ep"]}, "4ep", 6),  # a repeated milestone counts twice
    ("ConstantScheduler", {"alpha": 0.5, "t_max": "12ba"}, "30ba", None),
    ("ConstantScheduler", {}, "10ba", None),
    ("LinearScheduler", {}, "30ba", None),
    ("LinearScheduler", {"alpha_i": 0.1, "alpha_f": 1.0, "t_max": "0.25dur"}, "3ep", 10),
    ("ExponentialScheduler", {"gamma": 0.9}, "6ep", 5),
    ("ExponentialScheduler", {"gamma": 0.95, "decay_period": "3ba"}, "40ba", None),
    ("CosineAnnealingScheduler", {}, "40ba", None),
    ("CosineAnnealingScheduler", {"t_max": "0.5dur", "alpha_f": 0.1}, "33ba", None),  # int(16.5) == 16
    ("CosineAnnealingWarmRestartsScheduler", {"t_0": "5ba"}, "40ba", None),
    ("CosineAnnealingWarmRestartsScheduler", {"t_0": "3ba", "t_mult": 2.0, "alpha_f": 0.05}, "60ba", None),
    ("CosineAnnealingWarmRestartsScheduler", {"t_0": "2ep", "t_mult": 1.5}, "12ep", 3),
    ("PolynomialScheduler", {"power": 2.0}, "30ba", None),
    ("PolynomialScheduler", {"power": 0.5, "t_max": "20ba", "alpha_f": 0.2}, "30ba", None),
    ("MultiStepWithWarmupScheduler", {"t_warmup": "5ba", "milestones": ["10ba", "20ba"]}, "30ba", None),
    ("ConstantWithWarmupScheduler", {"t_warmup": "0.1dur", "alpha": 0.5}, "40ba", None),
    ("LinearWithWarmupScheduler", {"t_warmup": "1ep", "alpha_f": 0.1}, "4ep", 8),
    ("LinearWithWarmupScheduler", {"t_warmup": "6ba", "t_max": "50ba"}, "40ba", None),  # t_max past the run
    ("CosineAnnealingWithWarmupScheduler", {"t_warmup": "10ba"}, "100ba", None),
    ("CosineAnnealingWithWarmupScheduler", {"t_warmup": "0ba", "alpha_f": 0.1}, "20ba", None),
    ("CosineAnnealingWithWarmupScheduler", {"t_warmup": "20ba"}, "20ba", None),  # all warmup: t_max == t_warmup
    ("PolynomialWithWarmupScheduler", {"t_warmup": "0.05dur", "power": 3.0, "alpha_f": 0.01}, "2ep", 50),
]


@pytest.mark.parametrize("name,kwargs,max_duration,per_epoch", CASES)
def test_every_batch_the_trainer_trains(name, kwargs, max_duration, per_epoch):
    s = composer(name, kwargs, max_duration, per_epoch)
    want = trainer_rates(name, kwargs, max_duration, per_epoch)
    got = s.at(np.arange(len(want)))
    np.testing.assert_allclose(got, want, rtol=1e-14, atol=1e-300)
    assert [s(k) for k in range(len(want))] == got.tolist()
    with pytest.raises(ValueError, match=f"past Composer's last batch, max_duration - 1 = {len(want) - 1}"):
        s(len(want))


def test_the_trainer_is_one_batch_behind():
    """Batch 0 and batch 1 both run at the factor for batch 0; batch k at the factor for k - 1."""
    s = composer("LinearWithWarmupScheduler", {"t_warmup": "4ba"}, "20ba", base=1.0)
    assert [s(k) for k in range(7)] == [0.0, 0.0, 0.25, 0.5, 0.75, 1.0, 1.0 - 1 / 16]
    assert [(p.name, p.start, p.stop) for p in s.phases(20)] == [("warmup", 0, 5), ("decay", 5, None)]
    s = composer("StepScheduler", {"step_size": "10ba", "gamma": 0.5}, "30ba", base=1.0)
    assert [s(k) for k in (9, 10, 11, 20, 21)] == [1.0, 1.0, 0.5, 0.5, 0.25]


@settings(max_examples=50, deadline=None)
@given(name=st.sampled_from(["LinearWithWarmupScheduler", "CosineAnnealingWithWarmupScheduler",
                             "PolynomialWithWarmupScheduler", "ConstantWithWarmupScheduler"]),
       per_epoch=st.integers(1, 9), epochs=st.integers(1, 6), warmup=st.floats(0, 1), extra=st.integers(0, 20))
def test_random_durations_match_composer(name, per_epoch, epochs, warmup, extra):
    n = per_epoch * epochs
    kwargs = {"t_warmup": f"{warmup}dur", "t_max": f"{n + extra}ba"}
    want = trainer_rates(name, kwargs, f"{epochs}ep", per_epoch)
    got = composer(name, kwargs, f"{epochs}ep", per_epoch).at(np.arange(n))
    np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-300)


@settings(max_examples=50, deadline=None)
@given(t_0=st.integers(1, 12), t_mult=st.floats(0.0, 3.0), n=st.integers(1, 80))
@example(t_0=1, t_mult=0.0, n=2)  # Composer raises computing the factor after the last batch, which no batch uses
def test_random_restarts_match_composer(t_0, t_mult, n):
    kwargs = {"t_0": f"{t_0}ba", "t_mult": t_mult}
    try:
        want = trainer_rates("CosineAnnealingWarmRestartsScheduler", kwargs, f"{n}ba", None)
    except ValueError:  # the interval shrinks to 0 within the run: Composer raises, compat refuses
        with pytest.raises(ConfigError, match="shrinks to 0 batches"):
            composer("CosineAnnealingWarmRestartsScheduler", kwargs, f"{n}ba")
        return
    got = composer("CosineAnnealingWarmRestartsScheduler", kwargs, f"{n}ba").at(np.arange(n))
    np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-300)


def test_spec_round_trips():
    s = composer(*CASES[19])
    again = build_schedule(parse_config_text(format_config(s.to_spec(), "yaml"), "yaml"))
    assert again == s and np.array_equal(again.at(np.arange(32)), s.at(np.arange(32)))


@pytest.mark.parametrize("name,kwargs,context,message", [
    ("CosineAnnealingScheduler", {}, {}, "context.max_duration: missing"),
    ("CosineAnnealingScheduler", {}, {"max_duration": "100"}, "context.max_duration: must be a Composer time string"),
    ("CosineAnnealingScheduler", {}, {"max_duration": "2ep"}, "is in epochs: give context.batches_per_epoch"),
    ("CosineAnnealingScheduler", {}, {"max_duration": "1000tok"}, "must be a positive number of batches or epochs"),
    ("CosineAnnealingScheduler", {}, {"max_duration": "10ba", "epochs": 1}, "context.epochs: unknown key"),
    ("ExponentialScheduler", {"gamma": 0.9}, {"max_duration": "10ba"}, "kwargs.decay_period: '1ep' is in epochs"),
    ("StepScheduler", {"step_size": "0ba"}, {"max_duration": "10ba"}, "kwargs.step_size: is 0 batches"),
    ("StepScheduler", {"step_size": 10}, {"max_duration": "10ba"}, "kwargs.step_size: must be a Composer time string"),
    ("StepScheduler", {"step_size": "1.5ba"}, {"max_duration": "10ba"}, "ba requires a whole number"),
    ("StepScheduler", {"step_size": "100sp"}, {"max_duration": "10ba"}, "compat counts batches"),
    ("MultiStepScheduler", {"milestones": ["5ba", "x"]}, {"max_duration": "10ba"}, "kwargs.milestones[1]: must be"),
    ("LinearWithWarmupScheduler", {"t_warmup": "2ba", "t_max": "5ba"}, {"max_duration": "10ba"},
     "kwargs.t_max: is 5 batches, shorter than max_duration (10 batches)"),
    ("CosineAnnealingWithWarmupScheduler", {}, {"max_duration": "10ba"}, "kwargs.t_warmup: missing"),
    ("CosineAnnealingWarmRestartsScheduler", {"t_0": "0ba"}, {"max_duration": "10ba"},
     "kwargs.t_mult: the interval between restarts shrinks to 0 batches at batch 0"),
    ("CosineAnnealingWarmRestartsScheduler", {"t_0": "-3ba"}, {"max_duration": "10ba"}, "kwargs.t_0: must be >= 0"),
    ("CosineAnnealingScheduler", {"t_max": "0.0dur"}, {"max_duration": "10ba"}, "kwargs.t_max: is 0 batches"),
])
def test_what_composer_refuses_is_refused_when_built(name, kwargs, context, message):
    with pytest.raises(ConfigError) as info:
        build_schedule({"type": "compat", "library": "composer", "name": name, "base_lr": BASE, "kwargs": kwargs,
                        "context": context})
    assert message in info.value.one_line()


def test_lint_names_the_warmup():
    from lrtempo.analysis import lint_mapping

    spec = {"type": "compat", "library": "composer", "name": "CosineAnnealingWithWarmupScheduler", "base_lr": BASE,
            "kwargs": {"t_warmup": "100ba"}, "context": {"max_duration": "10000ba"}}
    (finding,) = [f for f in lint_mapping(spec) if f.rule == "LR005"]
    assert finding.field == "schedule" and "Composer's warmups start at 0" in finding.fix
    assert not any("no warmup" in f.message for f in lint_mapping(spec))


def test_the_conversion_keeps_the_batch_of_lag():
    from lrtempo.schedules.compat._convert import NotConvertible, to_native

    s = composer("CosineAnnealingWithWarmupScheduler", {"t_warmup": "4ba"}, "20ba", base=1.0)
    spec = to_native(s).spec
    assert spec["type"] == "join" and spec["pieces"][0] == {"schedule": {"type": "constant", "lr": 0.0}, "steps": 1}
    np.testing.assert_allclose(build_schedule(spec).at(np.arange(20)), s.at(np.arange(20)), rtol=1e-14, atol=0)
    with pytest.raises(NotConvertible, match="alpha_f <= alpha_i"):
        to_native(composer("LinearWithWarmupScheduler", {"t_warmup": "4ba", "alpha_i": 0.1, "alpha_f": 1.0}, "20ba"))
    with pytest.raises(NotConvertible, match="has no native form"):
        to_native(composer("StepScheduler", {"step_size": "4ba"}, "20ba"))


def test_every_scheduler_is_covered():
    from lrtempo.schedules.compat import LIBRARIES

    assert set(LIBRARIES["composer"]) == {c[0] for c in CASES} == set(ORACLES)
