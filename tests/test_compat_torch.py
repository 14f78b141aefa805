"""Compat against the real torch.optim.lr_scheduler, every class, to rtol 1e-12.

torch's recursion differs from its own closed forms by ~1e-14 relative; compat
reproduces the closed forms, so the comparison allows rtol 1e-12 and nothing
else (no absolute tolerance).
"""

from __future__ import annotations

import numpy as np
import pytest

from conftest import torch_loop_rates
from lrtempo.config import ConfigError, build_schedule

torch = pytest.importorskip("torch")
L = torch.optim.lr_scheduler

BASE = 0.1


def torch_rates(name, kwargs, n, base=BASE):
    """The lr of updates 0..n-1 in torch's documented loop."""

    def build(opt, name, kwargs):
        if name == "SequentialLR":
            children = [build(opt, c["name"], c["kwargs"]) for c in kwargs["schedulers"]]
            return L.SequentialLR(opt, children, milestones=kwargs["milestones"])
        if name == "ChainedScheduler":
            return L.ChainedScheduler([build(opt, c["name"], c["kwargs"]) for c in kwargs["schedulers"]])
        return getattr(L, name)(opt, **kwargs)

    return torch_loop_rates(lambda opt: build(opt, name, kwargs), n, base)


def compat(name, kwargs, base=BASE):
    spec = {"type": "compat", "library": "torch", "name": name, "kwargs": kwargs}
    if base is not None:
        spec["base_lr"] = base
    return build_schedule(spec)


def chain(*children):
    return {"schedulers": [{"name": n, "kwargs": kw} for n, kw in children]}


CASES = [
    ("StepLR", {"step_size": 7, "gamma": 0.5}, 100),
    ("StepLR", {"step_size": 1}, 30),
    ("MultiStepLR", {"milestones": [5, 5, 20], "gamma": 0.3}, 60),
    ("MultiStepLR", {"milestones": [30, 10]}, 60),
    ("ConstantLR", {"factor": 0.25, "total_iters": 6}, 40),
    ("ConstantLR", {}, 40),
    ("ConstantLR", {"factor": 0.5, "total_iters": 0}, 20),
    ("LinearLR", {"start_factor": 0.1, "end_factor": 0.9, "total_iters": 13}, 60),
    ("LinearLR", {"start_factor": 1.0, "end_factor": 0.0, "total_iters": 10}, 30),
    ("LinearLR", {"start_factor": 0.1, "total_iters": 0}, 20),
    ("ExponentialLR", {"gamma": 0.97}, 200),
    ("PolynomialLR", {"total_iters": 17, "power": 2.5}, 60),
    ("PolynomialLR", {}, 20),
    ("PolynomialLR", {"total_iters": 0}, 20),
    ("CosineAnnealingLR", {"T_max": 23, "eta_min": 0.001}, 120),
    ("CosineAnnealingLR", {"T_max": 10}, 95),
    ("CosineAnnealingLR", {"T_max": 1, "eta_min": 0.01}, 10),
    ("CosineAnnealingWarmRestarts", {"T_0": 5, "T_mult": 2, "eta_min": 0.01}, 200),
    ("CosineAnnealingWarmRestarts", {"T_0": 7}, 100),
    ("CosineAnnealingWarmRestarts", {"T_0": 1, "T_mult": 3}, 100),
    ("CyclicLR", {"base_lr": 0.01, "max_lr": 0.1, "step_size_up": 4, "step_size_down": 7,
                  "mode": "triangular2"}, 120),
    ("CyclicLR", {"base_lr": 0.01, "max_lr": 0.1, "step_size_up": 5}, 60),
    ("CyclicLR", {"base_lr": 0.01, "max_lr": 0.1, "step_size_up": 5, "mode": "exp_range", "gamma": 0.98}, 120),
    ("OneCycleLR", {"max_lr": 0.5, "total_steps": 50}, 51),
    ("OneCycleLR", {"max_lr": 0.5, "total_steps": 50, "three_phase": True, "anneal_strategy": "linear",
                    "pct_start": 0.25}, 51),
    ("OneCycleLR", {"max_lr": 0.5, "epochs": 3, "steps_per_epoch": 7, "pct_start": 0.01}, 22),
    ("OneCycleLR", {"max_lr": 1.0, "total_steps": 1}, 2),
    ("SequentialLR", {"milestones": [5], "schedulers": [
        {"name": "LinearLR", "kwargs": {"start_factor": 0.1, "total_iters": 5}},
        {"name": "CosineAnnealingLR", "kwargs": {"T_max": 20, "eta_min": 0.001}}]}, 120),
    ("SequentialLR", {"milestones": [3, 10], "schedulers": [
        {"name": "ConstantLR", "kwargs": {"factor": 0.5, "total_iters": 2}},
        {"name": "ExponentialLR", "kwargs": {"gamma": 0.9}},
        {"name": "CosineAnnealingWarmRestarts", "kwargs": {"T_0": 4}}]}, 60),
    ("SequentialLR", {"milestones": [4], "schedulers": [
        {"name": "StepLR", "kwargs": {"step_size": 2}},
        {"name": "PolynomialLR", "kwargs": {"total_iters": 8, "power": 2.0}}]}, 30),
    # ChainedScheduler: the product of each child's factor (torch multiplies the current lr by each ratio)
    ("ChainedScheduler", chain(("LinearLR", {"start_factor": 0.1, "total_iters": 5}),
                               ("ExponentialLR", {"gamma": 0.9})), 30),
    ("ChainedScheduler", chain(("ConstantLR", {"factor": 0.1, "total_iters": 20}),
                               ("ExponentialLR", {"gamma": 0.9})), 40),
    ("ChainedScheduler", chain(("StepLR", {"step_size": 3, "gamma": 0.5}), ("MultiStepLR", {"milestones": [4, 4, 9]}),
                               ("PolynomialLR", {"total_iters": 12, "power": 1.5}),
                               ("LinearLR", {"start_factor": 0.2, "end_factor": 0.6, "total_iters": 7})), 30),
    ("ChainedScheduler", chain(("LinearLR", {"start_factor": 0.5, "total_iters": 0}),
                               ("ConstantLR", {"factor": 0.5, "total_iters": 0}), ("PolynomialLR", {"total_iters": 0})),
     10),
    ("ChainedScheduler", chain(("ExponentialLR", {"gamma": 0.8}),), 20),
    # ... as the child of SequentialLR that runs from step 0 (its children then step outside torch's
    # initial mode: ExponentialLR and PolynomialLR apply one factor at step 0)
    ("SequentialLR", {"milestones": [6], "schedulers": [
        {"name": "ChainedScheduler", "kwargs": chain(("PolynomialLR", {"total_iters": 4, "power": 2.0}),
                                                     ("ExponentialLR", {"gamma": 0.9}))},
        {"name": "LinearLR", "kwargs": {"start_factor": 0.1, "total_iters": 4}}]}, 20),
    ("SequentialLR", {"milestones": [8], "schedulers": [
        {"name": "ChainedScheduler", "kwargs": chain(("LinearLR", {"start_factor": 0.1, "total_iters": 4}),
                                                     ("StepLR", {"step_size": 2, "gamma": 0.5}))},
        {"name": "CosineAnnealingLR", "kwargs": {"T_max": 5}}]}, 20),
    ("SequentialLR", {"milestones": [0], "schedulers": [
        {"name": "StepLR", "kwargs": {"step_size": 2}},
        {"name": "ChainedScheduler", "kwargs": chain(("ExponentialLR", {"gamma": 0.7}),
                                                     ("ConstantLR", {"factor": 0.5, "total_iters": 3}))}]}, 12),
]

