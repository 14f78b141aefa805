"""Reduce-on-plateau in ``lrtempo train``: the reductions recorded in the run directory and the checkpoint,
an exact resume after a SIGKILL, and ``lrtempo values RUN_DIR`` reproducing the log's lr column."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

torch = pytest.importorskip("torch")

from lrtempo.rundir import RunDir  # noqa: E402
from lrtempo.train import load_checkpoint, read_log  # noqa: E402

ENV = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}

# every evaluation after the first is no rise of the validation loss (it falls): a reduction at each one
TINY = """\
name: tiny
task: charlm
task_options: {d_model: 32, n_layer: 1, n_head: 2, context: 32, batch_size: 8, max_bytes: 300000, val_batches: 2}
seed: 3
steps: 40
schedule:
  type: plateau
  base: {type: warmup_cosine, peak_lr: 3e-3, min_lr: 3e-4, total_steps: 40, warmup_steps: 8}
  mode: max
  patience: 0
  factor: 0.5
optimizer: {name: adamw, betas: [0.9, 0.95], weight_decay: 0.1}
grad_clip: 1.0
checkpoint_every: 10
eval_every: 5
"""

QUAD = """\
name: quad
task: quadratic
seed: 2
steps: 40
schedule:
  type: plateau
  base: {type: cosine, peak_lr: 0.2, decay_steps: 40, min_lr: 0.002}
  monitor: loss
  patience: 0
  mode: max
  factor: 0.7
  threshold: 0.05
optimizer: {name: sgd, momentum: 0.9}
checkpoint_every: 7
eval_every: 5
"""

COMPARED = ("step", "lr", "grad_l2_norm", "loss", "val_loss", "tokens", "skipped_updates")


def _lrtempo(*args):
    return subprocess.run([sys.executable, "-m", "lrtempo", *map(str, args)], capture_output=True, text=True,
                          env=ENV)


def _main(capsys, *args):
    from lrtempo.cli import main

    capsys.readouterr()
    code = main([*map(str, args)])
    return (code, *capsys.readouterr())


def _plateau_events(run):
    lines = (run / "events.jsonl").read_text().splitlines()
    return [e for e in map(json.loads, lines) if e["kind"] == "plateau"]


def _values_equal_the_log(run, capsys, steps=40):
    """``lrtempo values RUN_DIR`` prints the log's lr column: the same text, so the same bits."""
    code, out, err = _main(capsys, "values", run, "--steps", f"0:{steps}")
    assert (code, err) == (0, "")
    applied = [tuple(line.split(",")) for line in out.splitlines()[1:]]
    assert applied == [(r["step"], r["lr"]) for r in read_log(run / "log.csv")]


