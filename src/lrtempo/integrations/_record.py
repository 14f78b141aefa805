"""The lrtempo run record of a run that another library's trainer drives.

:class:`RunRecorder` is what a callback needs to write the same run directory as
``lrtempo train``: it starts the record (or continues it from a checkpoint's
step, with the one truncation :class:`~lrtempo.rundir.RunDir` does on resume),
measures one optimizer update (the loss, the global gradient norm and the
monitor's signals, read from the device in one host read), appends its row,
saves what a resume needs, and writes the summary. It holds the run
directory's lock from :meth:`begin` to :meth:`end`. Only the process that
writes the record makes one. torch is imported by the methods that use it.
"""

from __future__ import annotations

import json
import math
import sys
import warnings
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from ..config import format_config, schedule_to_spec, spec_hash, spec_hashes
from ..monitor import Monitor, MonitorSettings
from ..rundir import MONITOR_COLUMNS, RunDir, RunLock, environment
from ..schedules import Schedule, find_plateau, has_finite_end

#: the file a recorder's resume state is saved in, inside the trainer's checkpoint folder
STATE_FILE = "lrtempo_record.json"
#: the prefix of the monitor's signals in a trainer's own logs (``lrtempo/effective_lr_median``, ...)
LOG_PREFIX = "lrtempo/"


class LRTempoIntegrationWarning(UserWarning):
    """The trainer is set up in a way that makes its schedule or its record differ from what was meant."""


class LRTempoIntegrationError(ValueError):
    """The trainer is set up in a way the callback cannot record exactly; the message names the fix."""


#: the packages between a user's ``trainer.fit()`` / ``trainer.train()`` line and a callback's hook
TRAINER_PACKAGES = frozenset({"lrtempo", "lightning", "pytorch_lightning", "lightning_fabric", "transformers",
                              "accelerate", "torch"})


def warn_user(message: str) -> None:
    """Warn (:class:`LRTempoIntegrationWarning`) at the first frame outside lrtempo and the trainer's packages:
    the user's line that started training, so the warning names it and the usual filters of those packages
    leave it shown (Lightning prints a warning from a file with "lightning" in its path without its category)."""
    frame, level = sys._getframe(1), 2  # stacklevel 2: warn_user's caller
    while frame is not None and frame.f_globals.get("__name__", "").partition(".")[0] in TRAINER_PACKAGES:
        frame, level = frame.f_back, level + 1
    warnings.warn(message, LRTempoIntegrationWarning, stacklevel=level if frame is not None else 2)


def monitor_settings(monitor: bool | MonitorSettings) -> MonitorSettings | None:
    """``True``: the default settings; ``False``: no monitor; a :class:`MonitorSettings`: those."""
    if isinstance(monitor, MonitorSettings):
        return monitor
    if isinstance(monitor, bool):
        return MonitorSettings() if monitor else None
    raise TypeError(f"monitor must be True, False or a MonitorSettings (got {type(monitor).__name__})")


