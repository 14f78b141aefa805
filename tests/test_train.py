"""The training step, the run log, checkpoints, the SIGKILL resume, and DDP."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from lrtempo import WarmupCosine, build_schedule  # noqa: E402
from lrtempo.train import (  # noqa: E402
    RunLog,
    TrainingDiverged,
    TrainState,
    build_optimizer,
    load_checkpoint,
    read_log,
    save_checkpoint,
)
from lrtempo.train.tasks import CharLMTask, FlipNetTask, LinearTask, QuadraticTask  # noqa: E402

SCHEDULE = WarmupCosine(peak_lr=0.05, total_steps=30, warmup_steps=5, min_lr=1e-3)


def _state(task, **kw):
    return TrainState(task.model, SCHEDULE, optimizer=build_optimizer(task.model, lr=0.0), **kw)


def test_rate_is_set_before_optimizer_step():
    task = LinearTask({}, seed=1)
    state = _state(task)
    seen = []
    state.optimizer.register_step_pre_hook(lambda opt, *a: seen.append(opt.param_groups[0]["lr"]))
    for _ in range(12):
        r = state.update(task.micro_batches(1), task.loss)
        assert r.lr == SCHEDULE(r.step)
    assert seen == [SCHEDULE(k) for k in range(12)] and state.step == 12


def test_grad_norm_matches_torch_and_clipping_is_shared():
    task = LinearTask({}, seed=2)
    ref_model = LinearTask({}, seed=2).model
    state = _state(task, clip_grad_norm=0.5)
    r = state.update(task.micro_batches(1), task.loss)
    loss = task.loss(ref_model, task.micro_batches(1)[0])
    loss.backward()
    expected = torch.nn.utils.clip_grad_norm_(ref_model.parameters(), 0.5)
    assert r.grad_l2_norm == pytest.approx(float(expected), rel=1e-6)


def test_accumulation_equals_the_full_batch():
    a, b = LinearTask({"batch_size": 32}, seed=3), LinearTask({"batch_size": 32}, seed=3)
    sa = _state(a)
    sb = _state(b, accumulation_steps=4)
    for _ in range(6):
        ra = sa.update(a.micro_batches(1), a.loss)
        rb = sb.update(b.micro_batches(4), b.loss)
        assert ra.step == rb.step and ra.lr == rb.lr
        assert rb.loss == pytest.approx(ra.loss, rel=1e-5)
        assert rb.grad_l2_norm == pytest.approx(ra.grad_l2_norm, rel=1e-5)
    for pa, pb in zip(a.model.parameters(), b.model.parameters()):
        torch.testing.assert_close(pa, pb, rtol=1e-5, atol=1e-6)


def test_non_finite_updates_are_skipped_then_the_run_stops():
    task = LinearTask({}, seed=4)
    state = _state(task, max_consecutive_skips=3)
    state.update(task.micro_batches(1), task.loss)
    before = [p.detach().clone() for p in task.model.parameters()]
    nan_loss = lambda model, batch: task.loss(model, batch) * float("nan")  # noqa: E731
    r = state.update(task.micro_batches(1), nan_loss)
    assert r.skipped and r.step == 1 and state.step == 1 and state.skipped_updates == 1
    assert all(torch.equal(p, q) for p, q in zip(before, task.model.parameters()))
    state.update(task.micro_batches(1), task.loss)  # a good update resets the count
    assert state.consecutive_skips == 0 and state.step == 2
    state.update(task.micro_batches(1), nan_loss)
    state.update(task.micro_batches(1), nan_loss)
    with pytest.raises(TrainingDiverged, match="3 consecutive updates at step 2"):
        state.update(task.micro_batches(1), nan_loss)


def test_no_weight_decay_on_biases_and_norm_weights():
    model = CharLMTask({"d_model": 16, "n_layer": 1, "n_head": 2, "context": 8, "max_bytes": 20_000}, 0).model
    opt = build_optimizer(model, weight_decay=0.1)
    decayed, plain = opt.param_groups
    assert decayed["weight_decay"] == 0.1 and plain["weight_decay"] == 0.0
    assert all(p.ndim >= 2 for p in decayed["params"]) and all(p.ndim < 2 for p in plain["params"])


def test_tasks_build_and_learn():
    for task, steps in ((FlipNetTask({}, 42), 200), (QuadraticTask({}, 0), 100)):
        state = TrainState(task.model, build_schedule({"type": "constant", "lr": 0.05}),
                           optimizer=build_optimizer(task.model, lr=0.05))
        first = state.update(task.micro_batches(1), task.loss).loss
        for _ in range(steps):
            last = state.update(task.micro_batches(1), task.loss).loss
        assert last < first
    from lrtempo.train.tasks.flipnet import flip_dataset

    x, y = flip_dataset()
    assert x.shape == (16, 4) and torch.equal(y[:, 1], x[:, 2]) and torch.equal(y[:, 0], x[:, 0])


def test_run_log_resume_drops_rows_past_the_checkpoint_and_torn_lines(tmp_path):
    path = tmp_path / "log.csv"
    log = RunLog(path, ("extra",))
    for k in range(6):
        log.append(step=k, lr=0.1 * k, grad_l2_norm=1.0, loss=2.0, extra=None)
    log.close()
    with open(path, "a") as fh:
        fh.write("6,0.6,1.0")  # a torn row from a crash
    log = RunLog(path, ("extra",), resume_step=4)
    log.append(step=4, lr=0.4, grad_l2_norm=1.0, loss=2.0)
    log.close()
    assert [r["step"] for r in read_log(path)] == ["0", "1", "2", "3", "4"]
    with pytest.raises(FileExistsError):
        RunLog(path)
    with pytest.raises(ValueError, match="header"):
        RunLog(path, ("other",), resume_step=1)


def test_checkpoints_are_atomic_weights_only_and_pruned(tmp_path):
    for step in (10, 20, 30, 40):
        save_checkpoint(tmp_path, step, {"x": torch.arange(3), "rng": [1, (2, 3), None]})
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["step-00000020.pt", "step-00000030.pt", "step-00000040.pt"]
    state = load_checkpoint(tmp_path / "step-00000040.pt")
    assert state["step"] == 40 and torch.equal(state["x"], torch.arange(3))
    (tmp_path / "step-00000040.pt").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="not a readable checkpoint"):
        load_checkpoint(tmp_path / "step-00000040.pt")


# -- whole runs through the CLI, in subprocesses -----------------------------------------

TINY = """\
name: tiny
task: charlm
task_options: {d_model: 32, n_layer: 1, n_head: 2, context: 32, batch_size: 8, max_bytes: 300000, val_batches: 2}
seed: 3
schedule: {type: warmup_cosine, peak_lr: 3e-3, min_lr: 3e-4, total_steps: 40, warmup_steps: 8}
optimizer: {name: adamw, betas: [0.9, 0.95], weight_decay: 0.1}
grad_clip: 1.0
checkpoint_every: 10
eval_every: 10
"""

ENV = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}


def _lrtempo(*args, **kw):
    return subprocess.run([sys.executable, "-m", "lrtempo", *map(str, args)], capture_output=True, text=True,
                          env=ENV, **kw)


COMPARED = ("step", "lr", "grad_l2_norm", "loss", "val_loss", "tokens", "skipped_updates", "phase", "trap_status",
            "effective_lr_median", "effective_lr_p90", "effective_lr_max", "effective_lr_ratio", "update_ratio",
            "momentum_alignment")


def test_sigkill_and_resume_equals_the_uninterrupted_run(tmp_path):
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(TINY)
    done = _lrtempo("train", cfg, "--out", tmp_path / "a", "--quiet")
    assert done.returncode == 0, done.stderr
    reference = read_log(tmp_path / "a" / "tiny" / "log.csv")
    assert len(reference) == 40

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
    rows_at_kill = len(read_log(log))
    assert 25 <= rows_at_kill < 40, "the run should be killed between checkpoints"
    resumed = _lrtempo("train", "--resume", tmp_path / "b" / "tiny", "--quiet")
    assert resumed.returncode == 0, resumed.stderr
    rows = read_log(log)
    steps = [r["step"] for r in rows]
    assert steps == [str(k) for k in range(40)], "no duplicate, torn or missing row"
    for ours, ref in zip(rows, reference):
        assert {c: ours[c] for c in COMPARED} == {c: ref[c] for c in COMPARED}
    summary = json.loads((tmp_path / "b" / "tiny" / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["steps"] == 40
    assert (tmp_path / "b" / "tiny" / "schedule.txt").read_text().count("|") > 10


def test_changed_schedule_on_resume(tmp_path):
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(TINY.replace("total_steps: 40", "total_steps: 20"))
    assert _lrtempo("train", cfg, "--out", tmp_path, "--quiet", "--steps", "10").returncode == 0
    run = tmp_path / "tiny"
    changed = tmp_path / "changed.yaml"
    changed.write_text(TINY.replace("total_steps: 40", "total_steps: 30"))
    refused = _lrtempo("train", changed, "--resume", run, "--quiet")
    assert refused.returncode == 2 and "--allow-schedule-change" in refused.stderr
    allowed = _lrtempo("train", changed, "--resume", run, "--allow-schedule-change", "--quiet", "--steps", "15")
    assert allowed.returncode == 0, allowed.stderr
    meta = json.loads((run / "run.json").read_text())
    assert [c["step"] for c in meta["schedule_changes"]] == [10]
    assert (run / "config.before-step-10.yaml").exists()
    rows = read_log(run / "log.csv")
    assert [int(r["step"]) for r in rows] == list(range(15))
    new = build_schedule({"type": "warmup_cosine", "peak_lr": 3e-3, "min_lr": 3e-4, "total_steps": 30,
                          "warmup_steps": 8})
    assert float(rows[12]["lr"]) == new(12)


def test_divergence_stops_with_an_intact_checkpoint(tmp_path):
    cfg = tmp_path / "boom.yaml"
    cfg.write_text("name: boom\ntask: quadratic\nseed: 0\nsteps: 50\nmax_consecutive_skips: 3\n"
                   "optimizer: {name: sgd}\nschedule: {type: constant, lr: 1e300}\n")
    result = _lrtempo("train", cfg, "--out", tmp_path, "--quiet")
    assert result.returncode == 1 and "consecutive updates" in result.stderr
    assert result.stderr.strip().count("\n") <= 4
    summary = json.loads((tmp_path / "boom" / "summary.json").read_text())
    assert summary["status"] == "diverged" and summary["skipped_updates"] == 3
    ckpt = sorted((tmp_path / "boom" / "checkpoints").iterdir())[-1]
    assert load_checkpoint(ckpt)["step"] == summary["steps"]


def test_bad_run_configs_exit_2(tmp_path):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("task: charlmm\nsteps: 0\nschedule: {type: cosine, peak_lr: 1}\noptimiser: {}\n")
    result = _lrtempo("train", cfg, "--out", tmp_path)
    assert result.returncode == 2
    err = result.stderr
    assert err.count("\n") == 1 and "did you mean 'charlm'" in err and "did you mean 'optimizer'" in err
    assert "schedule.decay_steps: missing" in err and "steps: must be >= 1" in err


def test_demo():
    result = _lrtempo("demo")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    rows = [line.split() for line in lines[1:21]]
    assert [int(r[0]) for r in rows] == list(range(20))
    assert float(rows[0][1]) == 0.0 and float(rows[4][1]) == 0.1
    assert float(rows[-1][3]) < float(rows[0][3])
    assert "phase boundary" in result.stdout


@pytest.mark.skipif(shutil.which("torchrun") is None and not Path(sys.executable).with_name("torchrun").exists(),
                    reason="torchrun not found")
def test_two_process_ddp_matches_one_process_on_the_full_batch(tmp_path):
    cfg = tmp_path / "ddp.yaml"
    cfg.write_text("name: ddp\ntask: linear\ntask_options: {batch_size: 32}\nseed: 5\n"
                   "schedule: {type: warmup_cosine, peak_lr: 0.05, total_steps: 12, warmup_steps: 3}\n"
                   "checkpoint_every: 5\n")
    torchrun = shutil.which("torchrun") or str(Path(sys.executable).with_name("torchrun"))
    env = {**ENV, "LRTEMPO_BACKEND": "gloo"}
    ddp = subprocess.run([torchrun, "--nproc_per_node", "2", "--master_port", "29517", "-m", "lrtempo", "train",
                          str(cfg), "--out", str(tmp_path / "two"), "--quiet", "--steps", "8"],
                         capture_output=True, text=True, env=env, timeout=300)
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    resumed = subprocess.run([torchrun, "--nproc_per_node", "2", "--master_port", "29518", "-m", "lrtempo", "train",
                              "--resume", str(tmp_path / "two" / "ddp"), "--quiet", "--steps", "12"],
                             capture_output=True, text=True, env=env, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    single = _lrtempo("train", cfg, "--out", tmp_path / "one", "--quiet")
    assert single.returncode == 0, single.stderr
    two = read_log(tmp_path / "two" / "ddp" / "log.csv")
    one = read_log(tmp_path / "one" / "ddp" / "log.csv")
    assert [r["step"] for r in two] == [str(k) for k in range(12)]
    for a, b in zip(two, one):
        assert a["lr"] == b["lr"]
        assert float(a["grad_l2_norm"]) == pytest.approx(float(b["grad_l2_norm"]), rel=1e-5)
        assert float(a["loss"]) == pytest.approx(float(b["loss"]), rel=1e-5)
    assert json.loads((tmp_path / "two" / "ddp" / "summary.json").read_text())["world_size"] == 2


# -- resume rules, in this process (nothing here needs a signal) ---------------------------------------------------

QUAD = """\
name: quad
task: quadratic
seed: 2
schedule: {type: warmup_cosine, peak_lr: 0.2, min_lr: 0.002, total_steps: 20, warmup_steps: 2}
optimizer: {name: sgd, momentum: 0.9}
checkpoint_every: 4
eval_every: 0
"""


def _main(capsys, *args):
    from lrtempo.cli import main

    capsys.readouterr()
    code = main([*map(str, args), "--quiet"])
    return (code, *capsys.readouterr())


def test_a_finished_run_with_a_stale_summary_gets_only_that_file_rewritten(tmp_path, capsys):
    cfg = tmp_path / "quad.yaml"
    cfg.write_text(QUAD)
    assert _main(capsys, "train", cfg, "--out", tmp_path)[0] == 0
    run = tmp_path / "quad"
    good = json.loads((run / "summary.json").read_text())
    # what an interrupt near the end used to leave: a checkpoint at the last step, the summary 'interrupted'
    (run / "summary.json").write_text(json.dumps({**good, "status": "interrupted", "final_loss": None}))
    log_before = (run / "log.csv").read_bytes()
    code, out, err = _main(capsys, "train", "--resume", run)
    assert (code, err) == (0, "") and out.startswith(f"{run}: already finished (20 updates); nothing to do")
    assert _but_wall(run) == _but_wall(good), "rebuilt from the last checkpoint, no nulls"
    assert (run / "log.csv").read_bytes() == log_before
    (run / "summary.json").unlink()  # killed after the last checkpoint, before summary.json
    assert _main(capsys, "train", "--resume", run)[0] == 0
    assert _but_wall(run) == _but_wall(good)


def _but_wall(summary):
    if isinstance(summary, Path):
        summary = json.loads((summary / "summary.json").read_text())
    assert summary["wall_seconds"] > 0
    return {k: v for k, v in summary.items() if k != "wall_seconds"}


def test_an_edited_config_yaml_continues_with_the_flag_and_keeps_the_trained_one(tmp_path, capsys):
    cfg = tmp_path / "quad.yaml"
    cfg.write_text(QUAD)
    assert _main(capsys, "train", cfg, "--out", tmp_path, "--steps", "10")[0] == 0
    run = tmp_path / "quad"
    trained = (run / "config.yaml").read_text()
    (run / "config.yaml").write_text(trained.replace("peak_lr: 0.2", "peak_lr: 0.1").replace("steps: 10", "steps: 20"))
    code, _, err = _main(capsys, "train", "--resume", run)
    assert code == 2 and "pass --allow-schedule-change to continue under it" in err
    assert _main(capsys, "train", "--resume", run, "--allow-schedule-change")[0] == 0
    assert (run / "config.before-step-10.yaml").read_text() == trained
    meta = json.loads((run / "run.json").read_text())
    new = build_schedule({"type": "warmup_cosine", "peak_lr": 0.1, "min_lr": 0.002, "total_steps": 20,
                          "warmup_steps": 2})
    from lrtempo.config import spec_hash

    assert [(c["step"], c["to"]) for c in meta["schedule_changes"]] == [(10, spec_hash(new))]
    assert meta["steps_changes"] == [{"step": 10, "from": 10, "to": 20}] and meta["spec_hash"] == spec_hash(new)
    rows = read_log(run / "log.csv")
    assert [int(r["step"]) for r in rows] == list(range(20))
    assert float(rows[9]["lr"]) == build_schedule({"type": "warmup_cosine", "peak_lr": 0.2, "min_lr": 0.002,
                                                   "total_steps": 20, "warmup_steps": 2})(9)
    assert [float(r["lr"]) for r in rows[10:]] == [new(k) for k in range(10, 20)]


def test_a_change_recorded_by_a_killed_resume_needs_no_flag_again(tmp_path, capsys):
    cfg = tmp_path / "quad.yaml"
    cfg.write_text(QUAD)
    assert _main(capsys, "train", cfg, "--out", tmp_path, "--steps", "10")[0] == 0
    run = tmp_path / "quad"
    changed = tmp_path / "changed.yaml"
    changed.write_text(QUAD.replace("peak_lr: 0.2", "peak_lr: 0.1"))
    from lrtempo import rundir as _rundir  # every write of a run directory goes through it

    original, calls = _rundir.atomic_write_text, []
    _rundir.atomic_write_text = _killing_after(original, calls, "run.json")  # killed right after recording it
    try:
        assert _main(capsys, "train", changed, "--resume", run, "--allow-schedule-change")[0] == 130
    finally:
        _rundir.atomic_write_text = original
    assert [p.name for p in calls] == ["run.json"] and "peak_lr: 0.2" in (run / "config.yaml").read_text()
    # config.yaml still holds the trained schedule and length: the run is finished, the change never happened
    code, out, _ = _main(capsys, "train", "--resume", run)
    assert code == 0 and "already finished (10 updates)" in out
    meta = json.loads((run / "run.json").read_text())
    assert meta["schedule_changes"] == [] and meta["steps_changes"] == []
    assert not (run / "config.before-step-10.yaml").exists()
    # the same command again, killed after config.yaml too: then the plain resume continues under the change
    _rundir.atomic_write_text = _killing_after(original, calls, "config.yaml")
    try:
        assert _main(capsys, "train", changed, "--resume", run, "--allow-schedule-change")[0] == 130
    finally:
        _rundir.atomic_write_text = original
    assert "peak_lr: 0.1" in (run / "config.yaml").read_text()
    assert _main(capsys, "train", "--resume", run)[0] == 0
    rows = read_log(run / "log.csv")
    assert [int(r["step"]) for r in rows] == list(range(20))
    assert json.loads((run / "run.json").read_text())["schedule_changes"][0]["step"] == 10


def _killing_after(write, calls, name):
    """``write``, then a KeyboardInterrupt (a kill, as far as the run directory can tell) after writing ``name``."""
    def wrapped(path, text):
        write(path, text)
        calls.append(path)
        if path.name == name:
            raise KeyboardInterrupt
    return wrapped


def test_a_new_run_never_mixes_with_the_files_of_another(tmp_path, capsys):
    cfg = tmp_path / "quad.yaml"
    cfg.write_text(QUAD)
    assert _main(capsys, "train", cfg, "--out", tmp_path, "--steps", "5")[0] == 0
    run = tmp_path / "quad"
    (run / "config.yaml").unlink()  # what is left is no run: not continued, not overwritten
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    code, _, err = _main(capsys, "train", cfg, "--out", tmp_path)
    assert code == 2 and "holds a log or checkpoints but no config.yaml" in err
    code, _, err = _main(capsys, "train", "--resume", run)
    assert code == 2 and "holds no lrtempo run (no config.yaml)" in err
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before


def test_the_first_signal_asks_for_a_stop_the_second_stops_at_once():
    from lrtempo.train._run import _StopSignals

    # what the process had (a job started in the background of a non-interactive shell has SIGINT ignored)
    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    with _StopSignals() as stop:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.01)  # the handler runs between bytecodes; nothing is raised
        assert stop.signum == signal.SIGTERM
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(1)
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == before  # both given back


def test_a_run_logged_before_the_samples_column_resumes_without_it(tmp_path, capsys):
    """A log whose header predates ``samples`` is continued with its own columns, row for row as before."""
    from lrtempo.cli import main

    cfg = tmp_path / "old.yaml"
    cfg.write_text("name: old\ntask: quadratic\nseed: 2\nsteps: 10\ncheckpoint_every: 5\neval_every: 0\n"
                   "schedule: {type: warmup_cosine, peak_lr: 0.1, total_steps: 16, warmup_steps: 3}\n")
    for out in ("a", "b"):
        assert main(["train", str(cfg), "--out", str(tmp_path / out), "--quiet"]) == 0
    run = tmp_path / "a" / "old"
    lines = (run / "log.csv").read_text().splitlines()
    at = lines[0].split(",").index("samples")
    (run / "log.csv").write_text("".join(",".join(c for i, c in enumerate(line.split(",")) if i != at) + "\n"
                                         for line in lines))
    meta = json.loads((run / "run.json").read_text())
    meta["log_columns"].remove("samples")
    (run / "run.json").write_text(json.dumps(meta))
    assert main(["train", "--resume", str(run), "--steps", "16", "--quiet"]) == 0
    assert main(["train", "--resume", str(tmp_path / "b" / "old"), "--steps", "16", "--quiet"]) == 0
    old = [line.split(",") for line in (run / "log.csv").read_text().splitlines()]
    new = [line.split(",") for line in (tmp_path / "b" / "old" / "log.csv").read_text().splitlines()]
    assert "samples" not in old[0] and len(old) == len(new) == 17
    assert [row[:4] for row in old] == [row[:4] for row in new]


@pytest.mark.parametrize("extra", [
    "task_options: {context: 3}\n",  # refused by the task when it is built
    "batch_ramp: {start_batch_size: 2, increment: 2, ramp_samples: 10}\n",  # a ramp the linear task cannot run
], ids=["task-option", "ramp"])
def test_a_run_refused_once_its_parts_are_built_exits_2_and_leaves_no_folder(tmp_path, capsys, extra):
    from lrtempo.cli import main

    cfg = tmp_path / "r.yaml"
    cfg.write_text("name: r\ntask: linear\nsteps: 4\nschedule: {type: constant, lr: 0.1}\n" + extra)
    capsys.readouterr()
    assert main(["train", str(cfg), "--out", str(tmp_path / "deep" / "runs"), "--quiet"]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if not line.startswith("lint: ")]
    assert len(errors) == 1 and errors[0].startswith("lrtempo: error: "), errors
    assert not (tmp_path / "deep").exists()
    (tmp_path / "kept").mkdir()
    assert main(["train", str(cfg), "--out", str(tmp_path / "kept"), "--quiet"]) == 2
    assert list((tmp_path / "kept").iterdir()) == []  # the folder that was there stays; what was made goes


def test_values_of_a_run_directory_lists_its_updates_and_notes_a_schedule_change(tmp_path, capsys):
    """By default the run's own updates 0 .. steps - 1, each the log's lr; a resume's schedule change is noted."""
    from lrtempo.cli import main

    cfg = tmp_path / "c.yaml"
    text = ("name: c\ntask: quadratic\nsteps: 10\ncheckpoint_every: 5\neval_every: 0\n"
            "schedule: {type: warmup_cosine, peak_lr: 0.1, total_steps: 10, warmup_steps: 2}\n")
    cfg.write_text(text)
    assert main(["train", str(cfg), "--out", str(tmp_path), "--quiet"]) == 0
    capsys.readouterr()
    assert main(["values", str(tmp_path / "c")]) == 0
    out, err = capsys.readouterr()
    logged = [line.split(",")[:2] for line in (tmp_path / "c" / "log.csv").read_text().splitlines()]
    assert [line.split(",") for line in out.splitlines()] == logged and err == ""
    cfg.write_text(text.replace("steps: 10\n", "steps: 20\n").replace("peak_lr: 0.1", "peak_lr: 0.2"))
    assert main(["train", str(cfg), "--resume", str(tmp_path / "c"), "--allow-schedule-change", "--quiet"]) == 0
    capsys.readouterr()
    assert main(["values", str(tmp_path / "c")]) == 0
    out, err = capsys.readouterr()
    assert len(out.splitlines()) == 21 and "changed its schedule on a resume at step 10" in err
    assert main(["analyze", str(tmp_path / "c")]) == 0
    err = capsys.readouterr().err  # analyze shows the phases of the schedule in force now: it says so, as values
    assert "changed its schedule on a resume at step 10: the phases shown are those of the schedule in force" in err


