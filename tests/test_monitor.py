"""Training-health signals: synthetic logs where the answer is known, and a hand computation of Adam."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from lrtempo import WarmupCosine, build_schedule
from lrtempo.analysis import analyze_log, compute_budget
from lrtempo.monitor import (
    NORMAL,
    PHASES,
    STALE,
    TRAP,
    Monitor,
    MonitorSettings,
    RestartTracker,
    RollingMedian,
    RollingSlope,
    SpikeDetector,
    StalenessTracker,
    TrapDetector,
    phase_labels,
)


def test_rolling_slope_matches_polyfit_and_does_not_drift():
    rng = np.random.default_rng(0)
    data = np.cumsum(rng.normal(size=5000)) + 1e6  # large offset: drift would show
    r = RollingSlope(100)
    for i, v in enumerate(data):
        r.push(float(v))
        if i >= 99 and i % 97 == 0:
            window = data[i - 99:i + 1]
            assert r.slope() == pytest.approx(np.polyfit(np.arange(100), window, 1)[0], rel=1e-6, abs=1e-9)
            assert r.mean() == pytest.approx(window.mean(), rel=1e-12)


def test_rolling_median():
    m = RollingMedian(5)
    for v in [5, 1, 4, 2, 3, 100, 0]:
        m.push(float(v))
    assert m.median() == float(np.median([4, 2, 3, 100, 0]))


def _series(n, lr_fn, loss_fn, norm_fn):
    return [(k, lr_fn(k), loss_fn(k), norm_fn(k)) for k in range(n)]


def test_trap_detected_in_a_flat_tail_and_not_in_a_healthy_decay():
    n, peak = 2000, 1e-3
    schedule = WarmupCosine(peak_lr=peak, total_steps=n, warmup_steps=50)
    trapped = TrapDetector(window=200)
    statuses = []
    for k in range(n):  # the loss stops moving after step 1200; the gradient norm keeps shrinking
        loss = 2.0 + math.exp(-k / 150)
        statuses.append((k, trapped.update(k, schedule(k), loss, 1.0 - k / 4000, peak, n - k - 1), trapped.status))
    trap_events = [e for _, e, _ in statuses if e is not None and e.kind == TRAP]
    assert len(trap_events) == 1
    first = trap_events[0]
    assert schedule(first.step) < 0.1 * peak and first.values["loss_improvement_per_step"] < 1e-4
    assert first.values["expected_remaining_improvement"] < 0.1
    assert statuses[-1][2] == TRAP and statuses[150][2] == "insufficient_history"

    healthy = TrapDetector(window=200)
    for k in range(n):  # the loss keeps falling steadily all the way down
        healthy.update(k, schedule(k), 5.0 - 2e-3 * k, 1.0 - k / 4000, peak, n - k - 1)
    assert healthy.status == NORMAL


def test_spike_is_raised_before_the_loss_moves():
    det = SpikeDetector(window=50, factor=5.0)
    events = []
    for k in range(200):
        norm = 1.0 + 0.05 * math.sin(k) if k < 120 else 12.0 * (1 + (k - 120))
        loss = 2.0 if k < 124 else 2.0 * 3 ** (k - 123)
        events += det.update(k, loss, norm)
    spikes = [e.step for e in events if e.kind == "GRAD_NORM_SPIKE"]
    diverge = [e.step for e in events if e.kind == "LOSS_DIVERGENCE"]
    assert spikes and diverge and spikes[0] == 120 and min(diverge) > spikes[0]


def test_restart_productivity():
    tracker = RestartTracker([100, 200, 300], window=10)  # a cycle is judged when the next one starts
    events = []
    for k in range(301):
        level = 3.0 if k < 100 else (2.0 if k < 200 else 2.5)  # cycle 1 helps, cycle 2 hurts
        e = tracker.update(k, level - 0.001 * (k % 100))
        if e:
            events.append(e)
    assert [e.kind for e in events] == ["RESTART_PRODUCTIVE", "RESTART_UNPRODUCTIVE"]
    assert events[0].values["improvement"] == pytest.approx(1.0, abs=0.01)


def _staleness_events(alignment_in_window: float, threshold: float = 0.5):
    tracker = StalenessTracker(boundary=100, window=50, threshold=threshold)
    # aligned before the boundary and after the window: only steps 100..149 may count
    return [e for k in range(200) if (e := tracker.update(k, alignment_in_window if 100 <= k < 150 else 1.0))]


def test_stale_momentum_at_the_warmup_boundary():
    (event,) = _staleness_events(0.25)
    assert event.kind == STALE and event.step == 149  # judged at the window's last step
    assert event.values == {"momentum_alignment": 0.25, "updates": 50}  # the mean of exactly the 50 in-window
    assert "Hold the rate at its peak before decaying" in event.message  # the remedy
    (aligned,) = _staleness_events(0.75)
    assert (aligned.kind, aligned.step, aligned.values["momentum_alignment"]) == ("momentum_aligned", 149, 0.75)
    # the threshold itself is aligned; just below it is stale
    assert [e.kind for e in _staleness_events(0.5)] == ["momentum_aligned"]
    assert [e.kind for e in _staleness_events(math.nextafter(0.5, 0))] == [STALE]


def test_phases_of_a_schedule():
    s = build_schedule({"type": "warmup_plateau_cosine", "peak_lr": 1.0, "total_steps": 100, "warmup_steps": 10,
                        "plateau_steps": 20})
    labels = [PHASES[i] for i in phase_labels(s, np.arange(0, 102))]
    assert labels[0] == labels[9] == "warmup" and labels[10] == labels[29] == "plateau"
    assert labels[30] == "early_decay" and labels[99] == "late_decay" and labels[101] == "past_end"


# -- Adam, by hand ---------------------------------------------------------------------------

torch = pytest.importorskip("torch")


def test_effective_rate_matches_a_hand_computation():
    from lrtempo.train import TrainState

    p = torch.nn.Parameter(torch.tensor([1.0], dtype=torch.float64))
    model = torch.nn.Module()
    model.w = p
    grads = [0.1, -0.2, 0.3, 0.05]
    lr, b1, b2, eps = 1e-3, 0.9, 0.999, 1e-8
    opt = torch.optim.AdamW([p], lr=lr, betas=(b1, b2), eps=eps, weight_decay=0.0)
    monitor = Monitor(build_schedule({"type": "constant", "lr": lr}), MonitorSettings(every_signal=True))
    state = TrainState(model, build_schedule({"type": "constant", "lr": lr}), optimizer=opt, monitor=monitor)
    v = m = 0.0
    readings = []
    for t, g in enumerate(grads, start=1):
        result = state.update([g], lambda model, g: model.w.sum() * g)
        readings.append(result.monitor)
        m_prev = m
        v = b2 * v + (1 - b2) * g * g
        m = b1 * m + (1 - b1) * g
        eff = lr / (math.sqrt(v / (1 - b2**t)) + eps)
        upd = lr * (m / (1 - b1**t)) / (math.sqrt(v / (1 - b2**t)) + eps)
        cols = result.monitor
        assert cols["effective_lr_median"] == pytest.approx(eff, rel=1e-6)
        assert cols["effective_lr_max"] == pytest.approx(eff, rel=1e-6)
        assert cols["effective_lr_ratio"] == pytest.approx(eff / lr, rel=1e-6)
        p_before = float(p.detach()) + upd  # the ratio is taken against the parameter before the update
        assert cols["update_ratio"] == pytest.approx(abs(upd) / abs(p_before), rel=1e-4)
        if t > 1:  # cos(m_{t-1}, g_t) of two scalars is their sign agreement
            assert cols["momentum_alignment"] == pytest.approx(math.copysign(1.0, m_prev * g), abs=1e-6)
    # step 1 of Adam: v_hat = g**2, so the monitor reads lr / |g|: 10x the nominal rate for g = 0.1
    assert readings[0]["effective_lr_median"] == pytest.approx(10 * lr, rel=1e-6)
    assert readings[0]["effective_lr_ratio"] == pytest.approx(10.0, rel=1e-6)


def _charlm_effective(warmup_steps: int) -> list[float]:
    from lrtempo.train import TrainState, build_optimizer
    from lrtempo.train.tasks import CharLMTask

    task = CharLMTask({"d_model": 32, "n_layer": 1, "n_head": 2, "context": 32, "batch_size": 8,
                       "max_bytes": 200_000}, seed=1)
    schedule = build_schedule({"type": "warmup_cosine", "peak_lr": 3e-3, "total_steps": 200,
                               "warmup_steps": warmup_steps})
    monitor = Monitor(schedule, MonitorSettings(every_signal=True), total_steps=200)
    state = TrainState(task.model, schedule, optimizer=build_optimizer(task.model, lr=0.0), monitor=monitor)
    return [state.update(task.micro_batches(1), task.loss).monitor["effective_lr_p90"] for _ in range(50)]


def test_charlm_without_warmup_applies_many_times_the_nominal_rate_at_first():
    peak = 3e-3
    cold = _charlm_effective(0)
    warm = _charlm_effective(100)
    assert cold[0] > 100 * peak  # the first update, at full rate with a one-sample second moment
    assert warm[0] == 0.0
    assert np.mean(cold[:20]) > 5 * np.mean(warm[:20])


def test_monitor_in_a_plain_loop_and_events_file(tmp_path):
    model = torch.nn.Linear(4, 1)
    schedule = build_schedule({"type": "constant", "lr": 1e-2})
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    events = tmp_path / "events.jsonl"
    monitor = Monitor(schedule, MonitorSettings(effective_every=10, spike_window=20), events_path=events)
    x = torch.randn(16, 4)
    for step in range(60):
        scale = 1000.0 if step == 45 else 1.0
        loss = (model(x * scale) ** 2).mean()
        loss.backward()
        cols = monitor.observe(step, loss, model, opt)
        opt.step()
        opt.zero_grad()
        assert (cols["effective_lr_median"] is not None) == (step % 10 == 0)
    kinds = [json.loads(line)["kind"] for line in events.read_text().splitlines()]
    assert "GRAD_NORM_SPIKE" in kinds
    record = json.loads(events.read_text().splitlines()[0])
    assert set(record) == {"step", "kind", "values", "message"}


# -- budget and analyze ------------------------------------------------------------------------

def test_budget_agrees_with_an_independent_count():
    s = build_schedule({"type": "wsd", "peak_lr": 1e-3, "total_steps": 5000, "warmup": 0.05, "decay": 0.3,
                        "decay_shape": "cosine"})
    b = compute_budget(s, 5000, step_seconds=0.5, gpus=4, gpu_hour_cost=2.0)
    rates = [s(k) for k in range(5000)]
    peak = max(rates)
    assert b.band_steps[">90% of peak"] == sum(r > 0.9 * peak for r in rates)
    assert b.band_steps[">50% of peak"] == sum(r > 0.5 * peak for r in rates)
    assert b.band_steps[">10% of peak"] == sum(r > 0.1 * peak for r in rates)
    assert b.tail_steps == sum(r <= 0.1 * peak for r in rates)
    assert b.phase_steps["warmup"] == 250 and b.phase_steps["plateau"] == 5000 - 250 - 1500
    assert sum(b.phase_steps.values()) == 5000
    assert b.warmup_share == 0.05
    assert b.cost(b.tail_steps) == pytest.approx(b.tail_steps * 0.5 / 3600 * 4 * 2.0)


def test_analyze_a_csv_written_by_something_else(tmp_path):
    n = 600
    s = WarmupCosine(peak_lr=1e-3, total_steps=n, warmup_steps=60)
    lines = ["epoch,loss,lr,step,grad_l2_norm,notes"]  # its own column order, a text column
    for k in range(n):  # the loss flattens out smoothly; only the gradient norm spikes, once, at step 400
        norm = 40.0 if k == 400 else 1.0 - k / 2000
        lines.append(f"{k // 100},{2.0 + math.exp(-k / 60)!r},{s(k)!r},{k},{norm!r},x")
    path = tmp_path / "foreign.csv"
    path.write_text("\n".join(lines) + "\n")
    a = analyze_log(path, trap_window=100)
    assert a.phase_source == "the lr column" and a.rows == n
    # phases from the rate alone: the warmup, then decay bands where lr / peak crosses 0.5 and 0.1
    ratio = [s(k) / 1e-3 for k in range(n)]
    mid = next(k for k in range(60, n) if ratio[k] <= 0.5)
    late = next(k for k in range(60, n) if ratio[k] <= 0.1)
    assert [(p["phase"], p["first_step"], p["last_step"]) for p in a.phases] == [
        ("warmup", 0, 59), ("early_decay", 60, mid - 1), ("mid_decay", mid, late - 1), ("late_decay", late, n - 1)]
    # the spike at 400, and the trap once the rate is in the tail (the loss stopped moving long before)
    assert [(e["step"], e["kind"]) for e in a.events] == [(400, "GRAD_NORM_SPIKE"), (late, TRAP)]
    assert [t["status"] for t in a.trap_status] == ["insufficient_history", NORMAL, TRAP]
    assert a.trap_status[-1]["first_step"] == late
    text = a.text()
    assert "warmup" in text and "GRAD_NORM_SPIKE" in text


def test_analyze_rejects_a_csv_without_the_schema(tmp_path):
    from lrtempo.config import ConfigError

    path = tmp_path / "x.csv"
    path.write_text("step,lr\n0,0.1\n")
    with pytest.raises(ConfigError, match="missing column"):
        analyze_log(path)


# -- the commands ------------------------------------------------------------------------------

def test_budget_command(capsys, tmp_path):
    from lrtempo.cli import main

    assert main(["budget", "examples/warmup_cosine.yaml", "--step-time", "200ms", "--gpus", "8",
                 "--gpu-hour-cost", "2.5"]) == 0
    out = capsys.readouterr().out
    assert "warmup" in out and "tail" in out and "GPU-hours" in out and "cost" in out
    assert main(["budget", "examples/warmup_cosine.yaml", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["total_steps"] == 20000 and data["rows"]["warmup"]["steps"] == 400
    assert main(["budget", "examples/warmup_cosine.yaml", "--gpu-hour-cost", "3"]) == 2
    assert "needs --step-time" in capsys.readouterr().err
    assert main(["budget", "examples/warmup_cosine.yaml", "--step-time", "fast"]) == 2
    assert main(["budget", "examples/step.yaml"]) == 2
    assert "give --steps" in capsys.readouterr().err


def test_analyze_command(capsys, tmp_path):
    from lrtempo.cli import main

    path = tmp_path / "log.csv"
    s = WarmupCosine(peak_lr=1e-3, total_steps=300, warmup_steps=30)
    path.write_text("step,lr,grad_l2_norm,loss\n" + "".join(
        f"{k},{s(k)!r},{1.0 - k / 1000!r},{2 + math.exp(-k / 50)!r}\n" for k in range(300)))
    png = tmp_path / "a.png"
    assert main(["analyze", str(path), "--png", str(png), "--trap-window", "50"]) == 0
    out = capsys.readouterr().out
    assert "warmup" in out and "trap status over time" in out and png.read_bytes()[:4] == b"\x89PNG"
    assert main(["analyze", str(path), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["rows"] == 300 and data["phases"][0]["phase"] == "warmup"
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    assert main(["analyze", str(bad)]) == 2
    assert "missing column" in capsys.readouterr().err


def test_a_cyclic_schedule_restarts_where_a_cycle_begins_not_at_its_peak():
    """Each triangular cycle restarts at its trough; the turn at the peak is its decay, not a restart."""
    from lrtempo.monitor._phases import restart_points
    from lrtempo.schedules import Cyclic

    s = Cyclic(base_lr=0.1, max_lr=1.0, step_size_up=4, step_size_down=6)
    assert restart_points(s.phases(35)) == [10, 20, 30]
    assert [p.kind for p in s.phases(20)] == ["cycle", "decay", "cycle", "decay"]
