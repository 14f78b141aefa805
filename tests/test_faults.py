"""Fault injection: kills, signals, concurrent starts, refused resumes and a full disk, each followed by the one
documented recovery command (``lrtempo train --resume RUN_DIR``), give the uninterrupted run's log exactly.

Faults are injected at fixed points of the real CLI running in a subprocess (a wrapper patches a hook in and
sends the signal to its own process there), so each kill lands where it is meant to, on any machine load; the
points in the middle of the run are drawn with a seeded RNG.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("torch")

from lrtempo.cli import main  # noqa: E402
from lrtempo.train import read_log  # noqa: E402

STEPS, EVERY = 30, 7  # checkpoints at 7, 14, 21, 28 and 30
RUN = f"""\
name: q
task: quadratic
seed: 4
steps: {STEPS}
schedule: {{type: warmup_cosine, peak_lr: 0.2, min_lr: 0.002, total_steps: {STEPS}, warmup_steps: 6}}
optimizer: {{name: sgd, momentum: 0.9}}
checkpoint_every: {EVERY}
eval_every: 0
"""
LOGGED = ("step", "lr", "grad_l2_norm", "loss")
ENV = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}

# A fork server: imports torch and lrtempo once, then runs each job (`lrtempo ARGV...` with at most one fault)
# in a forked child process of its own, one after the other, and prints each child's exit status (-N: killed by
# signal N) with the text of the files the job names to read after it. A fault at POINT of update AT sends
# SIGNAL to the child itself there, or pauses it (PAUSE):
#   setup: config.yaml written, no log yet; drawn: the update's batch drawn, nothing applied; loss: inside its
#   forward pass; logged: its row written; checkpointed: the checkpoint of step AT written.
SERVER = r"""
import json, os, signal, sys, time
from pathlib import Path
import torch, torch._dynamo  # the imports every child needs, paid once
from lrtempo.cli import main
from lrtempo.plot import _png
from lrtempo.train import _log, _run, _rundir, _state
from lrtempo.train.tasks import TASKS
_png._pyplot()

def fire(sig):
    if sig == "PAUSE":
        Path(os.environ["FAULT_READY"] + ".tmp").write_text(str(os.getpid()))
        os.replace(os.environ["FAULT_READY"] + ".tmp", os.environ["FAULT_READY"])
        while not Path(os.environ["FAULT_GO"]).exists():
            time.sleep(0.01)
    else:
        os.kill(os.getpid(), getattr(signal, sig))
        time.sleep(0.05)  # a handled signal's handler runs here, as it would for one from outside

def hook(obj, name, when, sig):
    original = getattr(obj, name)
    def wrapped(*args, **kwargs):
        out = original(*args, **kwargs)
        if when(args, kwargs):
            fire(sig)
        return out
    setattr(obj, name, wrapped)

def inject(point, at, sig):
    where = {"next": 0}  # the step of the next update
    def track(name):
        original = getattr(_state.TrainState, name)
        def wrapped(self, *args, **kwargs):
            out = original(self, *args, **kwargs)
            where["next"] = self.step
            return out
        setattr(_state.TrainState, name, wrapped)
    track("update")
    track("load_state_dict")
    when = lambda a, k: where["next"] == at
    target = {"drawn": (TASKS["quadratic"], "micro_batches", when), "loss": (TASKS["quadratic"], "loss", when),
              "logged": (_log.RunLog, "append", lambda a, k: k["step"] == at),
              "checkpointed": (_run, "save_checkpoint", lambda a, k: a[1] == at),
              "setup": (_rundir, "write_schedule_views", lambda a, k: True)}[point]
    hook(*target, sig)

statuses = []
for job in json.loads(sys.argv[1]):
    pid = os.fork()
    if pid == 0:
        with open(job["out"], "w") as out:
            os.dup2(out.fileno(), 1)
            os.dup2(out.fileno(), 2)
        if job["fault"]:
            inject(*job["fault"])
        code = main(job["argv"])
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    after = {name: Path(name).read_text() if Path(name).exists() else None for name in job["read"]}
    statuses.append([os.waitstatus_to_exitcode(status), after])
