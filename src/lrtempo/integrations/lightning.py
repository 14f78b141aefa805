"""The lrtempo run record and training-health monitor inside a Lightning ``Trainer``.

    from lrtempo.integrations.lightning import LRTempoCallback
    from lrtempo.torch import LRTempoScheduler

    class Model(lightning.pytorch.LightningModule):
        ...
        def configure_optimizers(self):
            optimizer = torch.optim.AdamW(self.parameters(), lr=schedule(0))
            return {"optimizer": optimizer,
                    "lr_scheduler": {"scheduler": LRTempoScheduler(optimizer, schedule), "interval": "step"}}

    trainer = lightning.pytorch.Trainer(max_steps=schedule.end_step, accumulate_grad_batches=4,
                                        callbacks=[LRTempoCallback("runs/my-run")])
    trainer.fit(model)                      # or trainer.fit(model, ckpt_path=...)

The callback writes the run directory ``lrtempo analyze`` and ``lrtempo report`` read (``config.yaml``,
``run.json``, ``log.csv``, ``events.jsonl``, ``layers.csv``, ``summary.json``) on the global-zero process,
one row per optimizer update, keeps what a resume needs in Lightning's checkpoints, and logs the monitor's
signals through the module's loggers. It refuses (:class:`LRTempoIntegrationError`, before writing anything)
a setup in which the schedule would not be applied once per optimizer update. docs/integrations.md says what
each column holds under Lightning and how a resume continues the record.

The one class works with ``lightning.pytorch`` and with ``pytorch_lightning`` (it derives from the
``Callback`` of each that is installed). Importing this module needs one of them
(:class:`~lrtempo._util.MissingDependency` otherwise); ``import lrtempo.integrations`` does not.
"""

from __future__ import annotations

import importlib
import math
import os
from collections.abc import Mapping
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
    warn_user,
)

__all__ = ["LOG_PREFIX", "LRTempoCallback", "LRTempoIntegrationError", "LRTempoIntegrationWarning"]

#: the Lightning packages the callback is a ``Callback`` of, and their names on PyPI
_PACKAGES = {"lightning.pytorch": "lightning", "pytorch_lightning": "pytorch-lightning"}
#: what ``configure_optimizers`` returns for the callback to record the run
_FIX = ('return {"optimizer": optimizer, "lr_scheduler": {"scheduler": LRTempoScheduler(optimizer, schedule), '
        '"interval": "step"}} from configure_optimizers')


def _callback_bases() -> tuple[type, ...]:
    bases = []
    for name in _PACKAGES:
        try:
            bases.append(importlib.import_module(name).Callback)
        except ImportError:
            continue
    if not bases:
        raise MissingDependency("lrtempo.integrations.lightning needs lightning, which is not installed: "
                                "pip install 'lrtempo[lightning]'")
    return tuple(bases)


