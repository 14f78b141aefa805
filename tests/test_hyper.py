"""Momentum and weight-decay schedules through the adapter: exact values at every update, the weight-decay rule,
checkpoints, the refusals, and the momentum curves of torch's OneCycleLR and CyclicLR against torch itself."""

from __future__ import annotations

import warnings
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lrtempo.config import ConfigError, build_schedule, schedule_to_spec, spec_hash
from lrtempo.config import _hyper as hyper_rules
from lrtempo.schedules import Constant, Join, Linear, Piece, WarmupCosine
from lrtempo.schedules.compat import Compat, momentum_curve

torch = pytest.importorskip("torch")
L = torch.optim.lr_scheduler

from lrtempo.torch import WEIGHT_DECAY_MULTIPLIER, LRTempoScheduler, ScheduleChangedError  # noqa: E402
from lrtempo.train import build_optimizer  # noqa: E402

RATE = WarmupCosine(peak_lr=0.1, total_steps=40, warmup_steps=5, min_lr=0.0)
#: momentum 0.95 -> 0.85 -> 0.95 with joins at 10 and 30, held at 0.95 past 40
MOMENTUM = Join((Piece(Linear(0.95, 0.85, 10), 10), Piece(Constant(0.85), 20), Piece(Linear(0.85, 0.95, 10))))
#: weight decay 0.1 -> 0.01 over 30 steps, then held
DECAY = Linear(0.1, 0.01, 30)


def _model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.LayerNorm(4), torch.nn.Linear(4, 1))


def _optimizer(name, model=None, **kw):
    return build_optimizer(model or _model(), name=name, lr=0.0, weight_decay=0.05, **kw)


def _seen(optimizer):
    """Each update's (momentum, weight decay of every group), read when optimizer.step() runs."""
    out = []

    def hook(opt, *_):
        g = opt.param_groups
        out.append((g[0]["betas"][0] if "betas" in g[0] else g[0]["momentum"], [x["weight_decay"] for x in g]))

    optimizer.register_step_pre_hook(hook)
    return out


def _train(optimizer, scheduler, steps, model=None):
    for _ in range(steps):
        for group in optimizer.param_groups:
            for p in group["params"]:
                p.grad = torch.ones_like(p)
        optimizer.step()
        scheduler.step()


# -- exactness ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["sgd", "adamw"])
def test_every_update_holds_the_schedules_values_bit_for_bit(name):
    opt = _optimizer(name, momentum=0.9)
    seen = _seen(opt)
    sched = LRTempoScheduler(opt, RATE, momentum=MOMENTUM, weight_decay=DECAY)
    n = 1100  # step 0, the joins at 10 and 30 (± 1), the end at 40, far past it and across the first block (1024)
    _train(opt, sched, n)
    momentum = MOMENTUM.at(np.arange(n)).tolist()
    decay = DECAY.at(np.arange(n)).tolist()
    assert [m for m, _ in seen] == momentum
    assert [w for _, w in seen] == [[d, 0.0] for d in decay]  # the decayed group, then the undecayed one
    for k in (0, 9, 10, 11, 29, 30, 31, 40, 41, 1023, 1024, 1025):
        assert seen[k][0] == MOMENTUM(k) and seen[k][1][0] == DECAY(k)
    assert seen[0][0] == 0.95 and seen[10][0] == 0.85 and seen[40][0] == seen[1099][0] == 0.95
    assert seen[0][1][0] == 0.1 and seen[30][1][0] == seen[1099][1][0] == 0.01


def test_adams_beta2_is_kept_and_only_beta1_follows():
    opt = _optimizer("adamw", betas=(0.9, 0.95))
    sched = LRTempoScheduler(opt, RATE, momentum=MOMENTUM)
    _train(opt, sched, 12)
    assert opt.param_groups[0]["betas"] == (MOMENTUM(12), 0.95)
    assert [g["weight_decay"] for g in opt.param_groups] == [0.05, 0.0]  # no weight-decay schedule: untouched


def test_a_group_built_without_weight_decay_stays_at_zero_and_a_multiplier_scales():
    model = _model()
    params = list(model.parameters())
    opt = torch.optim.AdamW([{"params": params[:1], "weight_decay": 0.1},
                             {"params": params[1:3], "weight_decay": 0.0},
                             {"params": params[3:], "weight_decay": 0.1, WEIGHT_DECAY_MULTIPLIER: 0.5}], lr=0.0)
    seen = _seen(opt)
    sched = LRTempoScheduler(opt, RATE, weight_decay=DECAY)
    _train(opt, sched, 35)
    assert [w for _, w in seen] == [[DECAY(k), 0.0, DECAY(k) * 0.5] for k in range(35)]
    assert [g[WEIGHT_DECAY_MULTIPLIER] for g in opt.param_groups] == [1.0, 0.0, 0.5]