class RunRecorder:
    """One process's writer of a run directory for a trainer it does not own.

    ``record`` is the run config's record of the trainer (``steps``, batch sizes, ...), written into
    ``config.yaml`` beside the schedule and the monitor settings; ``meta`` goes into ``run.json``.
    """

    def __init__(self, run_dir: RunDir | str | Path, schedule: Schedule, settings: MonitorSettings | None, *,
                 total_steps: int | None, record: dict[str, Any], meta: dict[str, Any], env: dict[str, Any]):
        self.run = run_dir if isinstance(run_dir, RunDir) else RunDir(run_dir)
        self.schedule, self.settings = schedule, settings
        self.total_steps, self.record, self.meta, self.env = total_steps, record, meta, env
        self.extra = MONITOR_COLUMNS if settings is not None else ()
        self.monitor: Monitor | None = None
        self.log = None
        self._lock: RunLock | None = None
        self.best_loss: float | None = None
        self.final_loss: float | None = None
        self.last: dict[str, Any] = {}
        self.skipped_updates = 0  # updates the optimizer did not apply (a GradScaler's inf/NaN step)
        self._named = False

    # -- start and resume ---------------------------------------------------------------------------------------
    def config_text(self) -> str:
        config = {**self.record, "schedule": schedule_to_spec(self.schedule)}
        if self.settings is not None:
            config["monitor"] = self.settings.to_mapping()
        return format_config(config, "yaml")

    def begin(self, step: int, saved: dict[str, Any] | None, *, state_name: str = STATE_FILE) -> str | None:
        """Start the record (``step`` 0) or continue it at ``step`` from ``saved`` (a resume's state, or None).

        ``state_name`` says in a warning what the checkpoint lacks when ``saved`` is None on a resume.
        Returns a warning to show, or None. Refuses (``FileExistsError``) to start over a run that is there.
        """
        run, note = self.run, None
        self._lock = run.lock()
        try:
            if step > 0 and run.holds_run():
                self._lock.claim()  # claimed once the start is accepted: a refusal leaves the lock file as it was
                self.log = run.resume(step, self.extra)
                self._record_resume(step)
            else:
                if step > 0:
                    note = (f"{run.path} holds no run to continue: its record starts at step {step}; "
                            f"pass the run directory the run was started with to keep one record")
                run.check_new()
                self._lock.claim()
                self.log = run.start(self.config_text(), extra_columns=self.extra,
                                     meta={**self.meta, "spec_hash": spec_hash(self.schedule)}, env=self.env)
        except BaseException:
            self._release()
            raise
        if self.settings is not None:
            self.monitor = Monitor(self.schedule, self.settings, total_steps=self.total_steps, run_dir=run,
                                   collect_layers=True)
        if saved is not None:
            self.load_state(saved)
        elif step > 0 and run.holds_run() and note is None:
            note = (f"no {state_name} in the checkpoint of step {step}: the monitor's detectors start afresh "
                    f"there (checkpoints saved with the callback carry it)")
        return note

    def _record_resume(self, step: int) -> None:
        """``run.json``: this resume's environment, and the schedule change if it brings one."""
        meta = self.run.read_meta()
        new_hash = spec_hash(self.schedule)
        if meta.get("spec_hash") not in (None, *spec_hashes(self.schedule)):  # an older run's hash is the same
            self.run.write(self.run.config_before(step), self.run.config.read_text(encoding="utf-8"))
            meta.setdefault("schedule_changes", []).append({"step": step, "from": meta["spec_hash"], "to": new_hash})
            meta["spec_hash"] = new_hash
            self.run.write_config(self.config_text())
        meta.setdefault("resumes", []).append({"step": step, "environment": self.env})
        self.run.write_meta(meta)

    # -- one update -----------------------------------------------------------------------------------------------
    def measure(self, step: int, lr: float, loss: Any, grad_l2_norm: Any, model: Any, optimizer: Any
                ) -> dict[str, Any]:
        """The log row of update ``step``: call after the gradients are final, before ``optimizer.step()``.

        ``loss`` and ``grad_l2_norm`` are 0-d tensors (or floats); they and the monitor's device-side
        statistics are read back to the host together, once.
        """
        names, extra = self.device_stats(step, model, optimizer)
        return self.row(step, lr, loss, grad_l2_norm, names, extra)

    def device_stats(self, step: int, model: Any, optimizer: Any) -> tuple[list[str], Any]:
        """The monitor's statistics of update ``step``, still on the device (names, a 1-d tensor or None).

        Call after the gradients are final, before ``optimizer.step()``; the tensors are new ones, so
        :meth:`row` may read them after the update.
        """
        if self.monitor is None:
            return [], None
        if not self._named:
            self.monitor.name_parameters(model)
            self._named = True
        return self.monitor.device_stats(step, optimizer)

    def row(self, step: int, lr: float, loss: Any, grad_l2_norm: Any, names: list[str], extra: Any
            ) -> dict[str, Any]:
        """The log row of update ``step`` from the loss, the norm and :meth:`device_stats` (one host read)."""
        import torch

        parts = [torch.as_tensor(loss).detach().reshape(1), torch.as_tensor(grad_l2_norm).detach().reshape(1)]
        if extra is not None:
            parts.append(extra.detach().reshape(-1))
        device = parts[-1].device  # gathered where the statistics are, then read back once
        values = torch.cat([p.to(device=device, dtype=torch.float32) for p in parts]).tolist()
        loss_value, norm_value = values[0], values[1]
        row: dict[str, Any] = {"step": step, "lr": lr, "grad_l2_norm": norm_value, "loss": loss_value}
        if self.monitor is not None:
            row.update(self.monitor.record(step, lr, loss_value, norm_value, dict(zip(names, values[2:]))))
        return row

    def append(self, row: dict[str, Any]) -> None:
        """Write the row of an applied update."""
        self.log.append(**row)
        self.last = row
        loss = row["loss"]
        self.final_loss = loss
        if math.isfinite(loss):
            self.best_loss = loss if self.best_loss is None else min(self.best_loss, loss)

    def skip(self, row: dict[str, Any]) -> None:
        """An update measured as ``row`` that the optimizer did not apply (a ``GradScaler`` found inf or NaN
        gradients): as in ``lrtempo train``, no row, a ``SKIPPED_UPDATE`` event, the step not advanced."""
        self.skipped_updates += 1
        if self.monitor is not None:
            self.monitor.skipped(row["step"], row["loss"], row["grad_l2_norm"])

    def signals(self) -> dict[str, float]:
        """The numeric monitor columns of the latest row (what a trainer's own logs can carry)."""
        return {k: v for k, v in self.last.items() if k in MONITOR_COLUMNS and isinstance(v, (int, float))}

    # -- checkpoints and the end ---------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """What a resume needs (call when the trainer checkpoints): the log is fsynced, the layers written."""
        self.log.sync()
        if self.monitor is not None:
            self.monitor.flush_layers()
        return {"monitor": self.monitor.state_dict() if self.monitor is not None else None,
                "best_loss": self.best_loss, "final_loss": self.final_loss, "skipped_updates": self.skipped_updates}

    def save_state(self, folder: str | Path) -> None:
        """Write :meth:`state` into a checkpoint folder as :data:`STATE_FILE`."""
        self.run.write(Path(folder) / STATE_FILE, json.dumps(_tag_nonfinite(self.state()), allow_nan=False) + "\n")

    def load_state(self, state: dict[str, Any]) -> None:
        if self.monitor is not None and state.get("monitor") is not None:
            self.monitor.load_state_dict(state["monitor"])
        self.best_loss, self.final_loss = state.get("best_loss"), state.get("final_loss")
        self.skipped_updates = int(state.get("skipped_updates") or 0)

    def end(self, status: str, steps: int) -> None:
        """Write ``summary.json``, close the log and release the lock."""
        try:
            if self.monitor is not None:
                self.monitor.flush_layers()
            if self.log is not None:
                self.log.close()
            end = self.schedule.end_step
            self.run.write_summary({
                "status": status, "steps": steps, "final_loss": self.final_loss, "best_loss": self.best_loss,
                "skipped_updates": self.skipped_updates,
                "past_schedule_end": has_finite_end(self.schedule) and steps > end + 1, "schedule_end_step": end,
                "spec_hash": spec_hash(self.schedule), "world_size": self.meta.get("world_size", 1)})
        finally:
            self._release()

    def _release(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None


def grad_l2_norm(optimizer: Any) -> Any:
    """The global L2 norm of the gradients of ``optimizer``'s parameters, a 0-d tensor on their device.

    ``sqrt(sum over tensors of |g|^2)``, from one batched per-tensor norm; 0 when no parameter has a gradient.
    """
    import torch

    grads = [p.grad for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
    if not grads:
        return torch.zeros(())
    return torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)).float())