@pytest.mark.parametrize("spec, past", [
    ({"type": "constant", "lr": 0.01}, False),  # end 0: it never changes
    ({"type": "warmup", "warmup_steps": 2, "schedule": {"type": "constant", "lr": 0.01}}, False),  # holds forever
    ({"type": "step", "base_lr": 0.01, "step_size": 2, "gamma": 1.0}, False),
    ({"type": "inverse_sqrt", "peak_lr": 0.01, "warmup_steps": 2}, False),  # no end
    ({"type": "warmup_cosine", "peak_lr": 0.01, "total_steps": 4, "warmup_steps": 1}, True),  # ends at 4
    ({"type": "warmup_cosine", "peak_lr": 0.01, "total_steps": 5, "warmup_steps": 1}, False),  # the last update, 5
    ({"type": "warmup_cosine", "unit": "samples", "peak_lr": 0.01, "total_steps": 4 * 32, "warmup_steps": 32},
     True),  # linear's 32 rows an update: update 5 runs at 160 samples, past 128
])
def test_the_past_end_warning_fires_only_past_a_finite_end(tmp_path, spec, past):
    """Six updates (0 .. 5): the warning and summary.json's past_schedule_end say that an update ran past the
    end of a schedule made to end, never for one that holds its value by design."""
    import io

    from lrtempo.train import parse_run_config, train

    stream = io.StringIO()
    config = parse_run_config({"task": "linear", "steps": 6, "eval_every": 0, "monitor": False, "schedule": spec})
    summary = train(config, tmp_path, progress=True, stream=stream)
    warned = [line for line in stream.getvalue().splitlines() if "past the schedule's end" in line]
    assert len(warned) == int(past), stream.getvalue()
    assert json.loads((summary.run_dir / "summary.json").read_text())["past_schedule_end"] is past
    if past and "unit" not in spec:
        assert warned[0].endswith("warning: step 5 is past the schedule's end (4); the rate holds its final value "
                                  f"{build_schedule(spec)(4)!r}")