def test_a_group_added_later_takes_the_rule_from_its_own_decay():
    model = _model()
    params = list(model.parameters())
    opt = torch.optim.AdamW([{"params": params[:1], "weight_decay": 0.1}], lr=0.0)
    sched = LRTempoScheduler(opt, RATE, weight_decay=DECAY)
    opt.add_param_group({"params": params[1:3], "weight_decay": 0.0})
    opt.add_param_group({"params": params[3:], "weight_decay": 0.1})
    _train(opt, sched, 4)
    assert [g["weight_decay"] for g in opt.param_groups] == [DECAY(4), 0.0, DECAY(4)]


def test_sgd_built_without_momentum_schedules_it_as_torch_does():
    """torch's SGD makes its momentum buffer at the first update with a momentum above 0, so the momentum it was
    built with does not matter once a schedule sets it: the same parameters bit for bit."""
    ramp = Join((Piece(Constant(0.0), 3), Piece(Linear(0.5, 0.9, 10))))  # starts at 0: no buffer until step 3
    out = []
    for built in (0.0, 0.9):
        model = _model()
        opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=built)
        sched = LRTempoScheduler(opt, Constant(0.1), momentum=ramp)
        torch.manual_seed(1)
        for _ in range(15):
            loss = model(torch.randn(8, 3)).pow(2).mean()
            loss.backward()
            opt.step()
            opt.zero_grad()
            sched.step()
        out.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
    assert torch.equal(out[0], out[1])


# -- checkpoints -------------------------------------------------------------------------------------------------

def test_state_dict_has_the_hashes_only_when_given_and_old_states_load():
    opt = _optimizer("sgd", momentum=0.9)
    plain = LRTempoScheduler(opt, RATE)
    assert set(plain.state_dict()) == {"step", "spec_hash"}
    plain.load_state_dict({"step": 3, "spec_hash": spec_hash(RATE)})  # a checkpoint of before these schedules
    both = LRTempoScheduler(_optimizer("sgd", momentum=0.9), RATE, momentum=MOMENTUM, weight_decay=DECAY)
    state = both.state_dict()
    assert state["momentum_spec_hash"] == spec_hash(MOMENTUM) and state["weight_decay_spec_hash"] == spec_hash(DECAY)


def test_resume_from_a_checkpoint_continues_exactly():
    def run(stop):
        model = _model()
        opt = _optimizer("adamw", model)
        seen = _seen(opt)
        sched = LRTempoScheduler(opt, RATE, momentum=MOMENTUM, weight_decay=DECAY)
        _train(opt, sched, stop)
        if stop == 25:
            return seen
        saved = {"opt": opt.state_dict(), "sched": sched.state_dict()}
        opt2 = _optimizer("adamw", model)
        seen2 = _seen(opt2)
        sched2 = LRTempoScheduler(opt2, RATE, momentum=MOMENTUM, weight_decay=DECAY)
        opt2.load_state_dict(saved["opt"])
        sched2.load_state_dict(saved["sched"])
        assert opt2.param_groups[0]["betas"][0] == MOMENTUM(stop)  # re-applied at once
        _train(opt2, sched2, 25 - stop)
        return seen + seen2

    assert run(12) == run(25)


def test_loading_a_state_sets_this_schedules_values_at_once():
    """A checkpoint's optimizer state holds the values of the schedule it was trained under; loading the
    scheduler's state (here under another momentum spec, allowed) sets this one's at once."""
    opt = _optimizer("adamw")
    sched = LRTempoScheduler(opt, RATE, momentum=MOMENTUM, weight_decay=DECAY)
    _train(opt, sched, 7)
    other, decay = Linear(0.5, 0.7, 20), Linear(0.2, 0.0, 20)
    opt2 = _optimizer("adamw")
    sched2 = LRTempoScheduler(opt2, RATE, momentum=other, weight_decay=decay, allow_schedule_change=True)
    opt2.load_state_dict(opt.state_dict())
    assert opt2.param_groups[0]["betas"][0] == MOMENTUM(7)  # what the checkpoint held
    sched2.load_state_dict(sched.state_dict())
    assert opt2.param_groups[0]["betas"][0] == other(7) and opt2.param_groups[0]["weight_decay"] == decay(7)


