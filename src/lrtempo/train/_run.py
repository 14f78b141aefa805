"""``lrtempo train``: a run directory, the training loop, checkpoints and exact resume.

The run directory (``runs/<name>/``) is written through :class:`lrtempo.rundir.RunDir`,
which owns its files (docs/run-directory.md): ``config.yaml`` (the resolved run
config), ``run.json`` (hashes, the log schema, the environment that reproducing
the run needs, changes made on resume), ``log.csv``, ``events.jsonl`` and
``layers.csv`` (the monitor's), ``schedule.txt`` and ``lr_schedule.png``,
``checkpoints/`` (the newest ``keep_checkpoints``, three by default, and those
of ``checkpoint_at``), ``summary.json`` and ``.lock``. A call is
open (lock and plan, writing nothing: :mod:`lrtempo.train._rundir`), build,
restore, begin (the plan's writes), loop and finish.

SIGINT and SIGTERM stop the run at the next update boundary: the update in
flight completes and is logged, a checkpoint of that state is written and
``summary.json`` says ``"status": "interrupted"``, so ``--resume`` continues
bit for bit as if nothing had happened. A second signal stops at once, with
no checkpoint (the latest one and the log's truncation on resume still give
an exact continuation).

Under ``torchrun`` (``WORLD_SIZE > 1``) every rank trains with DDP over gloo
(NCCL on GPUs), applies the same rate, logs the global gradient norm, and only
rank 0 writes the log and the checkpoints (which hold every rank's data
position and RNG state). With ``distributed: fsdp`` the model is sharded with
FSDP2 instead, and each checkpoint is a folder every rank writes its shards to
(:mod:`lrtempo.train._fsdp`).
"""

from __future__ import annotations

import json
import os
import random
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import torch

from ..config import ConfigError, Problem, spec_hash
from ..monitor import Monitor, MonitorSettings
from ..rundir import EXTRA_COLUMNS, RunLog, environment
from ..schedules import has_finite_end
from ._checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from ._fsdp import ShardedStats, load_sharded, save_sharded, shard_model
from ._lock import RunLock
from ._plateau import evaluates, plateau_watch
from ._ramp import Consumption
from ._runconfig import RunConfig, parse_run_config
from ._rundir import Plan, begin, columns, plan_new, plan_resume, undo_new, write_meta
from ._schedulefree import eval_state_dict, evaluation_weights, require_package
from ._state import TrainingDiverged, TrainState, build_optimizer
from ._tensorboard import require_tensorboard, tensorboard_log
from .tasks import TASKS

__all__ = ["train", "RunSummary", "EXTRA_COLUMNS"]


@dataclass(frozen=True)
class RunSummary:
    """What a call of :func:`train` left: the run's totals (as in ``summary.json``) and this call's share."""

    run_dir: Path
    status: str
    steps: int
    final_loss: float | None
    best_loss: float | None
    final_val_loss: float | None
    skipped_updates: int
    past_schedule_end: bool
    wall_seconds: float
    #: updates this call applied (0: the run was already finished)
    updates_run: int = 0
    #: the signal that stopped the run (``SIGINT`` or ``SIGTERM``), when ``status`` is ``interrupted``
    signal: str | None = None


class _Dist:
    """Rank, world size and the process group (a single process when not under torchrun)."""

    def __init__(self) -> None:
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        self.group = None
        if self.world > 1:
            import torch.distributed as dist

            if not dist.is_initialized():
                backend = "nccl" if torch.cuda.is_available() and os.environ.get("LRTEMPO_BACKEND") != "gloo" \
                    else "gloo"
                dist.init_process_group(backend=backend)
            self.group = dist.group.WORLD

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.group is not None:
            torch.distributed.barrier()

    def gather(self, obj: Any) -> list[Any]:
        if self.group is None:
            return [obj]
        out: list[Any] = [None] * self.world
        torch.distributed.all_gather_object(out, obj)
        return out

    def broadcast(self, obj: Any) -> Any:
        if self.group is None:
            return obj
        box = [obj]
        torch.distributed.broadcast_object_list(box, src=0)
        return box[0]

    def max_int(self, value: int, device: torch.device) -> int:
        """The largest ``value`` over the ranks (one small all-reduce; only under DDP)."""
        if self.group is None:
            return value
        t = torch.tensor([value], dtype=torch.int64, device=device)
        torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.MAX)
        return int(t.item())

    def close(self) -> None:
        if self.group is not None and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


