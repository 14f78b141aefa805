"""``lrtempo train`` with a tokens schedule and a batch ramp: the log, the rate against tokens seen, SIGKILL and
resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

torch = pytest.importorskip("torch")

from lrtempo.analysis._analyze import analyze_log  # noqa: E402
from lrtempo.config import BatchRamp, build_schedule  # noqa: E402
from lrtempo.monitor._phases import PHASES  # noqa: E402
from lrtempo.train import read_log  # noqa: E402

SCHEDULE = {"type": "warmup_cosine", "unit": "tokens", "peak_lr": 3e-3, "min_lr": 3e-4, "total_steps": 6400,
            "warmup_steps": 640}
#: 4 windows of 16 bytes per micro-batch: 4 samples, 64 tokens; the run's batch is 4 x 4 = 16 samples
TASK = "{d_model: 16, n_layer: 1, n_head: 2, context: 16, batch_size: 4, max_bytes: 200000, val_batches: 1}"
RAMPED = f"""\
name: ramped
task: charlm
task_options: {TASK}
seed: 3
steps: 30
accumulation_steps: 4
batch_ramp: {{start_batch_size: 4, increment: 4, ramp_samples: 160}}
schedule: {json.dumps(SCHEDULE)}
checkpoint_every: 10
eval_every: 10
"""
ENV = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
COMPARED = ("step", "lr", "grad_l2_norm", "loss", "val_loss", "tokens", "samples", "skipped_updates", "phase")


def _lrtempo(*args):
    return subprocess.run([sys.executable, "-m", "lrtempo", *map(str, args)], capture_output=True, text=True, env=ENV)


def _check_rows(rows: list[dict]) -> None:
    """Each row's rate is the schedule at the tokens the updates before it consumed; samples follow the ramp."""
    schedule, ramp = build_schedule(SCHEDULE), BatchRamp(4, 4, 160, 16, 4)
    before = 0
    for n, row in enumerate(rows):
        assert float(row["lr"]) == schedule(before), n
        assert int(row["samples"]) == ramp.samples_before(n + 1) and int(row["tokens"]) == 16 * int(row["samples"])
        before = int(row["tokens"])
    phases = [row["phase"] for row in rows]  # the monitor's phases follow the tokens: the warmup ends at 640
    assert phases.index("early_decay") == next(n for n, row in enumerate(rows) if int(row["tokens"]) > 640)


def test_a_ramp_under_a_tokens_schedule_keeps_the_rate_a_function_of_tokens_seen_and_resumes_exactly(tmp_path):
    cfg = tmp_path / "ramped.yaml"
    cfg.write_text(RAMPED)
    done = _lrtempo("train", cfg, "--out", tmp_path / "a", "--quiet")
    assert done.returncode == 0, done.stderr
    reference = read_log(tmp_path / "a" / "ramped" / "log.csv")
    assert len(reference) == 30
    _check_rows(reference)
    batches = {int(b["samples"]) - int(a["samples"]) for a, b in zip(reference, reference[1:])}
    assert batches == {4, 8, 12, 16}  # the batch ramped through every stage
    analysis = analyze_log(tmp_path / "a" / "ramped")  # offline, the phases by update are the monitor's
    assert [PHASES[i] for i in analysis.labels] == [row["phase"] for row in reference]

    # the same schedule at the run's batch, no ramp: the same rate at the same tokens seen
    flat = tmp_path / "flat.yaml"
    flat.write_text(RAMPED.replace("name: ramped", "name: flat").replace(
        "batch_ramp: {start_batch_size: 4, increment: 4, ramp_samples: 160}\n", ""))
    assert _lrtempo("train", flat, "--out", tmp_path / "a", "--quiet").returncode == 0
    schedule = build_schedule(SCHEDULE)
    flat_rows = read_log(tmp_path / "a" / "flat" / "log.csv")
    assert [float(r["lr"]) for r in flat_rows] == [schedule(256 * n) for n in range(30)]  # 16 x 16 tokens

    proc = subprocess.Popen([sys.executable, "-m", "lrtempo", "train", str(cfg), "--out", str(tmp_path / "b"),
                             "--quiet"], env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log = tmp_path / "b" / "ramped" / "log.csv"
    deadline = time.time() + 120
    while time.time() < deadline:
        if log.exists() and len(log.read_text().splitlines()) > 16:
            break
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert 15 <= len(read_log(log)) < 30, "the run should be killed between checkpoints"
    resumed = _lrtempo("train", "--resume", tmp_path / "b" / "ramped", "--quiet")
    assert resumed.returncode == 0, resumed.stderr
    rows = read_log(log)
    assert [r["step"] for r in rows] == [str(k) for k in range(30)], "no duplicate, torn or missing row"
    for ours, ref in zip(rows, reference):
        assert {c: ours[c] for c in COMPARED} == {c: ref[c] for c in COMPARED}
    summary = json.loads((tmp_path / "b" / "ramped" / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["steps"] == 30 and summary["past_schedule_end"] is False


@pytest.mark.parametrize("edit, message", [
    (lambda t: t.replace("increment: 4", "increment: 8"),
     "batch_ramp.increment: 16 - 4 (the run's batch less start_batch_size) must be a multiple of it (got 8)"),
    (lambda t: t.replace("start_batch_size: 4", "start_batch_size: 6"),
     "batch_ramp.start_batch_size: must be a multiple of 4"),
    (lambda t: t.replace("task: charlm", "task: linear").replace(f"task_options: {TASK}\n", ""),
     "batch_ramp: task 'linear' trains on one fixed batch, so its batch size cannot ramp"),
], ids=["increment", "start", "full-batch"])
def test_a_ramp_the_run_cannot_take_is_refused_before_anything_is_written(tmp_path, edit, message):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(edit(RAMPED))
    out = tmp_path / "runs"
    result = _lrtempo("train", cfg, "--out", out, "--quiet")
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    left = sorted(p.name for p in (out / "ramped").iterdir()) if (out / "ramped").exists() else []
    assert left in ([], [".lock"]) and all(p.stat().st_size == 0 for p in (out / "ramped").glob(".lock"))


def test_a_counted_schedule_needs_the_number_of_updates(tmp_path):
    cfg = tmp_path / "nosteps.yaml"
    cfg.write_text(RAMPED.replace("steps: 30\n", ""))
    result = _lrtempo("train", cfg, "--out", tmp_path / "runs", "--quiet")
    assert result.returncode == 2 and "steps: missing: this schedule counts tokens" in result.stderr
