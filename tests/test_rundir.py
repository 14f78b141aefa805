"""RunDir: the one owner of a run directory's files, used by lrtempo train, the monitor, analyze, report and a
plain loop; run.json's record of what reproducing a run needs."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from lrtempo.rundir import (
    LAYER_COLUMNS,
    SCHEMA_COLUMNS,
    RunDir,
    RunDirInUse,
    append_event,
    environment,
    git_state,
    truncate_step_file,
)

ROOT = Path(__file__).resolve().parents[1]
QUAD = """name: quad
task: quadratic
seed: 3
steps: 12
schedule: {type: warmup_cosine, peak_lr: 0.2, min_lr: 0.002, total_steps: 12, warmup_steps: 2}
optimizer: {name: adamw}
checkpoint_every: 4
"""


# -- the files and their names ----------------------------------------------------------------------------------------


def test_every_file_of_a_run_is_placed_in_the_folder(tmp_path):
    run = RunDir(str(tmp_path))
    assert run.path == tmp_path and os.fspath(run) == str(tmp_path)
    assert {n: getattr(run, n).name for n in ("config", "meta", "log", "events", "layers", "summary", "checkpoints",
                                              "lock_file", "schedule_text", "schedule_png", "analysis_png",
                                              "report")} == {
        "config": "config.yaml", "meta": "run.json", "log": "log.csv", "events": "events.jsonl",
        "layers": "layers.csv", "summary": "summary.json", "checkpoints": "checkpoints", "lock_file": ".lock",
        "schedule_text": "schedule.txt", "schedule_png": "lr_schedule.png", "analysis_png": "analysis.png",
        "report": "report.html"}
    assert run.checkpoint(40) == tmp_path / "checkpoints" / "step-00000040.pt"
    assert run.config_before(10) == tmp_path / "config.before-step-10.yaml"
    with pytest.raises(AttributeError):
        run.path = tmp_path / "other"  # frozen


def test_checkpoints_are_listed_in_step_order_and_a_killed_write_is_cleared(tmp_path):
    run = RunDir(tmp_path)
    assert run.checkpoint_files() == [] and run.latest_checkpoint() is None
    run.checkpoints.mkdir()
    for step in (100, 8, 40):
        run.checkpoint(step).write_bytes(b"")
    temp = run.checkpoints / ".step-00000104.pt.1a2b3c4d.tmp"  # what a kill in the middle of a write leaves
    temp.write_bytes(b"half")
    (run.checkpoints / "notes.txt").write_text("kept")
    assert [p.name for p in run.checkpoint_files()] == ["step-00000008.pt", "step-00000040.pt", "step-00000100.pt"]
    run.remove_stale_temps()
    assert not temp.exists() and (run.checkpoints / "notes.txt").exists() and len(run.checkpoint_files()) == 3


def test_meta_and_summary_read_back_and_an_unreadable_one_is_empty(tmp_path):
    run = RunDir(tmp_path)
    assert run.read_meta() == {} and run.read_summary() == {}
    run.write_meta({"spec_hash": "abc"})
    run.write_summary({"status": "completed"})
    assert run.read_meta() == {"spec_hash": "abc"} and run.read_summary() == {"status": "completed"}
    for text in ("{torn", "[1, 2]"):
        run.meta.write_text(text)
        assert run.read_meta() == {}


def _strict(text: str):
    """``json.loads`` refusing NaN and Infinity, which RFC 8259 JSON does not have."""
    def refuse(token):
        raise ValueError(f"not strict JSON: {token}")
    return json.loads(text, parse_constant=refuse)


def test_every_json_file_of_a_run_is_strict_with_non_finite_numbers_as_null(tmp_path):
    np = pytest.importorskip("numpy")
    run = RunDir(tmp_path)
    values = {"final_loss": float("nan"), "best": [float("inf"), 1.5], "n": {"x": np.float32("-inf")}}
    nulls = {"final_loss": None, "best": [None, 1.5], "n": {"x": None}}
    run.write_summary(values)
    run.write_meta(values)
    append_event(run.events, {"step": 3, "kind": "LOSS_DIVERGENCE", **values})
    assert _strict(run.summary.read_text()) == nulls and _strict(run.meta.read_text()) == nulls
    assert _strict(run.events.read_text()) == {"step": 3, "kind": "LOSS_DIVERGENCE", **nulls}


def test_one_writer_at_a_time(tmp_path):
    run = RunDir(tmp_path / "new")
    with run.lock() as held:
        held.claim()
        with pytest.raises(RunDirInUse, match=rf"in use by another lrtempo process \(pid {os.getpid()}\)"):
            run.lock()
    run.lock().release()  # released: free again


# -- the one truncation on resume ---------------------------------------------------------------------------------


def _layer_step(line: str) -> int:
    return int(line.split(",", 1)[0])


@pytest.mark.parametrize(("body", "kept"), [
    ("0,a\n1,a\n2,a\n3,a\n", "0,a\n1,a\n"),           # the rows at and past the step go
    ("0,a\n1,a\n", "0,a\n1,a\n"),                     # all before it: unchanged
    ("0,a\n1,a\n2", "0,a\n1,a\n"),                    # a torn last line (no newline) goes even before the step
    ("0,a\n1,a", "0,a\n"),
    ("0,a\nx,a\n1,a\n", "0,a\n"),                     # an unreadable line ends what is kept
    ("", ""),
])
def test_a_step_file_is_cut_back_to_the_resume_step(tmp_path, body, kept):
    path = tmp_path / "layers.csv"
    path.write_text("step,layer\n" + body)
    rows = truncate_step_file(path, 2, header=True, step_of=_layer_step)
    assert path.read_text() == "step,layer\n" + kept and rows == kept.count("\n")


def test_an_unchanged_step_file_is_not_rewritten_and_a_missing_one_stays_missing(tmp_path):
    path = tmp_path / "events.jsonl"
    assert truncate_step_file(path, 3, header=False, step_of=_layer_step) == 0 and not path.exists()
    path.write_text("0,a\n1,a\n")
    os.utime(path, ns=(1, 1))
    truncate_step_file(path, 3, header=False, step_of=_layer_step)
    assert path.stat().st_mtime_ns == 1


def test_cut_back_reads_each_file_by_its_own_step(tmp_path):
    run = RunDir(tmp_path)
    events = [{"step": 1, "kind": "a"}, {"step": 4, "kind": "b"}, {"step": [5], "kind": "odd"},
              {"step": 9, "kind": "c"}]
    for e in events:  # [5] is not a step: it ends what is kept, like a torn line
        append_event(run.events, e)
    run.layers.write_text(",".join(LAYER_COLUMNS) + "\n0,w,1\n4,w,1\n9,w,1\n")
    run.cut_back(9)
    assert [json.loads(line) for line in run.events.read_text().splitlines()] == events[:2]
    assert run.layers.read_text().splitlines()[1:] == ["0,w,1", "4,w,1"]
    run.cut_back(4)
    assert [json.loads(line)["step"] for line in run.events.read_text().splitlines()] == [1]


def test_the_log_is_cut_back_by_the_same_rule_and_checks_its_header(tmp_path):
    run = RunDir(tmp_path)
    log = run.open_log(("val_loss",))
    for step in range(5):
        log.append(step=step, lr=0.5, grad_l2_norm=1.0, loss=float(step), val_loss=None)
    log.close()
    with open(run.log, "a") as fh:
        fh.write("5,0.5,1.0")  # torn by a kill
    log = run.resume(3, ("val_loss",))
    assert log.rows == 3
    log.append(step=3, lr=0.25, grad_l2_norm=1.0, loss=3.0)
    log.close()
    assert run.log.read_text().splitlines() == [
        "step,lr,grad_l2_norm,loss,val_loss", "0,0.5,1.0,0.0,", "1,0.5,1.0,1.0,", "2,0.5,1.0,2.0,", "3,0.25,1.0,3.0,"]
    with pytest.raises(ValueError, match="is not this run's"):
        run.open_log(("tokens",), resume_step=1)
    with open(run.log, "a") as fh:
        fh.write("4,0.5,1.0,4.0\n")  # a row of the wrong width: not read as a step
    assert run.open_log(("val_loss",), resume_step=9).rows == 4


# -- a run of your own loop -----------------------------------------------------------------------------------------


def test_start_writes_the_record_in_order_and_refuses_a_second_run(tmp_path):
    run = RunDir(tmp_path / "mine")
    with run.lock():
        log = run.start("schedule: {type: constant, lr: 0.1}\n", extra_columns=("tokens",), meta={"world_size": 1},
                        env={"device": "cpu"})
        log.close()
        meta = run.read_meta()
        assert meta == {"world_size": 1, "log_schema_version": 1, "log_columns": [*SCHEMA_COLUMNS, "tokens"],
                        "environment": {"device": "cpu"}}
        assert run.log.read_text() == ",".join(meta["log_columns"]) + "\n"
        with pytest.raises(FileExistsError, match="already holds a run"):
            run.start("schedule: {type: constant, lr: 0.2}\n")
    assert "lr: 0.1" in run.config.read_text()


def test_the_plain_loop_example_writes_a_run_that_analyze_and_report_read(tmp_path, capsys):
    pytest.importorskip("torch")
    from lrtempo.cli import main

    run_dir = tmp_path / "plain"
    script = ROOT / "examples" / "loops" / "plain_loop.py"
    done = subprocess.run([sys.executable, str(script), str(run_dir), "--steps", "200"], capture_output=True,
                          text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr
    run = RunDir(run_dir)
    assert sorted(p.name for p in run_dir.iterdir()) == [".lock", "config.yaml", "events.jsonl", "layers.csv",
                                                          "log.csv", "run.json", "summary.json"]
    meta = run.read_meta()
    assert run.log.read_text().splitlines()[0] == ",".join(meta["log_columns"])
    assert meta["environment"]["device"] == "cpu" and meta["environment"]["argv"][1:] == [str(run_dir), "--steps",
                                                                                           "200"]
    recorded = [json.loads(line) for line in run.events.read_text().splitlines()]
    assert recorded  # the monitor wrote its events through the run directory

    assert main(["analyze", str(run_dir), "--json"]) == 0
    analysis = json.loads(capsys.readouterr().out)
    assert analysis["rows"] == 200 and analysis["phase_source"] == "the run's schedule"
    assert [p["phase"] for p in analysis["phases"]] == ["warmup", "early_decay", "mid_decay", "late_decay"]
    found = {(e["step"], e["kind"]) for e in analysis["events"]}
    assert {(e["step"], e["kind"]) for e in recorded} <= found

    assert main(["report", str(run_dir)]) == 0
    out = capsys.readouterr().out
    assert "note:" not in out  # summary.json, run.json, config.yaml and layers.csv were all found and read
    assert f"wrote {run.report}: 200 log rows" in out


def test_the_monitor_writes_into_the_run_directory_it_is_given(tmp_path):
    from lrtempo import build_schedule
    from lrtempo.monitor import Monitor

    run = RunDir(tmp_path)
    monitor = Monitor(build_schedule({"type": "constant", "lr": 0.1}), run_dir=run)
    assert (monitor.events_path, monitor.layers_path, monitor.collect_layers) == (run.events, run.layers, True)
    monitor.skipped(3, float("nan"), 1.0)
    assert [json.loads(line)["kind"] for line in run.events.read_text().splitlines()] == ["SKIPPED_UPDATE"]
    assert Monitor(build_schedule({"type": "constant", "lr": 0.1}), run_dir=str(tmp_path)).events_path == run.events


# -- what reproducing a run needs ---------------------------------------------------------------------------------


def _git(folder: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(folder), "-c", "user.name=t", "-c", "user.email=t@t.invalid", *args],
                          capture_output=True, text=True, check=True).stdout.strip()


def test_environment_records_versions_device_processes_seeds_and_the_command_line(tmp_path):
    import platform

    import numpy

    import lrtempo

    env = environment(device="cuda:1", dtype="bfloat16", world_size=4, seeds={"seed": 7}, argv=["x", "--y"],
                      cwd=tmp_path)
    assert (env["lrtempo"], env["python"], env["numpy"]) == (lrtempo.__version__, platform.python_version(),
                                                             numpy.__version__)
    assert (env["device"], env["dtype"], env["world_size"], env["strategy"]) == ("cuda:1", "bfloat16", 4, "ddp")
    assert env["seeds"] == {"seed": 7} and env["argv"] == ["x", "--y"]
    assert environment(strategy="single", world_size=2)["strategy"] == "single"
    assert environment()["argv"] == sys.argv and environment()["strategy"] == "single"
    json.dumps(env, allow_nan=False)  # plain JSON


def test_environment_reads_torch_and_its_deterministic_settings_without_importing_it(tmp_path):
    code = ("import sys; from lrtempo.rundir import environment; e = environment(cwd='/'); "
            "print('torch' in sys.modules, e['deterministic'])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "None"]
    torch = pytest.importorskip("torch")
    before = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        env = environment(cwd=tmp_path)
    finally:
        torch.use_deterministic_algorithms(before)
    assert env["torch"] == torch.__version__
    assert env["deterministic"]["deterministic_algorithms"] is True
    assert env["deterministic"]["deterministic_algorithms_warn_only"] is True
    assert env["deterministic"]["cudnn_deterministic"] == torch.backends.cudnn.deterministic
    assert env["deterministic"]["cudnn_benchmark"] == torch.backends.cudnn.benchmark


def test_git_state_outside_a_repository_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    assert git_state(tmp_path) == {"commit": None, "dirty": None, "note": "not a git repository"}


def test_git_state_gives_the_commit_and_whether_tracked_files_changed(tmp_path):
    _git(tmp_path, "init", "-q")
    assert git_state(tmp_path)["commit"] is None and "no commit yet" in git_state(tmp_path)["note"]
    (tmp_path / "train.py").write_text("one\n")
    _git(tmp_path, "add", "train.py")
    _git(tmp_path, "commit", "-qm", "first")
    head = _git(tmp_path, "rev-parse", "HEAD")
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "log.csv").write_text("untracked\n")  # a run directory inside the tree: not dirty
    assert git_state(tmp_path) == {"commit": head, "dirty": False, "note": None}
    assert git_state(tmp_path / "runs")["commit"] == head  # any folder inside the tree
    (tmp_path / "train.py").write_text("two\n")
    assert git_state(tmp_path) == {"commit": head, "dirty": True, "note": None}


def test_git_state_without_git_or_with_a_hung_one_is_a_note_never_an_error(tmp_path, monkeypatch):
    from lrtempo import rundir

    sleep = shutil.which("sleep")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert git_state(tmp_path) == {"commit": None, "dirty": None, "note": "git is not installed"}
    fake = tmp_path / "bin" / "git"
    fake.parent.mkdir()
    fake.write_text(f"#!/bin/sh\nexec {sleep} 5\n")  # exec: the timeout's kill ends it
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", str(fake.parent))
    monkeypatch.setattr(rundir, "GIT_TIMEOUT_S", 0.2)
    assert git_state(tmp_path) == {"commit": None, "dirty": None, "note": "git took longer than 0.2 s"}


def test_lrtempo_train_records_the_environment_in_run_json_never_in_the_config(tmp_path, monkeypatch, capsys):
    torch = pytest.importorskip("torch")
    from lrtempo.cli import main
    from lrtempo.config import read_config_file
    from lrtempo.train import parse_run_config
    from lrtempo.train._rundir import config_hash

    cfg = tmp_path / "quad.yaml"
    cfg.write_text(QUAD.replace("steps: 12", "steps: 8") + "bf16: true\n")
    monkeypatch.chdir(tmp_path)  # not a repository (below the ceiling)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    assert main(["train", str(cfg), "--out", str(tmp_path), "--quiet"]) == 0
    run = RunDir(tmp_path / "quad")
    meta = run.read_meta()
    env = meta["environment"]
    assert (env["device"], env["dtype"], env["world_size"], env["strategy"]) == ("cpu", "bfloat16", 1, "single")
    assert env["seeds"] == {"seed": 3, "process_seeds": [3 * 7919]}
    assert env["torch"] == torch.__version__ and env["argv"] == sys.argv
    assert env["deterministic"]["deterministic_algorithms"] == torch.are_deterministic_algorithms_enabled()
    assert env["git"] == {"commit": None, "dirty": None, "note": "not a git repository"}
    saved = read_config_file(run.config)
    assert not {"environment", "argv", "git", "seeds"} & set(saved)
    assert meta["config_hash"] == config_hash(parse_run_config(saved))
    # a resume (here from another command line) is recorded beside it and sees no changed config
    monkeypatch.setattr(sys, "argv", ["lrtempo", "train", "--resume", str(run.path)])
    assert main(["train", "--resume", str(run.path), "--steps", "12", "--quiet"]) == 0
    after = run.read_meta()
    assert after["environment"] == env and after["schedule_changes"] == []
    assert [(r["step"], r["environment"]["argv"][2]) for r in after["resumes"]] == [(8, "--resume")]
    assert read_config_file(run.config) == {**saved, "steps": 12}
    capsys.readouterr()
