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
import warnings
from pathlib import Path
from typing import Any

from .._util import MissingDependency
from ..monitor import MonitorSettings
from ..rundir import RunDir
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


def _loss_of(output: Any) -> Any:
    """The ``loss`` of a model's output (a ``ModelOutput``, a mapping, or a tuple led by the loss), or None."""
    if isinstance(output, dict):  # ModelOutput is a dict (an OrderedDict)
        return output.get("loss")
    if isinstance(output, (tuple, list)) and output:
        return output[0]
    return None


class LRTempoCallback(TrainerCallback):
    """Write the lrtempo run record of a ``transformers.Trainer`` run into ``run_dir`` and monitor it.

    ``monitor``: ``True`` (the default settings), ``False`` (the record without the monitor's columns) or a
    :class:`~lrtempo.monitor.MonitorSettings`. The Trainer's scheduler must be an
    :class:`~lrtempo.torch.LRTempoScheduler` (``optimizers=(optimizer, scheduler)``); with another, the
    callback warns once and records nothing.

    Per optimizer update (on the main process): ``step`` is ``state.global_step`` before the update (the
    updates already applied), ``lr`` the schedule's rate the update used, ``grad_l2_norm`` the global norm of
    the accumulated gradients before the Trainer clips them, ``loss`` the mean of the model's training loss
    over the update's micro-batches; the monitor measures the gradients the update applies (after clipping).
    """

    def __init__(self, run_dir: RunDir | str | os.PathLike[str], *, monitor: bool | MonitorSettings = True):
        self.run_dir = run_dir if isinstance(run_dir, RunDir) else RunDir(run_dir)
        self.settings = monitor_settings(monitor)
        self.recorder: RunRecorder | None = None
        self._scheduler: Any = None
        self._losses: list[Any] = []
        self._pre_clip: dict[int, Any] = {}
        self._handles: list[Any] = []
        self._row: dict[str, Any] | None = None
        self._warned: set[str] = set()

    # -- the Trainer's events --------------------------------------------------------------------------------
    def on_train_begin(self, args, state, control, model=None, optimizer=None, lr_scheduler=None, **kwargs):
        if not _run_first(self, sys._getframe(1)):
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
        check_schedule(schedule, "LRTempoCallback")
        end = schedule.end_step
        if end is not None and end > 0 and end != state.max_steps:
            self._warn("total", f"the schedule ends at step {end} but the Trainer runs max_steps={state.max_steps} "
                       f"updates: build the schedule with total_steps={state.max_steps} (optimizer updates: "
                       "batches per epoch / gradient_accumulation_steps x epochs, every process counted once), "
                       "or set max_steps to the schedule's total")
        if not state.is_world_process_zero:
            return
        recorder = RunRecorder(
            self.run_dir, schedule, self.settings, total_steps=state.max_steps, record=_trainer_record(args, state),
            meta={"world_size": args.world_size, "trainer": "transformers",
                  "transformers": package_version("transformers")},
            env=process_environment(device=str(args.device), dtype="bfloat16" if args.bf16 else "float32",
                                    world_size=args.world_size, seed=args.seed))
        step = state.global_step
        saved = read_state(Path(args.output_dir) / f"checkpoint-{step}") if step > 0 else None
        note = recorder.begin(step, saved)  # a refusal leaves the callback without a record
        self.recorder = recorder
        if note is not None:
            self._warn("resume", note)
        self._hook(model, args)

    def on_step_begin(self, args, state, control, **kwargs):
        self._losses.clear()

    def on_pre_optimizer_step(self, args, state, control, model=None, optimizer=None, **kwargs):
        if self.recorder is None:
            return
        import torch

        step, scheduler = state.global_step, self._scheduler
        problem = out_of_step(scheduler.last_epoch, step)
        if problem is not None:
            self._warn("sync", problem)
        if self._pre_clip:
            norm = torch.linalg.vector_norm(torch.stack(list(self._pre_clip.values())))
            self._pre_clip.clear()
        else:
            norm = grad_l2_norm(optimizer)
        if self._losses:
            loss = torch.stack([x.float().reshape(()) for x in self._losses]).mean()
        else:
            self._warn("loss", "the model's output carries no loss: the record's loss column is NaN (return "
                       "{'loss': ...} from the model's forward)")
            loss = torch.tensor(math.nan)
        self._losses.clear()
        lr = scheduler.rate(scheduler.last_epoch)
        self._row = self.recorder.measure(step, lr, loss, norm, model, optimizer)

    def on_step_end(self, args, state, control, **kwargs):
        if self.recorder is None or self._row is None:
            return
        row, self._row = self._row, None
        self.recorder.append(row)

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
        self._unhook()
        if self.recorder is None:
            return
        recorder, self.recorder = self.recorder, None
        status = "completed" if state.global_step >= state.max_steps else "stopped"
        recorder.end(status, state.global_step)

    # -- where the loss and the pre-clipping norm come from -----------------------------------------------------
    def _hook(self, model: Any, args: Any) -> None:
        """A forward hook that keeps each training micro-batch's loss; with clipping on a single process, a hook
        per parameter that keeps each gradient's norm once it is accumulated (so before the Trainer clips)."""
        self._handles.append(model.register_forward_hook(self._keep_loss))
        if args.max_grad_norm and args.max_grad_norm > 0:
            if args.world_size > 1:
                self._warn("clip", "with several processes the record's grad_l2_norm is the norm after clipping "
                           "(the gradients are averaged across processes only after the last hook runs)")
                return
            for p in model.parameters():
                if p.requires_grad:
                    self._handles.append(p.register_post_accumulate_grad_hook(self._keep_norm))

    def _keep_loss(self, module: Any, inputs: Any, output: Any) -> None:
        import torch

        if module.training and torch.is_grad_enabled():
            loss = _loss_of(output)
            if isinstance(loss, torch.Tensor):
                self._losses.append(loss.detach())

    def _keep_norm(self, param: Any) -> None:
        import torch

        self._pre_clip[id(param)] = torch.linalg.vector_norm(param.grad, dtype=torch.float32)

    def _unhook(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        self._pre_clip.clear()

    def _warn(self, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            warnings.warn(message, LRTempoIntegrationWarning, stacklevel=3)


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


def _trainer_record(args: Any, state: Any) -> dict[str, Any]:
    """What ``config.yaml`` records of the Trainer's setup (besides the schedule and the monitor settings)."""
    return {"name": Path(args.output_dir).name, "seed": args.seed, "steps": state.max_steps,
            "trainer": {"library": "transformers", "output_dir": str(args.output_dir),
                        "per_device_train_batch_size": args.per_device_train_batch_size,
                        "gradient_accumulation_steps": args.gradient_accumulation_steps,
                        "max_grad_norm": args.max_grad_norm, "world_size": args.world_size,
                        "bf16": bool(args.bf16), "fp16": bool(args.fp16)}}
