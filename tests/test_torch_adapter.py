"""The torch adapter: rates per group, state, resume, and the order detection."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from lrtempo import WSD, WarmupCosine

torch = pytest.importorskip("torch")
from lrtempo.torch import LRTempoScheduler, ScheduleChangedError, ScheduleOrderWarning, lambda_lr  # noqa: E402

SCHEDULE = WarmupCosine(peak_lr=0.1, total_steps=3000, warmup_steps=100, min_lr=1e-3)


def make_opt(groups=2):
    params = [{"params": [torch.nn.Parameter(torch.zeros(2))]} for _ in range(groups)]
    params[-1]["lr_scale"] = 0.25
    return torch.optim.AdamW(params, lr=1.0)


def test_is_an_lr_scheduler_and_applies_every_step_exactly():
    opt = make_opt()
    sched = LRTempoScheduler(opt, SCHEDULE)
    assert isinstance(sched, torch.optim.lr_scheduler.LRScheduler)
    expected = SCHEDULE.at(np.arange(3100))
    for k in range(3100):  # crosses several precomputed blocks and the schedule's end
        assert sched.last_epoch == k
        assert opt.param_groups[0]["lr"] == expected[k]
        assert opt.param_groups[1]["lr"] == expected[k] * 0.25
        assert sched.get_last_lr() == [expected[k], expected[k] * 0.25]
        opt.step()
        sched.step()


def test_state_dict_resume_reapplies_rates_at_once():
    opt = make_opt()
    sched = LRTempoScheduler(opt, SCHEDULE)
    for _ in range(137):
        opt.step()
        sched.step()
    state = sched.state_dict()
    assert state["step"] == 137 and len(state["spec_hash"]) == 64
    opt2 = make_opt()
    sched2 = LRTempoScheduler(opt2, SCHEDULE)
    sched2.load_state_dict(state)
    assert sched2.last_epoch == 137 and opt2.param_groups[0]["lr"] == SCHEDULE(137)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        opt2.step()
        sched2.step()
    assert opt2.param_groups[0]["lr"] == SCHEDULE(138)


def test_changed_schedule_on_resume_is_refused_unless_allowed():
    state = LRTempoScheduler(make_opt(), SCHEDULE).state_dict()
    other = WSD(peak_lr=0.1, total_steps=3000, decay_steps=300)
    with pytest.raises(ScheduleChangedError, match="allow_schedule_change"):
        LRTempoScheduler(make_opt(), other).load_state_dict(state)
    sched = LRTempoScheduler(make_opt(), other, allow_schedule_change=True)
    sched.load_state_dict({**state, "step": 5})
    assert sched.last_epoch == 5


def test_bad_state_and_arguments():
    sched = LRTempoScheduler(make_opt(), SCHEDULE)
    with pytest.raises(ValueError, match="step"):
        sched.load_state_dict({"step": -1})
    with pytest.raises(TypeError, match="takes no epoch"):
        sched.step(5)
    with pytest.raises(TypeError, match="lrtempo Schedule"):
        LRTempoScheduler(make_opt(), lambda k: 0.1)
    opt = make_opt()
    opt.param_groups[0]["lr_scale"] = float("nan")
    with pytest.raises(ValueError, match="lr_scale"):
        LRTempoScheduler(opt, SCHEDULE)


def _run(loop: str, updates: int = 6, accumulation: int = 3):
    opt = make_opt(1)
    sched = LRTempoScheduler(opt, SCHEDULE)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(updates):
            if loop == "right":
                opt.step()
                sched.step()
            elif loop == "scheduler_first":
                sched.step()
                opt.step()
            elif loop == "per_micro_batch":
                for _ in range(accumulation):
                    sched.step()
                opt.step()
            elif loop == "skipped_updates":
                pass  # an AMP overflow: neither steps
    return [w for w in caught if issubclass(w.category, ScheduleOrderWarning)]


def test_order_detection_silent_on_the_right_loop():
    assert _run("right") == [] and _run("skipped_updates") == []


def test_order_detection_fires_once_on_scheduler_first():
    found = _run("scheduler_first")
    assert len(found) == 1 and "before optimizer.step()" in str(found[0].message)


def test_order_detection_fires_once_per_micro_batch_stepping():
    # at the first advance the optimizer has not stepped yet: either cause fits, and the warning names both; the
    # next advance without an update tells them apart, and a second warning names the micro-batch stepping
    found = _run("per_micro_batch")
    assert len(found) == 2
    first, second = (str(w.message) for w in found)
    assert first.startswith("scheduler.step() was called before optimizer.step()") and "once per micro-batch" in first
    assert second.startswith("the scheduler has advanced 2 more times") and "accelerator.sync_gradients" in second
    # after one correct update, stepping per micro-batch is the accumulation bug
    opt = make_opt(1)
    sched = LRTempoScheduler(opt, SCHEDULE)
    opt.step()
    sched.step()
    with pytest.warns(ScheduleOrderWarning, match="once per optimizer update"):
        for _ in range(3):
            sched.step()
        opt.step()


def test_lambda_lr_view():
    opt = make_opt()
    view = lambda_lr(opt, SCHEDULE)
    assert isinstance(view, torch.optim.lr_scheduler.LambdaLR)
    for k in range(300):
        assert opt.param_groups[0]["lr"] == pytest.approx(SCHEDULE(k), rel=4e-16, abs=0)
        assert opt.param_groups[1]["lr"] == pytest.approx(SCHEDULE(k) * 0.25, rel=4e-16, abs=0)
        opt.step()
        view.step()