@pytest.mark.parametrize("saved_with, loaded_with", [
    ({"momentum": MOMENTUM}, {"momentum": Linear(0.9, 0.8, 10)}),  # another spec
    ({"momentum": MOMENTUM}, {}),  # a run with a momentum schedule resumed without one
    ({}, {"weight_decay": DECAY}),  # one added on resume
])
def test_a_changed_momentum_or_weight_decay_schedule_is_refused_unless_allowed(saved_with, loaded_with):
    state = LRTempoScheduler(_optimizer("sgd", momentum=0.9), RATE, **saved_with).state_dict()
    other = LRTempoScheduler(_optimizer("sgd", momentum=0.9), RATE, **loaded_with)
    with pytest.raises(ScheduleChangedError, match="momentum|weight_decay"):
        other.load_state_dict(state)
    allowed = LRTempoScheduler(_optimizer("sgd", momentum=0.9), RATE, allow_schedule_change=True, **loaded_with)
    allowed.load_state_dict(state)
    assert allowed.last_epoch == 0


# -- refusals ----------------------------------------------------------------------------------------------------

def test_an_optimizer_without_momentum_or_weight_decay_is_refused_clearly():
    p = [torch.nn.Parameter(torch.zeros(2))]
    with pytest.raises(ValueError, match=r"param_groups\[0\] has neither 'momentum'.*Adagrad has no momentum"):
        LRTempoScheduler(torch.optim.Adagrad(p, lr=0.1), RATE, momentum=MOMENTUM)
    with pytest.raises(ValueError, match=r"param_groups\[0\] has no 'weight_decay': Rprop"):
        LRTempoScheduler(torch.optim.Rprop(p, lr=0.1), RATE, weight_decay=DECAY)
    with pytest.raises(TypeError, match="momentum must be an lrtempo Schedule"):
        LRTempoScheduler(torch.optim.SGD(p, lr=0.1), RATE, momentum=0.9)


@pytest.mark.parametrize("name, momentum, bad, message", [
    ("adamw", Linear(0.9, 1.0, 10), 10,
     r"gives 1\.0 at step 10, but Adam's beta1 \(betas\[0\]\) must be in \[0, 1\)"),
    ("sgd", Linear(0.9, 1.5, 10), 2, r"gives 1\.02 at step 2, but SGD's momentum must be in \[0, 1\]"),
])
def test_a_value_the_optimizer_cannot_take_never_reaches_a_group_and_the_update_that_would_use_it_raises(
        name, momentum, bad, message):
    """A bad value at a step no update runs (past a run's end) is no error; the update that would use it is."""
    opt = _optimizer(name, momentum=0.9)
    sched = LRTempoScheduler(opt, RATE, momentum=momentum)  # the first block holds the bad value: still built
    _train(opt, sched, bad)  # the updates before it run at their own values
    before = [g.get("betas", g.get("momentum")) for g in opt.param_groups]
    assert before[0] == (momentum(bad - 1) if name == "sgd" else (momentum(bad - 1), 0.999))
    with pytest.raises(ValueError, match=message):
        _train(opt, sched, 1)
    assert [g.get("betas", g.get("momentum")) for g in opt.param_groups] == before
    assert hyper_rules.hyper_problem("momentum", Linear(0.9, 1.0, 10), 10, "adamw") is None
    assert "at step 10" in hyper_rules.hyper_problem("momentum", Linear(0.9, 1.0, 10), 11, "adamw")


def test_the_bounds_are_checked_in_every_later_block():
    late = Join((Piece(Constant(0.9), 1500), Piece(Constant(1.0))))  # fine in the first block, not in the second
    opt = _optimizer("adamw")
    sched = LRTempoScheduler(opt, RATE, momentum=late)
    _train(opt, sched, 1500)
    with pytest.raises(ValueError, match="gives 1.0 at step 1500"):
        _train(opt, sched, 1)
    assert opt.param_groups[0]["betas"][0] == 0.9


