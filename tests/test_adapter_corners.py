"""The adapter in real-world corners: param groups of different rates (one schedule per group), a tensor ``lr``,
and a pickled or deep-copied scheduler."""

from __future__ import annotations

import copy
import io
import pickle
import random
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lrtempo import WSD, Constant, Linear, WarmupCosine, build_schedule
from lrtempo.config import spec_hash, spec_hashes
from lrtempo.schedules import InUnit, Plateau

torch = pytest.importorskip("torch")
from lrtempo.torch import (  # noqa: E402
    LRTempoScheduler,
    ParamGroupWarning,
    ScheduleChangedError,
    ScheduleOrderWarning,
)

COSINE = WarmupCosine(peak_lr=0.1, total_steps=3000, warmup_steps=100, min_lr=1e-3)
STABLE = WSD(peak_lr=0.01, total_steps=2500, decay_steps=500, warmup_steps=50)
FLAT = Constant(3e-4)
LIST = [COSINE, STABLE, FLAT]


def groups(n=3, lrs=None, multipliers=None):
    out = [{"params": [torch.nn.Parameter(torch.zeros(2))]} for _ in range(n)]
    for i, group in enumerate(out):
        if lrs is not None:
            group["lr"] = lrs[i]
        if multipliers is not None and multipliers[i] is not None:
            group["group_multiplier"] = multipliers[i]
    return out


def sgd(n=3, lr=1.0, **kw):
    return torch.optim.SGD(groups(n, **kw), lr=lr, momentum=0.9, weight_decay=0.1)


def lrs(opt):
    return [g["lr"] for g in opt.param_groups]


def expected(schedules, step, multipliers=(1.0, 1.0, 1.0)):
    return [s(step) * m for s, m in zip(schedules, multipliers)]


# -- param groups of different rates ----------------------------------------------------------------------------------
def _warnings_of(make):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        made = make()
    return made, [w for w in caught if issubclass(w.category, ParamGroupWarning)]


def test_groups_built_with_different_rates_warn_once_naming_the_fix():
    opt = torch.optim.AdamW(groups(2, lrs=[1e-3, 1e-4]), lr=1e-3)
    sched, found = _warnings_of(lambda: LRTempoScheduler(opt, COSINE))
    assert len(found) == 1 and issubclass(ParamGroupWarning, UserWarning)
    text = str(found[0].message)
    assert "param_groups[0] lr=0.001, param_groups[1] lr=0.0001" in text
    assert "'group_multiplier' (its rate over the schedule's: 0.1 for param_groups[1] if the schedule is " \
           "param_groups[0]'s)" in text
    assert "LRTempoScheduler(optimizer, [schedule_0, schedule_1, ...])" in text
    assert found[0].filename == __file__  # it points at the line that built the scheduler
    assert lrs(opt) == [COSINE(0), COSINE(0)]  # what the warning says happens
    for _ in range(3):  # once: stepping says nothing more
        _, more = _warnings_of(lambda: (opt.step(), sched.step()))
        assert more == []
    _, found = _warnings_of(lambda: LRTempoScheduler(sgd(3, lrs=[0.1, 0.1, 0.4]), COSINE))
    assert "4.0 for param_groups[2]" in str(found[0].message)  # the first group whose rate differs


@pytest.mark.parametrize("case", ["equal rates", "group_multiplier", "lr_scale", "a list", "one group",
                                  "tensor lrs, equal", "a float32 tensor of the same rate"])
def test_no_warning_where_the_rates_are_meant(case):
    make = {
        "equal rates": lambda: LRTempoScheduler(sgd(lrs=[0.1, 0.1, 0.1]), COSINE),
        "group_multiplier": lambda: LRTempoScheduler(sgd(lrs=[0.1, 0.01, 0.1], multipliers=[None, 0.1, None]), COSINE),
        "lr_scale": lambda: LRTempoScheduler(torch.optim.SGD(
            [{"params": groups(1)[0]["params"], "lr": 0.1},
             {"params": groups(1)[0]["params"], "lr": 0.01, "lr_scale": 0.1}], lr=1.0), COSINE),
        "a list": lambda: LRTempoScheduler(sgd(lrs=[0.1, 0.01, 0.001]), LIST),
        "one group": lambda: LRTempoScheduler(sgd(1, lr=0.5), COSINE),
        "tensor lrs, equal": lambda: LRTempoScheduler(sgd(2, lrs=[torch.tensor(0.1), torch.tensor(0.1)]), COSINE),
        "a float32 tensor of the same rate": lambda: LRTempoScheduler(sgd(2, lrs=[torch.tensor(0.1), 0.1]), COSINE),
    }[case]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # lr_scale's rename
        _, found = _warnings_of(make)
    assert found == []