def test_sigkill_and_resume_of_a_plateau_run_equals_the_uninterrupted_run(tmp_path, capsys):
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(TINY)
    done = _lrtempo("train", cfg, "--out", tmp_path / "a", "--quiet")
    assert done.returncode == 0, done.stderr
    ref = tmp_path / "a" / "tiny"
    reductions = RunDir(ref).read_reductions()
    assert [r["step"] for r in reductions] == [10, 15, 20, 25, 30, 35, 40]
    assert [e["values"]["from_step"] for e in _plateau_events(ref)] == [10, 15, 20, 25, 30, 35, 40]
    assert [e["step"] for e in _plateau_events(ref)] == [9, 14, 19, 24, 29, 34, 39]  # the evaluation's row
    rows = read_log(ref / "log.csv")
    assert float(rows[10]["lr"]) < float(rows[9]["lr"]) / 1.9  # the base falls slowly there: the halving shows
    _values_equal_the_log(ref, capsys)

    proc = subprocess.Popen([sys.executable, "-m", "lrtempo", "train", str(cfg), "--out", str(tmp_path / "b"),
                             "--quiet"], env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    run = tmp_path / "b" / "tiny"
    deadline = time.time() + 180
    while time.time() < deadline:
        if (run / "log.csv").exists() and len((run / "log.csv").read_text().splitlines()) > 26:
            break
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert 25 <= len(read_log(run / "log.csv")) < 40, "the run should be killed between checkpoints"
    saved = load_checkpoint(RunDir(run).latest_checkpoint())
    assert saved["train_state"]["scheduler"]["plateau"]["reductions"][-1][0] == saved["step"]  # decided, kept
    resumed = _lrtempo("train", "--resume", run, "--quiet")
    assert resumed.returncode == 0, resumed.stderr
    ours, theirs = read_log(run / "log.csv"), read_log(ref / "log.csv")
    assert [r["step"] for r in ours] == [str(k) for k in range(40)]
    assert [{c: r[c] for c in COMPARED} for r in ours] == [{c: r[c] for c in COMPARED} for r in theirs]
    assert (run / "reductions.jsonl").read_bytes() == (ref / "reductions.jsonl").read_bytes()
    assert _plateau_events(run) == _plateau_events(ref)
    _values_equal_the_log(run, capsys)


def test_the_training_loss_window_resumes_exactly_across_a_checkpoint(tmp_path, capsys, monkeypatch):
    """``monitor: loss`` watches the mean training loss since the previous evaluation; a checkpoint between
    two evaluations (every 7 updates, evaluations every 5) holds the sum so far."""
    cfg = tmp_path / "quad.yaml"
    cfg.write_text(QUAD)
    assert _main(capsys, "train", cfg, "--out", tmp_path / "a", "--quiet")[0] == 0
    ref = tmp_path / "a" / "quad"
    events = _plateau_events(ref)
    assert events and all(e["values"]["monitor"] == "loss" for e in events)
    rows = read_log(ref / "log.csv")
    first = events[0]["step"]
    mean = sum(float(r["loss"]) for r in rows[first - 4:first + 1]) / 5
    assert events[0]["values"]["value"] == pytest.approx(mean, rel=1e-12)

    from lrtempo.train import _run

    record = _run._Session._record

    def killed_after_row_30(self, result):  # a kill right after update 30's row: the checkpoint of 28 stands
        record(self, result)
        if result.step == 30:
            raise KeyboardInterrupt

    monkeypatch.setattr(_run._Session, "_record", killed_after_row_30)
    assert _main(capsys, "train", cfg, "--out", tmp_path / "b", "--quiet")[0] == 130
    monkeypatch.setattr(_run._Session, "_record", record)
    run = tmp_path / "b" / "quad"
    assert load_checkpoint(RunDir(run).latest_checkpoint())["plateau_watch"] == {
        "loss_sum": pytest.approx(sum(float(r["loss"]) for r in rows[25:28]), rel=1e-12), "updates": 3}
    assert _main(capsys, "train", "--resume", run, "--quiet")[0] == 0
    assert [{c: r[c] for c in COMPARED} for r in read_log(run / "log.csv")] == [{c: r[c] for c in COMPARED}
                                                                               for r in rows]
    assert _plateau_events(run) == events and [e for e in events if e["step"] > 28]
    assert (run / "reductions.jsonl").read_bytes() == (ref / "reductions.jsonl").read_bytes()
    _values_equal_the_log(run, capsys)


@pytest.mark.parametrize(("edit", "message"), [
    (lambda t: t.replace("eval_every: 5", "eval_every: 0"),
     "eval_every: type: plateau watches loss after each evaluation, and eval_every is 0"),
    (lambda t: t.replace("monitor: loss", "monitor: val_loss"),
     "schedule.monitor: 'val_loss' needs a task with a validation set and quadratic has none"),
    (lambda t: t[:t.index("schedule:")] + "schedule: {type: warmup, warmup_steps: 3, schedule: {type: plateau, "
     "base: {type: constant, lr: 0.1}, monitor: loss}}\n" + t[t.index("optimizer:"):],
     "schedule: type: plateau must be the outermost schedule (here it is inside type: warmup)"),
])
def test_a_plateau_rule_the_run_cannot_follow_is_refused_before_anything_is_written(tmp_path, capsys, edit,
                                                                                     message):
    cfg = tmp_path / "quad.yaml"
    cfg.write_text(edit(QUAD))
    code, _, err = _main(capsys, "train", cfg, "--out", tmp_path / "runs", "--quiet")
    assert code == 2 and err.count("\n") == 1 and message in err, err
    assert not (tmp_path / "runs" / "quad" / "config.yaml").exists()


def test_values_of_a_run_directory_applies_its_record_and_refuses_a_damaged_one(tmp_path, capsys):
    run = RunDir(tmp_path / "run")
    run.path.mkdir()
    run.write_config("schedule: {type: plateau, base: {type: constant, lr: 0.1}, factor: 0.5}\n")
    code, out, _ = _main(capsys, "values", run.path, "--steps", "0:4")
    assert (code, out) == (0, "step,lr\n0,0.1\n1,0.1\n2,0.1\n3,0.1\n")
    run.record_reduction({"step": 2, "factor": 0.5})
    (run.reductions).write_text(run.reductions.read_text() + '{"step": 3, "fac')  # a kill tore the last line
    code, out, _ = _main(capsys, "values", run.path, "--steps", "0:4")
    assert (code, out) == (0, "step,lr\n0,0.1\n1,0.1\n2,0.05\n3,0.05\n")
    code, out, _ = _main(capsys, "show", run.config)  # the config.yaml of a run directory is the run's too
    assert code == 0 and "0.05" in out
    run.reductions.write_text('{"step": 2, "factor": 0.5}\n{"step": 1, "factor": 0.5}\n')
    code, out, err = _main(capsys, "values", run.path)
    assert code == 1 and out == "" and err.count("\n") == 1
    assert "reductions.jsonl: reductions must be in order of step (step 1 after 2)" in err
    run.reductions.write_text('{"step": 2, "factor": 0.5}\nnot json\n')
    code, _, err = _main(capsys, "values", run.path)
    assert code == 1 and "reductions.jsonl: line 2 is not a reduction" in err


def test_resume_cuts_the_record_back_to_the_checkpoint_keeping_its_own_step(tmp_path):
    run = RunDir(tmp_path)
    for step in (10, 20, 20, 30):
        run.record_reduction({"step": step, "factor": 0.5})
    run.cut_back(20)  # the checkpoint of step 20 holds the reductions decided before it: those at 20 too
    assert [r["step"] for r in run.read_reductions()] == [10, 20, 20]
    run.clear_steps()
    assert not run.reductions.exists()


def _torchrun():
    import shutil
    from pathlib import Path

    return shutil.which("torchrun") or (str(Path(sys.executable).with_name("torchrun"))
                                        if Path(sys.executable).with_name("torchrun").exists() else None)


@pytest.mark.skipif(_torchrun() is None, reason="torchrun not found")
def test_under_ddp_every_rank_makes_the_same_reductions(tmp_path, capsys):
    """Two processes on half batches each follow one process on the full batch: the same reductions, the same
    rates and (had a rank not reduced, its weights would drift from the others') the same losses."""
    cfg = tmp_path / "ddp.yaml"
    cfg.write_text("name: ddp\ntask: linear\ntask_options: {batch_size: 32}\nseed: 5\nsteps: 24\n"
                   "schedule: {type: plateau, base: {type: constant, lr: 0.05}, monitor: loss, mode: max, "
                   "patience: 0, factor: 0.5}\ncheckpoint_every: 10\neval_every: 4\n")
    env = {**ENV, "LRTEMPO_BACKEND": "gloo"}
    ddp = subprocess.run([_torchrun(), "--nproc_per_node", "2", "--master_port", "29527", "-m", "lrtempo", "train",
                          str(cfg), "--out", str(tmp_path / "two"), "--quiet"],
                         capture_output=True, text=True, env=env, timeout=300)
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    single = _lrtempo("train", cfg, "--out", tmp_path / "one", "--quiet")
    assert single.returncode == 0, single.stderr
    two, one = tmp_path / "two" / "ddp", tmp_path / "one" / "ddp"
    assert [r["step"] for r in RunDir(two).read_reductions()] == [8, 12, 16, 20, 24]
    assert (two / "reductions.jsonl").read_bytes() == (one / "reductions.jsonl").read_bytes()
    for a, b in zip(read_log(two / "log.csv"), read_log(one / "log.csv")):
        assert a["lr"] == b["lr"]
        assert float(a["loss"]) == pytest.approx(float(b["loss"]), rel=1e-5)
    _values_equal_the_log(two, capsys, 24)



class _OtherRank:
    """What a rank other than 0 sees of ``torch.distributed``: a broadcast gives rank 0's object."""

    rank, main = 1, False

    def __init__(self, from_rank0):
        self.from_rank0, self.sent = list(from_rank0), []

    def broadcast(self, obj):
        self.sent.append(obj)
        return self.from_rank0.pop(0)


def test_a_rank_without_the_validation_loss_follows_rank_0s():
    from lrtempo.schedules import Plateau
    from lrtempo.torch import LRTempoScheduler
    from lrtempo.train import parse_run_config
    from lrtempo.train._plateau import PlateauWatch

    config = parse_run_config({"task": "charlm", "steps": 20, "eval_every": 5,
                               "schedule": {"type": "constant", "lr": 0.1}})
    rule = Plateau(config.schedule, patience=0, factor=0.5)
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    sched = LRTempoScheduler(opt, rule)
    rank1 = _OtherRank([3.0, 2.0, 2.5, 2.5])
    watch = PlateauWatch(config, rule, None, None)
    for k in range(20):
        opt.step(), sched.step()
        watch.after_update(sched, k, 1.0, None, rank1)
    assert rank1.sent == [None] * 4  # only at the evaluations, and what it had: nothing
    assert [r.step for r in sched.schedule.reductions] == [15, 20]


def test_a_race_refuses_a_plateau_contender():
    """A race never evaluates mid-run, so a plateau schedule there would silently race as its bare base."""
    from lrtempo.config import ConfigError, build_schedule
    from lrtempo.train._race import Contender, fit_contenders

    plateau = build_schedule({"type": "plateau", "base": {"type": "constant", "lr": 0.1}})
    with pytest.raises(ConfigError, match="schedule 'p' reduces on plateau, which needs evaluations a race"):
        fit_contenders([Contender("p", plateau)], 100, "updates", fit=False, warn=print)