def test_a_schedule_of_another_unit_or_a_plateau_is_refused():
    """Momentum and weight decay follow the update count; a schedule that counts samples or tokens, or that
    follows the run's losses, is refused (each is marked as such by its ``unit`` or its type name)."""

    class Tokens(Constant):
        __slots__ = ()
        unit = "tokens"

    opt = _optimizer("sgd", momentum=0.9)
    with pytest.raises(ValueError, match="a momentum schedule supports unit: steps only \\(got unit: tokens\\)"):
        LRTempoScheduler(opt, RATE, momentum=Tokens(0.9))
    with pytest.raises(ValueError, match="a weight_decay schedule supports unit: steps only"):
        LRTempoScheduler(opt, RATE, weight_decay=Tokens(0.1))
    assert "unit: steps only" in hyper_rules.hyper_problem("weight_decay", Tokens(0.1), 10, "sgd")
    plateau = SimpleNamespace(type_name="plateau")
    assert hyper_rules.kind_problem("momentum", plateau).startswith("a momentum schedule is a function of the step "
                                                                     "alone, and a plateau schedule follows")


# -- the train-time check over a run's steps ---------------------------------------------------------------------

ZERO_AND_BACK = Join((Piece(Constant(0.0), 3), Piece(Constant(0.9), 5), Piece(Constant(0.0), 3),
                      Piece(Constant(0.9))))


@pytest.mark.parametrize("chunk", [1, 2, 3, 4, 7, 1 << 16])
def test_sgd_momentum_back_to_zero_and_up_is_found_whatever_the_chunking(chunk, monkeypatch):
    real = hyper_rules.rate_chunks
    monkeypatch.setattr(hyper_rules, "rate_chunks", lambda s, r: real(s, r, chunk))
    problem = hyper_rules.hyper_problem("momentum", ZERO_AND_BACK, 20, "sgd")
    assert problem.startswith("the momentum schedule comes back to 0 at step 8 and rises again at step 11")
    assert hyper_rules.hyper_problem("momentum", ZERO_AND_BACK, 11, "sgd") is None  # the run ends before the rise
    assert hyper_rules.hyper_problem("momentum", ZERO_AND_BACK, 20, "adamw") is None  # Adam keeps no such buffer
    start_at_zero = Join((Piece(Constant(0.0), 5), Piece(Linear(0.5, 0.9, 10))))
    assert hyper_rules.hyper_problem("momentum", start_at_zero, 20, "sgd") is None


# -- torch's OneCycleLR and CyclicLR with cycle_momentum ---------------------------------------------------------

def _torch_momenta(optimizer_name, cls, kwargs, n):
    """The momentum of updates 0..n-1 under torch's own scheduler (read when optimizer.step() runs)."""
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=0.1, momentum=0.9) if optimizer_name == "sgd" else torch.optim.AdamW([p], lr=0.1)
    sched = getattr(L, cls)(opt, **kwargs)
    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for k in range(n):
            g = opt.param_groups[0]
            out.append(g["momentum"] if optimizer_name == "sgd" else g["betas"][0])
            if k < n - 1:
                opt.step()
                sched.step()
    return out


MOMENTUM_CASES = [
    ("OneCycleLR", {"max_lr": 0.1, "total_steps": 100}, 101),
    ("OneCycleLR", {"max_lr": 0.1, "total_steps": 100, "three_phase": True, "anneal_strategy": "linear"}, 101),
    ("OneCycleLR", {"max_lr": 0.1, "total_steps": 37, "pct_start": 0.25, "base_momentum": 0.8,
                    "max_momentum": 0.99}, 38),
    ("OneCycleLR", {"max_lr": 0.1, "epochs": 4, "steps_per_epoch": 25, "three_phase": True}, 101),
    ("CyclicLR", {"base_lr": 0.01, "max_lr": 0.1, "step_size_up": 7, "step_size_down": 3}, 60),
    ("CyclicLR", {"base_lr": 0.01, "max_lr": 0.1, "step_size_up": 5, "mode": "triangular2",
                  "base_momentum": 0.7, "max_momentum": 0.95}, 60),
    ("CyclicLR", {"base_lr": 0.01, "max_lr": 0.1, "step_size_up": 5, "mode": "exp_range", "gamma": 0.99}, 60),
]


@pytest.mark.parametrize("optimizer_name", ["sgd", "adamw"])
@pytest.mark.parametrize("cls, kwargs, n", MOMENTUM_CASES)
def test_compat_momentum_curve_equals_torchs_step_by_step(cls, kwargs, n, optimizer_name):
    curve = build_schedule({"type": "compat", "library": "torch", "name": cls, "kwargs": kwargs, "curve": "momentum"})
    assert curve.at(np.arange(n)).tolist() == _torch_momenta(optimizer_name, cls, kwargs, n)