class _Progress:
    """One console line: step, rate, loss, gradient norm and ETA (a new line every ~5% when not a terminal)."""

    def __init__(self, total: int, start: int, stream: TextIO, enabled: bool) -> None:
        self.total, self.start, self.stream, self.enabled = total, start, stream, enabled
        self.tty = enabled and stream.isatty()
        self.t0 = time.perf_counter()
        self.every = max(1, (total - start) // 20)

    def update(self, step: int, lr: float, loss: float, norm: float) -> None:
        if not self.enabled:
            return
        done = step + 1
        if not self.tty and done % self.every and done != self.total:
            return
        elapsed = time.perf_counter() - self.t0
        rate = (done - self.start) / elapsed if elapsed > 0 else 0.0
        eta = (self.total - done) / rate if rate > 0 else 0.0
        line = (f"step {done:>{len(str(self.total))}}/{self.total}  lr {lr:.3e}  loss {loss:.4f}  "
                f"grad_l2_norm {norm:.3e}  eta {int(eta) // 60}:{int(eta) % 60:02d}")
        self.stream.write(("\r" + line) if self.tty else line + "\n")
        self.stream.flush()

    def message(self, text: str) -> None:
        if self.tty:
            self.stream.write("\n")
        self.stream.write(text + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


class _StopSignals:
    """While active, SIGINT and SIGTERM only ask the loop to stop at the next update boundary.

    The first signal is remembered in ``signum``; a second raises ``KeyboardInterrupt`` at once. Outside the
    main thread (where Python cannot install handlers) signals keep their usual effect.
    """

    def __init__(self) -> None:
        self.signum = 0
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: Any) -> None:
        if self.signum:
            raise KeyboardInterrupt
        self.signum = signum

    def __enter__(self) -> _StopSignals:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)


def _device(config: RunConfig, dist: _Dist) -> torch.device:
    want = config.device
    if want == "auto":
        want = "cuda" if torch.cuda.is_available() else "cpu"
    if want == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError([Problem("device", "cuda was asked for but torch sees no GPU")])
        return torch.device("cuda", dist.local_rank)
    return torch.device("cpu")


def _place_model(model: torch.nn.Module, device: torch.device, dist: _Dist,
                 sharded: bool = False) -> tuple[torch.nn.Module, torch.nn.Module]:
    """The model on its device (wrapped in DDP under torchrun, or sharded with FSDP2) and the bare module inside."""
    if sharded:
        model = shard_model(model, device, dist.world)
        return model, model
    model = model.to(device)
    if dist.group is None:
        return model, model
    wrapped = torch.nn.parallel.DistributedDataParallel(
        model, device_ids=[device.index] if device.type == "cuda" else None)
    return wrapped, wrapped.module


def _seed_generators(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global generators (after the model and optimizer are built)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _process_seed(seed: int, rank: int) -> int:
    """The seed of Python's, NumPy's (mod 2**32) and torch's generators on ``rank`` (model init, data order)."""
    return seed * 7919 + rank


def _to(batch: Any, device: torch.device) -> Any:
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, (list, tuple)):
        return type(batch)(_to(b, device) for b in batch)
    return batch


def train(
    config: RunConfig | None,
    out: str | Path = "runs",
    *,
    resume: str | Path | None = None,
    allow_schedule_change: bool = False,
    steps: int | None = None,
    progress: bool = True,
    stream: TextIO | None = None,
    on_start: Callable[[], None] | None = None,
) -> RunSummary:
    """Train ``config`` into ``out/<name>`` (or continue ``resume``) and return the summary.

    A resume of a finished run trains nothing and returns ``updates_run == 0``; ``steps`` beyond the run's
    length extends it. SIGINT or SIGTERM end the call with ``status == "interrupted"`` after a checkpoint.
    ``on_start`` is called (on rank 0) once the run is opened and will train, after every refusal.
    """
    stream = stream or sys.stderr
    if config is not None:
        require_package(config.optimizer.name)  # refused before the run directory is made
    dist = _Dist()
    try:
        with _StopSignals() as stop:
            return _train(config, Path(out), resume, allow_schedule_change, steps, progress, stream, dist, stop,
                          on_start)
    finally:
        dist.close()