TESTED_CLASSES = {name for name, _, _ in CASES}


def test_every_torch_class_is_covered():
    from lrtempo.schedules.compat import LIBRARIES

    assert set(LIBRARIES["torch"]) == TESTED_CLASSES


@pytest.mark.parametrize("name, kwargs, n", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_matches_torch(name, kwargs, n):
    expected = torch_rates(name, kwargs, n)
    s = compat(name, kwargs)
    steps = np.arange(n)
    got = s.at(steps)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=0)
    assert [s(k) for k in range(n)] == got.tolist()


@pytest.mark.parametrize("name, kwargs", [
    ("CyclicLR", {"base_lr": 0.01, "max_lr": 0.1, "step_size_up": 3, "mode": "triangular2"}),
    ("OneCycleLR", {"max_lr": 0.5, "total_steps": 20}),
])
@pytest.mark.parametrize("optimizer_lr", [None, 0.0, 0.1, 123.0])
def test_own_rate_classes_accept_and_ignore_the_optimizer_lr(name, kwargs, optimizer_lr):
    """torch overwrites the optimizer's lr with these classes' own rates: any optimizer lr gives the same curve."""
    expected = torch_rates(name, kwargs, 21, base=7.0 if optimizer_lr is None else optimizer_lr)
    np.testing.assert_allclose(compat(name, kwargs, base=optimizer_lr).at(np.arange(21)), expected, rtol=1e-12, atol=0)


def test_one_cycle_raises_past_total_steps_like_torch():
    s = compat("OneCycleLR", {"max_lr": 0.5, "total_steps": 10})
    assert s(10) > 0
    with pytest.raises(ValueError, match="past total_steps=10"):
        s(11)


