"""Megatron's OptimizerParamScheduler (its learning rate) against a transcription of Megatron's code.

The oracle below is Megatron-LM's ``OptimizerParamScheduler`` (``megatron/core/
optimizer_param_scheduler.py``) written out as plain Python: it keeps
``num_steps``, is built with ``step(0)``, and its training loop calls
``step(increment)`` after every update. It is written from Megatron's source, not
from the compat module.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lrtempo.config import ConfigError, build_schedule, format_config, parse_config_text


class MegatronOracle:
    """Megatron's scheduler, one step at a time (the rate part)."""

    def __init__(self, init_lr, max_lr, min_lr, lr_warmup_steps, lr_decay_steps, lr_decay_style,
                 wsd_decay_steps=None, lr_wsd_decay_style=None, **_weight_decay):
        self.init_lr, self.max_lr, self.min_lr = init_lr, float(max_lr), min_lr
        self.lr_warmup_steps, self.lr_decay_steps = lr_warmup_steps, lr_decay_steps
        self.lr_decay_style, self.wsd_decay_steps = lr_decay_style, wsd_decay_steps
        self.lr_wsd_decay_style = lr_wsd_decay_style
        self.num_steps = 0
        self.lr = None
        self.step(0)

    def get_lr(self):
        max_lr, min_lr = self.max_lr, self.min_lr
        if self.lr_warmup_steps > 0 and self.num_steps <= self.lr_warmup_steps:
            return self.init_lr + ((max_lr - self.init_lr) * float(self.num_steps) / float(self.lr_warmup_steps))
        if self.lr_decay_style == "constant":
            return max_lr
        if self.num_steps > self.lr_decay_steps:
            return min_lr
        if self.lr_decay_style == "inverse-square-root":
            warmup_steps = max(self.lr_warmup_steps, 1)
            num_steps = max(self.num_steps, 1)
            return max(min_lr, max_lr * warmup_steps ** 0.5 / (num_steps ** 0.5))
        decay_ratio = float(self.num_steps - self.lr_warmup_steps) / float(self.lr_decay_steps - self.lr_warmup_steps)
        assert 0.0 <= decay_ratio <= 1.0
        if self.lr_decay_style == "linear":
            coeff = 1.0 - decay_ratio
        elif self.lr_decay_style == "cosine":
            coeff = 0.5 * (math.cos(math.pi * decay_ratio) + 1.0)
        else:
            anneal_start = self.lr_decay_steps - self.wsd_decay_steps
            if self.num_steps <= anneal_start:
                coeff = 1.0
            else:
                r = float(self.num_steps - anneal_start) / float(self.wsd_decay_steps)
                coeff = {"linear": lambda: 1.0 - r, "cosine": lambda: 0.5 * (math.cos(math.pi * r) + 1.0),
                         "exponential": lambda: 2.0 * math.pow(0.5, r) - 1.0,
                         "minus_sqrt": lambda: 1.0 - math.sqrt(r)}[self.lr_wsd_decay_style]()
        return min_lr + coeff * (max_lr - min_lr)

    def step(self, increment):
        self.num_steps += increment
        self.lr = self.get_lr()


def oracle_rates(kwargs, n, increment=1):
    """The rate of updates 0..n-1 in Megatron's loop: built with step(0), step(increment) after each update."""
    sched = MegatronOracle(**kwargs)
    out = []
    for _ in range(n):
        out.append(sched.lr)
        sched.step(increment)
    return np.asarray(out)


def megatron(kwargs, context=None):
    spec = {"type": "compat", "library": "megatron", "name": "OptimizerParamScheduler", "kwargs": kwargs}
    if context is not None:
        spec["context"] = context
    return build_schedule(spec)


def base(style, **extra):
    return {"init_lr": 1e-5, "max_lr": 3e-4, "min_lr": 3e-5, "lr_warmup_steps": 10, "lr_decay_steps": 50,
            "lr_decay_style": style, **extra}