def _open(config, out, resume, allow_change, steps, dist) -> tuple[Plan, RunLock | None]:
    """Rank 0 takes the lock and plans (writing nothing); every rank gets the plan or the refusal."""
    plan = lock = error = None
    if dist.main:
        try:
            if resume is None:
                if config is None:
                    raise ValueError("a run config is needed for a new run")
                plan, lock = plan_new(config, out, steps, dist.world)
            else:
                plan, lock = plan_resume(Path(resume), config, allow_change, steps, dist.world)
        except Exception as exc:
            if dist.group is None:
                raise
            error = exc
    shared = dist.broadcast((plan, None if error is None else str(error)))
    if error is not None:
        raise error
    if shared[1] is not None:
        raise ConfigError([Problem("", f"rank 0: {shared[1]}")])
    return shared[0], lock


def _train(config, out, resume, allow_change, steps, progress, stream, dist, stop, on_start) -> RunSummary:
    """Open (lock and plan, writing nothing), build, restore, begin (the first writes), loop and finish."""
    plan, lock = _open(config, out, resume, allow_change, steps, dist)
    began = False
    try:
        config = parse_run_config(plan.config)
        if plan.mode == "finished":
            return _finished(plan, config, dist)
        require_tensorboard(config.tensorboard)  # refused (one line) before anything is written
        if dist.main and on_start is not None:
            on_start()
        try:
            session = _Session(plan, config, dist, progress, stream)
        except ConfigError:
            raise
        except ValueError as exc:  # what the task, the ramp or the optimizer refuse of this config: bad input
            raise ConfigError([Problem("", str(exc))]) from None
        if plan.checkpoint is not None:
            session.restore(load_checkpoint(plan.checkpoint))  # still nothing written: a failure changes nothing
        if dist.main:
            lock.claim()
            began = True
            begin(plan, config, dist.world, session.environment())
        session.open_log()
        return session.run(stop)  # the loop, then the closing checkpoint and summary.json
    finally:
        if lock is not None:
            if not began:
                undo_new(plan)  # a refused new run: its lock file and the folders made for it go again
            lock.release()


def _finished(plan: Plan, config: RunConfig, dist: _Dist) -> RunSummary:
    """A resume of a run already at its last step: nothing to train; only a missing summary.json is written."""
    ckpt = load_checkpoint(plan.checkpoint)
    if dist.main and plan.meta is not None:  # a resume killed before its first update recorded a change
        write_meta(plan.run_dir, plan.meta)
    if dist.main and plan.summary is not None:  # killed after the last checkpoint, before summary.json
        plan.run.write_summary(plan.summary)
    end = config.schedule.end_step
    return RunSummary(plan.run_dir, "completed", plan.step, ckpt.get("final_loss"), ckpt.get("best_loss"),
                      ckpt.get("final_val_loss"), int(ckpt["train_state"]["skipped_updates"]),
                      ckpt.get("past_schedule_end", end is not None and plan.step > end + 1),
                      float(ckpt["elapsed_seconds"]), 0)


