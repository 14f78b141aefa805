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
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._rundir_schema import HYPER_COLUMNS
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
from ._runconfig import UNHASHED, RunConfig, parse_run_config

__all__ = ["Plan", "plan_new", "plan_resume", "begin", "write_meta", "columns", "EXTRA_COLUMNS", "FIXED_ON_RESUME"]

#: config keys a resumed run keeps: changing them makes another run (or one its checkpoint cannot load into)
FIXED_ON_RESUME = ("task", "task_options", "optimizer", "accumulation_steps", "monitor", "distributed")


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
    #: run.json's ``budget`` for a new run (the fields ``auto`` filled are known only before config.yaml)
    budget: dict | None = None
    #: the momentum and weight-decay schedule changes this resume makes, by name (like ``schedule_change``)
    hyper_changes: dict = field(default_factory=dict)
    #: the log columns a resume continues with (None: this config's, :func:`columns`)
    log_columns: tuple[str, ...] | None = None
    #: the folders a new run's lock made (innermost first), removed again when the run is refused
    made_folders: tuple[str, ...] = ()

    @property
    def run(self) -> RunDir:
        return RunDir(self.run_dir)


def columns(config: RunConfig) -> tuple[str, ...]:
    """The log's columns after ``step,lr,grad_l2_norm,loss``."""
    hypers = tuple(name for name in HYPER_COLUMNS if getattr(config, name) is not None)
    return EXTRA_COLUMNS + (MONITOR_COLUMNS if config.monitor is not None else ()) + hypers


#: log columns added after runs were written without them: such a run's log continues without them
_LATER_COLUMNS = ("samples",)


def resume_columns(run: RunDir, config: RunConfig) -> tuple[str, ...] | None:
    """The columns (after ``step,lr,grad_l2_norm,loss``) a resumed run's log continues with: this config's, or,
    for a log written before one of :data:`_LATER_COLUMNS` existed, the same without it; None when the log's
    header is neither (reads only)."""
    full = columns(config)
    older = tuple(name for name in full if name not in _LATER_COLUMNS)
    for candidate in (full, older):
        if header_mismatch(run.log, candidate) is None:
            return candidate
    return None