class LRTempoCallback(*_callback_bases()):
    """Write the lrtempo run record of a Lightning ``Trainer`` run into ``run_dir`` and monitor it.

    ``monitor``: ``True`` (the default settings), ``False`` (the record without the monitor's columns) or a
    :class:`~lrtempo.monitor.MonitorSettings`. ``configure_optimizers`` must return an
    :class:`~lrtempo.torch.LRTempoScheduler` as its only ``lr_scheduler``, with ``"interval": "step"``
    (Lightning's default is ``"epoch"``) and ``"frequency": 1``, under automatic optimization; any other
    setup is refused when ``fit`` starts (:class:`LRTempoIntegrationError`, naming the fix).

    Per optimizer update (on the global-zero process): ``step`` is ``trainer.global_step`` before the update
    (the updates already applied), ``lr`` the schedule's rate the update used, ``grad_l2_norm`` the global
    norm of the accumulated gradients before Lightning clips them (``gradient_clip_val``), ``loss`` the mean of
    ``training_step``'s loss over the update's micro-batches; the monitor measures the same gradients, in
    ``on_before_optimizer_step``.
    """

    def __init__(self, run_dir: RunDir | str | os.PathLike[str], *, monitor: bool | MonitorSettings = True):
        self.run_dir = run_dir if isinstance(run_dir, RunDir) else RunDir(run_dir)
        self.settings = monitor_settings(monitor)
        self.recorder: RunRecorder | None = None
        self._scheduler: Any = None
        self._losses: list[Any] = []
        self._pending: tuple[Any, ...] | None = None  # the update measured in on_before_optimizer_step
        self._step = 0  # the updates the record holds
        self._saved: dict[str, Any] | None = None  # the state a checkpoint restored
        self._final: dict[str, Any] = {}  # the state once the record is closed (a checkpoint saved after it)
        self._stepped = False  # whether the optimizer applied the update measured (a GradScaler may skip it)
        self._hook: Any = None
        self._warned: set[str] = set()

    # -- Lightning's hooks ---------------------------------------------------------------------------------
    def on_fit_start(self, trainer: Any, pl_module: Any) -> None:
        self._scheduler = _lrtempo_scheduler(trainer)  # refuses before anything is written
        check_schedule(self._scheduler, "LRTempoCallback")
        self._losses.clear()
        self._pending = None

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        schedule, total = self._scheduler.schedule, _updates(trainer)
        end = schedule.end_step
        if has_finite_end(schedule) and total is not None and end != total:  # a constant's end is none to miss
            self._warn("total", f"the schedule ends at step {end} but the Trainer runs {total} optimizer updates "
                       f"(trainer.estimated_stepping_batches): build the schedule with total_steps={total} "
                       "(batches per epoch / accumulate_grad_batches x epochs, every process counted once), "
                       f"or set max_steps={end}")
        if not trainer.is_global_zero:
            return
        step = self._step = trainer.global_step
        recorder = RunRecorder(self.run_dir, schedule, self.settings, total_steps=total,
                               record=_trainer_record(trainer, self.run_dir, total), meta=_meta(trainer),
                               env=process_environment(device=str(pl_module.device), dtype=_dtype(trainer.precision),
                                                       world_size=trainer.world_size, seed=_seed()))
        note = recorder.begin(step, self._restored(step), state_name="LRTempoCallback state")
        self.recorder = recorder  # a refusal (FileExistsError) leaves the callback without a record
        self._hook = self._scheduler.optimizer.register_step_post_hook(self._applied)
        if note is not None:
            self._warn("resume", note)

    def on_before_optimizer_step(self, trainer: Any, pl_module: Any, optimizer: Any) -> None:
        """After the update's last backward (and the unscaling under AMP), before clipping and the step."""
        if self.recorder is None:
            return
        step, scheduler = trainer.global_step, self._scheduler
        problem = out_of_step(scheduler.last_epoch, step)
        if problem is not None:
            self._warn("sync", problem)
        names, extra = self.recorder.device_stats(step, pl_module, optimizer)
        self._pending = (step, scheduler.rate(scheduler.last_epoch), grad_l2_norm(optimizer), names, extra)
        self._stepped = False

    def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        """Keep the micro-batch's loss; after an update, write its row (before a checkpoint is saved)."""
        if self.recorder is None:
            return
        loss = _loss_of(outputs)
        if loss is not None:
            self._losses.append(loss.detach())
        if self._pending is None:  # a micro-batch of an accumulation
            return
        (step, lr, norm, names, extra), self._pending = self._pending, None
        row = self.recorder.row(step, lr, self._update_loss(trainer), norm, names, extra)
        self._step = step + 1
        if not self._stepped and getattr(trainer.precision_plugin, "scaler", None) is not None:
            self._skipped(row)  # only a gradient scaler skips an update (and it leaves optimizer.step() uncalled)
            return
        self.recorder.append(row)
        every = trainer.log_every_n_steps
        if every and (step + 1) % every == 0:  # Lightning's own logging steps
            signals = {LOG_PREFIX + k: float(v) for k, v in self.recorder.signals().items()}
            if signals:
                pl_module.log_dict(signals, on_step=True, on_epoch=False)

    def _applied(self, *_: Any) -> None:
        self._stepped = True

    def _skipped(self, row: dict[str, Any]) -> None:
        """The optimizer did not apply the update (under ``16-mixed`` the gradient scaler found inf or NaN
        gradients): no row, a ``SKIPPED_UPDATE`` event, as in ``lrtempo train``."""
        self.recorder.skip(row)
        self._warn("skipped", f"update {row['step']} was not applied (the gradient scaler found inf or NaN "
                   "gradients), but Lightning stepped the scheduler anyway: from there the schedule runs one step "
                   "ahead of the updates applied for each update skipped; the record has no row for it and a "
                   "SKIPPED_UPDATE event")

    def on_train_end(self, trainer: Any, pl_module: Any) -> None:
        total = _updates(trainer)
        done = not trainer.should_stop or (total is not None and trainer.global_step >= total)
        self._close("completed" if done else "stopped")

    def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
        stopped = isinstance(exception, KeyboardInterrupt) or type(exception).__name__ == "SIGTERMException"
        self._close("interrupted" if stopped else "failed")

    # -- the callback's state in Lightning's checkpoints -------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """The record's resume state: the updates it holds, the monitor's detectors, the losses so far."""
        if self.recorder is None:
            return dict(self._final)
        return {"step": self._step, **self.recorder.state()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._saved = dict(state_dict)

    # -- helpers ----------------------------------------------------------------------------------------------
    def _restored(self, step: int) -> dict[str, Any] | None:
        """The state the checkpoint of ``step`` restored, or None (with a warning when it is of another step)."""
        saved, self._saved = self._saved, None
        if saved is not None and saved.get("step") != step:
            self._warn("state", f"the checkpoint's LRTempoCallback state is of step {saved.get('step')}, not of "
                       f"the Trainer's global step {step}: the monitor's detectors start afresh there")
            return None
        return saved

    def _update_loss(self, trainer: Any) -> Any:
        """The mean loss of the update's micro-batches (``training_step``'s, before Lightning divides it by
        ``accumulate_grad_batches`` for the backward pass)."""
        import torch

        losses, self._losses = self._losses, []
        if not losses:
            self._warn("loss", "training_step returns no loss: the record's loss column is NaN (return the loss, "
                       "or {'loss': ...})")
            return torch.tensor(math.nan)
        return torch.stack([x.float().reshape(()) for x in losses]).mean() * trainer.accumulate_grad_batches

    def _close(self, status: str) -> None:
        if self.recorder is None:
            return
        recorder, self.recorder = self.recorder, None
        if self._hook is not None:
            self._hook.remove()
            self._hook = None
        try:
            self._final = {"step": self._step, **recorder.state()}
        finally:
            recorder.end(status, self._step)

    def _warn(self, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            warn_user(message)  # at the user's line that started training


def _lrtempo_scheduler(trainer: Any) -> Any:
    """The :class:`~lrtempo.torch.LRTempoScheduler` that ``configure_optimizers`` returned, stepped once per
    optimizer update; every other setup is refused with the fix."""
    from ..torch import LRTempoScheduler

    if not trainer.lightning_module.automatic_optimization:
        raise LRTempoIntegrationError(
            "LRTempoCallback records automatic optimization only (this LightningModule sets "
            "automatic_optimization = False): with manual optimization, step the LRTempoScheduler after each "
            "optimizer.step() and write the record with lrtempo.monitor.Monitor and lrtempo.RunDir")
    configs = trainer.lr_scheduler_configs
    if len(configs) != 1 or not isinstance(configs[0].scheduler, LRTempoScheduler):
        got = ", ".join(type(c.scheduler).__name__ for c in configs) or "no lr_scheduler"
        raise LRTempoIntegrationError(f"LRTempoCallback needs lrtempo's scheduler as the only lr_scheduler "
                                      f"(configure_optimizers returns {got}): {_FIX}")
    config = configs[0]
    if config.interval != "step" or config.frequency != 1:
        raise LRTempoIntegrationError(
            f"the LRTempoScheduler is configured with 'interval': {config.interval!r}, 'frequency': "
            f"{config.frequency}, so it is not stepped once per optimizer update: set 'interval': 'step' (Lightning's "
            f"default is 'epoch') and 'frequency': 1; {_FIX}")
    return config.scheduler


def _updates(trainer: Any) -> int | None:
    """The optimizer updates the Trainer runs (``estimated_stepping_batches``), or None when it is unknown."""
    total = trainer.estimated_stepping_batches
    return int(total) if math.isfinite(total) else None


def _loss_of(outputs: Any) -> Any:
    """The loss of ``training_step``'s output as ``on_train_batch_end`` receives it (a mapping or a tensor)."""
    if isinstance(outputs, Mapping):
        outputs = outputs.get("loss")
    return outputs if hasattr(outputs, "detach") else None


def _trainer_record(trainer: Any, run_dir: RunDir, total: int | None) -> dict[str, Any]:
    """What ``config.yaml`` records of the Trainer's setup (besides the schedule and the monitor settings)."""
    algorithm = trainer.gradient_clip_algorithm
    return {"name": run_dir.path.name, "seed": _seed(), "steps": total,
            "trainer": {"library": _library(trainer), "default_root_dir": str(trainer.default_root_dir),
                        "max_steps": trainer.max_steps, "max_epochs": trainer.max_epochs,
                        "accumulate_grad_batches": trainer.accumulate_grad_batches,
                        "gradient_clip_val": trainer.gradient_clip_val,
                        "gradient_clip_algorithm": None if algorithm is None else str(getattr(algorithm, "value",
                                                                                              algorithm)),
                        "precision": str(trainer.precision), "world_size": trainer.world_size}}


def _library(trainer: Any) -> str:
    """``lightning`` or ``pytorch-lightning``: the package whose Trainer runs."""
    module = type(trainer).__module__
    return next((pypi for name, pypi in _PACKAGES.items() if module.startswith(name + ".")), module)


def _meta(trainer: Any) -> dict[str, Any]:
    library = _library(trainer)
    return {"world_size": trainer.world_size, "trainer": library, library: package_version(library)}


def _seed() -> int | None:
    """The seed ``seed_everything`` set (Lightning keeps it in ``PL_GLOBAL_SEED``), or None."""
    value = os.environ.get("PL_GLOBAL_SEED")
    return int(value) if value is not None and value.lstrip("-").isdigit() else None


def _dtype(precision: Any) -> str:
    """The floating-point type of Lightning's ``precision`` setting (``"bf16-mixed"``: bfloat16, ...)."""
    text = str(precision)
    for prefix, dtype in (("bf16", "bfloat16"), ("16", "float16"), ("64", "float64")):
        if text.startswith(prefix):
            return dtype
    return "float32"
