"""One name per thing: the adapter's public ``apply``, ``group_multiplier``, ``grad_clip``, ``trap_status``; each
former name still works, with one DeprecationWarning."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from lrtempo import WarmupCosine

torch = pytest.importorskip("torch")
from lrtempo.torch import LRTempoScheduler, lambda_lr  # noqa: E402
from lrtempo.train import TrainState, build_optimizer  # noqa: E402
from lrtempo.train.tasks import TASKS  # noqa: E402

SCHEDULE = WarmupCosine(peak_lr=0.1, total_steps=3000, warmup_steps=100, min_lr=1e-3)


def _opt(**last_group):
    groups = [{"params": [torch.nn.Parameter(torch.zeros(2))]} for _ in range(2)]
    groups[-1].update(last_group)
    return torch.optim.SGD(groups, lr=1.0)


def _no_warning():
    return warnings.catch_warnings(record=True)


# --- the adapter -------------------------------------------------------------------------------------------------

def test_apply_sets_the_rate_of_any_step_and_leaves_the_counter():
    opt = _opt(group_multiplier=0.25)
    sched = LRTempoScheduler(opt, SCHEDULE)
    for step in (0, 1, 99, 100, 101, 1023, 1024, 2999, 3000, 5000, 7):  # across blocks, the end and back
        assert sched.apply(step) == SCHEDULE(step)
        assert [g["lr"] for g in opt.param_groups] == [SCHEDULE(step), SCHEDULE(step) * 0.25]
        assert sched.last_epoch == 0
    assert sched._apply == sched.apply  # the former private name


def test_group_multiplier_scales_each_group_silently():
    opt = _opt(group_multiplier=0.5)
    with _no_warning() as found:
        warnings.simplefilter("always")
        sched = LRTempoScheduler(opt, SCHEDULE)
    assert found == []
    expected = SCHEDULE.at(np.arange(300))
    for k in range(300):
        assert sched.get_last_lr() == [expected[k], expected[k] * 0.5] == sched.get_lr()
        opt.step()
        sched.step()
    view = lambda_lr(_opt(group_multiplier=0.5), SCHEDULE)
    assert view.lr_lambdas[1](200) == pytest.approx(SCHEDULE(200) * 0.5, rel=1e-15)


def test_lr_scale_is_read_with_one_deprecation_warning_and_renamed():
    opt = _opt(lr_scale=0.25)
    with pytest.warns(DeprecationWarning, match="'lr_scale' is renamed 'group_multiplier'") as found:
        sched = LRTempoScheduler(opt, SCHEDULE)
    assert len(found) == 1
    assert opt.param_groups[1].get("group_multiplier") == 0.25 and "lr_scale" not in opt.param_groups[1]
    sched.apply(50)
    assert opt.param_groups[1]["lr"] == SCHEDULE(50) * 0.25


def test_an_optimizer_state_saved_with_lr_scale_is_renamed_when_loaded():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        old = _opt(lr_scale=0.25)
        LRTempoScheduler(old, SCHEDULE)
    saved = old.state_dict()
    saved["param_groups"][1]["lr_scale"] = saved["param_groups"][1].pop("group_multiplier")  # as before the rename
    opt = _opt()
    sched = LRTempoScheduler(opt, SCHEDULE)
    with pytest.warns(DeprecationWarning, match="lr_scale"):
        opt.load_state_dict(saved)
    sched.load_state_dict({"step": 10})
    assert opt.param_groups[1]["lr"] == SCHEDULE(10) * 0.25


@pytest.mark.parametrize("group, message", [
    ({"group_multiplier": -1.0}, r"param_groups\[1\]\['group_multiplier'\] must be a finite number >= 0 \(got -1.0\)"),
    ({"group_multiplier": True}, r"\['group_multiplier'\] must be a finite number >= 0 \(got True\)"),
    ({"lr_scale": float("inf")}, r"\['lr_scale'\] must be a finite number >= 0 \(got inf\)"),
    ({"lr_scale": 0.5, "group_multiplier": 0.5}, "both 'group_multiplier' and its former name 'lr_scale'"),
])
def test_a_bad_multiplier_is_refused_naming_the_key_given(group, message):
    with pytest.raises(ValueError, match=message):
        LRTempoScheduler(_opt(**group), SCHEDULE)


# --- TrainState ----------------------------------------------------------------------------------------------------

def _state(**kw):
    task = TASKS["linear"]({}, seed=0)
    return TrainState(task.model, SCHEDULE, optimizer=build_optimizer(task.model, lr=0.0), **kw), task


def _norms(state, task, n=3):
    out = []
    for _ in range(n):
        state.update(task.micro_batches(1), task.loss)
        out.append([p.detach().clone() for p in state.model.parameters()])
    return out


def test_grad_clip_is_trainstates_keyword_and_clip_grad_norm_its_former_name():
    new, task_a = _state(grad_clip=0.5)
    with pytest.warns(DeprecationWarning, match="clip_grad_norm=...\\) is renamed grad_clip"):
        old, task_b = _state(clip_grad_norm=0.5)
    assert new.grad_clip == old.grad_clip == 0.5
    with pytest.warns(DeprecationWarning, match="renamed grad_clip"):
        assert old.clip_grad_norm == 0.5
    for a, b in zip(_norms(new, task_a), _norms(old, task_b)):
        assert all(torch.equal(x, y) for x, y in zip(a, b))
    with pytest.raises(TypeError, match="not also its former name"), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        _state(grad_clip=0.5, clip_grad_norm=0.5)
    with pytest.raises(ValueError, match=r"grad_clip must be > 0 \(got 0\)"):
        _state(grad_clip=0)


def test_trainstate_sets_each_rate_through_the_public_apply(monkeypatch):
    state, task = _state()
    seen = []
    apply = LRTempoScheduler.apply
    monkeypatch.setattr(LRTempoScheduler, "apply", lambda self, step: seen.append(step) or apply(self, step))
    monkeypatch.delattr(LRTempoScheduler, "_apply")
    results = [state.update(task.micro_batches(1), task.loss) for _ in range(3)]
    assert seen == [0, 1, 2] and [r.lr for r in results] == [SCHEDULE(0), SCHEDULE(1), SCHEDULE(2)]


# --- the range test follows the adapter's rule -------------------------------------------------------------------

@pytest.mark.parametrize("key", ["group_multiplier", "lr_scale"])
def test_the_range_test_scales_each_group_by_its_multiplier(key):
    from lrtempo.analysis._range_test import lr_range_test

    model = torch.nn.Linear(2, 1)
    opt = torch.optim.SGD([{"params": [model.weight]}, {"params": [model.bias], key: 0.5}], lr=1.0)
    seen = []
    opt.register_step_pre_hook(lambda o, *a: seen.append([g["lr"] for g in o.param_groups]))
    data = iter([torch.ones(4, 2)] * 10)
    lr_range_test(model, opt, lambda m, x: (m(x) ** 2).mean(), data, start_lr=1e-3, end_lr=1e-1, updates=5)
    assert [b for _, b in seen] == [a * 0.5 for a, _ in seen] and len(seen) == 5


# --- Analysis.trap_status: the log column's and the JSON key's name ------------------------------------------------

def test_analysis_names_its_trap_runs_trap_status_as_the_json_and_the_log_do(tmp_path):
    from lrtempo.analysis import analyze_log

    log = tmp_path / "log.csv"
    log.write_text("step,lr,grad_l2_norm,loss\n" + "".join(f"{k},0.1,1.0,{2 - k / 1000}\n" for k in range(300)))
    a = analyze_log(log, trap_window=50)
    assert a.trap_status and a.to_json()["trap_status"] == a.trap_status
    assert {"status", "first_step", "last_step"} == set(a.trap_status[0])
    with pytest.warns(DeprecationWarning, match="renamed trap_status"):
        assert a.trap_timeline == a.trap_status