class _Session:
    """One call's training: the model, optimizer, monitor and log of a planned run, and its loop."""

    def __init__(self, plan: Plan, config: RunConfig, dist: _Dist, progress: bool, stream: TextIO) -> None:
        self.plan, self.config, self.dist, self.run_dir, self.rundir = plan, config, dist, plan.run_dir, plan.run
        self.device = _device(config, dist)
        self.task = TASKS[config.task](config.task_options, config.seed, dist.rank, dist.world)
        # a reduce-on-plateau schedule's watch (None for others); refuses a rule the run cannot follow
        self.plateau = plateau_watch(config, self.task, plan.run if dist.main else None,
                                     lambda text: self.bar.message(text))
        self.consumption = Consumption.of(config, self.task, dist.world)  # a ramp the task cannot run: refused
        # FSDP2 needs processes to shard over; one process trains the model whole (a note says so)
        self.sharded = config.distributed == "fsdp" and dist.group is not None
        self.model, self.bare = _place_model(self.task.model, self.device, dist, self.sharded)
        opt = config.optimizer
        optimizer = build_optimizer(self.bare, name=opt.name, lr=config.schedule(0), betas=opt.betas, eps=opt.eps,
                                    weight_decay=opt.weight_decay, momentum=opt.momentum)
        self.bar = _Progress(config.steps, 0, stream, progress and dist.main)
        if config.distributed == "fsdp" and dist.group is None:
            self.bar.message("note: distributed: fsdp shards the model only under torchrun; this one process "
                             "trains it whole")
        self.monitor = self._monitor()
        self.state = TrainState(self.model, config.schedule, optimizer=optimizer, grad_clip=config.grad_clip,
                                accumulation_steps=config.accumulation_steps, bf16=config.bf16,
                                max_consecutive_skips=config.max_consecutive_skips,
                                allow_schedule_change=plan.schedule_change is not None or bool(plan.hyper_changes),
                                process_group=dist.group, monitor=self.monitor, momentum=config.momentum,
                                weight_decay=config.weight_decay,
                                sharded=ShardedStats(self.monitor, dist.world) if self.sharded else None)
        _seed_generators(_process_seed(config.seed, dist.rank))
        self.elapsed_before = 0.0
        self.best_loss = self.best_val = self.final_loss = self.final_val = None
        self.start_step = self.updates = 0
        self.saved_step: int | None = None  # the step of the latest checkpoint, if there is one
        self.log: RunLog | None = None
        self.t0 = time.perf_counter()
        self.past_end_warned = False

    def _monitor(self) -> Monitor | None:
        """The run's monitor, if its config asks for one; only rank 0's writes the run's events and layers."""
        config, main = self.config, self.dist.main
        if config.monitor is None:
            return None
        # the monitor reads phases by update: a schedule counted in samples or tokens, seen by the update count
        return Monitor(self.consumption.over_steps(config.schedule), MonitorSettings(**config.monitor),
                       total_steps=config.steps,
                       run_dir=self.rundir if main else None, console=self.bar.message if main else None,
                       collect_layers=True)

    def environment(self) -> dict[str, Any]:
        """What reproducing this run needs besides its config (``run.json``'s ``environment``)."""
        config, world = self.config, self.dist.world
        seeds = {"seed": config.seed, "process_seeds": [_process_seed(config.seed, r) for r in range(world)]}
        return environment(device=str(self.device), dtype="bfloat16" if config.bf16 else "float32",
                           world_size=world, strategy=self.strategy,
                           seeds=seeds)

    @property
    def strategy(self) -> str:
        """``run.json``'s ``environment.strategy``: ``single``, ``ddp`` or ``fsdp``."""
        return "fsdp" if self.sharded else "ddp" if self.dist.group is not None else "single"

    def restore(self, ckpt: dict) -> None:
        if self.sharded:  # the model and optimizer by shard, from the checkpoint folder (every rank)
            load_sharded(self.plan.checkpoint, self.bare, self.state.optimizer)
        self.state.load_state_dict(ckpt["train_state"])
        mine = ckpt["ranks"][self.dist.rank]
        set_rng_state(mine["rng"])
        self.task.load_state_dict(mine["task"])
        self.elapsed_before = float(ckpt["elapsed_seconds"])
        self.best_loss, self.best_val = ckpt.get("best_loss"), ckpt.get("best_val_loss")
        self.final_loss, self.final_val = ckpt.get("final_loss"), ckpt.get("final_val_loss")
        self.start_step = self.saved_step = int(ckpt["step"])
        if self.monitor is not None and ckpt.get("monitor") is not None:
            self.monitor.load_state_dict(ckpt["monitor"])
        if self.plateau is not None:
            self.plateau.load_state_dict(ckpt.get("plateau_watch"))
        self.bar.start = self.start_step

    def open_log(self) -> None:
        if self.dist.main:
            resume_step = self.start_step if self.plan.mode == "resume" else None
            logged = self.plan.log_columns if self.plan.mode == "resume" else None
            self.log = self.rundir.open_log(logged or columns(self.config), resume_step=resume_step)
            self.log = tensorboard_log(self.log, self.rundir, self.config.tensorboard, self.start_step,
                                       new=self.plan.mode == "new")  # the rows also as TensorBoard events
        self.t0 = time.perf_counter()

    def elapsed(self) -> float:
        return self.elapsed_before + time.perf_counter() - self.t0

    def checkpoint(self) -> None:
        """Checkpoint the state between two updates (every rank's RNG and data position)."""
        step = self.state.step
        ranks = self.dist.gather({"rng": rng_state(), "task": self.task.state_dict()})
        if self.dist.main:
            self.log.sync()
            if self.monitor is not None:
                self.monitor.flush_layers()
            payload = {
                "monitor": self.monitor.state_dict() if self.monitor is not None else None,
                "train_state": self.state.state_dict(), "ranks": ranks, "world_size": self.dist.world,
                "schedule_spec": self.config.schedule_spec, "spec_hash": spec_hash(self.config.schedule),
                "config": json.dumps(self.config.to_mapping()),
                "log_rows": step, "elapsed_seconds": self.elapsed(), "best_loss": self.best_loss,
                "past_schedule_end": self._ran_past_end(),
                "best_val_loss": self.best_val, "final_loss": self.final_loss, "final_val_loss": self.final_val,
                "plateau_watch": self.plateau.state_dict() if self.plateau is not None else None,
            }
            eval_model = eval_state_dict(self.bare, self.state.optimizer)
            if eval_model is not None:  # schedule-free: the weights to evaluate or deploy (training resumes
                payload["eval_model"] = eval_model  # from train_state, bit for bit)
            if not self.sharded:
                self._save(step, payload)
        if self.sharded:  # every rank writes its shards
            self._save(step, payload if self.dist.main else None)
        self.saved_step = step
        self.dist.barrier()

    def _save(self, step: int, payload: dict | None) -> None:
        config = self.config
        try:
            if self.sharded:
                save_sharded(self.rundir.checkpoints, step, payload, self.bare, self.state.optimizer, self.dist,
                             keep=config.checkpoints_kept, protect=config.checkpoint_at)
            else:
                save_checkpoint(self.rundir.checkpoints, step, payload, keep=config.checkpoints_kept,
                                protect=config.checkpoint_at)
        except (OSError, RuntimeError) as exc:
            raise RuntimeError(f"{self.run_dir}: could not write the checkpoint of step {step} ({exc}); the "
                               f"earlier checkpoints are intact: make room, then continue with "
                               f"`lrtempo train --resume {self.run_dir}`") from exc

    def _record(self, result) -> None:
        """Log one applied update (rank 0) and keep the run's totals."""
        config, done = self.config, result.step + 1
        self.final_loss = result.loss
        self.best_loss = result.loss if self.best_loss is None else min(self.best_loss, result.loss)
        val = None
        if evaluates(config, done) and (self.dist.main or self.sharded):  # FSDP2: every rank runs the forward
            with evaluation_weights(self.state.optimizer):  # schedule-free: its average; the run is unchanged
                val = self.task.evaluate(self.bare)
            val = val if self.dist.main else None
            if val is not None:
                self.final_val = val
                self.best_val = val if self.best_val is None else min(self.best_val, val)
        if self.plateau is not None:  # the watched loss to the schedule's rule, after each evaluation
            self.plateau.after_update(self.state.scheduler, result.step, result.loss, val, self.dist)
        end = config.schedule.end_step
        if end is not None and self._past_end(result.step) and not self.past_end_warned and self.dist.main:
            self.past_end_warned = True
            unit = config.schedule.unit
            where = "" if unit == "steps" else f" at {self.consumption.position(result.step)} {unit}"
            self.bar.message(f"warning: step {result.step}{where} is past the schedule's end ({end}"
                             f"{'' if unit == 'steps' else ' ' + unit}); the rate holds its final value "
                             f"{config.schedule(end)!r}")
        if self.dist.main:
            samples, tokens = self.consumption.through(done)
            self.log.append(step=result.step, lr=result.lr, grad_l2_norm=result.grad_l2_norm, loss=result.loss,
                            val_loss=val, tokens=tokens, seconds=round(self.elapsed(), 3),
                            skipped_updates=self.state.skipped_updates, **result.monitor,
                            **({"samples": samples} if "samples" in self.log.columns else {}),
                            **self._hypers(result.step))
        self.bar.update(result.step, result.lr, result.loss, result.grad_l2_norm)

    def _hypers(self, step: int) -> dict[str, float]:
        """The log's ``momentum`` and ``weight_decay`` of update ``step``, for those the config schedules."""
        hyper = self.state.scheduler.hyper
        return {} if hyper is None else hyper.values(step)

    @cached_property
    def _finite_end(self) -> bool:
        return has_finite_end(self.config.schedule)

    def _past_end(self, step: int) -> bool:
        """Whether update ``step`` ran past the schedule's end (its position, in the schedule's unit, beyond it);
        never for a schedule without a finite end (a constant, a warmup into one: they hold their value)."""
        return self._finite_end and self.consumption.position(step) > self.config.schedule.end_step

    def _ran_past_end(self) -> bool:
        """Whether the run's last update so far ran past the schedule's end."""
        return self.state.step > 0 and self._past_end(self.state.step - 1)

    def loop(self, stop: _StopSignals) -> int:
        """Train up to the run's last step; returns the signal that stopped it at an update boundary, or 0."""
        config, state = self.config, self.state
        while state.step < config.steps:
            signum = self.dist.max_int(stop.signum, self.device)  # every rank stops at the same boundary
            if signum:
                return signum
            step, plan = state.step, self.consumption
            state.accumulation_steps = plan.micro_batches(step)  # a batch ramp changes it; else the config's
            batches = [_to(b, self.device) for b in self.task.micro_batches(state.accumulation_steps)]
            result = state.update(batches, self.task.loss, consumed=plan.consumed(step))
            if result.skipped:
                if self.dist.main and self.monitor is None:  # with a monitor, its SKIPPED_UPDATE event says it
                    self.bar.message(f"warning: update at step {result.step} skipped: non-finite loss or gradient "
                                     f"(loss={result.loss!r}, grad_l2_norm={result.grad_l2_norm!r})")
                continue
            self.updates += 1
            self._record(result)
            due = state.step % config.checkpoint_every == 0 or state.step in config.checkpoint_at
            if due and state.step < config.steps:
                self.checkpoint()
        return 0

    def run(self, stop: _StopSignals) -> RunSummary:
        try:
            signum = self.loop(stop)
        except TrainingDiverged:
            self.finish("diverged")
            raise
        except BaseException:  # a second signal or a failure: the latest checkpoint stands, summary.json too
            self.bar.close()
            if self.log is not None:
                self.log.close()
            raise
        return self.finish("interrupted" if signum else "completed", signal.Signals(signum).name if signum else None)

    def finish(self, status: str, signame: str | None = None) -> RunSummary:
        """The closing checkpoint and ``summary.json``."""
        self.bar.close()
        if self.saved_step != self.state.step:
            self.checkpoint()
        end = self.config.schedule.end_step
        summary = RunSummary(self.run_dir, status, self.state.step, self.final_loss, self.best_loss, self.final_val,
                             self.state.skipped_updates, self._ran_past_end(),
                             self.elapsed(), self.updates, signame)
        if self.dist.main:
            self.log.close()
            payload = {k: v for k, v in asdict(summary).items() if k not in ("run_dir", "updates_run")}
            if signame is None:
                payload.pop("signal")
            payload.update(best_val_loss=self.best_val, schedule_end_step=end,
                           spec_hash=spec_hash(self.config.schedule), world_size=self.dist.world)
            self.rundir.write_summary(payload)
        return summary
