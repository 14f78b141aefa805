"""Time units through torch: LRTempoScheduler.step(consumed=N) and TrainState.update(consumed=N)."""

from __future__ import annotations

import random

import pytest

torch = pytest.importorskip("torch")

from lrtempo.config import build_schedule  # noqa: E402
from lrtempo.schedules import InUnit, WarmupCosine  # noqa: E402
from lrtempo.torch import LRTempoScheduler, ScheduleChangedError, lambda_lr  # noqa: E402
from lrtempo.train import TrainState, build_optimizer  # noqa: E402
from lrtempo.train.tasks import LinearTask  # noqa: E402

STEPS = WarmupCosine(peak_lr=0.05, total_steps=30, warmup_steps=5, min_lr=1e-3)


def _counted(batch: int, unit: str = "tokens"):
    return InUnit(WarmupCosine(peak_lr=0.05, total_steps=30 * batch, warmup_steps=5 * batch, min_lr=1e-3), unit)


def _opt(groups: int = 1):
    return torch.optim.SGD([{"params": [torch.nn.Parameter(torch.zeros(1))], "group_multiplier": 1.0 + g}
                            for g in range(groups)], lr=1.0)


def test_step_consumed_sets_the_rate_at_the_units_consumed_before_the_update():
    schedule = _counted(64)
    opt = _opt(2)
    sched = LRTempoScheduler(opt, schedule)
    rng = random.Random(5)
    position, seen = 0, []
    for _ in range(200):
        assert sched.position == position
        assert [g["lr"] for g in opt.param_groups] == [schedule(position) * m for m in (1.0, 2.0)]
        seen.append(sched.get_last_lr()[0])
        opt.step()
        consumed = rng.choice([64, 64, 64, 64, 63, 1, 640])  # repeats (blocks) and changes (one value at a time)
        sched.step(consumed=consumed)
        position += consumed
    assert sched.last_epoch == 200
    assert sched.get_lr() == [schedule(position), 2 * schedule(position)]


def test_with_a_constant_batch_the_adapter_applies_the_steps_rates_bit_for_bit():
    for unit in ("samples", "tokens"):
        a, b = _opt(), _opt()
        steps, counted = LRTempoScheduler(a, STEPS), LRTempoScheduler(b, _counted(4096, unit))
        for _ in range(40):  # past the end: both hold the floor
            assert b.param_groups[0]["lr"] == a.param_groups[0]["lr"]
            a.step(), b.step()
            steps.step()
            counted.step(consumed=4096)


def test_consumed_is_required_for_a_counted_schedule_and_1_for_a_steps_one():
    opt = _opt()
    sched = LRTempoScheduler(opt, _counted(8))
    opt.step()
    for bad in (None, 0, -3, 2.5, True):
        with pytest.raises(ValueError, match=r"consumed: a schedule counted in tokens needs scheduler.step\(consumed"):
            sched.step(consumed=bad)
    assert sched.last_epoch == 0 and sched.position == 0  # a refused step moves nothing
    steps = LRTempoScheduler(_opt(), STEPS, warn_order=False)
    steps.step(consumed=1)
    assert steps.last_epoch == 1 and steps.position == 1
    with pytest.raises(ValueError, match="consumed: a steps schedule advances by 1 per update"):
        steps.step(consumed=8)


def test_the_position_is_in_the_state_and_a_resume_continues_exactly():
    schedule = _counted(100)
    opt = _opt()
    sched = LRTempoScheduler(opt, schedule)
    for k in range(7):
        opt.step()
        sched.step(consumed=100 + k)
    state = sched.state_dict()
    assert state["position"] == sum(100 + k for k in range(7)) and state["step"] == 7
    assert "position" not in LRTempoScheduler(_opt(), STEPS).state_dict()  # a steps state is as before

    opt2 = _opt()
    other = LRTempoScheduler(opt2, schedule)
    other.load_state_dict(state)
    assert other.position == state["position"] and opt2.param_groups[0]["lr"] == schedule(state["position"])
    for _ in range(5):
        for o, s in ((opt, sched), (opt2, other)):
            o.step()
            s.step(consumed=50)
        assert opt2.param_groups[0]["lr"] == opt.param_groups[0]["lr"]


def test_a_state_without_a_position_is_refused_by_a_counted_scheduler():
    steps_state = LRTempoScheduler(_opt(), STEPS).state_dict()
    sched = LRTempoScheduler(_opt(), _counted(8), allow_schedule_change=True)
    with pytest.raises(ValueError, match="state_dict has no 'position'"):
        sched.load_state_dict(steps_state)
    with pytest.raises(ValueError, match=r"state_dict\['position'\] must be an integer >= 0"):
        sched.load_state_dict({**steps_state, "position": -1})
    with pytest.raises(ScheduleChangedError):  # another schedule: refused as before
        LRTempoScheduler(_opt(), _counted(8)).load_state_dict({**steps_state, "position": 3})