def read_state(folder: str | Path) -> dict[str, Any] | None:
    """The recorder state saved in a checkpoint folder, or None when there is none (or it is unreadable)."""
    try:
        value = json.loads((Path(folder) / STATE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return _untag_nonfinite(value) if isinstance(value, dict) else None


_NONFINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def _tag_nonfinite(data: Any) -> Any:
    """``data`` with each non-finite float as the string ``"NaN"``, ``"Infinity"`` or ``"-Infinity"``: strict JSON
    that :func:`_untag_nonfinite` turns back into the same floats (a resume must see the NaN losses it saved).

    >>> _untag_nonfinite(_tag_nonfinite({"loss": [1.0, math.nan, -math.inf]}))
    {'loss': [1.0, nan, -inf]}
    """
    if isinstance(data, float) and not math.isfinite(data):
        return "NaN" if data != data else ("Infinity" if data > 0 else "-Infinity")
    if isinstance(data, dict):
        return {k: _tag_nonfinite(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [_tag_nonfinite(v) for v in data]
    return data


def _untag_nonfinite(data: Any) -> Any:
    if isinstance(data, str):
        return _NONFINITE.get(data, data)
    if isinstance(data, dict):
        return {k: _untag_nonfinite(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_untag_nonfinite(v) for v in data]
    return data


def process_environment(*, device: str, dtype: str, world_size: int, seed: int | None) -> dict[str, Any]:
    return environment(device=device, dtype=dtype, world_size=world_size, seeds={"seed": seed})


def package_version(distribution: str) -> str | None:
    """The installed version of ``distribution`` (its name on PyPI), or None."""
    try:
        return version(distribution)
    except PackageNotFoundError:
        return None


def out_of_step(scheduler_step: int, trainer_step: int) -> str | None:
    """Why the adapter's step and the trainer's global step disagree (None when they agree): the callbacks' warning.

    >>> out_of_step(3, 3) is None
    True
    """
    if scheduler_step == trainer_step:
        return None
    return (f"the scheduler is at step {scheduler_step} but the Trainer at global step {trainer_step}: something "
            "else steps the scheduler, or it was not restored with the checkpoint; the record's lr is the rate the "
            "optimizer holds")


def check_schedule(scheduler: Any, callback: str) -> None:
    """Refuse, before anything is written, a scheduler a trainer callback cannot record or apply exactly: one
    with a schedule per param group that differ (the record holds one schedule), one counted in samples or
    tokens (the trainers step the scheduler once per update, with no count of what it consumed) or one that
    reduces on plateau (the callbacks do not report evaluations to it)."""
    hashes = getattr(scheduler, "group_spec_hashes", None)
    if hashes is not None and len(set(hashes)) > 1:
        raise LRTempoIntegrationError(
            f"{callback}: the scheduler has a schedule per param group ({len(hashes)} schedules), but the run "
            "record holds one schedule: give LRTempoScheduler one schedule (a fixed ratio per group is the group's "
            "group_multiplier)")
    schedule = scheduler.schedule
    if schedule.unit != "steps":
        raise LRTempoIntegrationError(
            f"{callback}: the schedule counts {schedule.unit}, but the Trainer steps the scheduler once per update "
            "without what it consumed: give the schedule in steps (unit: steps)")
    if find_plateau(schedule) is not None:
        raise LRTempoIntegrationError(
            f"{callback}: a type: plateau schedule needs its evaluations reported (scheduler.observe(loss)), which "
            "this callback does not do: use lrtempo train, or call observe() in your own loop")
