"""``lrtempo branch``: a new run directory that continues a parent run from one of its checkpoints under a
changed schedule, recorded.

The branch directory starts as the parent was after ``at_step`` updates: the checkpoint of that step (copied
byte for byte), the log's rows before it and the monitor's events and layer rows before it (the same bytes),
and a ``config.yaml`` whose schedule is a ``branch`` spec, the parent's schedule up to ``at_step`` joined with
the new tail (:class:`lrtempo.schedules.Branch`). ``run.json`` records the branch (the parent's folder and spec
hash, the step, the kind, the jump of the rate there) and the schedule change at ``at_step``, so ``lrtempo
train --resume NEW_DIR`` continues it with no flag, exactly as a resume would.

The parent is only read, never written, and its lock is not taken, so a branch can be made while the parent
still trains: what is read of it is never rewritten once the checkpoint of ``at_step`` exists (the rows before
it were synced to disk before that checkpoint was written; a resume only cuts rows at or past its own,
later, checkpoint), and the checkpoint is opened once and copied from the open file, so a retention that
removes it meanwhile cannot tear the copy. Everything is written into a temporary folder next to
``NEW_DIR`` and renamed to it last: a refusal or a failure leaves no ``NEW_DIR``.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..config import ConfigError, Problem, build_schedule, format_config, schedule_to_spec, spec_hash
from ..rundir import RunDir, checkpoint_step, truncate_step_file
from ..schedules import Branch, ParameterError, find_plateau
from ._checkpoint import load_checkpoint
from ._runconfig import RunConfig, _folder_name, parse_run_config
from ._rundir import _fresh_meta, write_schedule_views
from ._tensorboard import cut_back

__all__ = ["BranchTail", "BranchMade", "make_branch", "FLAGS"]

#: the command-line flag of each field of a branch spec (a refusal names what the user typed)
FLAGS = {"at_step": "--at", "steps": "--cooldown/--rewarm", "shape": "--shape", "min_lr": "--to",
         "total_steps": "--extend", "peak_lr": "--peak", "from_step": "--rewind"}


@dataclass(frozen=True, init=False)
class BranchTail:
    """The new tail of a branch: its ``kind`` and that kind's fields, by :class:`lrtempo.schedules.Branch`'s names
    and defaults (``steps``, ``shape``, ``min_lr``, ``peak_lr``, ``total_steps``, ``from_step``; None: not given).

    >>> BranchTail("cooldown", steps=10, min_lr=None).fields()
    {'kind': 'cooldown', 'steps': 10}
    """

    kind: str
    options: dict

    def __init__(self, kind: str, **options: Any) -> None:
        object.__setattr__(self, "kind", kind)
        object.__setattr__(self, "options", {k: v for k, v in options.items() if v is not None})

    def fields(self) -> dict[str, Any]:
        return {"kind": self.kind, **self.options}


@dataclass(frozen=True)
class BranchMade:
    """What :func:`make_branch` wrote: the branch's folder, its schedule, and the rate at the branch point."""

    run_dir: Path
    parent: Path
    at_step: int
    schedule: Branch
    steps: int

    @property
    def record(self) -> dict[str, Any]:
        """``run.json``'s ``branch``: where the branch came from and what changed at its step."""
        b = self.schedule
        return {"parent": str(self.parent), "parent_hash": b.parent_hash, "at_step": self.at_step, "kind": b.kind,
                "lr_parent": b.parent(self.at_step), "lr_branch": b(self.at_step), "jump": b.jump,
                "spec_hash": spec_hash(b), **_tail_fields(b)}


def _tail_fields(b: Branch) -> dict[str, Any]:
    spec = schedule_to_spec(b)
    return {k: v for k, v in spec.items() if k not in ("type", "parent", "at_step", "kind", "parent_hash")
            and not (k == "shape" and b.kind != "cooldown")}


def _refuse(message: str, path: str = "") -> ConfigError:
    return ConfigError([Problem(path, message)])