def test_a_list_gives_each_group_its_schedule_bit_for_bit_across_blocks_and_past_the_end():
    multipliers = (1.0, 0.5, 2.0)
    opt = sgd(multipliers=list(multipliers))
    sched = LRTempoScheduler(opt, LIST)
    values = np.stack([s.at(np.arange(3200)) for s in LIST], axis=1) * np.array(multipliers)
    for k in range(3200):  # several precomputed blocks, the ends of both decays and past them
        assert sched.last_epoch == k
        assert lrs(opt) == values[k].tolist() == expected(LIST, k, multipliers)
        assert sched.get_last_lr() == sched.get_lr() == lrs(opt)
        assert sched.rate(k) == COSINE(k) and sched.rates(k) == [s(k) for s in LIST]
        opt.step()
        sched.step()
    for k in (0, 5, 1023, 1024, 2999, 3000, 10**6):  # apply() jumps anywhere, the counter stays
        assert sched.apply(k) == COSINE(k)
        assert lrs(opt) == expected(LIST, k, multipliers) and sched.last_epoch == 3200


def test_a_list_holding_a_schedule_with_a_last_step_stops_each_block_there():
    one_cycle = build_schedule({"type": "compat", "library": "torch", "name": "OneCycleLR",
                                "kwargs": {"max_lr": 0.5, "total_steps": 1500}})
    schedules = [COSINE, one_cycle]
    opt = sgd(2)
    sched = LRTempoScheduler(opt, schedules)
    for k in range(1501):  # every step up to OneCycleLR's total is exact
        assert lrs(opt) == [COSINE(k), one_cycle(k)]
        opt.step()
        if k < 1500:
            sched.step()
    assert sched._buf_start == 1024 and len(sched._buf) == 1500 - 1024 + 1  # the block ended at its last step
    with pytest.raises(ValueError, match="past total_steps=1500; torch raises"):  # as with OneCycleLR alone
        sched.step()


def test_a_list_of_one_for_one_group_is_the_single_schedule():
    one = LRTempoScheduler(sgd(1), [COSINE])
    assert one.group_schedules is None and one.schedule is COSINE
    assert one.state_dict() == LRTempoScheduler(sgd(1), COSINE).state_dict()


def test_a_bad_list_is_one_line_error():
    with pytest.raises(ValueError, match=r"^schedule: a list needs one schedule per param group: got 2 schedules "
                                         r"for 3 param groups$"):
        LRTempoScheduler(sgd(), LIST[:2])
    with pytest.raises(ValueError, match="got 0 schedules for 3"):
        LRTempoScheduler(sgd(), ())
    with pytest.raises(TypeError, match=r"^schedule\[1\] must be an lrtempo Schedule \(got function\)$"):
        LRTempoScheduler(sgd(), [COSINE, lambda k: 0.1, FLAT])
    with pytest.raises(TypeError, match="an lrtempo Schedule or a list of them, one per param group"):
        LRTempoScheduler(sgd(), {0: COSINE})
    with pytest.raises(ValueError, match=r"must count one unit, their position is one counter \(got steps, tokens\)"):
        LRTempoScheduler(sgd(2), [COSINE, InUnit(COSINE, "tokens")])
    with pytest.raises(ValueError, match=r"schedule\[1\] is a type: plateau schedule, which a list cannot hold"):
        LRTempoScheduler(sgd(2), [COSINE, Plateau(COSINE, patience=2)])
    opt = sgd(2)
    sched = LRTempoScheduler(opt, LIST[:2])
    opt.add_param_group(groups(1)[0])
    opt.step()
    with pytest.raises(ValueError, match="the optimizer has 3 param groups and the scheduler 2 schedules"):
        sched.step()
    with pytest.raises(TypeError, match="observe\\(\\) needs a schedule of type: plateau"):
        sched.observe(1.0)