print(json.dumps(statuses))
"""


def _server(jobs: list[tuple[tuple, tuple | None]], folder: Path, env: dict | None = None, wait: bool = True,
            read: tuple[Path, ...] = ()) -> list[tuple[int, str, dict]] | subprocess.Popen:
    """Run ``(argv, fault)`` jobs in the fork server: each one's exit status, output and the ``read`` files."""
    specs = [{"argv": [*map(str, argv), "--quiet"], "fault": fault, "out": str(folder / f"job{i}.out"),
              "read": [str(p) for p in read]} for i, (argv, fault) in enumerate(jobs)]
    cmd = [sys.executable, "-c", SERVER, json.dumps(specs)]
    proc = subprocess.Popen(cmd, env={**ENV, **(env or {})}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    if not wait:
        return proc
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    return [(code, Path(spec["out"]).read_text(), {Path(k): v for k, v in after.items()})
            for (code, after), spec in zip(json.loads(out), specs)]


def _rows(run_dir: Path) -> list[tuple[str, ...]]:
    return [tuple(r[c] for c in LOGGED) for r in read_log(run_dir / "log.csv")]


def _snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under ``folder`` with its bytes and mtime (a refused command must change neither)."""
    return {str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _main(capsys, *args: object) -> tuple[int, str, str]:
    """The CLI in this process (for commands that need no signal): exit status, stdout, stderr."""
    capsys.readouterr()
    code = main([*map(str, args), "--quiet"])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict:
    """The uninterrupted run: its log rows, summary, events and config file."""
    folder = tmp_path_factory.mktemp("faults")
    cfg = folder / "q.yaml"
    cfg.write_text(RUN)
    assert main(["train", str(cfg), "--out", str(folder / "ref"), "--quiet"]) == 0
    run = folder / "ref" / "q"
    rows = _rows(run)
    assert [int(r[0]) for r in rows] == list(range(STEPS))
    return {"cfg": cfg, "run": run, "rows": rows, "summary": json.loads((run / "summary.json").read_text()),
            "events": (run / "events.jsonl").read_text() if (run / "events.jsonl").exists() else ""}


def _assert_same_run(run: Path, reference: dict) -> None:
    rows = _rows(run)
    assert [int(r[0]) for r in rows] == list(range(STEPS)), "a row is missing or repeated"
    assert rows == reference["rows"], "the resumed run's log differs from the uninterrupted run's"
    summary = json.loads((run / "summary.json").read_text())
    assert {k: v for k, v in summary.items() if k != "wall_seconds"} == \
        {k: v for k, v in reference["summary"].items() if k != "wall_seconds"}
    events = (run / "events.jsonl").read_text() if (run / "events.jsonl").exists() else ""
    assert events == reference["events"]
    assert not list((run / "checkpoints").glob(".*.tmp")), "a checkpoint's temp file was left behind"


def _chain_faults() -> list[tuple[str, int, str]]:
    rng = random.Random(20260)
    mid = sorted(rng.sample(range(EVERY + 1, 3 * EVERY - 1), 3))
    return [
        ("setup", 0, "SIGKILL"),                   # config.yaml written, no log.csv yet
        ("logged", rng.randrange(1, EVERY - 1), "SIGKILL"),  # log.csv has rows, no checkpoint yet
        ("drawn", mid[0], "SIGINT"),               # a batch drawn for an update not yet applied
        ("loss", mid[1], "SIGTERM"),               # inside the forward pass
        ("drawn", mid[2], "SIGKILL"),
        ("logged", 3 * EVERY - 1, "SIGINT"),       # right before a periodic checkpoint
        ("checkpointed", STEPS, "SIGKILL"),        # after the last checkpoint, before summary.json
    ]


@pytest.fixture(scope="module")
def faulted(tmp_path_factory, reference) -> dict:
    """Every faulted process of the tests below, run by one fork server (so torch is imported once)."""
    folder = tmp_path_factory.mktemp("faulted")
    chain, second, refused = folder / "chain" / "q", folder / "second" / "q", folder / "refused" / "q"
    faults = _chain_faults()
    start = ("train", reference["cfg"], "--out")
    jobs = [(start + (chain.parent,) if i == 0 else ("train", "--resume", chain), f) for i, f in enumerate(faults)]
    jobs += [(start + (second.parent,), ("logged", EVERY + 3, "SIGKILL")),
             (start + (refused.parent,), ("logged", 2 * EVERY + 2, "SIGTERM"))]
    results = _server(jobs, folder, read=(chain / "summary.json", chain / "log.csv"))
    return {"chain": (chain, faults, results[:len(faults)]), "second": (second, results[-2]),
            "refused": (refused, results[-1])}


def test_every_fault_then_resume_gives_the_uninterrupted_run(faulted, reference, capsys):
    """A chain of faults on one run; each process is the recovery command of the fault before it."""
    run, faults, results = faulted["chain"]
    for fault, (code, output, after) in zip(faults, results):
        sig = getattr(signal, fault[2])
        if sig == signal.SIGKILL:
            assert code == -signal.SIGKILL, (fault, output)
            continue
        assert code == 128 + sig, (fault, output)
        line = output.strip()
        assert "\n" not in line and f"stopped by {fault[2]}" in line, line
        assert f"`lrtempo train --resume {run}`" in line, line
        summary = json.loads(after[run / "summary.json"])
        assert summary["status"] == "interrupted" and summary["signal"] == fault[2]
        assert summary["final_loss"] is not None
        rows = after[run / "log.csv"].count("\n") - 1
        assert summary["steps"] == rows, "the checkpoint is not at an update boundary"
    assert not (run / "summary.json").exists() or json.loads((run / "summary.json").read_text())["steps"] < STEPS
    assert _main(capsys, "train", "--resume", run)[:2] == (0, f"{run}: already finished ({STEPS} updates); nothing "
                                                             f"to do (extend it with `lrtempo train --resume {run} "
                                                             f"--steps N`, N > {STEPS})\n")
    _assert_same_run(run, reference)


def test_a_finished_run_resumes_to_nothing_and_extends_with_steps(tmp_path, reference, capsys):
    run = tmp_path / "q"
    shutil.copytree(reference["run"], run)
    before = _snapshot(run)
    code, out, _ = _main(capsys, "train", "--resume", run)
    assert code == 0 and out.count("\n") == 1 and "already finished" in out
    assert _snapshot(run) == before, "a resume of a finished run changed a file"
    code, _, err = _main(capsys, "train", reference["cfg"], "--out", tmp_path)
    assert code == 2 and _snapshot(run) == before
    command = err.strip().splitlines()[-1].split("`")[1]
    assert command == f"lrtempo train --resume {run} --steps N"
    assert _main(capsys, *command.replace("N", str(STEPS + 5)).split()[1:])[0] == 0  # the command it gave
    rows = _rows(run)
    assert rows[:STEPS] == reference["rows"] and [int(r[0]) for r in rows] == list(range(STEPS + 5))
    assert all(float(r[1]) == 0.002 for r in rows[STEPS:]), "past the schedule's end the rate holds its floor"
    summary = json.loads((run / "summary.json").read_text())
    assert summary["steps"] == STEPS + 5 and summary["status"] == "completed"
    assert _main(capsys, "train", "--resume", run)[0] == 0  # the extension is now the run's length
    assert json.loads((run / "run.json").read_text())["steps_changes"] == [
        {"step": STEPS, "from": STEPS, "to": STEPS + 5}]


def test_a_second_start_is_told_the_command_that_continues_the_run(faulted, reference, capsys):
    run, (code, _, _) = faulted["second"]
    assert code == -signal.SIGKILL
    before = _snapshot(run)
    code, _, err = _main(capsys, "train", reference["cfg"], "--out", run.parent)
    assert code == 2 and _snapshot(run) == before
    command = err.strip().splitlines()[-1].split("`")[1]
    assert command == f"lrtempo train --resume {run}"
    assert _main(capsys, *command.split()[1:])[0] == 0
    _assert_same_run(run, reference)


def test_concurrent_starts_are_refused_at_once_and_change_nothing(tmp_path, reference, capsys):
    ready, go = tmp_path / "ready", tmp_path / "go"
    first = _server([(("train", reference["cfg"], "--out", tmp_path), ("logged", 3, "PAUSE"))], tmp_path,
                    env={"FAULT_READY": str(ready), "FAULT_GO": str(go)}, wait=False)
    try:
        deadline = time.monotonic() + 60
        while not ready.exists() and first.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert ready.exists(), first.stderr.read() if first.poll() is not None else "the first run never paused"
        run, holder = tmp_path / "q", ready.read_text()
        before = _snapshot(run)
        for argv in (["train", str(reference["cfg"]), "--out", str(tmp_path)], ["train", "--resume", str(run)]):
            assert main([*argv, "--quiet"]) == 2
            err = capsys.readouterr().err.strip().splitlines()
            assert err == [f"lrtempo: error: {run} is in use by another lrtempo process (pid {holder}): "
                           "wait for it to end or stop it, then try again"]
            assert _snapshot(run) == before, f"{argv} changed the run directory"
    finally:
        go.touch()
        out, err = first.communicate(timeout=120)
    assert first.returncode == 0 and json.loads(out)[0][0] == 0, err
    _assert_same_run(run, reference)


def test_refused_resumes_write_nothing(faulted, reference, capsys):
    run, (code, output, _) = faulted["refused"]
    assert code == 128 + signal.SIGTERM, output
    tmp_path = run.parent
    other = tmp_path / "other.yaml"
    saved = (run / "config.yaml").read_text()
    flag = "pass --allow-schedule-change to continue under it"
    cases = [  # (arguments, (a file to write first, its text), what the one line must say)
        (["--resume", run], (run / "config.yaml", saved.replace("peak_lr: 0.2", "peak_lr: 0.3")),
         ("config.yaml (edited since the run began) differs from the schedule the run was trained with up to "
          "step 17", flag)),
        ([other, "--resume", run], (other, RUN.replace("peak_lr: 0.2", "peak_lr: 0.3")),
         ("schedule: CONFIG differs from the schedule the run was trained with up to step 17", flag)),
        ([other, "--resume", run], (other, RUN.replace("seed: 4", "seed: 4\ntask_options: {w0: 2.0}")),
         ("task_options: CONFIG has {'w0': 2.0} but the run was trained with {}",)),
        (["--resume", run, "--steps", "10"], None, ("steps: 10 is fewer than the 17 updates",)),
        (["--resume", tmp_path], None, ("holds no lrtempo run (no config.yaml)",)),
    ]
    for argv, edit, expected in cases:
        if edit:
            edit[0].write_text(edit[1])
        before, parent = _snapshot(run), sorted(p.name for p in tmp_path.iterdir())
        assert main(["train", *map(str, argv), "--quiet"]) == 2
        err = capsys.readouterr().err.splitlines()
        assert len(err) == 1 and all(e in err[0] for e in expected), err  # one line: the linter waits for a start
        assert "allow_schedule_change=True" not in err[0]
        assert _snapshot(run) == before, f"the refused {argv} changed the run directory"
        assert sorted(p.name for p in tmp_path.iterdir()) == parent
        (run / "config.yaml").write_text(saved)
    assert _main(capsys, "train", "--resume", run)[0] == 0
    _assert_same_run(run, reference)


def test_a_second_signal_stops_at_once_and_the_resume_is_still_exact(tmp_path, reference, monkeypatch, capsys):
    from lrtempo.train import _state

    update = _state.TrainState.update

    def second_signal(self, *args, **kwargs):  # what the handler raises on a second signal, mid-update
        if self.step == EVERY + 4:
            raise KeyboardInterrupt
        return update(self, *args, **kwargs)

    monkeypatch.setattr(_state.TrainState, "update", second_signal)
    code, _, err = _main(capsys, "train", reference["cfg"], "--out", tmp_path)
    run = tmp_path / "q"
    assert code == 130 and err.strip().splitlines()[-1] == (
        f"lrtempo: {run}: stopped at once by a second signal; continue from its latest checkpoint with "
        f"`lrtempo train --resume {run}`")
    assert not (run / "summary.json").exists() and len(read_log(run / "log.csv")) == EVERY + 4
    monkeypatch.undo()
    assert _main(capsys, "train", "--resume", run)[0] == 0
    _assert_same_run(run, reference)


def test_a_full_disk_leaves_no_partial_checkpoint(tmp_path, reference, monkeypatch, capsys):
    import torch

    from lrtempo.train import _checkpoint

    real_save = torch.save

    def full_disk(obj, fh, *a, **k):
        if obj["step"] == 2 * EVERY:
            fh.write(b"\0" * 4096)  # part of the file made it out
            raise OSError(28, "No space left on device")
        return real_save(obj, fh, *a, **k)

    monkeypatch.setattr(_checkpoint.torch, "save", full_disk)
    assert main(["train", str(reference["cfg"]), "--out", str(tmp_path), "--quiet"]) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    run = tmp_path / "q"
    assert f"could not write the checkpoint of step {2 * EVERY}" in err and "No space left on device" in err
    assert f"`lrtempo train --resume {run}`" in err
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == [f"step-{EVERY:08d}.pt"]
    assert not (run / "summary.json").exists()
    monkeypatch.undo()
    assert _main(capsys, "train", "--resume", run)[0] == 0
    _assert_same_run(run, reference)


def test_a_signal_from_outside_at_any_moment_stops_at_an_update_boundary(tmp_path, capsys):
    """SIGINT sent by another process at whatever moment it lands: the resumed run is the uninterrupted one."""
    cfg = tmp_path / "long.yaml"
    cfg.write_text(RUN.replace(f"steps: {STEPS}", "steps: 600").replace(f"total_steps: {STEPS}", "total_steps: 600")
                   .replace(f"checkpoint_every: {EVERY}", "checkpoint_every: 200") + "monitor: false\n")
    assert _main(capsys, "train", cfg, "--out", tmp_path / "ref")[0] == 0
    reference = _rows(tmp_path / "ref" / "q")
    run = tmp_path / "b" / "q"
    proc = subprocess.Popen([sys.executable, "-m", "lrtempo", "train", str(cfg), "--out", str(run.parent), "--quiet"],
                            env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    log, deadline = run / "log.csv", time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:  # past the first checkpoint, then at once
        if log.exists() and log.stat().st_size > 200 * 60:
            break
        time.sleep(0.005)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGINT, err
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "interrupted" and summary["steps"] == len(_rows(run)) < 600
    assert _main(capsys, "train", "--resume", run)[0] == 0
    rows = _rows(run)
    assert [int(r[0]) for r in rows] == list(range(600)) and rows == reference