@pytest.mark.parametrize("name, kwargs, message", [
    ("LinearLR", {"start_factor": 0.0}, "Starting multiplicative factor"),
    ("ConstantLR", {"factor": 1.5}, "between 0 and 1"),
    ("CosineAnnealingWarmRestarts", {"T_0": 0}, "Expected positive integer T_0"),
    ("CosineAnnealingWarmRestarts", {"T_0": 5, "T_mult": 0}, "Expected integer T_mult >= 1"),
    ("OneCycleLR", {"max_lr": 0.1}, "You must define either total_steps"),
    ("OneCycleLR", {"max_lr": 0.1, "total_steps": 10, "pct_start": 1}, "Expected float between 0 and 1"),
    ("OneCycleLR", {"max_lr": 0.1, "total_steps": 10, "anneal_strategy": "cosine"}, "anneal_strategy must be"),
    ("CyclicLR", {"base_lr": 0.1, "max_lr": 1.0, "mode": "tri"}, "mode is invalid"),
    ("SequentialLR", {"milestones": [1, 2], "schedulers": [{"name": "StepLR", "kwargs": {"step_size": 1}}]},
     "expects number of schedulers provided to be one more"),
    ("StepLR", {"step_size": 3, "gama": 0.5}, "did you mean 'gamma'"),
    ("CosineAnnealingLR", {}, "kwargs.T_max: missing"),
    ("ChainedScheduler", {"schedulers": []}, "expects at least one scheduler"),
    ("ChainedScheduler", chain(("LinearLR", {"start_factor": 0.0}),),
     r"schedulers\[0\]\.kwargs\.start_factor: Starting multiplicative factor"),
])
def test_rejects_what_torch_rejects(name, kwargs, message):
    with pytest.raises(ConfigError, match=message):
        compat(name, kwargs)
    if "did you mean" not in message and "missing" not in message:
        with pytest.raises((ValueError, TypeError)):
            torch_rates(name, kwargs, 3)


def test_unknown_class_and_library():
    with pytest.raises(ConfigError, match="did you mean 'StepLR'"):
        build_schedule({"type": "compat", "library": "torch", "name": "StepLr", "base_lr": 0.1, "kwargs": {}})
    with pytest.raises(ConfigError, match="did you mean 'torch'"):
        build_schedule({"type": "compat", "library": "troch", "name": "StepLR", "base_lr": 0.1})
    with pytest.raises(ConfigError, match="base_lr: missing"):
        build_schedule({"type": "compat", "library": "torch", "name": "StepLR", "kwargs": {"step_size": 1}})


@pytest.mark.parametrize("kwargs, message", [
    (chain(("CosineAnnealingLR", {"T_max": 5}),), r"kwargs\.schedulers\[0\]\.name: 'CosineAnnealingLR' in "
     "ChainedScheduler is not supported"),
    (chain(("ExponentialLR", {"gamma": 0.9}), ("CyclicLR", {"base_lr": 0.1, "max_lr": 1.0})),
     r"schedulers\[1\]\.name: 'CyclicLR'"),
])
def test_chained_refuses_children_that_are_not_a_product(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        compat("ChainedScheduler", kwargs)


def test_chained_scheduler_after_the_first_sequential_child_is_refused_as_torch_raises():
    kwargs = {"milestones": [4], "schedulers": [
        {"name": "LinearLR", "kwargs": {"start_factor": 0.1, "total_iters": 4}},
        {"name": "ChainedScheduler", "kwargs": chain(("ExponentialLR", {"gamma": 0.9}),)}]}
    with pytest.raises(ConfigError, match=r"schedulers\[1\]\.name: ChainedScheduler inside SequentialLR works"):
        compat("SequentialLR", kwargs)
    with pytest.raises(NotImplementedError):
        torch_rates("SequentialLR", kwargs, 6)


@pytest.mark.parametrize("name, message", [
    ("LambdaLR", "name: torch's LambdaLR takes a function"),
    ("MultiplicativeLR", "name: torch's MultiplicativeLR takes a function"),
    ("ReduceLROnPlateau", "name: torch's ReduceLROnPlateau follows a metric"),
])
def test_classes_compat_cannot_reproduce_say_why(name, message):
    with pytest.raises(ConfigError) as info:
        compat(name, {})
    assert message in info.value.one_line()


def test_every_scheduler_of_the_installed_torch_is_covered_or_refused():
    from lrtempo.schedules.compat import _torch

    classes = {n for n in dir(L) if isinstance(getattr(L, n), type) and issubclass(getattr(L, n), L.LRScheduler)
               and not n.startswith("_") and n != "LRScheduler"}
    assert classes == set(_torch.TORCH) | set(_torch.NOT_SUPPORTED)