def _run(opt, sched, updates):
    for _ in range(updates):
        opt.step()
        sched.step()


def test_a_list_state_resumes_exactly_and_each_groups_hash_is_checked():
    opt = sgd()
    sched = LRTempoScheduler(opt, LIST)
    _run(opt, sched, 1100)
    state = sched.state_dict()
    hashes = [spec_hash(s) for s in LIST]
    assert state == {"step": 1100, "spec_hash": sched.spec_hash, "group_spec_hashes": hashes}
    assert sched.spec_hash not in hashes and len(sched.spec_hash) == 64
    buffer = io.BytesIO()
    torch.save(state, buffer)  # what a checkpoint holds: plain data, loadable with weights_only
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=True)
    opt2 = sgd()
    sched2 = LRTempoScheduler(opt2, list(LIST))
    sched2.load_state_dict(loaded)
    assert lrs(opt2) == expected(LIST, 1100)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _run(opt2, sched2, 2000)
    assert lrs(opt2) == expected(LIST, 3100)

    other = [COSINE, FLAT, FLAT]
    with pytest.raises(ScheduleChangedError, match=r"for param_groups\[1\] but this scheduler runs "
                                                   f"{spec_hash(FLAT)[:12]} there; pass allow_schedule_change=True"):
        LRTempoScheduler(sgd(), other).load_state_dict(state)
    changed = LRTempoScheduler(sgd(), other, allow_schedule_change=True)
    changed.load_state_dict(state)
    assert changed.last_epoch == 1100 and lrs(changed.optimizer) == expected(other, 1100)


def test_one_schedule_and_a_list_of_it_read_each_others_state():
    single = LRTempoScheduler(sgd(), COSINE).state_dict() | {"step": 7}
    same = LRTempoScheduler(sgd(), [COSINE] * 3)
    same.load_state_dict(single)  # a one-schedule state ran that schedule in every group
    assert same.last_epoch == 7 and lrs(same.optimizer) == expected([COSINE] * 3, 7)
    LRTempoScheduler(sgd(), COSINE).load_state_dict(same.state_dict())
    with pytest.raises(ScheduleChangedError, match=r"param_groups\[1\]"):
        LRTempoScheduler(sgd(), LIST).load_state_dict(single)
    with pytest.raises(ScheduleChangedError, match=r"param_groups\[1\]"):
        LRTempoScheduler(sgd(), COSINE).load_state_dict(LRTempoScheduler(sgd(), LIST).state_dict())
    with pytest.raises(ScheduleChangedError, match="the schedules of 3 param groups but this scheduler runs 2"):
        LRTempoScheduler(sgd(2), LIST[:2]).load_state_dict(LRTempoScheduler(sgd(), LIST).state_dict())
    with pytest.raises(ValueError, match=r"state_dict\['group_spec_hashes'\] must be a list of spec hashes"):
        LRTempoScheduler(sgd(), LIST).load_state_dict({"step": 1, "group_spec_hashes": "abc"})
    LRTempoScheduler(sgd(), LIST).load_state_dict({"step": 1})  # a state without hashes: nothing to check


def test_a_list_accepts_every_hash_a_run_recorded_for_a_group():
    ramp = build_schedule({"type": "ramp", "start_lr": 1.0, "end_lr": 0.0, "steps": 4, "power": 2.0})
    written = next(iter(spec_hashes(ramp) - {spec_hash(ramp)}))  # its spec as written, idle parameters in
    sched = LRTempoScheduler(sgd(2), [COSINE, ramp])
    sched.load_state_dict({"step": 3, "group_spec_hashes": [spec_hash(COSINE), written]})
    assert lrs(sched.optimizer) == [COSINE(3), ramp(3)]