CASES = [
    (base("linear"), 1),
    (base("cosine"), 1),
    (base("constant"), 1),
    (base("inverse-square-root"), 1),
    (base("cosine", lr_warmup_steps=0), 1),
    (base("inverse-square-root", lr_warmup_steps=0), 1),
    (base("linear", init_lr=0.0, min_lr=0.0), 1),
    (base("cosine", lr_warmup_steps=2.5), 1),  # lr_warmup_fraction * lr_decay_steps is a float
    *[(base("WSD", wsd_decay_steps=15, lr_wsd_decay_style=s), 1) for s in
      ("exponential", "linear", "cosine", "minus_sqrt")],
    (base("WSD", wsd_decay_steps=45, lr_wsd_decay_style="linear"), 1),  # the anneal starts inside the warmup
    (base("WSD", wsd_decay_steps=0, lr_wsd_decay_style="cosine"), 1),  # no anneal: stable until the end
    # Megatron's trainer steps by the global batch: the kwargs count samples
    (base("cosine", lr_warmup_steps=40, lr_decay_steps=200), 8),
    (base("WSD", lr_warmup_steps=30, lr_decay_steps=200, wsd_decay_steps=64, lr_wsd_decay_style="minus_sqrt"), 8),
    (base("linear", lr_warmup_steps=30, lr_decay_steps=100), 7),  # boundaries between two updates
]


@pytest.mark.parametrize("kwargs,increment", CASES)
def test_every_update_from_0_past_the_end(kwargs, increment):
    n = kwargs["lr_decay_steps"] // increment + 20  # step 0, each boundary and its neighbours, the end and past it
    s = megatron(kwargs, {"increment": increment} if increment != 1 else None)
    want = oracle_rates(kwargs, n, increment)
    got = s.at(np.arange(n))
    np.testing.assert_allclose(got, want, rtol=1e-14, atol=0)
    assert [s(k) for k in range(n)] == got.tolist()


def test_values_at_the_boundaries_by_hand():
    s = megatron(base("linear", init_lr=0.0, min_lr=0.0, max_lr=1.0, lr_warmup_steps=4, lr_decay_steps=12))
    # warmup includes its last step (n <= w), the decay reaches min_lr at n == D, min_lr after
    assert [s(k) for k in (0, 1, 4, 5, 12, 13, 10**9)] == [0.0, 0.25, 1.0, 1 - 1 / 8, 0.0, 0.0, 0.0]
    # without a warmup, update 0 already decays
    s = megatron(base("cosine", lr_warmup_steps=0, max_lr=1.0, min_lr=0.0, lr_decay_steps=4))
    assert s(0) == 1.0 and s(2) == pytest.approx(0.5, rel=1e-15) and s(4) == 0.0


def test_increment_moves_the_boundaries_in_updates():
    s = megatron(base("linear", lr_warmup_steps=32, lr_decay_steps=128), {"increment": 16})
    assert s(2) == 3e-4 and s(3) < 3e-4 and s(8) == 3e-5 and s.horizon == 8
    assert [(p.name, p.start, p.stop) for p in s.phases(20)] == [("warmup", 0, 3), ("decay", 3, 9),
                                                                 ("constant", 9, None)]


def test_wsd_phases():
    s = megatron(base("WSD", wsd_decay_steps=15, lr_wsd_decay_style="cosine"))
    assert [(p.name, p.start, p.stop) for p in s.phases(60)] == [
        ("warmup", 0, 11), ("stable", 11, 36), ("decay", 36, 51), ("constant", 51, None)]


@settings(max_examples=60, deadline=None)
@given(style=st.sampled_from(["linear", "cosine", "constant", "inverse-square-root", "WSD"]),
       wsd_style=st.sampled_from(["exponential", "linear", "cosine", "minus_sqrt"]),
       warmup=st.integers(0, 40), decay_extra=st.integers(1, 60), wsd=st.integers(0, 80),
       increment=st.integers(1, 9), rates=st.tuples(*[st.floats(0, 1)] * 3))
def test_random_arguments_match_megatron(style, wsd_style, warmup, decay_extra, wsd, increment, rates):
    floor, init, peak = sorted(rates)
    kwargs = base(style, init_lr=init, max_lr=peak, min_lr=floor, lr_warmup_steps=warmup,
                  lr_decay_steps=warmup + decay_extra, wsd_decay_steps=wsd, lr_wsd_decay_style=wsd_style)
    n = (warmup + decay_extra) // increment + 5
    got = megatron(kwargs, {"increment": increment}).at(np.arange(n))
    np.testing.assert_allclose(got, oracle_rates(kwargs, n, increment), rtol=1e-13, atol=1e-300)


def test_spec_round_trips():
    s = megatron(base("WSD", wsd_decay_steps=15, lr_wsd_decay_style="linear"), {"increment": 4})
    again = build_schedule(parse_config_text(format_config(s.to_spec(), "toml"), "toml"))
    assert again == s and np.array_equal(again.at(np.arange(30)), s.at(np.arange(30)))