def make_branch(parent_dir: str | Path, at_step: int, out: str | Path, tail: BranchTail) -> BranchMade:
    """Make the branch directory ``out`` from ``parent_dir``'s checkpoint of ``at_step`` under ``tail``.

    Every refusal (no run, no checkpoint at ``at_step``, ``out`` exists, a log that does not reach
    ``at_step``, a tail the parent's schedule does not allow) is a :class:`ConfigError` raised before
    ``out`` exists; the parent is never written.
    """
    parent, out = Path(parent_dir), Path(out)
    _check_places(parent, out)
    made_folders = [p for p in out.parents if not p.exists()]  # made for the branch: removed again on a refusal
    tmp = out.parent / f".{out.name}.branch-{os.getpid()}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)  # what a killed branch of this process id left
    done = False
    try:
        tmp.mkdir(parents=True)
        made = _fill(RunDir(parent), at_step, RunDir(tmp), out, tail)
        if out.exists() or out.is_symlink():
            raise _refuse(f"{out} exists (made while the branch was being written): choose another --out", "--out")
        os.rename(tmp, out)
        done = True
        return made
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        for folder in [] if done else made_folders:  # innermost first
            try:
                folder.rmdir()
            except OSError:
                break


def _check_places(parent: Path, out: Path) -> None:
    if not RunDir(parent).holds_run():
        raise _refuse(f"{parent} holds no lrtempo run (no config.yaml)")
    if out.exists() or out.is_symlink():
        raise _refuse(f"{out} exists: a branch goes into a new folder", "--out")
    problem = _folder_name(out.name)
    if problem is not None:
        raise _refuse(f"{problem} (got {str(out)!r})", "--out")
    if out.resolve().is_relative_to(parent.resolve()):
        raise _refuse(f"{out} is inside the parent run {parent}, which a branch never writes", "--out")


def _fill(parent: RunDir, at: int, new: RunDir, out: Path, tail: BranchTail) -> BranchMade:
    """Write the branch into ``new`` (the temporary folder); ``out`` is where it will be."""
    ckpt = _copy_checkpoint(parent, at, new)
    schedule_spec = ckpt["schedule_spec"]
    unit = schedule_spec.get("unit", "steps") if isinstance(schedule_spec, dict) else "steps"
    if unit != "steps":
        raise _refuse(f"the parent's schedule counts {unit}; branching supports unit: steps only", "--at")
    parent_schedule = build_schedule(schedule_spec, "schedule")
    if find_plateau(parent_schedule) is not None:
        raise _refuse("the parent's schedule reduces on plateau (its rate depends on its recorded reductions); "
                      "branching supports schedules without a plateau", "--at")
    trained = json.loads(ckpt["config"]) if "config" in ckpt else _read_config(parent)
    branch = _branch_schedule(parent_schedule, at, tail)
    _copy_steps(parent, at, new, parent_schedule)
    config = _branch_config(trained, branch, out.name, at)
    meta = _fresh_meta(config, int(ckpt["world_size"]))
    made = BranchMade(out, parent.path.resolve(), at, branch, config.steps)
    meta["schedule_changes"] = [{"step": at, "from": ckpt["spec_hash"], "to": spec_hash(branch)}]
    meta["branch"] = made.record
    if "environment" in parent.read_meta():
        meta["environment"] = parent.read_meta()["environment"]
    new.write_config(format_config(config.to_mapping(), "yaml"))
    missing_png = write_schedule_views(new.path, config)
    if missing_png:
        meta["lr_schedule_png"] = f"not written: {missing_png}"
    new.write_meta(meta)
    return made


def _read_config(parent: RunDir) -> dict[str, Any]:
    from ..config import read_config_file

    return parse_run_config(read_config_file(parent.config), str(parent.config)).to_mapping()


def _copy_checkpoint(parent: RunDir, at: int, new: RunDir) -> dict[str, Any]:
    """Copy the parent's checkpoint of ``at`` (from one open file) into ``new`` and load the copy."""
    source = parent.checkpoint(at)
    if source.is_dir():  # FSDP2's checkpoint folder
        return _copy_checkpoint_folder(parent, at, new)
    try:
        fh = open(source, "rb")
    except FileNotFoundError:
        have = [checkpoint_step(p) for p in parent.checkpoint_files()]
        listed = ", ".join(map(str, have)) if have else "none"
        raise _refuse(f"{parent.path} has no checkpoint of step {at}; the steps that have one: {listed} (keep "
                      "more with keep_checkpoints: all, or name them in checkpoint_at)", "--at") from None
    target = new.checkpoint(at)
    target.parent.mkdir(parents=True, exist_ok=True)
    with fh, open(target, "wb") as copy:
        shutil.copyfileobj(fh, copy)
        copy.flush()
        os.fsync(copy.fileno())
    return load_checkpoint(target)


