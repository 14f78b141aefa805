"""Schedule-free AdamW (``optimizer.name: schedulefree``): the rate, its evaluation weights, exact resume, races."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from lrtempo import build_schedule  # noqa: E402
from lrtempo._util import MissingDependency  # noqa: E402
from lrtempo.cli import main  # noqa: E402
from lrtempo.config import ConfigError, parse_config_text, read_config_file  # noqa: E402
from lrtempo.train import TrainState, build_optimizer, load_checkpoint, parse_run_config, read_log, train  # noqa: E402
from lrtempo.train._schedulefree import INSTALL_HINT, evaluation_weights, is_schedulefree  # noqa: E402
from lrtempo.train.tasks import CharLMTask, LinearTask  # noqa: E402

SCHEDULE = build_schedule({"type": "warmup", "warmup_steps": 5, "schedule": {"type": "constant", "lr": 0.02}})
TINY = """\
name: tiny
task: charlm
task_options: {d_model: 32, n_layer: 1, n_head: 2, context: 32, batch_size: 8, max_bytes: 300000, val_batches: 2}
seed: 3
schedule: {type: warmup, warmup_steps: 8, schedule: {type: constant, lr: 3e-3}}
steps: 40
optimizer: {name: schedulefree, betas: [0.9, 0.95], weight_decay: 0.1}
grad_clip: 1.0
checkpoint_every: 10
eval_every: 10
"""
ENV = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}


def _tiny() -> dict:
    return parse_config_text(TINY, "yaml")


def _needs_package():
    pytest.importorskip("schedulefree")


def _params(model):
    return [p.detach().clone() for p in model.parameters()]


def _same(a, b):
    return all(torch.equal(x, y) for x, y in zip(a, b))


def test_build_optimizer_gives_schedulefree_in_train_mode_without_its_own_warmup():
    _needs_package()
    import schedulefree

    task = LinearTask({}, seed=0)
    opt = build_optimizer(task.model, name="schedulefree", lr=0.0, betas=(0.9, 0.95), weight_decay=0.1)
    assert isinstance(opt, schedulefree.AdamWScheduleFree) and is_schedulefree(opt)
    assert [g["train_mode"] for g in opt.param_groups] == [True, True]
    assert [g["warmup_steps"] for g in opt.param_groups] == [0, 0]
    assert [g["weight_decay"] for g in opt.param_groups] == [0.1, 0.0]  # matrices decayed, biases and norms not
    assert opt.param_groups[0]["betas"] == (0.9, 0.95)
    assert not is_schedulefree(build_optimizer(task.model))


def test_the_schedule_is_the_rate_schedulefree_applies():
    _needs_package()
    task = LinearTask({}, seed=1)
    state = TrainState(task.model, SCHEDULE, optimizer=build_optimizer(task.model, name="schedulefree", lr=0.0))
    for k in range(8):
        r = state.update(task.micro_batches(1), task.loss)
        assert r.lr == SCHEDULE(k)
        # the rate the update used: the schedule's, warmup included, with no second warmup on top
        assert [g["scheduled_lr"] for g in state.optimizer.param_groups] == [SCHEDULE(k)] * 2


def test_evaluation_weights_are_the_average_and_the_training_weights_come_back_bit_for_bit():
    _needs_package()
    task = LinearTask({}, seed=2)
    opt = build_optimizer(task.model, name="schedulefree", lr=0.0)
    state = TrainState(task.model, SCHEDULE, optimizer=opt)
    for _ in range(6):
        state.update(task.micro_batches(1), task.loss)
    y = _params(task.model)
    z = [opt.state[p]["z"].clone() for p in task.model.parameters()]
    beta1 = opt.param_groups[0]["betas"][0]
    with evaluation_weights(opt):
        assert [g["train_mode"] for g in opt.param_groups] == [False, False]
        for p, yi, zi in zip(task.model.parameters(), y, z):
            # x from y = (1 - beta1) z + beta1 x
            assert torch.allclose(p, (yi - (1 - beta1) * zi) / beta1, rtol=1e-5, atol=1e-6)
        assert not _same(_params(task.model), y)
    assert _same(_params(task.model), y)
    assert [g["train_mode"] for g in opt.param_groups] == [True, True]


def test_evaluating_never_changes_the_training():
    _needs_package()
    runs = []
    for evaluate in (False, True):
        task = CharLMTask({"d_model": 16, "n_layer": 1, "n_head": 2, "context": 16, "batch_size": 4,
                           "max_bytes": 100000, "val_batches": 1}, seed=5)
        opt = build_optimizer(task.model, name="schedulefree", lr=0.0)
        state = TrainState(task.model, SCHEDULE, optimizer=opt)
        for _ in range(6):
            state.update(task.micro_batches(1), task.loss)
            if evaluate:
                with evaluation_weights(opt):
                    task.evaluate(task.model)
        runs.append(_params(task.model))
    assert _same(*runs)


def test_a_missing_package_is_one_line_and_writes_nothing(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "schedulefree", None)  # import schedulefree now fails
    task = LinearTask({}, seed=0)
    with pytest.raises(MissingDependency, match=r"pip install 'lrtempo\[schedulefree\]'"):
        build_optimizer(task.model, name="schedulefree")
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(TINY)
    assert main(["train", str(cfg), "--out", str(tmp_path / "runs"), "--quiet"]) == 2
    assert capsys.readouterr().err == f"lrtempo: error: {INSTALL_HINT}\n"
    assert not (tmp_path / "runs" / "tiny").exists()
    assert main(["race", "charlm", "--optimizer", "schedulefree", "--quiet"]) == 2
    assert "pip install 'lrtempo[schedulefree]'" in capsys.readouterr().err


def test_the_optimizer_name_is_checked():
    want = r"optimizer.name: must be 'adamw', 'sgd' or 'schedulefree' \(got 'schedule-free'\); did you mean"
    with pytest.raises(ConfigError, match=want):
        parse_run_config({**_tiny(), "optimizer": {"name": "schedule-free"}})


def test_train_validates_and_checkpoints_the_evaluation_weights(tmp_path):
    _needs_package()
    config = parse_run_config(_tiny(), default_name="tiny")
    summary = train(config, tmp_path, progress=False)
    run = tmp_path / "tiny"
    rows = read_log(run / "log.csv")
    assert [r["step"] for r in rows if r["val_loss"]] == ["9", "19", "29", "39"]
    assert [r["effective_lr_median"] for r in rows] == [""] * 40  # Adam's measure is not schedule-free's
    ckpt = load_checkpoint(run / "checkpoints" / "step-00000040.pt")
    task = CharLMTask(config.task_options, config.seed)
    task.model.load_state_dict(ckpt["eval_model"])
    assert task.evaluate(task.model) == summary.final_val_loss == float(rows[-1]["val_loss"])
    task.model.load_state_dict(ckpt["train_state"]["model"])
    assert task.evaluate(task.model) != summary.final_val_loss  # the training weights are another point


def test_stop_and_resume_equals_the_uninterrupted_run(tmp_path):
    """A run stopped after 25 updates (validated and checkpointed there) and resumed to 40 is the 40-update run."""
    _needs_package()
    config = parse_run_config(_tiny(), default_name="tiny")
    train(config, tmp_path / "a", progress=False)
    train(config, tmp_path / "b", steps=25, progress=False)
    train(None, resume=tmp_path / "b" / "tiny", steps=40, progress=False)
    ref, ours = (read_log(tmp_path / d / "tiny" / "log.csv") for d in ("a", "b"))
    cols = ("step", "lr", "grad_l2_norm", "loss")
    assert [{c: r[c] for c in cols} for r in ours] == [{c: r[c] for c in cols} for r in ref]
    a, b = (load_checkpoint(tmp_path / d / "tiny" / "checkpoints" / "step-00000040.pt") for d in ("a", "b"))
    assert _same(a["train_state"]["model"].values(), b["train_state"]["model"].values())
    assert _same(a["eval_model"].values(), b["eval_model"].values())


def test_sigkill_and_resume_equals_the_uninterrupted_run(tmp_path):
    _needs_package()
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(TINY)
    done = subprocess.run([sys.executable, "-m", "lrtempo", "train", str(cfg), "--out", str(tmp_path / "a"),
                           "--quiet"], capture_output=True, text=True, env=ENV)
    assert done.returncode == 0, done.stderr
    reference = read_log(tmp_path / "a" / "tiny" / "log.csv")
    proc = subprocess.Popen([sys.executable, "-m", "lrtempo", "train", str(cfg), "--out", str(tmp_path / "b"),
                             "--quiet"], env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log = tmp_path / "b" / "tiny" / "log.csv"
    deadline = time.time() + 120
    while time.time() < deadline:
        if log.exists() and len(log.read_text().splitlines()) > 26:
            break
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert 25 <= len(read_log(log)) < 40, "the run should be killed between checkpoints"
    resumed = subprocess.run([sys.executable, "-m", "lrtempo", "train", "--resume", str(tmp_path / "b" / "tiny"),
                              "--quiet"], capture_output=True, text=True, env=ENV)
    assert resumed.returncode == 0, resumed.stderr
    rows = read_log(log)
    cols = ("step", "lr", "grad_l2_norm", "loss", "val_loss", "tokens")
    assert [{c: r[c] for c in cols} for r in rows] == [{c: r[c] for c in cols} for r in reference]


def test_a_config_race_adds_schedulefree_at_its_schedules_peak(tmp_path):
    _needs_package()
    from lrtempo.train._race import _train_one, race_config

    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(TINY.replace("steps: 40", "steps: 12").replace(
        "schedule: {type: warmup, warmup_steps: 8, schedule: {type: constant, lr: 3e-3}}",
        "schedule: {type: warmup_cosine, peak_lr: 3e-3, min_lr: 3e-4, total_steps: 12, warmup_steps: 4}").replace(
        "name: schedulefree", "name: adamw"))
    result = race_config(cfg, schedules=[], seeds=1, optimizer="schedulefree")
    assert list(result.final) == ["tiny", "schedulefree"]
    config_map = {k: v for k, v in read_config_file(cfg).items() if k not in ("schedule", "name", "seed")}
    config_map.update(steps=12, monitor=False)
    spec = {"type": "warmup", "warmup_steps": 4, "schedule": {"type": "constant", "lr": 3e-3}}
    sf = {**config_map, "optimizer": {**config_map["optimizer"], "name": "schedulefree"}}
    assert result.final["schedulefree"] == [_train_one((sf, spec, 3, 0))["final"]]
    assert result.final["schedulefree"] != [_train_one((config_map, spec, 3, 0))["final"]]  # not AdamW


def test_race_optimizer_on_a_preset_without_lrtempos_optimizers_is_refused(capsys):
    for preset in ("quadratic", "flipnet"):
        assert main(["race", preset, "--optimizer", "schedulefree", "--quiet"]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "runs its own update rule" in err
    with pytest.raises(SystemExit) as exc:
        main(["race", "charlm", "--optimizer", "lion"])
    assert exc.value.code == 2


def test_the_charlm_preset_lists_the_schedulefree_contenders():
    from lrtempo.train._race import _charlm_schedulefree

    got = [(c.name, c.optimizer, c.schedule(0), c.schedule(15), c.schedule(30), c.schedule(299))
           for c in _charlm_schedulefree()]
    assert got == [("schedulefree 0.003", {"name": "schedulefree"}, 0.0, 0.0015, 0.003, 0.003),
                   ("schedulefree 0.006", {"name": "schedulefree"}, 0.0, 0.003, 0.006, 0.006)]


def test_pyproject_and_ci_pin_the_extra():
    root = Path(__file__).parent.parent
    text = (root / "pyproject.toml").read_text()
    assert 'schedulefree = ["schedulefree==1.4.1"]' in text
    ci = (root / ".ci" / "run").read_text()
    assert "schedulefree==1.4.1" in ci and "torch==2.13.0" in ci