@pytest.mark.parametrize("kwargs,context,message", [
    (base("linear", min_lr=-1e-5), None, "kwargs.min_lr: must be >= 0"),
    (base("linear", max_lr=1e-5), None, "kwargs.max_lr: must be >= min_lr"),
    (base("linear", init_lr=1e-3), None, "kwargs.init_lr: must be <= max_lr"),
    (base("linear", lr_decay_steps=0, lr_warmup_steps=0), None, "kwargs.lr_decay_steps: must be > 0"),
    (base("linear", lr_warmup_steps=50), None, "kwargs.lr_warmup_steps: must be < lr_decay_steps"),
    (base("WSD"), None, "kwargs.wsd_decay_steps: missing: lr_decay_style WSD requires it"),
    (base("WSD", wsd_decay_steps=5), None, "kwargs.lr_wsd_decay_style: must be one of 'exponential'"),
    (base("WSD", wsd_decay_steps=5, lr_wsd_decay_style="sqrt"), None, "got 'sqrt'"),
    (base("polynomial"), None, "kwargs.lr_decay_style: must be one of 'constant', 'linear'"),
    (base("linear", lr_warmup_iters=3), None, "kwargs.lr_warmup_iters: OptimizerParamScheduler has no keyword"),
    ({k: v for k, v in base("linear").items() if k != "max_lr"}, None, "kwargs.max_lr: missing"),
    (base("linear", start_wd=0.1, end_wd=0.01), None, "kwargs.end_wd: must be >= start_wd"),
    (base("linear", start_wd=0.1, end_wd=0.2, wd_incr_style="constant"), None, "needs start_wd == end_wd"),
    (base("linear", wd_incr_style="linear", wd_incr_steps=0), None, "kwargs.wd_incr_steps: must not be 0"),
    (base("linear", override_opt_param_scheduler=True), None, "both override and use-checkpoint are set"),
    (base("linear"), {"increment": 0}, "context.increment: must be a whole number from 1"),
    (base("linear"), {"global_batch_size": 8}, "context.global_batch_size: unknown key"),
    (base("linear", optimizer="adam"), None, "kwargs.optimizer: leave it out"),
])
def test_what_megatron_asserts_is_refused_when_built(kwargs, context, message):
    with pytest.raises(ConfigError) as info:
        megatron(kwargs, context)
    assert message in info.value.one_line()


def test_megatron_carries_its_own_rates():
    with pytest.raises(ConfigError, match="base_lr: megatron schedules carry their own values"):
        build_schedule({"type": "compat", "library": "megatron", "name": "OptimizerParamScheduler",
                        "base_lr": 0.1, "kwargs": base("linear")})
    with pytest.raises(ConfigError, match="name: unknown megatron schedule 'Foo'.*OptimizerParamScheduler"):
        build_schedule({"type": "compat", "library": "megatron", "name": "Foo", "kwargs": {}})


def test_weight_decay_arguments_are_accepted():
    s = megatron(base("cosine", start_wd=0.01, end_wd=0.1, wd_incr_steps=50, wd_incr_style="cosine",
                      use_checkpoint_opt_param_scheduler=False, override_opt_param_scheduler=True))
    assert s(0) == 1e-5


def test_lint_names_init_lr_for_a_first_rate_of_zero():
    from lrtempo.analysis import lint_mapping

    spec = {"type": "compat", "library": "megatron", "name": "OptimizerParamScheduler",
            "kwargs": base("cosine", init_lr=0.0)}
    (finding,) = [f for f in lint_mapping(spec) if f.rule == "LR005"]
    assert finding.field == "kwargs.init_lr" and "set init_lr above 0" in finding.fix
    assert not any("no warmup" in f.message for f in lint_mapping(spec))


@pytest.mark.parametrize("kwargs,context,message", [
    (base("WSD", wsd_decay_steps=15, lr_wsd_decay_style="exponential"), None, "minus_sqrt anneal"),
    (base("inverse-square-root"), None, "converts with lr_decay_style cosine"),
    (base("cosine", lr_warmup_steps=12), {"increment": 8}, "a multiple of context.increment"),
    (base("cosine", lr_warmup_steps=2.5), None, "a whole number of updates"),
])
def test_what_has_no_native_form_says_why(kwargs, context, message):
    from lrtempo.schedules.compat._convert import NotConvertible, to_native

    with pytest.raises(NotConvertible, match=message):
        to_native(megatron(kwargs, context))