def test_a_list_with_momentum_and_weight_decay_schedules():
    momentum, decay = Linear(0.95, 0.85, 40), Linear(0.1, 0.01, 40)
    opt = sgd()
    sched = LRTempoScheduler(opt, LIST, momentum=momentum, weight_decay=decay)
    for k in range(50):
        assert lrs(opt) == expected(LIST, k)
        assert [g["momentum"] for g in opt.param_groups] == [momentum(k)] * 3
        assert [g["weight_decay"] for g in opt.param_groups] == [decay(k)] * 3
        opt.step()
        sched.step()
    state = sched.state_dict()
    assert {"momentum_spec_hash", "weight_decay_spec_hash", "group_spec_hashes"} <= set(state)
    other = LRTempoScheduler(sgd(), LIST, momentum=momentum, weight_decay=decay)
    other.load_state_dict(state)
    assert lrs(other.optimizer) == expected(LIST, 50)


def test_a_list_counted_in_tokens_advances_by_what_each_update_consumed():
    schedules = [InUnit(s, "tokens") for s in (WarmupCosine(0.1, 64_000, 6400), Linear(0.02, 0.0, 50_000), FLAT)]
    schedules[2] = InUnit(FLAT, "tokens")
    opt = sgd(multipliers=[1.0, 3.0, None])
    sched = LRTempoScheduler(opt, schedules)
    rng, position = random.Random(3), 0
    for _ in range(1500):  # repeated batches (blocks of positions) and changing ones (one position at a time)
        assert sched.position == position
        assert lrs(opt) == expected(schedules, position, (1.0, 3.0, 1.0))
        opt.step()
        consumed = rng.choice([64, 64, 64, 64, 63, 1, 640])
        sched.step(consumed=consumed)
        position += consumed
    assert sched.apply(position + 5) == schedules[0](position + 5)
    state = sched.state_dict()
    assert state["position"] == position
    other = LRTempoScheduler(sgd(multipliers=[1.0, 3.0, None]), schedules)
    other.load_state_dict(state)
    assert lrs(other.optimizer) == expected(schedules, position, (1.0, 3.0, 1.0))


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.floats(1e-5, 1.0), st.integers(0, 50), st.integers(1, 3000),
                          st.sampled_from([0.0, 0.25, 1.0, 3.0])), min_size=2, max_size=4),
       st.lists(st.integers(0, 2500), max_size=8))
def test_every_group_holds_its_schedule_times_its_multiplier(params, jumps):
    schedules = [WarmupCosine(peak_lr=p, total_steps=w + t, warmup_steps=w) for p, w, t, _ in params]
    multipliers = [m for *_, m in params]
    opt = torch.optim.SGD(groups(len(params), multipliers=multipliers), lr=1.0)
    sched = LRTempoScheduler(opt, schedules, warn_order=False)
    for k in range(1, 30):
        sched.step()
        assert lrs(opt) == [s(k) * m for s, m in zip(schedules, multipliers)]
    for k in jumps:
        sched.apply(k)
        assert lrs(opt) == [s(k) * m for s, m in zip(schedules, multipliers)]


# -- a tensor lr ----------------------------------------------------------------------------------------------------
def _as(dtype, value):
    return torch.tensor(value, dtype=torch.float64).to(dtype).item()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_a_tensor_lr_is_filled_in_place_in_its_dtype(dtype):
    lr = torch.tensor(1e-3, dtype=dtype)
    opt = torch.optim.Adam(groups(1), lr=lr)
    held = opt.param_groups[0]["lr"]
    sched = LRTempoScheduler(opt, COSINE)
    for k in range(1100):  # across a block refill
        current = opt.param_groups[0]["lr"]
        assert current is held and current.dtype == dtype and current.shape == ()
        assert current.item() == _as(dtype, COSINE(k))
        opt.step()
        sched.step()
    last = sched.get_last_lr()[0]
    assert torch.equal(last, held) and last is not held  # a copy, as torch's schedulers return
    assert sched.apply(7) == COSINE(7) and held.item() == _as(dtype, COSINE(7))
    sched.load_state_dict({"step": 11, "spec_hash": sched.spec_hash})
    assert opt.param_groups[0]["lr"] is held and held.item() == _as(dtype, COSINE(11))


