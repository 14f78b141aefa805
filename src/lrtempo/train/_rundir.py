"""The run directory of ``lrtempo train``: what a start or a resume may do, decided before anything is written.

Opening a run has two phases. :func:`plan_new` and :func:`plan_resume` take
the directory's lock, read what is there and validate everything (the config,
the checkpoint, the log's header, any change of schedule or length), writing
nothing; a refusal leaves every file as it was. :func:`begin` then makes the
writes the plan calls for. The first file a new run writes is ``config.yaml``,
so a directory without one holds no run, and a directory with one can always
be continued by ``lrtempo train --resume RUN_DIR``: from its latest checkpoint,
or from step 0 when a kill came before the first checkpoint.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import ConfigError, Problem, format_config, read_config_file, spec_hash, spec_hashes
from ..plot import MissingDependency, png_plot, text_plot
from ..rundir import (
    EXTRA_COLUMNS,
    LOG_SCHEMA_VERSION,
    MONITOR_COLUMNS,
    SCHEMA_COLUMNS,
    RunDir,
    checkpoint_step,
    header_mismatch,
)
from ._checkpoint import load_checkpoint
from ._lock import RunLock, take_lock
from ._runconfig import RunConfig, parse_run_config

__all__ = ["Plan", "plan_new", "plan_resume", "begin", "write_meta", "columns", "EXTRA_COLUMNS", "FIXED_ON_RESUME"]

#: config keys a resumed run keeps: changing them makes another run (or one its checkpoint cannot load into)
FIXED_ON_RESUME = ("task", "task_options", "optimizer", "accumulation_steps", "monitor")


@dataclass(frozen=True)
class Plan:
    """What opening the run will do; plain values, so rank 0 can broadcast it under DDP.

    ``mode``: ``new`` (a new run directory), ``restart`` (a run killed before
    its first checkpoint: from step 0), ``resume`` (from ``checkpoint``) or
    ``finished`` (the checkpoint is at the run's last step: nothing to train).
    """

    run_dir: Path
    config: dict
    mode: str
    checkpoint: str | None = None
    step: int = 0
    schedule_change: dict | None = None
    steps_change: dict | None = None
    #: the config the checkpoint was trained under (kept as config.before-step-N.yaml on a schedule change)
    trained_config: dict = field(default_factory=dict)
    #: run.json as it must be once the run continues, when that differs from the file (else None)
    meta: dict | None = None
    #: for ``finished``: summary.json's content when it is missing or stale (else None: nothing is written)
    summary: dict | None = None

    @property
    def run(self) -> RunDir:
        return RunDir(self.run_dir)


def columns(config: RunConfig) -> tuple[str, ...]:
    """The log's columns after ``step,lr,grad_l2_norm,loss``."""
    return EXTRA_COLUMNS + (MONITOR_COLUMNS if config.monitor is not None else ())


def config_hash(config: RunConfig) -> str:
    text = json.dumps(config.to_mapping(), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _refuse(message: str, path: str = "") -> ConfigError:
    return ConfigError([Problem(path, message)])


def _with_steps(config: RunConfig, steps: int | None) -> RunConfig:
    if steps is None or steps == config.steps:
        return config
    return parse_run_config({**config.to_mapping(), "steps": steps})


# -- planning: read and validate, write nothing ---------------------------------------------------------------------


def plan_new(config: RunConfig, out: Path, steps: int | None) -> tuple[Plan, RunLock]:
    """A new run in ``out/<name>``; refused (pointing at the command that continues it) if one is there."""
    config = _with_steps(config, steps)
    run_dir = out / config.name
    if run_dir.exists() and not run_dir.is_dir():
        raise _refuse(f"{run_dir} exists and is not a folder: choose another --out or name")
    run = RunDir(run_dir)
    lock = take_lock(run)
    if run.holds_run():
        lock.release()
        raise _refuse(_existing_run_message(run))
    if run.log.exists() or run.latest_checkpoint() is not None:
        lock.release()
        raise _refuse(f"{run_dir} holds a log or checkpoints but no config.yaml, so no run that can be continued: "
                      "move them away, or choose another --out or name")
    return Plan(run_dir, config.to_mapping(), "new"), lock


def _existing_run_message(run: RunDir) -> str:
    run_dir = run.path
    try:
        saved = parse_run_config(read_config_file(run.config))
        latest = run.latest_checkpoint()
        done = checkpoint_step(latest) if latest is not None else -1
    except (ConfigError, ValueError, OSError):
        saved, done = None, -1
    if saved is not None and done >= saved.steps:
        return (f"{run_dir} already holds a finished run ({done} updates): extend it with "
                f"`lrtempo train --resume {run_dir} --steps N` (N > {done}), or choose another --out or name")
    return (f"{run_dir} already holds a run: continue it with `lrtempo train --resume {run_dir}`, "
            "or choose another --out or name")


def plan_resume(run_dir: Path, new: RunConfig | None, allow_change: bool, steps: int | None,
                world: int) -> tuple[Plan, RunLock]:
    """Continue the run in ``run_dir`` (under ``new`` if given); every refusal comes before any write."""
    if not RunDir(run_dir).config.is_file():
        raise _refuse(f"{run_dir} holds no lrtempo run (no config.yaml): start one with `lrtempo train CONFIG`")
    lock = take_lock(RunDir(run_dir))
    try:
        return _plan_resume(run_dir, new, allow_change, steps, world), lock
    except BaseException:
        lock.release()
        raise


def _plan_resume(run_dir: Path, new: RunConfig | None, allow_change: bool, steps: int | None, world: int) -> Plan:
    run = RunDir(run_dir)
    saved = parse_run_config(read_config_file(run.config), str(run.config))
    config = _with_steps(saved if new is None else new, steps)
    where = f"{run.config} (edited since the run began)" if new is None else "CONFIG"
    ckpt_path = run.latest_checkpoint()
    if ckpt_path is None:  # killed before the first checkpoint: start again from step 0
        if new is not None:
            _schedule_change(spec_hash(saved.schedule), config, allow_change, where, 0, {})
        return Plan(run_dir, config.to_mapping(), "restart")
    ckpt = load_checkpoint(ckpt_path)
    done = int(ckpt["step"])
    if ckpt["world_size"] != world:
        raise _refuse(f"{ckpt_path} was written by {ckpt['world_size']} processes and this run has {world}: "
                      f"resume it with {ckpt['world_size']}")
    trained = json.loads(ckpt["config"]) if "config" in ckpt else saved.to_mapping()
    trained["schedule"] = ckpt["schedule_spec"]
    _check_fixed(trained, config.to_mapping(), where)
    change = _schedule_change(ckpt["spec_hash"], config, allow_change, where, done, run.read_meta())
    if done > config.steps:
        raise _refuse(f"{config.steps} is fewer than the {done} updates {run_dir} has run: give more to extend "
                      "it (a run is not shortened)", "steps")
    problem = header_mismatch(run.log, columns(config))
    if problem is not None:
        raise _refuse(f"{problem}: the log cannot be continued")
    if done == config.steps:  # nothing to train; only what a kill left half-done is completed
        return Plan(run_dir, config.to_mapping(), "finished", str(ckpt_path), done,
                    meta=_meta_at(run_dir, config, done, None, None, world, finished=True),
                    summary=_stale_summary(run_dir, ckpt, config, world))
    was = int(trained.get("steps", saved.steps))
    steps_change = None if config.steps == was else {"step": done, "from": was, "to": config.steps}
    return Plan(run_dir, config.to_mapping(), "resume", str(ckpt_path), done, change, steps_change, trained,
                meta=_meta_at(run_dir, config, done, change, steps_change, world, finished=False))


def _meta_at(run_dir: Path, config: RunConfig, step: int, schedule_change: dict | None, steps_change: dict | None,
             world: int, *, finished: bool) -> dict | None:
    """run.json for a resume at ``step``: changes recorded at or past it by resumes killed since are dropped,
    this resume's own added; None when that is what the file holds."""
    before = RunDir(run_dir).read_meta()
    meta = dict(before) or _fresh_meta(config, world)
    for key, change in (("schedule_changes", schedule_change), ("steps_changes", steps_change)):
        kept = [c for c in meta.get(key, []) if c["step"] < step]
        meta[key] = kept + ([change] if change else [])
    if "resumes" in meta:  # this resume's own entry is added when it begins (:func:`begin`)
        meta["resumes"] = [r for r in meta["resumes"] if r["step"] < step]
    if not finished:
        meta.update(config_hash=config_hash(config), spec_hash=spec_hash(config.schedule))
    return None if meta == before else meta


def _check_fixed(trained: dict, config: dict, where: str) -> None:
    problems = [Problem(key, f"{where} has {config.get(key)!r} but the run was trained with {trained.get(key)!r}; "
                             "a resumed run keeps its task, model, optimizer, accumulation and monitor "
                             "(start a new run to change them)")
                for key in FIXED_ON_RESUME if config.get(key) != trained.get(key)]
    if problems:
        raise ConfigError(problems)


def _schedule_change(trained: str, config: RunConfig, allow: bool, where: str, step: int,
                     meta: dict) -> dict | None:
    """The schedule change a resume at ``step`` makes, or None; refused without --allow-schedule-change.

    A change already recorded in ``run.json`` for this step (a resume under it that was killed before its
    next checkpoint) needs no flag again.
    """
    now = spec_hash(config.schedule)
    if trained in spec_hashes(config.schedule):  # the same schedule (a run of lrtempo 0.1 may hold the older hash)
        return None
    change = {"step": step, "from": trained, "to": now}
    if not allow and change not in meta.get("schedule_changes", []):
        raise _refuse(f"{where} differs from the schedule the run was trained with up to step {step} (spec hash "
                      f"{trained[:12]}, now {now[:12]}): pass --allow-schedule-change to continue under it",
                      "schedule")
    return change


def _stale_summary(run_dir: Path, ckpt: dict, config: RunConfig, world: int) -> dict | None:
    """summary.json for a finished run from its last checkpoint, if the file is missing or not its final one."""
    current = RunDir(run_dir).read_summary()
    done = int(ckpt["step"])
    if current.get("status") == "completed" and current.get("steps") == done:
        return None
    end = config.schedule.end_step
    return {"status": "completed", "steps": done, "final_loss": ckpt.get("final_loss"),
            "best_loss": ckpt.get("best_loss"), "final_val_loss": ckpt.get("final_val_loss"),
            "skipped_updates": int(ckpt["train_state"]["skipped_updates"]),
            "past_schedule_end": ckpt.get("past_schedule_end", end is not None and done > end + 1),
            "wall_seconds": float(ckpt["elapsed_seconds"]), "best_val_loss": ckpt.get("best_val_loss"),
            "schedule_end_step": end, "spec_hash": spec_hash(config.schedule), "world_size": world}


# -- the writes a plan calls for ------------------------------------------------------------------------------------


def begin(plan: Plan, config: RunConfig, world: int, env: dict[str, Any] | None = None) -> None:
    """Make the plan's writes (rank 0, lock held): new run files, recorded changes, cut-back side files.

    ``env`` (:func:`lrtempo.rundir.environment`) goes into ``run.json``: as ``environment`` for a new run, as
    an entry of ``resumes`` for a resume; never into ``config.yaml`` or the config hash.
    """
    run = plan.run
    run.remove_stale_temps()
    if plan.mode in ("new", "restart"):
        run.clear_steps()
        _write_new(run, config, world, env)
        return
    meta = _with_resume(plan.meta or run.read_meta(), plan.step, env)
    write_meta(run.path, meta)  # recorded before the config changes: a kill in between needs no flag again
    if plan.schedule_change:
        run.write(run.config_before(plan.step), format_config(plan.trained_config, "yaml"))
    if plan.schedule_change or plan.steps_change:
        run.write_config(format_config(config.to_mapping(), "yaml"))
        _note_png(meta, write_schedule_views(run.path, config))
        write_meta(run.path, meta)
    run.cut_back(plan.step)


def _with_resume(meta: dict, step: int, env: dict[str, Any] | None) -> dict:
    """``meta`` with this resume at ``step`` recorded in ``resumes`` (entries at or past it are from resumes
    killed since, and were dropped when the plan was made)."""
    if env is None:
        return meta
    kept = [r for r in meta.get("resumes", []) if r["step"] < step]
    return {**meta, "resumes": [*kept, {"step": step, "environment": env}]}


def write_meta(run_dir: Path, meta: dict) -> None:
    RunDir(run_dir).write_meta(meta)


def _fresh_meta(config: RunConfig, world: int) -> dict[str, Any]:
    return {"config_hash": config_hash(config), "spec_hash": spec_hash(config.schedule),
            "log_schema_version": LOG_SCHEMA_VERSION, "log_columns": [*SCHEMA_COLUMNS, *columns(config)],
            "world_size": world, "schedule_changes": [], "steps_changes": []}


def _note_png(meta: dict, missing_png: str | None) -> None:
    if missing_png:
        meta["lr_schedule_png"] = f"not written: {missing_png}"
    else:
        meta.pop("lr_schedule_png", None)


def _write_new(run: RunDir, config: RunConfig, world: int, env: dict[str, Any] | None) -> None:
    run.write_config(format_config(config.to_mapping(), "yaml"))  # first: now a run
    meta = _fresh_meta(config, world)
    if env is not None:
        meta["environment"] = env
    _note_png(meta, write_schedule_views(run.path, config))
    run.write_meta(meta)


def write_schedule_views(run_dir: Path, config: RunConfig) -> str | None:
    """``schedule.txt`` and ``lr_schedule.png``; returns why the PNG is missing, if it is."""
    run = RunDir(run_dir)
    text = text_plot(config.schedule, last_step=config.steps, title=f"{config.name}: lr over steps 0..{config.steps}")
    run.write(run.schedule_text, text + "\n")
    try:
        png_plot(config.schedule, run.schedule_png, last_step=config.steps, title=config.name)
    except MissingDependency as exc:
        return str(exc)
    return None