@settings(max_examples=25, deadline=None)
@given(total=st.integers(4, 120), pct=st.floats(0.05, 0.95), three=st.booleans(),
       anneal=st.sampled_from(["cos", "linear"]), base=st.floats(0.5, 0.9), spread=st.floats(0.0, 0.09))
def test_one_cycle_momentum_equals_torch_over_random_arguments(total, pct, three, anneal, base, spread):
    kwargs = {"max_lr": 0.1, "total_steps": total, "pct_start": pct, "three_phase": three,
              "anneal_strategy": anneal, "base_momentum": base, "max_momentum": base + spread}
    try:
        curve = Compat("torch", "OneCycleLR", kwargs=kwargs, curve="momentum")
    except ValueError:  # a phase of zero length: torch divides by zero
        return
    assert curve.at(np.arange(total + 1)).tolist() == _torch_momenta("sgd", "OneCycleLR", kwargs, total + 1)


def test_onecycle_through_the_adapter_trains_like_torchs_onecycle():
    """SGD under torch's OneCycleLR and SGD under the adapter with the compat rate and momentum: the same
    momentum and rate at every update, and the same parameters."""
    kwargs = {"max_lr": 0.2, "total_steps": 30, "pct_start": 0.3}
    results = []
    for ours in (False, True):
        model = _model()
        opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=0.01)
        seen = []
        opt.register_step_pre_hook(lambda o, *_: seen.append((o.param_groups[0]["lr"], o.param_groups[0]["momentum"])))
        if ours:
            spec = {"type": "compat", "library": "torch", "name": "OneCycleLR", "kwargs": kwargs}
            sched = LRTempoScheduler(opt, build_schedule(spec), momentum=build_schedule({**spec, "curve": "momentum"}))
        else:
            sched = L.OneCycleLR(opt, **kwargs)
        torch.manual_seed(2)
        for _ in range(30):
            model(torch.randn(8, 3)).pow(2).mean().backward()
            opt.step()
            opt.zero_grad()
            sched.step()
        results.append((seen, torch.cat([p.detach().flatten() for p in model.parameters()])))
    (theirs, p_theirs), (mine, p_mine) = results
    assert [m for _, m in mine] == [m for _, m in theirs]
    np.testing.assert_allclose([r for r, _ in mine], [r for r, _ in theirs], rtol=1e-12, atol=0)
    torch.testing.assert_close(p_mine, p_theirs, rtol=1e-6, atol=0)


def test_the_momentum_curve_is_a_spec_of_its_own_and_the_rates_hash_holds():
    spec = {"type": "compat", "library": "torch", "name": "CyclicLR",
            "kwargs": {"base_lr": 0.01, "max_lr": 0.1, "step_size_up": 4}}
    rate = build_schedule(spec)
    assert "curve" not in schedule_to_spec(rate)  # the rate's spec, and so its hash, as before
    curve = momentum_curve(rate)
    assert schedule_to_spec(curve) == {**schedule_to_spec(rate), "curve": "momentum"}
    assert build_schedule(schedule_to_spec(curve)) == curve and spec_hash(curve) != spec_hash(rate)
    assert curve(0) == 0.9 and curve(4) == 0.8  # torch's defaults: max_momentum at a cycle's start, base at its peak
    assert momentum_curve(curve) is None and momentum_curve(RATE) is None


@pytest.mark.parametrize("spec, message", [
    ({"name": "StepLR", "base_lr": 0.1, "kwargs": {"step_size": 2}, "curve": "momentum"},
     "torch's StepLR sets no momentum \\(only torch's CyclicLR and OneCycleLR do"),
    ({"name": "OneCycleLR", "kwargs": {"max_lr": 0.1, "total_steps": 10, "cycle_momentum": False},
      "curve": "momentum"}, "torch's OneCycleLR sets no momentum with cycle_momentum: false"),
    ({"name": "OneCycleLR", "kwargs": {"max_lr": 0.1, "total_steps": 10}, "curve": "beta"},
     "curve: must be one of 'lr', 'momentum' \\(got 'beta'\\)"),
])
def test_a_momentum_curve_of_a_schedule_without_one_is_refused(spec, message):
    with pytest.raises(ConfigError, match=message):
        build_schedule({"type": "compat", "library": "torch", **spec})