def test_tensor_and_number_lrs_side_by_side_in_a_list_and_in_tokens():
    t = torch.tensor(0.1, dtype=torch.float64)
    opt = sgd(lrs=[t, 0.1, torch.tensor(0.1)], multipliers=[None, 0.5, None])
    sched = LRTempoScheduler(opt, LIST)
    for k in range(30):
        assert opt.param_groups[0]["lr"] is t and isinstance(opt.param_groups[1]["lr"], float)
        assert [float(v) for v in lrs(opt)] == [COSINE(k), STABLE(k) * 0.5, _as(torch.float32, FLAT(k))]
        opt.step()
        sched.step()
    counted = InUnit(COSINE, "tokens")
    u = torch.tensor(1.0, dtype=torch.float64)
    opt2 = torch.optim.SGD(groups(1), lr=u)
    sched2 = LRTempoScheduler(opt2, counted)
    for position in range(0, 3000, 100):
        assert opt2.param_groups[0]["lr"] is u and u.item() == counted(position)
        opt2.step()
        sched2.step(consumed=100)


def test_a_tensor_lr_loaded_with_the_optimizer_state_or_added_later_is_filled_too():
    opt = torch.optim.Adam(groups(2), lr=torch.tensor(0.5, dtype=torch.float64))
    sched = LRTempoScheduler(opt, COSINE)
    saved = copy.deepcopy(opt.state_dict())
    opt2 = torch.optim.Adam(groups(2), lr=0.5)  # number lrs: the scheduler takes its fast path
    sched2 = LRTempoScheduler(opt2, COSINE)
    _run(opt2, sched2, 3)
    opt2.load_state_dict(saved)  # torch puts the saved groups in, tensor lrs with them
    held = opt2.param_groups[0]["lr"]
    assert isinstance(held, torch.Tensor)
    _run(opt2, sched2, 2)
    assert opt2.param_groups[0]["lr"] is held and held.item() == COSINE(5)
    opt.add_param_group({"params": groups(1)[0]["params"], "lr": torch.tensor(0.5, dtype=torch.float64)})
    added = opt.param_groups[2]["lr"]
    _run(opt, sched, 4)
    assert opt.param_groups[2]["lr"] is added and added.item() == COSINE(4)


def test_groups_sharing_one_lr_tensor_at_different_rates_are_refused():
    shared = torch.tensor(0.1)  # torch gives the optimizer's lr= to every group that has none: one tensor
    message = r"param_groups\[0\] and param_groups\[1\] hold one lr tensor .* give each group its own lr tensor"
    with pytest.raises(ValueError, match=message):
        LRTempoScheduler(torch.optim.Adam(groups(2, multipliers=[None, 0.5]), lr=shared), COSINE)
    with pytest.raises(ValueError, match=message):
        LRTempoScheduler(torch.optim.Adam(groups(2), lr=shared), [COSINE, STABLE])
    assert shared.item() == pytest.approx(0.1)  # a refusal fills nothing
    opt = torch.optim.Adam(groups(2), lr=shared)
    sched = LRTempoScheduler(opt, [COSINE, COSINE])  # the same rates: one tensor serves both
    _run(opt, sched, 3)
    assert opt.param_groups[1]["lr"] is shared and shared.item() == _as(torch.float32, COSINE(3))
    opt.param_groups[1]["group_multiplier"] = 0.5  # set later: refused at the update that would need two rates
    opt.step()
    with pytest.raises(ValueError, match=r"get different rates \(0\.004 and 0\.002\): give each group its own"):
        sched.step()


def test_a_compiled_optimizer_step_does_not_recompile_across_updates_with_a_tensor_lr():
    dynamo = pytest.importorskip("torch._dynamo")
    from torch._dynamo.testing import CompileCounter

    dynamo.reset()
    model = torch.nn.Linear(4, 1)
    opt = torch.optim.Adam(model.parameters(), lr=torch.tensor(1e-3))
    sched = LRTempoScheduler(opt, COSINE)
    counter = CompileCounter()
    compiled_step = torch.compile(opt.step, backend=counter)
    held, seen = opt.param_groups[0]["lr"], []
    for k in range(6):
        model(torch.ones(2, 4)).sum().backward()
        try:
            compiled_step()
        except Exception as exc:  # noqa: BLE001 - a machine where torch.compile cannot run at all
            if k == 0:
                pytest.skip(f"torch.compile is unavailable here: {type(exc).__name__}: {exc}")
            raise
        opt.zero_grad()
        sched.step()
        seen.append((opt.param_groups[0]["lr"] is held, float(opt.param_groups[0]["lr"])))
    assert counter.frame_count == 1, f"the compiled step was compiled {counter.frame_count} times"
    assert seen == [(True, _as(torch.float32, COSINE(k))) for k in range(1, 7)]
    dynamo.reset()


