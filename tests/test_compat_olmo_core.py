"""OLMo-core's schedulers against a transcription of OLMo-core's code and trainer loop.

The oracle is ``olmo_core/optim/scheduler.py`` written out in plain Python, one
scalar ``get_lr(initial_lr, current, t_max)`` per class, and the trainer's loop:
``global_step += 1`` before each batch, then ``set_lr`` before ``optimizer.step()``
(``olmo_core/train/trainer.py``, ``train_module.optim_step``). It is written from
OLMo-core's source, not from the compat module.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lrtempo.config import ConfigError, build_schedule, format_config, parse_config_text

BASE = 3e-4


def lin_warmup(initial_lr, current, warmup, warmup_min_lr=0.0):
    assert 0 <= warmup_min_lr < initial_lr
    return warmup_min_lr + (initial_lr - warmup_min_lr) * min(current, warmup) / warmup


def lin_decay(initial_lr, step_from_end, decay, decay_min_lr=0.0):
    assert 0 <= decay_min_lr < initial_lr
    return decay_min_lr + (initial_lr - decay_min_lr) * min(step_from_end, decay) / decay


def pick(t_max, steps, fraction):
    return steps if steps is not None else round(t_max * fraction)


class Constant:
    def __init__(self, **_):
        pass

    def get_lr(self, initial_lr, current, t_max):
        return initial_lr


class ConstantWithWarmup:
    def __init__(self, warmup=None, warmup_fraction=None, warmup_min_lr=0.0, warmup_steps=None):
        self.warmup = warmup if warmup is not None else warmup_steps
        self.warmup_fraction, self.warmup_min_lr = warmup_fraction, warmup_min_lr

    def get_lr(self, initial_lr, current, t_max):
        warmup = pick(t_max, self.warmup, self.warmup_fraction)
        if current <= warmup:
            return lin_warmup(initial_lr, current, warmup, self.warmup_min_lr)
        return initial_lr


class WSD:
    def __init__(self, warmup=None, warmup_fraction=None, decay=None, decay_fraction=0.1, warmup_min_lr=0.0,
                 decay_min_lr=0.0):
        self.warmup, self.warmup_fraction = warmup, warmup_fraction
        self.decay, self.decay_fraction = decay, decay_fraction
        self.warmup_min_lr, self.decay_min_lr = warmup_min_lr, decay_min_lr

    def get_lr(self, initial_lr, current, t_max):
        warmup = pick(t_max, self.warmup, self.warmup_fraction)
        if current <= warmup:
            return lin_warmup(initial_lr, current, warmup, self.warmup_min_lr)
        decay = pick(t_max, self.decay, self.decay_fraction)
        if current >= t_max - decay:
            return lin_decay(initial_lr, t_max - current, decay, self.decay_min_lr)
        return initial_lr


class PowerLR(WSD):
    def __init__(self, b=-0.51, **kw):
        super().__init__(**kw)
        self.b = b

    def get_lr(self, initial_lr, current, t_max):
        warmup = pick(t_max, self.warmup, self.warmup_fraction)
        decay = pick(t_max, self.decay, self.decay_fraction)
        if current <= warmup:
            return lin_warmup(initial_lr, current, warmup, self.warmup_min_lr)
        if current >= t_max - decay:
            start = initial_lr * ((t_max - decay) / warmup) ** self.b
            return lin_decay(start, t_max - current, decay, self.decay_min_lr)
        return initial_lr * (current / warmup) ** self.b


class LinearWithWarmup:
    def __init__(self, alpha_f=0.1, t_max=None, warmup=None, warmup_fraction=None, warmup_min_lr=0.0):
        self.alpha_f, self.t_max, self.warmup, self.warmup_fraction = alpha_f, t_max, warmup, warmup_fraction
        self.warmup_min_lr = warmup_min_lr

    def get_lr(self, initial_lr, current, t_max):
        t_max = t_max if self.t_max is None else self.t_max
        eta_min = initial_lr * self.alpha_f
        warmup = pick(t_max, self.warmup, self.warmup_fraction)
        if current < warmup:
            return lin_warmup(initial_lr, current, warmup, self.warmup_min_lr)
        elif current >= t_max:
            return eta_min
        current, t_max = current - warmup, t_max - warmup
        return initial_lr - (initial_lr - eta_min) * (current / t_max)


class CosWithWarmup(LinearWithWarmup):
    def get_lr(self, initial_lr, current, t_max):
        t_max = t_max if self.t_max is None else self.t_max
        eta_min = initial_lr * self.alpha_f
        warmup = pick(t_max, self.warmup, self.warmup_fraction)
        if current < warmup:
            return lin_warmup(initial_lr, current, warmup, self.warmup_min_lr)
        elif current >= t_max:
            return eta_min
        current, t_max = current - warmup, t_max - warmup
        return eta_min + (initial_lr - eta_min) * (1 + math.cos(math.pi * current / t_max)) / 2


class HalfCosWithWarmup(LinearWithWarmup):
    def get_lr(self, initial_lr, current, t_max):
        t_max = t_max if self.t_max is None else self.t_max
        eta_min = initial_lr * self.alpha_f
        warmup = pick(t_max, self.warmup, self.warmup_fraction)
        if current < warmup:
            return lin_warmup(eta_min + (initial_lr - eta_min) / 2, current, warmup, self.warmup_min_lr)
        elif current >= t_max:
            return eta_min
        current, t_max = current - warmup, t_max - warmup
        current += t_max
        t_max *= 2
        return eta_min + (initial_lr - eta_min) * (1 + math.cos(math.pi * current / t_max)) / 2


class InvSqrtWithWarmup:
    def __init__(self, alpha_f=0.1, warmup=None, warmup_fraction=None, warmup_min_lr=0.0):
        self.alpha_f, self.warmup, self.warmup_fraction = alpha_f, warmup, warmup_fraction
        self.warmup_min_lr = warmup_min_lr

    def get_lr(self, initial_lr, current, t_max):
        warmup = pick(t_max, self.warmup, self.warmup_fraction)
        if current < warmup:
            return lin_warmup(initial_lr, current, warmup, self.warmup_min_lr)
        eta_min = initial_lr * self.alpha_f
        return eta_min + (initial_lr - eta_min) * math.sqrt(warmup / current)


class CosWithWarmupAndLinearDecay(CosWithWarmup):
    def __init__(self, decay=None, decay_fraction=0.1, decay_min_lr=0.0, **kw):
        super().__init__(**kw)
        self.decay, self.decay_fraction, self.decay_min_lr = decay, decay_fraction, decay_min_lr

    def get_lr(self, initial_lr, current, t_max):
        decay = pick(t_max, self.decay, self.decay_fraction)
        if current >= t_max - decay:
            final_cosine_lr = super().get_lr(initial_lr, t_max - decay, t_max)
            return lin_decay(final_cosine_lr, t_max - current, decay, self.decay_min_lr)
        return super().get_lr(initial_lr, current, t_max)


class ExponentialScheduler:
    def __init__(self, lr_min=1e-9):
        self.lr_min = lr_min

    def get_lr(self, initial_lr, current, t_max):
        if current >= t_max:
            return initial_lr
        if current == 0:
            return self.lr_min
        return self.lr_min * (initial_lr / self.lr_min) ** (current / t_max)


class SequentialScheduler:
    def __init__(self, schedulers, schedulers_max, override_decay=None):
        self.schedulers = [CLASSES[c["name"]](**c.get("kwargs", {})) for c in schedulers]
        self.schedulers_max = list(schedulers_max)
        if len(self.schedulers_max) == len(self.schedulers):
            self.schedulers_max.pop()
        self.override_decay = override_decay

    def _sequential_lr(self, initial_lr, current, t_max):
        for scheduler, scheduler_max in zip(self.schedulers[:-1], self.schedulers_max, strict=True):
            if current <= scheduler_max:
                return scheduler.get_lr(initial_lr, current, min(t_max, scheduler_max))
            initial_lr = scheduler.get_lr(initial_lr, scheduler_max, scheduler_max)
            current -= scheduler_max
            t_max -= scheduler_max
        assert t_max > 0
        return self.schedulers[-1].get_lr(initial_lr, current, t_max)

    def get_lr(self, initial_lr, current, t_max):
        assert 0 <= current <= t_max
        o = self.override_decay
        if o is None or current < o["start"]:
            return self._sequential_lr(initial_lr, current, t_max)
        start_lr = self._sequential_lr(initial_lr, o["start"], t_max)
        end_lr = o["end_lr"] if o.get("end_lr") is not None else initial_lr * o["end_lr_fraction"]
        cur = current - o["start"]
        if cur < o["duration"]:
            if o.get("shape", "linear") == "linear":
                return start_lr + (end_lr - start_lr) * cur / o["duration"]
            return end_lr + (start_lr - end_lr) * (1 + math.cos(math.pi * cur / o["duration"])) / 2
        return end_lr


CLASSES = {"ConstantScheduler": Constant, "ConstantWithWarmup": ConstantWithWarmup, "WSD": WSD, "PowerLR": PowerLR,
           "LinearWithWarmup": LinearWithWarmup, "CosWithWarmup": CosWithWarmup,
           "HalfCosWithWarmup": HalfCosWithWarmup, "InvSqrtWithWarmup": InvSqrtWithWarmup,
           "CosWithWarmupAndLinearDecay": CosWithWarmupAndLinearDecay, "ExponentialScheduler": ExponentialScheduler,
           "SequentialScheduler": SequentialScheduler}


def trainer_rates(name, kwargs, t_max, base=BASE):
    """The rate of every update the trainer runs: global_step += 1, then set_lr, then optimizer.step()."""
    scheduler = CLASSES[name](**kwargs)
    global_step, out = 0, []
    while global_step < t_max:
        global_step += 1
        out.append(scheduler.get_lr(base, global_step, t_max))
    return np.asarray(out)


def olmo(name, kwargs, t_max, base=BASE):
    return build_schedule({"type": "compat", "library": "olmo-core", "name": name, "base_lr": base,
                           "kwargs": kwargs, "context": {"t_max": t_max}})


def seq(*children, maxes, **extra):
    return {"schedulers": [{"name": n, "kwargs": kw} for n, kw in children], "schedulers_max": maxes, **extra}


CASES = [
    ("ConstantScheduler", {}, 10),
    ("ConstantWithWarmup", {"warmup": 7}, 30),
    ("ConstantWithWarmup", {"warmup_fraction": 0.25, "warmup_min_lr": 1e-5}, 30),
    ("ConstantWithWarmup", {"warmup_steps": 4}, 12),  # the deprecated alias
    ("LinearWithWarmup", {"warmup": 5}, 40),
    ("LinearWithWarmup", {"warmup": 5, "t_max": 30, "alpha_f": 0.0}, 40),  # its own t_max ends early
    ("LinearWithWarmup", {"warmup_fraction": 0.1, "t_max": 50}, 40),  # and beyond the trainer's
    ("CosWithWarmup", {"warmup": 10}, 100),
    ("CosWithWarmup", {"warmup": 0, "alpha_f": 0.0}, 20),
    ("CosWithWarmup", {"warmup_fraction": 0.05, "warmup_min_lr": 1e-6}, 90),  # round(4.5) == 4: halves to even
    ("HalfCosWithWarmup", {"warmup": 6, "alpha_f": 0.2}, 40),
    ("InvSqrtWithWarmup", {"warmup": 8}, 60),
    ("InvSqrtWithWarmup", {"warmup": 0}, 20),
    ("CosWithWarmupAndLinearDecay", {"warmup": 5}, 50),
    ("CosWithWarmupAndLinearDecay", {"warmup": 5, "decay": 12, "decay_fraction": None, "decay_min_lr": 1e-6}, 50),
    ("WSD", {"warmup": 10}, 100),  # decay_fraction 0.1 by default
    ("WSD", {"warmup_fraction": 0.1, "decay": 25, "decay_fraction": None, "decay_min_lr": 3e-5}, 100),
    ("WSD", {"warmup": 0, "decay_fraction": 0.5}, 20),
    ("WSD", {"warmup": 10, "decay_fraction": 0.25}, 30),  # round(7.5) == 8
    ("PowerLR", {"warmup": 10, "b": -0.5}, 100),
    ("PowerLR", {"warmup": 4, "decay": 5, "decay_fraction": None}, 30),
    ("ExponentialScheduler", {"lr_min": 1e-7}, 50),
    ("SequentialScheduler", seq(("ConstantWithWarmup", {"warmup": 3}), ("CosWithWarmup", {"warmup": 0}),
                                maxes=[10]), 40),
    ("SequentialScheduler", seq(("WSD", {"warmup": 5, "decay_fraction": 0.2}),
                                ("LinearWithWarmup", {"warmup": 0, "alpha_f": 0.0}), maxes=[20, 999]), 35),
    ("SequentialScheduler", seq(("LinearWithWarmup", {"warmup": 4}), ("ConstantScheduler", {}),
                                ("CosWithWarmup", {"warmup": 2}), maxes=[8, 6]), 30),
    ("SequentialScheduler", seq(("ConstantWithWarmup", {"warmup": 5}), ("ConstantScheduler", {}), maxes=[10],
                                override_decay={"start": 20, "duration": 8, "end_lr_fraction": 0.1}), 40),
    ("SequentialScheduler", seq(("ConstantWithWarmup", {"warmup": 5}), ("CosWithWarmup", {"warmup": 0}), maxes=[10],
                                override_decay={"start": 15, "duration": 30, "shape": "cosine", "end_lr": 0.0}),
     40),
    ("SequentialScheduler", seq(("SequentialScheduler", seq(("ConstantWithWarmup", {"warmup": 2}),
                                                            ("ConstantScheduler", {}), maxes=[4])),
                                ("CosWithWarmup", {"warmup": 0}), maxes=[8]), 20),
]


@pytest.mark.parametrize("name,kwargs,t_max", CASES)
def test_every_update_the_trainer_runs(name, kwargs, t_max):
    """Update 0 (current 1), every boundary and its neighbours, through the last update (current t_max)."""
    s = olmo(name, kwargs, t_max)
    want = trainer_rates(name, kwargs, t_max)
    got = s.at(np.arange(t_max))
    np.testing.assert_allclose(got, want, rtol=1e-14, atol=1e-300)
    assert [s(k) for k in range(t_max)] == got.tolist()


@pytest.mark.parametrize("name,kwargs,t_max", CASES)
def test_past_the_last_update_raises(name, kwargs, t_max):
    """The trainer stops after t_max updates: there is no OLMo-core rate past update t_max - 1."""
    s = olmo(name, kwargs, t_max)
    assert s.last_valid_step == t_max - 1 and s.horizon == t_max - 1
    with pytest.raises(ValueError, match=f"step {t_max} is past OLMo-core's last update, t_max - 1 = {t_max - 1}"):
        s(t_max)


def test_update_zero_runs_at_current_one():
    s = olmo("CosWithWarmup", {"warmup": 4, "alpha_f": 0.0}, 20, base=1.0)
    assert s(0) == 0.25 and s(2) == 0.75 and s(3) == 1.0  # current 4 == warmup: the decay's first step
    s = olmo("WSD", {"warmup": 4, "decay": 4, "decay_fraction": None}, 20, base=1.0)
    assert [s(k) for k in (0, 3, 4, 15, 16, 19)] == [0.25, 1.0, 1.0, 1.0, 0.75, 0.0]


@settings(max_examples=60, deadline=None)
@given(name=st.sampled_from(["ConstantWithWarmup", "LinearWithWarmup", "CosWithWarmup", "HalfCosWithWarmup",
                             "InvSqrtWithWarmup", "WSD", "CosWithWarmupAndLinearDecay"]),
       t_max=st.integers(2, 80), warmup=st.integers(1, 30), fraction=st.floats(0.0, 1.0),
       alpha=st.floats(0.0, 0.9), split=st.integers(1, 79))
def test_random_arguments_match_olmo_core(name, t_max, warmup, fraction, alpha, split):
    kwargs = {"warmup": min(warmup, t_max)}
    if name in ("LinearWithWarmup", "CosWithWarmup", "HalfCosWithWarmup", "InvSqrtWithWarmup",
                "CosWithWarmupAndLinearDecay"):
        kwargs["alpha_f"] = alpha
    if name in ("WSD", "CosWithWarmupAndLinearDecay"):
        kwargs["decay_fraction"] = fraction
    for kw, n in ((kwargs, name), (seq((name, kwargs), ("CosWithWarmup", {"warmup": 0}), maxes=[split]),
                                   "SequentialScheduler")):
        if n == "SequentialScheduler" and split >= t_max:
            continue
        try:
            want = trainer_rates(n, kw, t_max)
        except (AssertionError, ZeroDivisionError):  # OLMo-core fails on one of the updates: compat refuses it
            with pytest.raises(ConfigError, match="OLMo-core asserts|divides by it"):
                olmo(n, kw, t_max)
            continue
        np.testing.assert_allclose(olmo(n, kw, t_max).at(np.arange(t_max)), want, rtol=1e-13, atol=1e-300)


def test_spec_round_trips():
    s = olmo(*CASES[-3][:2], 40)
    again = build_schedule(parse_config_text(format_config(s.to_spec(), "yaml"), "yaml"))
    assert again == s and np.array_equal(again.at(np.arange(40)), s.at(np.arange(40)))


def test_phases():
    s = olmo("WSD", {"warmup": 10}, 100)
    assert [(p.name, p.start, p.stop) for p in s.phases(100)] == [("warmup", 0, 10), ("stable", 10, 89),
                                                                  ("decay", 89, None)]
    s = olmo(*CASES[-3][:2], 40)
    assert [(p.name, p.start, p.stop) for p in s.phases(40)] == [
        ("warmup", 0, 5), ("constant", 5, 10), ("constant", 10, 19), ("decay", 19, 27), ("constant", 27, None)]


@pytest.mark.parametrize("name,kwargs,context,message", [
    ("CosWithWarmup", {"warmup": 5}, {}, "context.t_max: missing"),
    ("CosWithWarmup", {"warmup": 5}, {"t_max": 0}, "context.t_max: must be a whole number from 1"),
    ("CosWithWarmup", {"warmup": 5}, {"t_max": 10, "max_steps": 10}, "context.max_steps: unknown key"),
    ("CosWithWarmup", {}, {"t_max": 10}, "give exactly one of 'warmup' and 'warmup_fraction'"),
    ("CosWithWarmup", {"warmup": 5, "warmup_fraction": 0.1}, {"t_max": 10}, "give exactly one of 'warmup'"),
    ("CosWithWarmup", {"warmup_fraction": 1.5}, {"t_max": 10}, "kwargs.warmup_fraction: must be between 0 and 1"),
    ("WSD", {"warmup": 5, "decay": 10}, {"t_max": 50}, "set it to null"),
    ("WSD", {"warmup": 5, "decay_fraction": 0.01}, {"t_max": 50}, "kwargs.decay: a decay of 0 steps"),
    ("WSD", {"warmup": 5, "decay_min_lr": 1.0}, {"t_max": 50}, "kwargs.decay_min_lr: must be >= 0 and below"),
    ("CosWithWarmup", {"warmup": 5, "warmup_min_lr": BASE}, {"t_max": 50}, "kwargs.warmup_min_lr: must be >= 0"),
    ("CosWithWarmup", {"warmup": 5, "units": "tokens"}, {"t_max": 50}, "kwargs.units: tokens"),
    ("PowerLR", {"warmup": 5, "b": 0.5}, {"t_max": 50}, "kwargs.b: must be negative"),
    ("PowerLR", {"warmup": 0}, {"t_max": 50}, "kwargs.warmup: PowerLR divides"),
    ("PowerLR", {"warmup": 5, "decay": 60, "decay_fraction": None}, {"t_max": 50}, "kwargs.decay: PowerLR's decay"),
    ("ExponentialScheduler", {"lr_min": 0.0}, {"t_max": 50}, "kwargs.lr_min: must be positive"),
    ("SequentialScheduler", seq(("CosWithWarmup", {"warmup": 1}), ("ConstantScheduler", {}), maxes=[]),
     {"t_max": 50}, "kwargs.schedulers_max: must give the steps of every scheduler but the last"),
    ("SequentialScheduler", {"schedulers": [{"name": "ConstantScheduler"}]}, {"t_max": 50},
     "kwargs.schedulers_max: missing"),
    ("SequentialScheduler", seq(("CosWithWarmup", {}), ("ConstantScheduler", {}), maxes=[5]), {"t_max": 50},
     "kwargs.schedulers[0].kwargs.warmup_fraction: give exactly one"),
    ("SequentialScheduler", seq(("Cos", {}), ("ConstantScheduler", {}), maxes=[5]), {"t_max": 50},
     "kwargs.schedulers[0].name: unknown olmo-core schedule 'Cos'"),
    ("SequentialScheduler", seq(("ConstantScheduler", {}), ("ConstantScheduler", {}), maxes=[5],
                                override_decay={"start": 5, "duration": 0, "end_lr": 0.0}), {"t_max": 50},
     "kwargs.override_decay.duration: must be > 0"),
    ("SequentialScheduler", seq(("ConstantScheduler", {}), ("ConstantScheduler", {}), maxes=[5],
                                override_decay={"start": 5, "duration": 3}), {"t_max": 50},
     "kwargs.override_decay.end_lr: give exactly one"),
    ("WSDS", {}, {"t_max": 50}, "name: compat does not reproduce OLMo-core's WSDS"),
])
def test_what_olmo_core_refuses_is_refused_when_built(name, kwargs, context, message):
    with pytest.raises(ConfigError) as info:
        build_schedule({"type": "compat", "library": "olmo-core", "name": name, "base_lr": BASE, "kwargs": kwargs,
                        "context": context})
    assert message in info.value.one_line()


def test_the_optimizer_lr_is_required():
    with pytest.raises(ConfigError, match="base_lr: missing"):
        build_schedule({"type": "compat", "library": "olmo-core", "name": "ConstantScheduler", "kwargs": {},
                        "context": {"t_max": 5}})


def test_lint_on_the_first_rate():
    from lrtempo.analysis import lint_mapping

    spec = {"type": "compat", "library": "olmo-core", "name": "CosWithWarmup", "base_lr": BASE,
            "kwargs": {"warmup": 100}, "context": {"t_max": 1000}}
    assert not [f for f in lint_mapping(spec) if f.rule == "LR005"]  # update 0 runs at current 1: above 0
    spec = {"type": "compat", "library": "olmo-core", "name": "ConstantScheduler", "base_lr": 0.0, "kwargs": {},
            "context": {"t_max": 100}}
    (finding,) = [f for f in lint_mapping(spec) if f.rule == "LR005"]
    assert finding.field == "base_lr" and "update 0 runs at current 1" in finding.fix


@pytest.mark.parametrize("name,kwargs,message", [
    ("CosWithWarmup", {"warmup": 0}, "a warmup of at least 1 step"),
    ("WSD", {"warmup": 60, "decay_fraction": 0.5}, "starts after the warmup"),
    ("InvSqrtWithWarmup", {"warmup": 5}, "has no native form"),
])
def test_what_has_no_native_form_says_why(name, kwargs, message):
    from lrtempo.schedules.compat._convert import NotConvertible, to_native

    with pytest.raises(NotConvertible, match=message):
        to_native(olmo(name, kwargs, 100))


def test_every_class_is_covered():
    from lrtempo.schedules.compat import LIBRARIES

    assert set(LIBRARIES["olmo-core"]) == {c[0] for c in CASES} == set(CLASSES)