def _copy_checkpoint_folder(parent: RunDir, at: int, new: RunDir) -> dict[str, Any]:
    """Copy the parent's checkpoint folder of ``at`` (FSDP2's) file by file into ``new`` and load its state; a
    retention removing it meanwhile is a refusal (the copy is in the branch's temporary folder, which goes)."""
    from .._atomic import fsync_dir

    source, target = parent.checkpoint(at), new.checkpoint(at)
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        shutil.copytree(source, target)
    except (FileNotFoundError, shutil.Error):
        raise _refuse(f"{parent.path}: the checkpoint of step {at} was removed while it was copied (the parent "
                      "run's retention): branch from a step it keeps (checkpoint_at)", "--at") from None
    for path in target.iterdir():
        with open(path, "rb+") as fh:
            os.fsync(fh.fileno())
    fsync_dir(target)
    return load_checkpoint(target)


def _copy_steps(parent: RunDir, at: int, new: RunDir, schedule: Any) -> None:
    """The parent's log rows before ``at`` (and its events, layer rows and TensorBoard events), the same bytes,
    checked whole."""
    for name in ("log", "events", "layers"):
        source = getattr(parent, name)
        if source.exists():
            shutil.copyfile(source, getattr(new, name))
    if not new.log.exists():
        raise _refuse(f"{parent.log} is missing: the branch's log must start as the parent's", "--at")
    if parent.tensorboard.is_dir():  # its curves up to the branch point, so the branch's continue them
        shutil.copytree(parent.tensorboard, new.tensorboard)
        cut_back(new.tensorboard, at)
    rows = truncate_step_file(new.log, at, header=True, step_of=lambda line: int(line.split(",", 1)[0]))
    new.cut_back(at)
    lines = new.log.read_text(encoding="utf-8").splitlines()[1:]
    steps = [int(line.split(",", 1)[0]) for line in lines]
    if rows != at or steps != list(range(at)):
        raise _refuse(f"{parent.log} does not hold the rows of steps 0..{at - 1} (it has {rows} before step "
                      f"{at}): the branch point must lie within the log", "--at")
    logged = np.array([float(line.split(",", 2)[1]) for line in lines], dtype=np.float64)
    expected = schedule.at(np.arange(at, dtype=np.int64))
    differ = np.flatnonzero(logged != expected)
    if differ.size:
        k = int(differ[0])
        raise _refuse(f"{parent.log} has lr {float(logged[k])!r} at step {k} but the schedule of the checkpoint of "
                      f"step {at} gives {float(expected[k])!r}: the parent's rate before step {at} is not one schedule "
                      "(its schedule changed on a resume); branch at a step after the change", "--at")


def _branch_schedule(parent: Any, at: int, tail: BranchTail) -> Branch:
    try:
        return Branch(parent, at_step=at, parent_hash=spec_hash(parent), **tail.fields())
    except ParameterError as exc:
        raise ConfigError([Problem(FLAGS.get(name, name), message) for name, message in exc.problems]) from None


def _branch_config(trained: dict[str, Any], branch: Branch, name: str, at: int) -> RunConfig:
    """The parent's run config as trained, under the branch's schedule, named after its folder, as long as the
    branch (a rewind of an endless schedule: as many updates after ``at`` as the parent had after the step it
    replays from). The parent's budget (``total``, and ``data.epochs``, lint's length without one) counted the
    parent's run, not the branch's, so it is left out: the branch's length is its ``steps``."""
    steps = branch.end_step
    if steps is None:
        steps = at + max(1, int(trained["steps"]) - branch.from_step)
    keep = [s for s in trained.get("checkpoint_at", []) if at < s <= steps]
    mapping = {**trained, "name": name, "schedule": schedule_to_spec(branch), "steps": steps}
    mapping.pop("checkpoint_at", None)
    mapping.pop("total", None)
    if isinstance(mapping.get("data"), dict) and "epochs" in mapping["data"]:
        mapping["data"] = {k: v for k, v in mapping["data"].items() if k != "epochs"}
    if keep:
        mapping["checkpoint_at"] = keep
    return parse_run_config(mapping)