def test_train_state_advances_by_what_each_update_consumed():
    task = LinearTask({}, seed=1)
    schedule = _counted(32, "samples")
    state = TrainState(task.model, schedule, optimizer=build_optimizer(task.model, lr=0.0))
    seen = []
    state.optimizer.register_step_pre_hook(lambda opt, *a: seen.append(opt.param_groups[0]["lr"]))
    positions = []
    for k in range(12):
        positions.append(state.position)
        result = state.update(task.micro_batches(1), task.loss, consumed=32 + k)
        assert result.lr == schedule(positions[-1]) and result.step == k
    assert seen == [schedule(p) for p in positions] and state.position == sum(32 + k for k in range(12))
    with pytest.raises(ValueError, match="consumed: this schedule counts samples"):
        state.update(task.micro_batches(1), task.loss)
    with pytest.raises(ValueError, match="consumed: must be a whole number >= 1 of samples"):
        state.update(task.micro_batches(1), task.loss, consumed=0)
    assert state.step == 12  # the refused updates changed nothing
    steps_state = TrainState(task.model, STEPS, optimizer=build_optimizer(task.model, lr=0.0))
    with pytest.raises(ValueError, match=r"consumed: must be 1 \(a steps schedule counts updates\)"):
        steps_state.update(task.micro_batches(1), task.loss, consumed=32)


def test_a_spec_with_a_unit_drives_the_adapter():
    schedule = build_schedule({"type": "wsd", "unit": "samples", "peak_lr": 1e-3, "total_steps": 960,
                               "decay_steps": 320, "warmup_steps": 96})
    opt = _opt()
    sched = LRTempoScheduler(opt, schedule)
    for _ in range(12):
        opt.step()
        sched.step(consumed=96)
    assert sched.position == 1152 and opt.param_groups[0]["lr"] == schedule(1152) == 0.0


def test_a_lambda_lr_view_of_a_counted_schedule_is_refused():
    with pytest.raises(ValueError, match="a LambdaLR view counts updates, and this schedule counts tokens"):
        lambda_lr(_opt(), _counted(8))


# -- lrtempo values RUN_DIR of a run counted in samples or tokens: one row per update -------------------------------

_CHARLM = {"d_model": 16, "n_layer": 1, "n_head": 2, "context": 8, "batch_size": 2, "max_bytes": 20_000}


@pytest.mark.parametrize("unit, ramp", [("tokens", {"start_batch_size": 2, "increment": 2, "ramp_samples": 20}),
                                        ("samples", None)])
def test_values_of_a_counted_run_lists_its_updates_with_their_positions(tmp_path, capsys, unit, ramp):
    """Every update of the run, its position (what the updates before it consumed: the log's column of the row
    before) and the rate the log holds, bit for bit; --steps and --until count updates."""
    from lrtempo.cli import main
    from lrtempo.train import parse_run_config, read_log, train

    per = 8 if unit == "tokens" else 1  # tokens of a sample
    spec = {"type": "warmup_cosine", "unit": unit, "peak_lr": 0.01, "min_lr": 0.001, "total_steps": 60 * per,
            "warmup_steps": 12 * per}
    config = {"task": "charlm", "task_options": _CHARLM, "accumulation_steps": 3, "steps": 14, "eval_every": 0,
              "monitor": False, "schedule": spec, **({"batch_ramp": ramp} if ramp else {})}
    run_dir = train(parse_run_config(config), tmp_path, progress=False).run_dir
    log = read_log(run_dir / "log.csv")
    assert main(["values", str(run_dir)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "step,position,lr" and len(lines) == 1 + 14
    rows = [line.split(",") for line in lines[1:]]
    assert [int(r[0]) for r in rows] == list(range(14))
    assert [int(r[1]) for r in rows] == [0] + [int(row[unit]) for row in log[:-1]]
    assert [float(r[2]) for r in rows] == [float(row["lr"]) for row in log]
    if ramp:  # the batch grew: 2, 2, ..., 4, ..., 6 samples an update
        assert len({int(b[1]) - int(a[1]) for a, b in zip(rows, rows[1:])}) == 3
    assert main(["values", str(run_dir), "--steps", "12:14"]) == 0
    assert capsys.readouterr().out.splitlines()[1:] == lines[-2:]
    assert main(["values", str(run_dir), "--until", "3"]) == 0
    assert capsys.readouterr().out.splitlines() == lines[:5]
