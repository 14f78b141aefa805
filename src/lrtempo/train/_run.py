"""``lrtempo train``: a run directory, the training loop, checkpoints and exact resume.

Run directory (``runs/<name>/``):

* ``config.yaml`` — the resolved run config (schedule in canonical form);
* ``run.json`` — config and schedule hashes, log schema version, world size,
  schedule changes made on resume;
* ``log.csv`` — ``step,lr,grad_l2_norm,loss,val_loss,tokens,seconds,skipped_updates``;
* ``schedule.txt`` and ``lr_schedule.png`` — the schedule over the run;
* ``checkpoints/step-NNNNNNNN.pt`` — the newest three;
* ``summary.json`` — steps, final and best losses, skipped updates, whether
  the run went past the schedule's end, wall time, status.

Under ``torchrun`` (``WORLD_SIZE > 1``) every rank trains with DDP over gloo
(NCCL on GPUs), applies the same rate, logs the global gradient norm, and only
rank 0 writes the log and the checkpoints (which hold every rank's data
position and RNG state).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import torch

from .._atomic import atomic_write_text
from ..config import ConfigError, Problem, format_config, spec_hash
from ..monitor import MONITOR_COLUMNS, Monitor, MonitorSettings
from ..plot import MissingDependency, png_plot, text_plot
from ._checkpoint import latest_checkpoint, load_checkpoint, rng_state, save_checkpoint, set_rng_state
from ._log import LOG_SCHEMA_VERSION, RunLog
from ._runconfig import RunConfig, parse_run_config
from ._state import TrainingDiverged, TrainState, build_optimizer
from .tasks import TASKS

__all__ = ["train", "RunSummary", "EXTRA_COLUMNS"]

EXTRA_COLUMNS = ("val_loss", "tokens", "seconds", "skipped_updates")


@dataclass(frozen=True)
class RunSummary:
    run_dir: Path
    status: str
    steps: int
    final_loss: float | None
    best_loss: float | None
    final_val_loss: float | None
    skipped_updates: int
    past_schedule_end: bool
    wall_seconds: float


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


def _config_hash(config: RunConfig) -> str:
    text = json.dumps(config.to_mapping(), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _write_schedule_views(run_dir: Path, config: RunConfig) -> str | None:
    """``schedule.txt`` and ``lr_schedule.png``; returns why the PNG is missing, if it is."""
    text = text_plot(config.schedule, last_step=config.steps, title=f"{config.name}: lr over steps 0..{config.steps}")
    atomic_write_text(run_dir / "schedule.txt", text + "\n")
    try:
        png_plot(config.schedule, run_dir / "lr_schedule.png", last_step=config.steps, title=config.name)
    except MissingDependency as exc:
        return str(exc)
    return None


def _columns(config: RunConfig) -> tuple[str, ...]:
    return EXTRA_COLUMNS + (MONITOR_COLUMNS if config.monitor is not None else ())


def _truncate_step_file(path: Path, resume_step: int, *, header: bool, step_of) -> None:
    """Drop lines at or past ``resume_step`` (and a torn last line) from a step-keyed text file."""
    if not path.exists():
        return
    lines = path.read_text(encoding="utf-8").split("\n")
    kept = lines[:1] if header else []
    for line in lines[1 if header else 0:-1]:
        try:
            if step_of(line) >= resume_step:
                break
        except (ValueError, KeyError, IndexError):
            break
        kept.append(line)
    atomic_write_text(path, "\n".join(kept) + ("\n" if kept else ""))


def _prepare_new_run(out: Path, config: RunConfig) -> Path:
    run_dir = out / config.name
    if (run_dir / "log.csv").exists():
        raise ConfigError([Problem("name", f"{run_dir} already holds a run: resume it with --resume {run_dir}, "
                                           "or choose another --out or name")])
    (run_dir / "checkpoints").mkdir(parents=True, exist_ok=True)
    atomic_write_text(run_dir / "config.yaml", format_config(config.to_mapping(), "yaml"))
    meta = {"config_hash": _config_hash(config), "spec_hash": spec_hash(config.schedule),
            "log_schema_version": LOG_SCHEMA_VERSION, "log_columns": ["step", "lr", "grad_l2_norm", "loss",
                                                                      *_columns(config)],
            "schedule_changes": []}
    missing_png = _write_schedule_views(run_dir, config)
    if missing_png:
        meta["lr_schedule_png"] = f"not written: {missing_png}"
    atomic_write_text(run_dir / "run.json", json.dumps(meta, indent=2) + "\n")
    return run_dir


def _resume_config(run_dir: Path, new: RunConfig | None, allow_change: bool, steps: int | None) -> RunConfig:
    from ..config import read_config_file

    saved_path = run_dir / "config.yaml"
    if not saved_path.exists():
        raise ConfigError([Problem("", f"{run_dir} is not an lrtempo run directory (no config.yaml)")])
    saved = parse_run_config(read_config_file(saved_path), str(saved_path))
    config = saved if new is None else new
    if new is not None and spec_hash(new.schedule) != spec_hash(saved.schedule) and not allow_change:
        raise ConfigError([Problem("schedule", f"differs from the schedule {run_dir} was trained with "
                                               f"({spec_hash(saved.schedule)[:12]}); pass --allow-schedule-change "
                                               "to continue under the new one")])
    if steps is not None:
        data = config.to_mapping()
        data["steps"] = steps
        config = parse_run_config(data, str(saved_path))
    return config


def _device(config: RunConfig, dist: _Dist) -> torch.device:
    want = config.device
    if want == "auto":
        want = "cuda" if torch.cuda.is_available() else "cpu"
    if want == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError([Problem("device", "cuda was asked for but torch sees no GPU")])
        return torch.device("cuda", dist.local_rank)
    return torch.device("cpu")


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
) -> RunSummary:
    """Train ``config`` into ``out/<name>`` (or continue ``resume``) and return the summary."""
    stream = stream or sys.stderr
    dist = _Dist()
    try:
        return _train(config, Path(out), resume, allow_schedule_change, steps, progress, stream, dist)
    finally:
        dist.close()


def _train(config, out, resume, allow_change, steps, progress, stream, dist) -> RunSummary:
    if resume is not None:
        run_dir = Path(resume)
        config = _resume_config(run_dir, config, allow_change, steps)
    else:
        if config is None:
            raise ValueError("a run config is needed for a new run")
        if steps is not None:
            data = config.to_mapping()
            data["steps"] = steps
            config = parse_run_config(data)
        run_dir = None
        if dist.main:
            run_dir = _prepare_new_run(out, config)
        run_dir = Path(dist.broadcast(str(run_dir) if run_dir else None))
    device = _device(config, dist)
    task = TASKS[config.task](config.task_options, config.seed, dist.rank, dist.world)
    model = task.model.to(device)
    if dist.group is not None:
        model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)
    opt = config.optimizer
    optimizer = build_optimizer(model.module if dist.group is not None else model, name=opt.name,
                                lr=config.schedule(0), betas=opt.betas, eps=opt.eps,
                                weight_decay=opt.weight_decay, momentum=opt.momentum)
    bar = _Progress(config.steps, 0, stream, progress and dist.main)
    monitor = None
    if config.monitor is not None:
        monitor = Monitor(config.schedule, MonitorSettings(**config.monitor), total_steps=config.steps,
                          events_path=run_dir / "events.jsonl" if dist.main else None,
                          layers_path=run_dir / "layers.csv" if dist.main else None,
                          console=bar.message if dist.main else None, collect_layers=True)
    state = TrainState(model, config.schedule, optimizer=optimizer, clip_grad_norm=config.grad_clip,
                       accumulation_steps=config.accumulation_steps, bf16=config.bf16,
                       max_consecutive_skips=config.max_consecutive_skips, allow_schedule_change=allow_change,
                       process_group=dist.group, monitor=monitor)
    random.seed(config.seed * 7919 + dist.rank)
    np.random.seed((config.seed * 7919 + dist.rank) % 2**32)
    torch.manual_seed(config.seed * 7919 + dist.rank)
    elapsed_before = 0.0
    best_loss = best_val = None
    start_step = 0
    if resume is not None:
        ckpt_path = latest_checkpoint(run_dir / "checkpoints")
        if ckpt_path is None:
            raise ConfigError([Problem("", f"{run_dir} has no checkpoint to resume from")])
        ckpt = load_checkpoint(ckpt_path)
        if ckpt["world_size"] != dist.world:
            raise ConfigError([Problem("", f"the checkpoint was written by {ckpt['world_size']} processes, "
                                           f"this run has {dist.world}")])
        if ckpt["spec_hash"] != spec_hash(config.schedule) and dist.main:
            _record_schedule_change(run_dir, config, ckpt)
        state.load_state_dict(ckpt["train_state"])
        mine = ckpt["ranks"][dist.rank]
        set_rng_state(mine["rng"])
        task.load_state_dict(mine["task"])
        elapsed_before = float(ckpt["elapsed_seconds"])
        best_loss, best_val = ckpt.get("best_loss"), ckpt.get("best_val_loss")
        start_step = int(ckpt["step"])
        if monitor is not None and ckpt.get("monitor") is not None:
            monitor.load_state_dict(ckpt["monitor"])
        if dist.main:
            _truncate_step_file(run_dir / "events.jsonl", start_step, header=False,
                                step_of=lambda line: json.loads(line)["step"])
            _truncate_step_file(run_dir / "layers.csv", start_step, header=True,
                                step_of=lambda line: int(line.split(",", 1)[0]))
    log = RunLog(run_dir / "log.csv", _columns(config), resume_step=start_step if resume is not None else None) \
        if dist.main else None
    bar.start = start_step
    end = config.schedule.end_step
    past_end_warned = False
    tokens_per_update = task.tokens_per_micro_batch * config.accumulation_steps * dist.world
    t0 = time.perf_counter()
    status, last = "completed", None
    final_val = None

    def checkpoint() -> None:
        ranks = dist.gather({"rng": rng_state(), "task": task.state_dict()})
        if dist.main:
            log.sync()
            if monitor is not None:
                monitor.flush_layers()
            save_checkpoint(run_dir / "checkpoints", state.step, {
                "monitor": monitor.state_dict() if monitor is not None else None,
                "train_state": state.state_dict(), "ranks": ranks, "world_size": dist.world,
                "schedule_spec": config.schedule_spec, "spec_hash": spec_hash(config.schedule),
                "log_rows": state.step, "elapsed_seconds": elapsed_before + time.perf_counter() - t0,
                "best_loss": best_loss, "best_val_loss": best_val,
            })
        dist.barrier()

    try:
        while state.step < config.steps:
            batches = [_to(b, device) for b in task.micro_batches(config.accumulation_steps)]
            result = state.update(batches, task.loss)
            if result.skipped:
                if dist.main and monitor is None:  # with a monitor, its SKIPPED_UPDATE event says it
                    bar.message(f"warning: update at step {result.step} skipped: non-finite loss or gradient "
                                f"(loss={result.loss!r}, grad_l2_norm={result.grad_l2_norm!r})")
                continue
            last = result
            best_loss = result.loss if best_loss is None else min(best_loss, result.loss)
            done = result.step + 1
            val = None
            if config.eval_every and (done % config.eval_every == 0 or done == config.steps):
                if dist.main:
                    val = task.evaluate(model.module if dist.group is not None else model)
                    if val is not None:
                        final_val = val
                        best_val = val if best_val is None else min(best_val, val)
            if end is not None and result.step > end and not past_end_warned and dist.main:
                past_end_warned = True
                bar.message(f"warning: step {result.step} is past the schedule's end ({end}); the rate holds "
                            f"its final value {config.schedule(end)!r}")
            if dist.main:
                log.append(step=result.step, lr=result.lr, grad_l2_norm=result.grad_l2_norm, loss=result.loss,
                           val_loss=val, tokens=done * tokens_per_update,
                           seconds=round(elapsed_before + time.perf_counter() - t0, 3),
                           skipped_updates=state.skipped_updates, **result.monitor)
            bar.update(result.step, result.lr, result.loss, result.grad_l2_norm)
            if done % config.checkpoint_every == 0 and done < config.steps:
                checkpoint()
        checkpoint()
    except TrainingDiverged:
        status = "diverged"
        checkpoint()
        raise
    except KeyboardInterrupt:
        status = "interrupted"
        checkpoint()
        raise
    finally:
        bar.close()
        wall = elapsed_before + time.perf_counter() - t0
        summary = RunSummary(run_dir, status, state.step, last.loss if last else None, best_loss, final_val,
                             state.skipped_updates, end is not None and state.step > end + 1, wall)
        if dist.main and log is not None:
            log.close()
            payload = {**{k: v for k, v in summary.__dict__.items() if k != "run_dir"},
                       "best_val_loss": best_val, "schedule_end_step": end, "spec_hash": spec_hash(config.schedule),
                       "world_size": dist.world}
            atomic_write_text(run_dir / "summary.json", json.dumps(payload, indent=2) + "\n")
    return summary


def _record_schedule_change(run_dir: Path, config: RunConfig, ckpt: dict) -> None:
    step = int(ckpt["step"])
    shutil.copyfile(run_dir / "config.yaml", run_dir / f"config.before-step-{step}.yaml")
    atomic_write_text(run_dir / "config.yaml", format_config(config.to_mapping(), "yaml"))
    meta_path = run_dir / "run.json"
    meta = json.loads(meta_path.read_text())
    meta.setdefault("schedule_changes", []).append(
        {"step": step, "from": ckpt["spec_hash"], "to": spec_hash(config.schedule)})
    meta["spec_hash"] = spec_hash(config.schedule)
    atomic_write_text(meta_path, json.dumps(meta, indent=2) + "\n")
    _write_schedule_views(run_dir, config)