# -- pickled and deep-copied schedulers -----------------------------------------------------------------------------
def _lockstep(pairs, updates):
    """Step every (optimizer, scheduler) pair ``updates`` times with order warnings as errors; the rates of each
    update, per pair."""
    seen = [[] for _ in pairs]
    with warnings.catch_warnings():
        warnings.simplefilter("error", ScheduleOrderWarning)
        for _ in range(updates):
            for (opt, sched), rates in zip(pairs, seen):
                rates.append([float(v) for v in lrs(opt)])
                opt.step()
                sched.step()
    return seen


@pytest.mark.parametrize("how", ["deepcopy", "pickle (optimizer, scheduler)", "pickle (scheduler, optimizer)",
                                 "pickle scheduler"])
@pytest.mark.parametrize("schedule", [COSINE, LIST], ids=["one schedule", "a list"])
def test_a_copied_scheduler_counts_its_optimizers_steps_again(how, schedule):
    opt = sgd(lrs=[torch.tensor(0.1), 0.1, 0.1])
    sched = LRTempoScheduler(opt, schedule, momentum=Linear(0.95, 0.85, 40))
    _run(opt, sched, 5)
    if how == "deepcopy":
        sched2 = copy.deepcopy(sched)
        opt2 = sched2.optimizer
    elif how == "pickle (optimizer, scheduler)":
        opt2, sched2 = pickle.loads(pickle.dumps((opt, sched)))
    elif how == "pickle (scheduler, optimizer)":
        sched2, opt2 = pickle.loads(pickle.dumps((sched, opt)))
    else:
        sched2 = pickle.loads(pickle.dumps(sched))
        opt2 = sched2.optimizer
    assert opt2 is sched2.optimizer and opt2 is not opt
    original, copied = _lockstep([(opt, sched), (opt2, sched2)], 1100)
    assert copied == original
    schedules = [schedule] * 3 if isinstance(schedule, WarmupCosine) else schedule
    assert copied[-1] == [_as(torch.float32, schedules[0](1104)), schedules[1](1104), schedules[2](1104)]
    assert sched2.last_epoch == sched.last_epoch == 1105
    with pytest.warns(ScheduleOrderWarning, match="more times than the optimizer stepped"):  # the check still works
        sched2.step()
        sched2.step()
    assert sched.state_dict() == sched2.state_dict() | {"step": 1105}
    sched2.close()  # the restored hooks are removable


def test_a_copied_schedulers_momentum_check_runs_on_its_own_optimizer():
    momentum = Linear(0.9, 1.5, 10)  # above SGD's bound of 1 from step 2 on: that update raises
    opt = sgd(1)
    sched = LRTempoScheduler(opt, COSINE, momentum=momentum)
    copied = copy.deepcopy(sched)
    unpickled = pickle.loads(pickle.dumps(sched))
    for s in (copied, unpickled):
        s.optimizer.step()
        s.step()
        s.optimizer.step()
        s.step()
        with pytest.raises(ValueError, match="momentum"):
            s.optimizer.step()


def test_the_state_dict_holds_neither_the_optimizer_nor_hooks():
    sched = LRTempoScheduler(sgd(), LIST, momentum=Linear(0.95, 0.85, 40), weight_decay=Linear(0.1, 0.0, 40))
    state = sched.state_dict()
    assert set(state) == {"step", "spec_hash", "group_spec_hashes", "momentum_spec_hash", "weight_decay_spec_hash"}
    assert all(isinstance(v, (int, str, list)) for v in state.values())