def config_hash(config: RunConfig) -> str:
    hashed = {k: v for k, v in config.to_mapping().items() if k not in UNHASHED}
    text = json.dumps(hashed, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _refuse(message: str, path: str = "") -> ConfigError:
    return ConfigError([Problem(path, message)])


def check_budget_world(config: RunConfig, world: int) -> None:
    """Refuse a run whose budget counted another number of processes than it has.

    The budget's global batch multiplies ``data.world_size`` (default 1); a run under ``torchrun`` with
    another count would train a different number of samples than the budget says. A budget of steps for a
    steps schedule does not depend on it.
    """
    h = config.budget
    if h is None or h.facts.world_size == world or h.facts.update_batch is not None or h.facts.batch_size is None:
        return
    if "steps" in h.given and getattr(config.schedule, "unit", "steps") == "steps":
        return
    (key, value), = h.given.items()
    raise _refuse(f"the budget {{{key}: {value}}} counts {h.facts.world_size} process"
                  f"{'es' if h.facts.world_size > 1 else ''} (data.world_size) and this run has {world}: set "
                  f"data.world_size: {world}", "total")


def _with_steps(config: RunConfig, steps: int | None) -> RunConfig:
    if steps is None or steps == config.steps:
        return config
    return parse_run_config({**config.to_mapping(), "steps": steps})


# -- planning: read and validate, write nothing ---------------------------------------------------------------------


def plan_new(config: RunConfig, out: Path, steps: int | None, world: int = 1) -> tuple[Plan, RunLock]:
    """A new run in ``out/<name>``; refused (pointing at the command that continues it) if one is there."""
    config = _with_steps(config, steps)
    check_budget_world(config, world)
    run_dir = out / config.name
    if run_dir.exists() and not run_dir.is_dir():
        raise _refuse(f"{run_dir} exists and is not a folder: choose another --out or name")
    made = _missing_folders(run_dir)
    run = RunDir(run_dir)
    lock = take_lock(run)
    if run.holds_run():
        lock.release()
        raise _refuse(_existing_run_message(run))
    if run.log.exists() or run.latest_checkpoint() is not None:
        lock.release()
        raise _refuse(f"{run_dir} holds a log or checkpoints but no config.yaml, so no run that can be continued: "
                      "move them away, or choose another --out or name")
    budget = budget_record(config) if config.budget is not None else None
    return Plan(run_dir, config.to_mapping(), "new", budget=budget, made_folders=made), lock


def _missing_folders(folder: Path) -> tuple[str, ...]:
    """``folder`` and those of its parents that do not exist yet, innermost first: what taking its lock makes."""
    missing = []
    while not folder.exists() and folder != folder.parent:
        missing.append(str(folder))
        folder = folder.parent
    return tuple(missing)


def undo_new(plan: Plan) -> None:
    """After a refusal before a new run wrote anything: remove its lock file and the folders taking it made
    (each only if nothing else is in it), so a refused command leaves the disk as it found it."""
    if not plan.made_folders:
        return
    RunDir(plan.run_dir).lock_file.unlink(missing_ok=True)
    for folder in plan.made_folders:
        try:
            os.rmdir(folder)
        except OSError:
            return  # something else is in it: keep it


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
    check_budget_world(config, world)
    where = f"{run.config} (edited since the run began)" if new is None else "CONFIG"
    ckpt_path = run.latest_checkpoint()
    if ckpt_path is None:  # killed before the first checkpoint: start again from step 0
        if new is not None:
            _schedule_change(spec_hash(saved.schedule), config, allow_change, where, 0, {})
            for name in HYPER_COLUMNS:
                _schedule_change(_hash_of(getattr(saved, name)), config, allow_change, where, 0, {}, name)
        return Plan(run_dir, config.to_mapping(), "restart", budget=run.read_meta().get("budget"))
    ckpt = load_checkpoint(ckpt_path)
    done = int(ckpt["step"])
    if ckpt["world_size"] != world:
        raise _refuse(f"{ckpt_path} was written by {ckpt['world_size']} processes and this run has {world}: "
                      f"resume it with {ckpt['world_size']}")
    trained = json.loads(ckpt["config"]) if "config" in ckpt else saved.to_mapping()
    trained["schedule"] = ckpt["schedule_spec"]
    _check_fixed(trained, config.to_mapping(), where)
    change = _schedule_change(ckpt["spec_hash"], config, allow_change, where, done, run.read_meta())
    hyper = _hyper_changes(ckpt, config, allow_change, where, done, run.read_meta())
    if done > config.steps:
        raise _refuse(f"{config.steps} is fewer than the {done} updates {run_dir} has run: give more to extend "
                      "it (a run is not shortened)", "steps")
    log_columns = resume_columns(run, config)
    if log_columns is None:
        raise _refuse(f"{header_mismatch(run.log, columns(config))}: the log cannot be continued")
    if done == config.steps:  # nothing to train; only what a kill left half-done is completed
        return Plan(run_dir, config.to_mapping(), "finished", str(ckpt_path), done,
                    meta=_meta_at(run_dir, config, done, None, None, world, finished=True, hyper={}),
                    summary=_stale_summary(run_dir, ckpt, config, world))
    was = int(trained.get("steps", saved.steps))
    steps_change = None if config.steps == was else {"step": done, "from": was, "to": config.steps}
    return Plan(run_dir, config.to_mapping(), "resume", str(ckpt_path), done, change, steps_change, trained,
                meta=_meta_at(run_dir, config, done, change, steps_change, world, finished=False, hyper=hyper),
                hyper_changes=hyper, log_columns=log_columns)


def _meta_at(run_dir: Path, config: RunConfig, step: int, schedule_change: dict | None, steps_change: dict | None,
             world: int, *, finished: bool, hyper: dict) -> dict | None:
    """run.json for a resume at ``step``: changes recorded at or past it by resumes killed since are dropped,
    this resume's own added; None when that is what the file holds."""
    before = RunDir(run_dir).read_meta()
    meta = dict(before) or _fresh_meta(config, world)
    for key, change in (("schedule_changes", schedule_change), ("steps_changes", steps_change)):
        kept = [c for c in meta.get(key, []) if c["step"] < step]
        meta[key] = kept + ([change] if change else [])
    for name in HYPER_COLUMNS:  # ``momentum_changes``, ``weight_decay_changes``: only in runs that have had one
        key, change = _CHANGES[name], hyper.get(name)
        if key in meta or change:
            meta[key] = [c for c in meta.get(key, []) if c["step"] < step] + ([change] if change else [])
    if "resumes" in meta:  # this resume's own entry is added when it begins (:func:`begin`)
        meta["resumes"] = [r for r in meta["resumes"] if r["step"] < step]
    if not finished:
        meta.update(config_hash=config_hash(config), spec_hash=spec_hash(config.schedule))
    return None if meta == before else meta


def _check_fixed(trained: dict, config: dict, where: str) -> None:
    # a key not written at its default (``distributed``) reads as that default
    trained, config = ({**_UNWRITTEN, **trained}, {**_UNWRITTEN, **config})
    problems = [Problem(key, f"{where} has {config.get(key)!r} but the run was trained with {trained.get(key)!r}; "
                             "a resumed run keeps its task, model, optimizer, accumulation, monitor and "
                             "distributed strategy "
                             "(start a new run to change them)")
                for key in FIXED_ON_RESUME if config.get(key) != trained.get(key)]
    if problems:
        raise ConfigError(problems)


#: the fixed keys a config mapping leaves out at their defaults
_UNWRITTEN = {"distributed": "ddp"}

#: the run.json key of each schedule's changes
_CHANGES = {"schedule": "schedule_changes", **{name: f"{name}_changes" for name in HYPER_COLUMNS}}


def _schedule_change(trained: str | None, config: RunConfig, allow: bool, where: str, step: int,
                     meta: dict, key: str = "schedule") -> dict | None:
    """The change of the schedule ``key`` (the rate's, or ``momentum``/``weight_decay``, whose hash is None
    where none is given) a resume at ``step`` makes, or None; refused without --allow-schedule-change.

    A change already recorded in ``run.json`` for this step (a resume under it that was killed before its
    next checkpoint) needs no flag again.
    """
    schedule = getattr(config, key)
    now = _hash_of(schedule)
    # the same schedule (a run of lrtempo 0.1 may hold the older hash)
    if trained == now or (schedule is not None and trained in spec_hashes(schedule)):
        return None
    change = {"step": step, "from": trained, "to": now}
    if not allow and change not in meta.get(_CHANGES[key], []):
        what = "schedule" if key == "schedule" else f"{key} schedule"
        raise _refuse(f"{where} differs from the {what} the run was trained with up to step {step} (spec hash "
                      f"{_short(trained)}, now {_short(now)}): pass --allow-schedule-change to continue under it",
                      key)
    return change


def _hash_of(schedule) -> str | None:
    return None if schedule is None else spec_hash(schedule)


def _short(digest: str | None) -> str:
    return "none: not scheduled" if digest is None else digest[:12]


def _hyper_changes(ckpt: dict, config: RunConfig, allow: bool, where: str, step: int, meta: dict) -> dict:
    """``{name: change}`` of the momentum and weight-decay schedules against those the checkpoint was trained
    under (the hashes its scheduler state holds; none in a run without them)."""
    trained = ckpt["train_state"]["scheduler"]
    changes = {name: _schedule_change(trained.get(f"{name}_spec_hash"), config, allow, where, step, meta, name)
               for name in HYPER_COLUMNS}
    return {name: change for name, change in changes.items() if change is not None}


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
        _write_new(run, config, world, env, plan.budget)
        return
    meta = _with_resume(plan.meta or run.read_meta(), plan.step, env)
    write_meta(run.path, meta)  # recorded before the config changes: a kill in between needs no flag again
    if plan.schedule_change or plan.hyper_changes:
        run.write(run.config_before(plan.step), format_config(plan.trained_config, "yaml"))
    if plan.schedule_change or plan.steps_change or plan.hyper_changes:
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
    meta = {"config_hash": config_hash(config), "spec_hash": spec_hash(config.schedule),
            "log_schema_version": LOG_SCHEMA_VERSION, "log_columns": [*SCHEMA_COLUMNS, *columns(config)],
            "world_size": world, "schedule_changes": [], "steps_changes": []}
    if config.budget is not None:  # the run's length and where it came from (see lrtempo.config._horizon)
        meta["budget"] = budget_record(config)
    return meta


def budget_record(config: RunConfig) -> dict[str, Any]:
    """run.json's ``budget``: the budget as given, its inputs and their sources, the derivation, the unit the
    schedule counts and the fields ``auto`` filled (none when a resumed config.yaml has them as numbers)."""
    unit = getattr(config.schedule, "unit", "steps")
    return {**config.budget.to_json(), "unit": unit}


def _note_png(meta: dict, missing_png: str | None) -> None:
    if missing_png:
        meta["lr_schedule_png"] = f"not written: {missing_png}"
    else:
        meta.pop("lr_schedule_png", None)


def _write_new(run: RunDir, config: RunConfig, world: int, env: dict[str, Any] | None,
               budget: dict | None = None) -> None:
    run.write_config(format_config(config.to_mapping(), "yaml"))  # first: now a run
    meta = _fresh_meta(config, world)
    if budget is not None:
        meta["budget"] = budget
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
