"""The LR range test: restoration, stopping, suggestions against a grid sweep, and --write."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from lrtempo import build_schedule  # noqa: E402
from lrtempo.analysis._range_test import lr_range_test, suggest  # noqa: E402
from lrtempo.cli import main  # noqa: E402
from lrtempo.train import TrainState, build_optimizer  # noqa: E402
from lrtempo.train.tasks import CharLMTask, LinearTask  # noqa: E402

OPTS = {"d_model": 48, "n_layer": 2, "n_head": 4, "context": 48, "batch_size": 16, "max_bytes": 400_000}


def _batches(task):
    while True:
        yield task.micro_batches(1)[0]


def test_model_and_optimizer_are_restored_and_the_test_stops_on_blow_up():
    task = LinearTask({}, seed=0)
    opt = build_optimizer(task.model, lr=1e-3)
    before = {k: v.clone() for k, v in task.model.state_dict().items()}
    result = lr_range_test(task.model, opt, task.loss, _batches(task), start_lr=1e-5, end_lr=1e4, updates=80)
    assert all(torch.equal(before[k], v) for k, v in task.model.state_dict().items())
    assert opt.state_dict()["state"] == {}
    assert result.stopped_early and len(result.lrs) < 80
    assert result.lrs[0] == 1e-5 and all(b > a for a, b in zip(result.lrs, result.lrs[1:]))
    # the smoothing is a bias-corrected moving average
    beta, avg = 0.98, 0.0
    for i, loss in enumerate(result.losses[:5]):
        avg = beta * avg + (1 - beta) * loss
        assert result.smoothed[i] == pytest.approx(avg / (1 - beta ** (i + 1)))


def test_suggestions_on_a_known_curve():
    lrs = list(np.geomspace(1e-5, 1.0, 60))
    smoothed = [3.0 - 2.0 / (1 + math.exp(-(math.log10(lr) + 2.5) * 3)) + (5 * lr) ** 4 for lr in lrs]
    steepest, valley, notes = suggest(lrs, smoothed)
    assert 10**-3 < steepest < 10**-2 and 10**-4 < valley < 10**-1 and not notes
    assert suggest(lrs[:5], smoothed[:5])[0] is None


def test_charlm_suggestion_lies_where_a_grid_sweep_trains_best():
    def final_loss(rate, n=80):
        task = CharLMTask(OPTS, seed=7)
        state = TrainState(task.model, build_schedule({"type": "constant", "lr": rate}),
                           optimizer=build_optimizer(task.model, lr=rate, betas=(0.9, 0.95)))
        losses = [state.update(task.micro_batches(1), task.loss).loss for _ in range(n)]
        return float(np.mean(losses[-15:]))

    grid = [3e-4, 1e-3, 3e-3, 1e-2, 3e-2]
    losses = {rate: final_loss(rate) for rate in grid}
    best = min(losses.values())
    good = [rate for rate, loss in losses.items() if loss <= 1.1 * best]
    task = CharLMTask(OPTS, seed=7)
    opt = build_optimizer(task.model, lr=1e-6, betas=(0.9, 0.95))
    result = lr_range_test(task.model, opt, task.loss, _batches(task), start_lr=1e-6, end_lr=1.0, updates=100,
                           smoothing=0.9)
    assert min(good) <= result.valley <= max(good), (losses, result.valley)
    assert min(good) / 2 <= result.steepest <= max(good) * 2, (losses, result.steepest)


def test_find_lr_command_writes_the_peak(tmp_path, capsys):
    cfg = tmp_path / "run.yaml"
    cfg.write_text("task: linear\nseed: 1\nsteps: 100\nschedule: {type: constant, lr: 0.1}\n")
    sched = tmp_path / "schedule.yaml"
    sched.write_text("type: warmup_cosine\npeak_lr: 0.5\nmin_lr: 1e-4\ntotal_steps: 1000\nwarmup_steps: 50\n")
    png = tmp_path / "rt.png"
    code = main(["find-lr", str(cfg), "--updates", "60", "--end-lr", "10", "--png", str(png), "--write", str(sched),
                 "--json"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["valley"] is not None and png.read_bytes()[:4] == b"\x89PNG"
    from lrtempo.config import load_schedule

    assert load_schedule(sched).peak_lr == float(f"{out['valley']:.3g}")
    assert main(["find-lr", str(cfg), "--start-lr", "1", "--end-lr", "0.1"]) == 2
