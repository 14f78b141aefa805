"""The bridge to ``torch.optim``: a scheduler that applies an lrtempo schedule.

The adapter's state is the step (plus the schedule's spec hash, to
notice a changed schedule on resume). ``step`` counts applied optimizer
updates; after ``n`` calls of :meth:`LRTempoScheduler.step` every param group
holds ``schedule(n) * group.get("group_multiplier", 1.0)``, the rate of update
``n``. A training loop that sets the rate of an update itself, before
``optimizer.step()``, calls :meth:`LRTempoScheduler.apply`.

The right loop::

    for batch in data:
        loss = model(batch).mean()
        loss.backward()
        optimizer.step()        # update number `scheduler.last_epoch`, at schedule(last_epoch)
        optimizer.zero_grad()
        scheduler.step()        # sets the rate of the next update

Under gradient accumulation, ``scheduler.step()`` belongs next to
``optimizer.step()``, once per update, not once per micro-batch; when an update
is skipped (AMP overflow, a non-finite loss), neither is called.

A schedule counted in samples or tokens (``unit:``) is advanced by what each
update consumed, ``scheduler.step(consumed=N)``: its position (``scheduler.position``)
is the units consumed before the next update, and the rate of that update is
``schedule(position)``.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import torch
from torch.optim.lr_scheduler import LambdaLR, LRScheduler

from ..config import spec_hash, spec_hashes
from ..schedules import Reduction, Schedule, position_name
from ._hyper import HyperSchedules, block_steps, changed_hypers
from ._plateau import plateau_control

__all__ = ["GROUP_MULTIPLIER", "LRTempoScheduler", "ScheduleOrderWarning", "ScheduleChangedError", "lambda_lr"]

#: values precomputed per refill of the adapter's buffer (one vectorized ``at()``)
_BLOCK = 1024
#: the param-group key of a group's factor on the schedule's rate (``lr = schedule(step) * group_multiplier``)
GROUP_MULTIPLIER = "group_multiplier"
#: its former name, still read (with a DeprecationWarning) and renamed in the group
_OLD_MULTIPLIER = "lr_scale"
_INT64_MAX = 2**63 - 1


class ScheduleOrderWarning(UserWarning):
    """The scheduler and the optimizer are stepped in the wrong order or at different rates."""


class ScheduleChangedError(ValueError):
    """A checkpoint was written under a different schedule than the one in use."""


class LRTempoScheduler(LRScheduler):
    """Apply ``schedule`` to every param group of ``optimizer``.

    A :class:`torch.optim.lr_scheduler.LRScheduler`, so it is accepted wherever
    one is. ``last_epoch`` is the number of applied updates (the step).
    Each group's rate is ``schedule(step) * group.get("group_multiplier", 1.0)``
    (a group's ``lr_scale``, the key's former name, is renamed
    ``group_multiplier`` with a :class:`DeprecationWarning`, when the scheduler
    is built and whenever the optimizer's state is loaded).

    ``state_dict()`` holds the step and the spec hash (and for a ``type: plateau`` schedule, the reductions
    recorded by :meth:`observe` and its rule's state); ``load_state_dict()``
    refuses a checkpoint of another schedule unless ``allow_schedule_change``,
    and re-applies the rates to the optimizer at once.

    ``momentum`` and ``weight_decay`` (schedules of those values, optional) are
    applied with the rate, before each update: the momentum as SGD's
    ``momentum`` or Adam's ``betas[0]``, the weight decay to every decayed group
    (see :class:`lrtempo.torch.HyperSchedules`). Their spec hashes join
    ``state_dict()`` when they are given and are checked like the rate's.
    A schedule whose ``unit`` is ``samples`` or ``tokens`` advances by what each
    update consumed: ``step(consumed=N)`` (required for such a schedule; for a
    steps schedule ``N`` is 1). :attr:`position` is the units consumed so far
    and the rate of the next update is ``schedule(position)``; ``state_dict()``
    then holds the position too. Under a constant ``N`` the rates come from
    blocks of ``position, position + N, ...`` precomputed by one ``at()``; a
    varying ``N`` evaluates one position at a time.

    A :class:`ScheduleOrderWarning` is raised once if the scheduler is advanced
    before the optimizer has stepped, or more often than the optimizer steps.

    >>> import torch
    >>> from lrtempo import WarmupCosine
    >>> opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    >>> sched = LRTempoScheduler(opt, WarmupCosine(peak_lr=0.1, total_steps=10, warmup_steps=2))
    >>> opt.param_groups[0]["lr"], sched.last_epoch
    (0.0, 0)
    >>> opt.step(); sched.step(); opt.param_groups[0]["lr"]
    0.05
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        schedule: Schedule,
        *,
        allow_schedule_change: bool = False,
        warn_order: bool = True,
        momentum: Schedule | None = None,
        weight_decay: Schedule | None = None,
    ) -> None:
        if not isinstance(schedule, Schedule):
            raise TypeError(f"schedule must be an lrtempo Schedule (got {type(schedule).__name__})")
        _group_multipliers(optimizer)
        self._load_hook = optimizer.register_load_state_dict_post_hook(_group_multipliers)
        self.schedule = schedule
        self.spec_hash = spec_hash(schedule)
        self._plateau = plateau_control(schedule)  # None unless the schedule is a `type: plateau`
        self.allow_schedule_change = allow_schedule_change
        self.warn_order = warn_order
        self._buf_start = 0
        self._buf: list[float] = []
        self.unit = schedule.unit
        self._position = 0  # the units consumed (a samples or tokens schedule; a steps one counts last_epoch)
        self._ubuf_start, self._ubuf_stride, self._ubuf = 0, 1, []  # a block of positions start + i * stride
        self._last_consumed = 0
        self._lead = 0  # scheduler advances minus optimizer steps since counting (re)started
        self._count_start = 0  # the step at which counting (re)started
        self._warned = False
        self._hook = optimizer.register_step_post_hook(self._count_optimizer_step)
        self.hyper = None if momentum is None and weight_decay is None else \
            HyperSchedules(optimizer, momentum=momentum, weight_decay=weight_decay)
        super().__init__(optimizer, last_epoch=-1)  # torch's initial step applies schedule(0)
        self._lead = 0  # that initial step is not an advance

    # -- hot path ----------------------------------------------------------------
    def _count_optimizer_step(self, *_: Any) -> None:
        self._lead -= 1

    def rate(self, step: int) -> float:
        """``schedule(step)``, served from a block precomputed by one ``schedule.at()``."""
        i = step - self._buf_start
        if 0 <= i < len(self._buf):
            return self._buf[i]
        if step < 0:
            raise ValueError(f"step must be >= 0 (got {step})")
        self._buf_start = step
        self._buf = self.schedule.at(block_steps(self.schedule, step, _BLOCK)).tolist()
        return self._buf[0]

    def apply(self, step: int) -> float:
        """Set every group's rate to that of update ``step``, ``schedule(step) * group_multiplier``, and return
        ``schedule(step)``; the step counter is not moved. For a schedule counted in samples or tokens ``step``
        is the position (the units consumed before the update).

        For a loop that sets the rate of each update itself, right before ``optimizer.step()``
        (as :class:`lrtempo.train.TrainState` does) rather than through :meth:`step`.
        """
        if self.unit != "steps":
            value = self._unit_rate(step)
            value = self.schedule(step) if value is None else value
            for group in self.optimizer.param_groups:
                group["lr"] = value * group.get("group_multiplier", 1.0)
            return value
        i = step - self._buf_start
        buf = self._buf
        value = buf[i] if 0 <= i < len(buf) else self.rate(step)
        for group in self.optimizer.param_groups:
            group["lr"] = value * group.get("group_multiplier", 1.0)
        if self.hyper is not None:
            self.hyper.apply(step)
        return value

    _apply = apply  # the former, private name

    def step(self, epoch: int | None = None, *, consumed: int | None = None) -> None:  # noqa: D401 - torch's name
        """Advance by one applied update, which consumed ``consumed`` units of the schedule's unit (1 for a steps
        schedule, the default there; required for samples or tokens), and set the rates of the next one."""
        if epoch is not None:
            raise TypeError("LRTempoScheduler.step() takes no epoch: the step is the count of applied updates; "
                            "use load_state_dict() to jump to a step")
        if consumed is not None or self.unit != "steps":
            if self._step_units(consumed):
                return
        step = self.last_epoch = self.last_epoch + 1
        lead = self._lead = self._lead + 1
        if lead > 0 and step > 0:
            self._check_order(lead)
        # apply(step), inlined: this is the per-update hot path
        i = step - self._buf_start
        buf = self._buf
        value = buf[i] if 0 <= i < len(buf) else self.rate(step)
        for group in self.optimizer.param_groups:
            group["lr"] = value * group.get("group_multiplier", 1.0)
        if self.hyper is not None:
            self.hyper.apply(step)

    @property
    def position(self) -> int:
        """The schedule's position: the units consumed by the updates applied (the step for a steps schedule)."""
        return self.last_epoch if self.unit == "steps" else self._position

    def _step_units(self, consumed: int | None) -> bool:
        """:meth:`step` of a schedule counted in samples or tokens (True), or a check of ``consumed`` for a steps
        schedule (False: the steps path runs)."""
        if self.unit == "steps":
            if _whole(consumed) and consumed == 1:
                return False
            raise ValueError(f"consumed: a steps schedule advances by 1 per update (got {consumed!r}); give the "
                             "schedule a unit (samples or tokens) to count what each update consumed")
        if self.last_epoch < 0:  # torch's initial step, from __init__: position 0
            self.last_epoch = self._position = 0
            self.apply(0)
            return True
        if not _whole(consumed) or consumed < 1:
            raise ValueError(f"consumed: a schedule counted in {self.unit} needs scheduler.step(consumed=N), N >= 1 "
                             f"(the {position_name(self.unit, plural=True)} the update consumed; got {consumed!r})")
        step = self.last_epoch = self.last_epoch + 1
        lead = self._lead = self._lead + 1
        if lead > 0 and step > 0:
            self._check_order(lead)
        position = self._position = self._position + consumed
        value = self._unit_rate(position)
        if value is None:  # off the block: refill it when the increment repeats, else one value
            if consumed == self._last_consumed and position <= _INT64_MAX - _BLOCK * consumed:
                self._ubuf_start, self._ubuf_stride = position, consumed
                self._ubuf = self.schedule.at(np.arange(_BLOCK, dtype=np.int64) * consumed + position).tolist()
                value = self._ubuf[0]
            else:
                value = self.schedule(position)
        self._last_consumed = consumed
        for group in self.optimizer.param_groups:
            group["lr"] = value * group.get("group_multiplier", 1.0)
        return True

    def _unit_rate(self, position: int) -> float | None:
        """``schedule(position)`` from the block of positions ``start + i * stride``, or None when off it."""
        i, off = divmod(position - self._ubuf_start, self._ubuf_stride)
        return self._ubuf[i] if off == 0 and 0 <= i < len(self._ubuf) else None

    def _check_order(self, lead: int) -> None:
        if self._warned or not self.warn_order:
            return
        self._warned = True
        if lead == self.last_epoch - self._count_start:  # the optimizer never stepped
            message = ("scheduler.step() was called before optimizer.step(): the first update then runs at the "
                       "second step's rate and the schedule is off by one from then on. Call optimizer.step() "
                       "first, then scheduler.step().")
        else:
            message = (f"the scheduler has advanced {lead} more times than the optimizer stepped: call "
                       "scheduler.step() once per optimizer update, not per micro-batch (gradient accumulation) "
                       "and not for skipped updates.")
        warnings.warn(message, ScheduleOrderWarning, stacklevel=3)

    def get_last_lr(self) -> list[float]:
        return [group["lr"] for group in self.optimizer.param_groups]

    def get_lr(self) -> list[float]:
        value = self.rate(self.last_epoch) if self.unit == "steps" else self.schedule(self.position)
        return [value * g.get("group_multiplier", 1.0) for g in self.optimizer.param_groups]

    # -- reduce-on-plateau ----------------------------------------------------------------
    def observe(self, loss: Any) -> Reduction | None:
        """Report one evaluation of the watched loss to a ``type: plateau`` schedule's rule (torch's
        ``ReduceLROnPlateau.step(loss)``): call it after ``scheduler.step()``, once per evaluation, with the
        same value on every rank. On a reduction it is recorded from the current step on (the next update's),
        every group's rate is set at once, and the :class:`~lrtempo.schedules.Reduction` is returned (else None).
        """
        if self._plateau is None:
            raise TypeError("observe() needs a schedule of type: plateau (this scheduler runs type: "
                            f"{self.schedule.type_name or type(self.schedule).__name__})")
        return self._plateau.observe(self, loss)

    # -- state -------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        state = {"step": int(self.last_epoch), "spec_hash": self.spec_hash}
        if self._plateau is not None:  # the recorded reductions and the decider's state
            state["plateau"] = self._plateau.state_dict(self.schedule)
        if self.hyper is not None:
            state.update(self.hyper.state())
        if self.unit != "steps":
            state["position"] = int(self._position)
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        step = state_dict.get("step")
        if not isinstance(step, int) or isinstance(step, bool) or step < 0:
            raise ValueError(f"state_dict['step'] must be an integer >= 0 (got {step!r})")
        saved = state_dict.get("spec_hash")
        if saved is not None and saved not in spec_hashes(self.schedule) and not self.allow_schedule_change:
            raise ScheduleChangedError(
                f"the checkpoint was written under schedule {saved[:12]} but this scheduler runs "
                f"{self.spec_hash[:12]}; pass allow_schedule_change=True to continue under the new schedule")
        changed = changed_hypers(state_dict, {} if self.hyper is None else self.hyper.schedules())
        if changed and not self.allow_schedule_change:
            raise ScheduleChangedError(
                f"the checkpoint was written under another {' and '.join(changed)} schedule than this scheduler's "
                "(given in one and not the other, or another spec); pass allow_schedule_change=True to continue "
                "under this one")
        if self._plateau is not None:  # a state without "plateau" (of another schedule): no reduction yet
            self._plateau.load_state_dict(self, state_dict.get("plateau"), step)
        self.last_epoch = step
        self._lead, self._count_start = 0, step
        if self.unit != "steps":
            self._position = _saved_position(state_dict, self.unit)
            self.apply(self._position)
            return
        self.apply(step)

    def close(self) -> None:
        """Remove the optimizer hooks (the scheduler stops counting optimizer steps)."""
        self._hook.remove()
        self._load_hook.remove()
        if self.hyper is not None:
            self.hyper.close()


def _whole(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _saved_position(state_dict: dict[str, Any], unit: str) -> int:
    """The position a state dict holds for a schedule counted in ``unit`` (a ValueError when it has none)."""
    position = state_dict.get("position")
    if position is None:
        raise ValueError(f"state_dict has no 'position': it was saved by a scheduler of a steps schedule, and this "
                         f"one counts {unit}; resume under the schedule it was saved with")
    if not _whole(position) or position < 0:
        raise ValueError(f"state_dict['position'] must be an integer >= 0 (got {position!r})")
    return int(position)


def lambda_lr(optimizer: torch.optim.Optimizer, schedule: Schedule) -> LambdaLR:
    """A torch ``LambdaLR`` view of ``schedule`` for code that wants one.

    Each group's lambda is ``schedule(k) * group_multiplier / base_lr`` with ``base_lr``
    the group's lr when this is called (it must be > 0), so LambdaLR's
    ``base_lr * lambda(k)`` is the schedule's rate to within an ulp (the
    division and multiplication round). Use :class:`LRTempoScheduler` for the
    exact value.
    """
    if schedule.unit != "steps":
        raise ValueError(f"a LambdaLR view counts updates, and this schedule counts {schedule.unit}: use "
                         "LRTempoScheduler and step(consumed=N)")
    _group_multipliers(optimizer)
    lambdas = []
    for i, group in enumerate(optimizer.param_groups):
        base = group.get("initial_lr", group["lr"])
        if not base > 0:
            raise ValueError(f"param_groups[{i}] needs an lr > 0 for a LambdaLR view (got {base!r})")
        factor = group.get(GROUP_MULTIPLIER, 1.0) / base
        lambdas.append(lambda k, factor=factor: schedule(k) * factor)
    return LambdaLR(optimizer, lambdas)


def _group_multipliers(optimizer: torch.optim.Optimizer) -> None:
    """Check every group's ``group_multiplier`` (a finite number >= 0, default 1); a group's ``lr_scale`` (the
    former name) is renamed ``group_multiplier`` with a :class:`DeprecationWarning`."""
    for i, group in enumerate(optimizer.param_groups):
        given = [key for key in (GROUP_MULTIPLIER, _OLD_MULTIPLIER) if key in group]
        if len(given) == 2:
            raise ValueError(f"param_groups[{i}] has both 'group_multiplier' and its former name 'lr_scale': "
                             "keep 'group_multiplier'")
        key = given[0] if given else GROUP_MULTIPLIER
        value = group.get(key, 1.0)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            raise ValueError(f"param_groups[{i}][{key!r}] must be a finite number >= 0 (got {value!r})")
        if key == _OLD_MULTIPLIER:
            warnings.warn("the param-group key 'lr_scale' is renamed 'group_multiplier'; lrtempo renamed it in "
                          f"param_groups[{i}]", DeprecationWarning, stacklevel=3)
            group[GROUP_MULTIPLIER] = group.pop(_OLD_MULTIPLIER)
