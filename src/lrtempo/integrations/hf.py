"""The lrtempo run record and training-health monitor inside a Hugging Face ``transformers.Trainer``.

    from lrtempo.integrations.hf import LRTempoCallback
    from lrtempo.torch import LRTempoScheduler

    scheduler = LRTempoScheduler(optimizer, schedule)
    trainer = Trainer(model=model, args=args, train_dataset=data, optimizers=(optimizer, scheduler),
                      callbacks=[LRTempoCallback("runs/my-run")])
    trainer.train()                   # or trainer.train(resume_from_checkpoint=...)

The callback writes the run directory ``lrtempo analyze`` and ``lrtempo report`` read (``config.yaml``,
``run.json``, ``log.csv``, ``events.jsonl``, ``layers.csv``, ``summary.json``) on the main process, one
row per optimizer update, and puts the monitor's signals into the Trainer's logs at its logging steps.
docs/integrations.md says what each column holds under the Trainer and how a resume continues the record.

Importing this module needs ``transformers`` (:class:`~lrtempo._util.MissingDependency` otherwise);
``import lrtempo.integrations`` does not.
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path
from typing import Any

from .._util import MissingDependency
from ..monitor import MonitorSettings
from ..rundir import RunDir
from ..schedules import has_finite_end
from ._record import (
    LOG_PREFIX,
    LRTempoIntegrationError,
    LRTempoIntegrationWarning,
    RunRecorder,
    check_schedule,
    grad_l2_norm,
    monitor_settings,
    out_of_step,
    package_version,
    process_environment,
    read_state,
    warn_user,
)

try:
    from transformers import TrainerCallback
except ImportError:
    raise MissingDependency("lrtempo.integrations.hf needs transformers, which is not installed: "
                            "pip install transformers") from None

__all__ = ["LOG_PREFIX", "LRTempoCallback", "LRTempoIntegrationError", "LRTempoIntegrationWarning"]


def _lrtempo_scheduler(scheduler: Any) -> Any:
    """The :class:`~lrtempo.torch.LRTempoScheduler` behind ``scheduler`` (unwrapping accelerate's), or None."""
    from ..torch import LRTempoScheduler

    for candidate in (scheduler, getattr(scheduler, "scheduler", None)):
        if isinstance(candidate, LRTempoScheduler):
            return candidate
    return None


class LRTempoCallback(TrainerCallback):
    """Write the lrtempo run record of a ``transformers.Trainer`` run into ``run_dir`` and monitor it.

    ``monitor``: ``True`` (the default settings), ``False`` (the record without the monitor's columns) or a
    :class:`~lrtempo.monitor.MonitorSettings`. The Trainer's scheduler must be an
    :class:`~lrtempo.torch.LRTempoScheduler` (``optimizers=(optimizer, scheduler)``); with another, the
    callback warns once and records nothing.

    Per optimizer update (on the main process): ``step`` is the updates already applied (``state.global_step``
    before the update, less any the optimizer skipped), ``lr`` the schedule's rate the update used,
    ``grad_l2_norm`` the Trainer's own global norm of the accumulated gradients before it clips them, ``loss``
    the Trainer's own loss of the update (what its ``training_step`` returned for the micro-batches, added up;
    with several processes, their mean); the monitor measures the gradients the update applies (after
    clipping). An update the optimizer skips (a gradient scaler's inf) gets no row, as in ``lrtempo train``.
    """

    def __init__(self, run_dir: RunDir | str | os.PathLike[str], *, monitor: bool | MonitorSettings = True):
        self.run_dir = run_dir if isinstance(run_dir, RunDir) else RunDir(run_dir)
        self.settings = monitor_settings(monitor)
        self.recorder: RunRecorder | None = None
        self._scheduler: Any = None
        self._losses: list[Any] = []  # the loss training_step returned for each micro-batch of the update
        self._norm: Any = None  # the Trainer's gradient norm of the update, before clipping
        self._taps = _TrainerTaps(self)
        self._row: dict[str, Any] | None = None
        self._warned: set[str] = set()

    # -- the Trainer's events --------------------------------------------------------------------------------
    def on_train_begin(self, args, state, control, model=None, optimizer=None, lr_scheduler=None, **kwargs):
        caller = sys._getframe(1)
        if not _run_first(self, caller):
            self._warn("order", "could not move LRTempoCallback ahead of the Trainer's other callbacks: its signals "
                       "reach the run record, but the report_to integrations, called before it, do not see them; "
                       "put it first with trainer.callback_handler.callbacks.insert(0, callback)")
        self._scheduler = _lrtempo_scheduler(lr_scheduler)
        if self._scheduler is None:
            self._warn("scheduler", f"the Trainer's scheduler is {type(lr_scheduler).__name__}, not lrtempo's: "
                       "pass optimizers=(optimizer, LRTempoScheduler(optimizer, schedule)) to the Trainer; "
                       "LRTempoCallback records nothing for this run")
            return
        schedule = self._scheduler.schedule
        check_schedule(self._scheduler, "LRTempoCallback")
        end = schedule.end_step
        if has_finite_end(schedule) and end != state.max_steps:  # a constant, a warmup into one: no end to miss
            self._warn("total", _total_mismatch(end, state.max_steps, args))
        if 0 < state.max_steps <= state.global_step:
            self._warn("finished", f"resuming a finished run: the checkpoint is at step {state.global_step} and "
                       f"max_steps={state.max_steps}, yet the Trainer still runs an update; it is recorded as step "
                       f"{state.global_step} at the schedule's rate there (its final one). To train on, raise "
                       "max_steps and build the schedule with that total (a schedule change on resume needs "
                       "allow_schedule_change=True)")
        problem = self._taps.attach(_trainer_of(caller), self._scheduler.optimizer)  # every process: the loss
        if problem is not None:
            self._warn("taps", problem)
        if not state.is_world_process_zero:
            return
        recorder = RunRecorder(
            self.run_dir, schedule, self.settings, total_steps=state.max_steps,
            record=_trainer_record(args, state, self.run_dir),
            meta={"world_size": args.world_size, "trainer": "transformers",
                  "transformers": package_version("transformers")},
            env=process_environment(device=str(args.device), dtype=_dtype(args),
                                    world_size=args.world_size, seed=args.seed))
        saved = read_state(Path(args.output_dir) / f"checkpoint-{state.global_step}") if state.global_step else None
        step = state.global_step - int((saved or {}).get("skipped_updates") or 0)  # the updates applied
        note = recorder.begin(step, saved)  # a refusal leaves the callback without a record
        self.recorder = recorder
        if note is not None:
            self._warn("resume", note)

    def on_step_begin(self, args, state, control, **kwargs):
        self._losses.clear()

    def on_pre_optimizer_step(self, args, state, control, model=None, optimizer=None, **kwargs):
        if self._scheduler is None:
            return
        loss = self._update_loss(args)  # on every process: with several, their mean
        if self.recorder is None:
            return
        step, scheduler = state.global_step - self.recorder.skipped_updates, self._scheduler
        problem = out_of_step(scheduler.last_epoch, step)
        if problem is not None:
            self._warn("sync", problem)
        norm, self._norm = self._norm, None
        if norm is None:  # the Trainer's norm was not seen: the gradients' as they are now (after clipping)
            norm = grad_l2_norm(optimizer)
        lr = scheduler.rate(scheduler.last_epoch)
        self._taps.stepped = False
        self._row = self.recorder.measure(step, lr, loss, norm, model, optimizer)

    def on_step_end(self, args, state, control, **kwargs):
        if self.recorder is None or self._row is None:
            return
        row, self._row = self._row, None
        # the Trainer steps the scheduler only after an applied update; the optimizer's hook says it for a setup
        # whose scheduler is out of step
        if self._taps.stepped or self._scheduler.last_epoch > row["step"]:
            self.recorder.append(row)
        else:  # the optimizer did not step (a GradScaler found inf or NaN gradients): as lrtempo train skips one
            self.recorder.skip(row)

    def on_log(self, args, state, control, logs=None, **kwargs):  # before report_to's callbacks (_run_first)
        if self.recorder is not None and logs is not None and "loss" in logs:
            logs.update({LOG_PREFIX + k: v for k, v in self.recorder.signals().items()})

    def on_save(self, args, state, control, **kwargs):
        if self.recorder is None:
            return
        folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        if folder.is_dir():
            self.recorder.save_state(folder)

    def on_train_end(self, args, state, control, **kwargs):
        self._taps.detach()
        if self.recorder is None:
            return
        recorder, self.recorder = self.recorder, None
        status = "completed" if state.global_step >= state.max_steps else "stopped"
        recorder.end(status, state.global_step - recorder.skipped_updates)

    def _update_loss(self, args: Any) -> Any:
        """The Trainer's loss of the update: the sum of the shares its ``training_step`` returned for the
        update's micro-batches (each divided by the accumulation steps, or by the update's token count when the
        model takes ``num_items_in_batch``), averaged over the processes when there are several."""
        import torch

        losses, self._losses = self._losses, []
        if losses:
            loss = losses[0]
            for share in losses[1:]:
                loss = loss + share
        else:
            self._warn("loss", "the Trainer's training_step returned no loss to the callback: the record's loss "
                       "column is NaN")
            loss = torch.tensor(math.nan, device=args.device)
        if args.world_size > 1 and torch.distributed.is_available() and torch.distributed.is_initialized():
            loss = loss.float().clone()
            torch.distributed.all_reduce(loss)  # every process calls this hook once per update
            loss = loss / torch.distributed.get_world_size()
        return loss

    def _warn(self, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            warn_user(message)  # at the user's line that started training


class _TrainerTaps:
    """What the callback reads from the Trainer itself, each update: the loss its ``training_step`` returns for
    each micro-batch, the gradient norm its ``_get_grad_norm`` returns (before clipping: after the gradients
    are averaged across processes and unscaled, as the Trainer logs it as ``grad_norm``), and whether the
    optimizer stepped (a post-step hook: a ``GradScaler`` that finds inf or NaN gradients skips the step).

    The two methods are wrapped on the Trainer instance (its class is untouched) and restored by :meth:`detach`.
    """

    _METHODS = ("training_step", "_get_grad_norm")

    def __init__(self, callback: LRTempoCallback):
        self.callback = callback
        self.trainer: Any = None
        self.handle: Any = None
        self.stepped = False

    def attach(self, trainer: Any, optimizer: Any) -> str | None:
        """Wrap ``trainer``'s methods and hook ``optimizer`` (the torch optimizer the scheduler drives, inside any
        wrapper); returns what could not be read, or None."""
        self.detach()
        self.handle = optimizer.register_step_post_hook(self._stepped)
        if trainer is None:
            return ("could not find the Trainer calling LRTempoCallback: the record's loss is NaN and its "
                    "grad_l2_norm the norm after clipping")
        self.trainer = trainer
        missing = [name for name in self._METHODS if not hasattr(trainer, name)]
        for name in self._METHODS:
            if name not in missing:
                _unwrap(trainer, name)  # one left by a train() that raised
                setattr(trainer, name, _wrapped(getattr(trainer, name), getattr(self, "_" + name.lstrip("_"))))
        if missing:
            return (f"this transformers Trainer has no {', '.join(missing)}: the record's "
                    + ("loss is NaN" if "training_step" in missing else "grad_l2_norm is the norm after clipping"))
        return None

    def detach(self) -> None:
        if self.handle is not None:
            self.handle.remove()
            self.handle = None
        if self.trainer is not None:
            for name in self._METHODS:
                _unwrap(self.trainer, name)
            self.trainer = None

    def _training_step(self, loss: Any) -> None:
        if hasattr(loss, "detach"):
            self.callback._losses.append(loss.detach())

    def _get_grad_norm(self, norm: Any) -> None:
        self.callback._norm = norm

    def _stepped(self, *_: Any) -> None:
        self.stepped = True


def _wrapped(method: Any, keep: Any) -> Any:
    """``method``, passing what it returns to ``keep`` too."""
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        result = method(*args, **kwargs)
        keep(result)
        return result

    wrapper.__wrapped__ = method
    wrapper._lrtempo_tap = True
    return wrapper


def _unwrap(trainer: Any, name: str) -> None:
    """Remove the callback's wrapper of ``name`` from ``trainer`` (the class's method shows again)."""
    if getattr(trainer.__dict__.get(name), "_lrtempo_tap", False):
        del trainer.__dict__[name]


def _trainer_of(frame: Any) -> Any:
    """The ``transformers.Trainer`` whose method is on the call stack above ``frame``, or None."""
    from transformers import Trainer

    for _ in range(8):
        if frame is None:
            return None
        candidate = frame.f_locals.get("self")
        if isinstance(candidate, Trainer):
            return candidate
        frame = frame.f_back
    return None


def _run_first(callback: LRTempoCallback, caller: Any) -> bool:
    """Move ``callback`` ahead of the Trainer's other callbacks, so that the keys it adds to ``logs`` in
    ``on_log`` are there when the ``report_to`` callbacks (which the Trainer puts before the user's) read them.

    ``caller`` is the frame of the ``CallbackHandler`` calling ``on_train_begin``; the move keeps that call's
    iteration intact (the entries after this callback's place do not move, so each is called once). Returns
    whether the handler was found.
    """
    from transformers.trainer_callback import CallbackHandler

    handler = caller.f_locals.get("self") if caller is not None else None
    if isinstance(handler, CallbackHandler) and callback in handler.callbacks:
        handler.callbacks.remove(callback)
        handler.callbacks.insert(0, callback)
        return True
    return False


def _total_mismatch(end: int, updates: int, args: Any) -> str:
    """The warning for a schedule that ends at ``end`` in a run the Trainer sizes at ``updates`` updates: by
    ``max_steps`` when it is set, else by ``num_train_epochs`` (then the fix is the schedule's total)."""
    fix = f"build the schedule with total_steps={updates}"
    if args.max_steps > 0:
        return (f"the schedule ends at step {end} but the Trainer runs max_steps={updates} updates: {fix}, or set "
                "max_steps to the schedule's total")
    return (f"the schedule ends at step {end} but the Trainer will run {updates} updates "
            f"(num_train_epochs={args.num_train_epochs} x the updates per epoch: batches per epoch / "
            f"gradient_accumulation_steps, every process counted once): {fix}")


def _dtype(args: Any) -> str:
    """The floating-point type the Trainer computes in (``bf16=True``: bfloat16, ``fp16=True``: float16)."""
    return "bfloat16" if args.bf16 else "float16" if args.fp16 else "float32"


def _trainer_record(args: Any, state: Any, run_dir: RunDir) -> dict[str, Any]:
    """What ``config.yaml`` records of the Trainer's setup (besides the schedule and the monitor settings); its
    ``name`` is the run directory's, as ``lrtempo train`` names a run."""
    return {"name": run_dir.path.name, "seed": args.seed, "steps": state.max_steps,
            "trainer": {"library": "transformers", "output_dir": str(args.output_dir),
                        "per_device_train_batch_size": args.per_device_train_batch_size,
                        "gradient_accumulation_steps": args.gradient_accumulation_steps,
                        "max_grad_norm": args.max_grad_norm, "world_size": args.world_size,
                        "bf16": bool(args.bf16), "fp16": bool(args.fp16)}}
