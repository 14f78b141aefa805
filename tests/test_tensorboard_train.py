"""``tensorboard: true``: ``lrtempo train`` writes the log's rows as TensorBoard event files, read back here with
TensorBoard's own reader (``EventAccumulator``); a SIGKILL between checkpoints and the resume give one curve; the
run config key, its refusal without the package, and the cut back of the event files on resume."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("torch")

import numpy as np  # noqa: E402

from lrtempo.config import ConfigError, read_config_file  # noqa: E402
from lrtempo.rundir import RunDir  # noqa: E402
from lrtempo.train import parse_run_config, read_log  # noqa: E402
from lrtempo.train._rundir import config_hash  # noqa: E402
from lrtempo.train._tensorboard import INSTALL_HINT, cut_back, event_files, event_step  # noqa: E402

ENV = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
STEPS, EVERY, KILL_AT = 40, 10, 26  # checkpoints at 10, 20, 30; the kill leaves rows and events 20..26 behind
TINY = f"""\
name: tiny
task: charlm
task_options: {{d_model: 32, n_layer: 1, n_head: 2, context: 32, batch_size: 8, max_bytes: 300000, val_batches: 2}}
seed: 3
schedule: {{type: warmup_cosine, peak_lr: 3e-3, min_lr: 3e-4, total_steps: {STEPS}, warmup_steps: 8}}
optimizer: {{name: adamw, betas: [0.9, 0.95], weight_decay: 0.1}}
grad_clip: 1.0
checkpoint_every: {EVERY}
eval_every: 5
monitor: {{effective_every: 3}}
tensorboard: true
"""
#: the log's columns whose cells do not depend on the wall clock
DETERMINED = ("lr", "grad_l2_norm", "loss", "val_loss", "tokens", "samples", "skipped_updates", "effective_lr_median",
              "effective_lr_p90", "effective_lr_max", "effective_lr_ratio", "update_ratio", "momentum_alignment")
TEXT = ("step", "phase", "trap_status")

# `lrtempo ARGV...`, killed with SIGKILL right after the row (and event) of step KILL_AT is written and the events
# so far are on disk, as a kill after the writer's thread has written them leaves them
KILLER = r"""
import os, signal, sys
from lrtempo.cli import main
from lrtempo.train import _tensorboard
at = int(os.environ["KILL_AT"])
original = _tensorboard.TensorBoardLog.append
def append(self, **values):
    original(self, **values)
    if values["step"] == at:
        self.writer.flush()
        os.kill(os.getpid(), signal.SIGKILL)
_tensorboard.TensorBoardLog.append = append
sys.exit(main(sys.argv[1:]))
"""
# `lrtempo ARGV...` where the tensorboard package cannot be imported
NO_TENSORBOARD = ("import sys; sys.modules['tensorboard'] = None; from lrtempo.cli import main; "
                  "sys.exit(main(sys.argv[1:]))")


def _lrtempo(*args, code: str | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    head = ["-c", code] if code else ["-m", "lrtempo"]
    return subprocess.run([sys.executable, *head, *map(str, args)], capture_output=True, text=True,
                          env=env or ENV, timeout=600)


def _scalars(folder: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar TensorBoard's reader shows in ``folder``: tag -> [(step, value)], all of them kept."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(folder), size_guidance={"scalars": 0})
    acc.Reload()
    return _shown(acc)


def _shown(acc) -> dict[str, list[tuple[int, float]]]:
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def _expected(log: Path, names: tuple[str, ...] | None = None) -> dict[str, list[tuple[int, float]]]:
    """tag -> [(step, the cell as TensorBoard stores it, a float32)] for every numeric column with a cell."""
    rows = read_log(log)
    names = names or tuple(c for c in rows[0] if c not in TEXT)
    out = {name: [(int(r["step"]), float(np.float32(float(r[name])))) for r in rows if r[name] != ""]
           for name in names}
    return {name: points for name, points in out.items() if points}


def _events(path: Path) -> list:
    """The events of one file as written, read with TensorBoard's own record loader (no purging, no migration)."""
    from tensorboard.backend.event_processing.event_file_loader import RawEventFileLoader
    from tensorboard.compat.proto.event_pb2 import Event

    return [Event.FromString(record) for record in RawEventFileLoader(str(path)).Load()]


def _on_disk(folder: Path) -> list[tuple[str, int]]:
    """Every (tag, step) the event files in ``folder`` hold."""
    return [(value.tag, event.step) for path in event_files(folder) for event in _events(path)
            for value in event.summary.value]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted run with ``tensorboard: true``."""
    pytest.importorskip("tensorboard")
    folder = tmp_path_factory.mktemp("reference")
    cfg = folder / "tiny.yaml"
    cfg.write_text(TINY)
    done = _lrtempo("train", cfg, "--out", folder, "--quiet")
    assert done.returncode == 0, done.stderr
    return RunDir(folder / "tiny")


def test_every_row_is_one_point_per_numeric_column_equal_to_its_cell(reference):
    shown = _scalars(reference.tensorboard)
    expected = _expected(reference.log)
    assert shown == expected  # every step once, in order, each value the log's cell as a float32
    assert {"lr", "grad_l2_norm", "loss", "val_loss", "effective_lr_median", "update_ratio"} <= set(shown)
    assert [s for s, _ in shown["lr"]] == list(range(STEPS))
    assert [s for s, _ in shown["val_loss"]] == list(range(4, STEPS, 5))  # where it was computed, nowhere else
    assert len(event_files(reference.tensorboard)) == 1
    assert "tensorboard" not in reference.read_meta()["log_columns"]


def test_a_sigkill_between_checkpoints_and_the_resume_give_the_uninterrupted_curve(reference, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(TINY)
    killed = _lrtempo("train", cfg, "--out", tmp_path, "--quiet", code=KILLER, env={**ENV, "KILL_AT": str(KILL_AT)})
    assert killed.returncode == -signal.SIGKILL
    run = RunDir(tmp_path / "tiny")
    assert max(step for _, step in _on_disk(run.tensorboard)) == KILL_AT  # the events past checkpoint 20 are there
    live = EventAccumulator(str(run.tensorboard), size_guidance={"scalars": 0})  # a TensorBoard watching the run
    live.Reload()
    assert [s for s, _ in _shown(live)["lr"]] == list(range(KILL_AT + 1))

    resumed = _lrtempo("train", "--resume", run.path, "--quiet")
    assert resumed.returncode == 0, resumed.stderr
    assert len(event_files(run.tensorboard)) == 2  # the resume's own file, after the first
    on_disk = _on_disk(run.tensorboard)
    assert len(on_disk) == len(set(on_disk))  # the files hold each point once: cut back to step 20 on resume
    shown = _scalars(run.tensorboard)
    assert shown == _expected(run.log)  # a fresh reader: every step once, equal to the resumed log
    live.Reload()
    assert _shown(live) == shown  # the watching one dropped what it had read past step 20 (the resume's purge)
    ref = _scalars(reference.tensorboard)
    assert {tag: shown[tag] for tag in DETERMINED if tag in shown} == {tag: ref[tag] for tag in DETERMINED
                                                                        if tag in ref}
    assert set(shown) == set(ref)


def test_the_event_files_are_cut_back_with_a_torn_last_record_and_removed_when_empty(tmp_path):
    pytest.importorskip("tensorboard")
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(str(tmp_path))
    for step in range(10):
        writer.add_scalar("lr", step / 10, step)
    writer.close()
    (path,) = event_files(tmp_path)
    whole = path.read_bytes()
    events = _events(path)
    assert [event_step(e.SerializeToString()) for e in events] == [e.step for e in events]  # the reader agrees
    with open(path, "ab") as fh:
        fh.write(whole[-30:-3])  # a record torn by a kill
    cut_back(tmp_path, 5)
    kept = [(e.step, e.summary.value[0].simple_value) for e in _events(path) if e.summary.value]
    assert kept == [(s, pytest.approx(s / 10)) for s in range(5)]
    before = path.stat().st_mtime_ns, path.read_bytes()
    cut_back(tmp_path, 5)
    assert (path.stat().st_mtime_ns, path.read_bytes()) == before  # nothing to drop: the file is not rewritten
    cut_back(tmp_path, 10)
    assert path.read_bytes() == before[1]
    cut_back(tmp_path, 0)
    assert event_files(tmp_path) == []
    cut_back(tmp_path / "missing", 3)  # no folder: nothing to do


def test_a_new_event_file_sorts_after_one_made_in_the_same_second(tmp_path):
    pytest.importorskip("tensorboard")
    from torch.utils.tensorboard import SummaryWriter  # noqa: F401  (imported before the clock is read)

    from lrtempo.train._tensorboard import TensorBoardLog

    # made in this second or the next (another host's clock a little ahead): a new file of this second sorts before
    other = tmp_path / f"events.out.tfevents.{int(time.time()) + 1:010d}.zzzz.99999.9"
    other.write_bytes(b"")
    run = RunDir(tmp_path / "run")
    run.path.mkdir()
    log = TensorBoardLog(run.open_log(), tmp_path, purge_step=3)
    log.append(step=3, lr=0.1, grad_l2_norm=1.0, loss=2.0)
    log.close()
    names = [p.name for p in event_files(tmp_path)]
    assert len(names) == 2 and names[0] == other.name  # TensorBoard reads the new one last


# -- the run config key ---------------------------------------------------------------------------------------------

BASE = {"task": "quadratic", "steps": 10, "schedule": {"type": "constant", "lr": 0.1}}


def test_the_key_is_off_by_default_not_written_then_and_never_in_the_config_hash():
    default, on = parse_run_config(BASE), parse_run_config({**BASE, "tensorboard": True})
    assert default.tensorboard is False and on.tensorboard is True
    assert "tensorboard" not in default.to_mapping()  # config.yaml reads as before the key
    assert on.to_mapping()["tensorboard"] is True and parse_run_config(on.to_mapping()) == on
    assert config_hash(on) == config_hash(default) == config_hash(parse_run_config({**BASE, "tensorboard": False}))
    with pytest.raises(ConfigError, match="tensorboard"):
        parse_run_config({**BASE, "tensorboard": "yes"})


def test_without_the_package_tensorboard_true_is_refused_in_one_line_before_anything_is_written(tmp_path):
    cfg = tmp_path / "q.yaml"
    cfg.write_text("name: q\ntask: quadratic\nsteps: 20\nschedule: {type: constant, lr: 0.1}\ncheckpoint_every: 5\n"
                   "tensorboard: true\n")
    refused = _lrtempo("train", cfg, "--out", tmp_path / "out", "--quiet", code=NO_TENSORBOARD)
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines() == [f"lrtempo: error: {INSTALL_HINT}"]
    assert "pip install tensorboard" in refused.stderr and not (tmp_path / "out").exists()

    cfg.write_text(cfg.read_text().replace("tensorboard: true\n", ""))
    assert _lrtempo("train", cfg, "--out", tmp_path, "--quiet", "--steps", "10").returncode == 0
    run = RunDir(tmp_path / "q")
    run.config.write_text(run.config.read_text() + "tensorboard: true\n")  # turned on for the rest of the run
    files = {p: p.read_bytes() for p in run.path.rglob("*") if p.is_file()}
    refused = _lrtempo("train", "--resume", run.path, "--quiet", "--steps", "20", code=NO_TENSORBOARD)
    assert refused.returncode == 2 and refused.stderr.strip().splitlines() == [f"lrtempo: error: {INSTALL_HINT}"]
    assert {p: p.read_bytes() for p in run.path.rglob("*") if p.is_file()} == files  # nothing changed

    pytest.importorskip("tensorboard")
    resumed = _lrtempo("train", "--resume", run.path, "--quiet", "--steps", "20")
    assert resumed.returncode == 0, resumed.stderr
    assert [s for s, _ in _scalars(run.tensorboard)["lr"]] == list(range(10, 20))  # from where it was turned on
    saved = read_config_file(run.config)
    assert saved["tensorboard"] is True and saved["steps"] == 20  # kept for the next plain --resume
    unseen = parse_run_config({k: v for k, v in saved.items() if k != "tensorboard"})
    assert run.read_meta()["config_hash"] == config_hash(unseen)  # where a run is shown is not hashed


# -- under torchrun -------------------------------------------------------------------------------------------------


def _torchrun() -> str | None:
    found = shutil.which("torchrun")
    beside = Path(sys.executable).with_name("torchrun")
    return found or (str(beside) if beside.exists() else None)


@pytest.mark.skipif(_torchrun() is None, reason="torchrun not found")
def test_under_torchrun_only_rank_0_writes_the_events(tmp_path):
    pytest.importorskip("tensorboard")
    cfg = tmp_path / "ddp.yaml"
    cfg.write_text("name: ddp\ntask: linear\ntask_options: {batch_size: 32}\nseed: 5\ntensorboard: true\n"
                   "schedule: {type: warmup_cosine, peak_lr: 0.05, total_steps: 12, warmup_steps: 3}\n"
                   "checkpoint_every: 5\n")
    done = subprocess.run([_torchrun(), "--nproc_per_node", "2", "--master_port", "29541", "-m", "lrtempo", "train",
                           str(cfg), "--out", str(tmp_path), "--quiet"], capture_output=True, text=True,
                          env={**ENV, "LRTEMPO_BACKEND": "gloo"}, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    run = RunDir(tmp_path / "ddp")
    assert len(event_files(run.tensorboard)) == 1
    assert _scalars(run.tensorboard) == _expected(run.log)


def test_a_branch_continues_its_parents_curves_from_the_branch_point(reference, tmp_path):
    at = 20
    made = _lrtempo("branch", reference.path, "--at", at, "--cooldown", 10, "--out", tmp_path / "cool")
    assert made.returncode == 0, made.stderr
    branch = RunDir(tmp_path / "cool")
    assert len(event_files(branch.tensorboard)) == 1
    parent = _scalars(reference.tensorboard)
    assert _scalars(branch.tensorboard) == {tag: [p for p in points if p[0] < at] for tag, points in parent.items()
                                            if any(p[0] < at for p in points)}  # the parent's, before the branch
    trained = _lrtempo("train", "--resume", branch.path, "--quiet")
    assert trained.returncode == 0, trained.stderr
    shown = _scalars(branch.tensorboard)
    assert shown == _expected(branch.log)  # one curve, the parent's up to the branch point, then the branch's
    assert [s for s, _ in shown["lr"]] == list(range(at + 10))
