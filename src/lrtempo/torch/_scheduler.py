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

One schedule per param group: ``LRTempoScheduler(optimizer, [schedule_0,
schedule_1, ...])`` (as ``LambdaLR`` takes one lambda per group) gives group
``i`` the rate ``schedule_i(step) * group_multiplier``. A group whose ``lr``
is a tensor (``torch.compile``, capturable optimizers) keeps that tensor: its
value is filled in place, in its own dtype, as torch's schedulers do.
"""

from __future__ import annotations

import hashlib
import json
import math
import warnings
from typing import Any

import numpy as np
import torch
from torch.optim.lr_scheduler import LambdaLR, LRScheduler

from ..config import spec_hash, spec_hashes
from ..schedules import Reduction, Schedule, find_plateau, position_name
from ._hyper import HyperSchedules, block_steps, changed_hypers
from ._plateau import plateau_control

__all__ = ["GROUP_MULTIPLIER", "LRTempoScheduler", "ParamGroupWarning", "ScheduleOrderWarning", "ScheduleChangedError",
           "lambda_lr"]

#: values precomputed per refill of the adapter's buffer (one vectorized ``at()``)
_BLOCK = 1024
#: the param-group key of a group's factor on the schedule's rate (``lr = schedule(step) * group_multiplier``)
GROUP_MULTIPLIER = "group_multiplier"
#: its former name, still read (with a DeprecationWarning) and renamed in the group
_OLD_MULTIPLIER = "lr_scale"
_INT64_MAX = 2**63 - 1


class ScheduleOrderWarning(UserWarning):
    """The scheduler and the optimizer are stepped in the wrong order or at different rates."""


class ParamGroupWarning(UserWarning):
    """The optimizer's param groups were built with rates the scheduler will not keep apart."""


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
    A pickled or deep-copied scheduler counts the steps of its (copied) optimizer again.

    ``schedule`` may be a list or tuple of schedules, one per param group:
    group ``i`` then runs ``schedule[i](step) * group_multiplier`` (``schedule``
    is the first, :attr:`group_schedules` all of them; they count one unit,
    and none may be a ``type: plateau``). ``state_dict()`` then holds each
    group's spec hash (``group_spec_hashes``), each checked on a load. With one
    schedule and groups built with different rates (and no ``group_multiplier``
    anywhere) a :class:`ParamGroupWarning` says that all get ``schedule(step)``.
    A tensor ``lr`` is filled in place (``fill_``), in its own dtype.

    >>> import torch
    >>> from lrtempo import WarmupCosine
    >>> opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    >>> sched = LRTempoScheduler(opt, WarmupCosine(peak_lr=0.1, total_steps=10, warmup_steps=2))
    >>> opt.param_groups[0]["lr"], sched.last_epoch
    (0.0, 0)
    >>> opt.step(); sched.step(); opt.param_groups[0]["lr"]
    0.05

    One schedule per group, and a tensor ``lr`` kept:

    >>> from lrtempo import Constant
    >>> lr = [torch.tensor(1.0), torch.tensor(1.0)]  # one per group: a shared one could hold one rate only
    >>> two = torch.optim.SGD([{"params": [torch.nn.Parameter(torch.zeros(1))], "lr": t} for t in lr])
    >>> per_group = LRTempoScheduler(two, [Constant(0.5), Constant(0.25)])
    >>> [float(g["lr"]) for g in two.param_groups], two.param_groups[0]["lr"] is lr[0]
    ([0.5, 0.25], True)
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        schedule: Schedule | list[Schedule] | tuple[Schedule, ...],
        *,
        allow_schedule_change: bool = False,
        warn_order: bool = True,
        momentum: Schedule | None = None,
        weight_decay: Schedule | None = None,
    ) -> None:
        schedule, self.group_schedules = _given_schedules(optimizer, schedule)
        _group_multipliers(optimizer)
        _check_shared_tensors(optimizer, self.group_schedules)
        if self.group_schedules is None:
            _warn_unequal_rates(optimizer)
        self.schedule = schedule
        #: each group's spec hash (None: one schedule for every group)
        self.group_spec_hashes = None if self.group_schedules is None else \
            tuple(spec_hash(s) for s in self.group_schedules)
        self.spec_hash = spec_hash(schedule) if self.group_spec_hashes is None else \
            _list_hash(self.group_spec_hashes)
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
        self._warned = 0  # 1: warned of an advance before the first update, 2: of advancing per micro-batch
        self._plain = -1  # the group count while no group's lr is a tensor (the fast path); -1: check
        self.optimizer = optimizer
        self._register_hooks()
        self.hyper = None if momentum is None and weight_decay is None else \
            HyperSchedules(optimizer, momentum=momentum, weight_decay=weight_decay)
        super().__init__(optimizer, last_epoch=-1)  # torch's initial step applies schedule(0)
        self._lead = 0  # that initial step is not an advance

    # -- hooks, and what a pickled or copied scheduler restores -------------------------
    def _register_hooks(self) -> None:
        self._hook = self.optimizer.register_step_post_hook(self._count_optimizer_step)
        self._load_hook = self.optimizer.register_load_state_dict_post_hook(self._optimizer_loaded)

    def _optimizer_loaded(self, optimizer: torch.optim.Optimizer) -> None:
        _group_multipliers(optimizer)
        self._plain = -1  # the loaded groups are new dicts, their lr maybe a tensor

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        del state["_hook"], state["_load_hook"]  # handles of the optimizer's hooks: registered again on load
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._register_hooks()

    # -- hot path ----------------------------------------------------------------
    def _count_optimizer_step(self, *_: Any) -> None:
        self._lead -= 1

    def rate(self, step: int) -> float:
        """``schedule(step)`` (the first group's schedule, given a list), served from a block precomputed by one
        ``schedule.at()``."""
        entry = self._entry(step)
        return entry if self.group_schedules is None else entry[0]

    def rates(self, step: int) -> list[float]:
        """Each group's schedule at ``step``, before its ``group_multiplier``."""
        entry = self._entry(step)
        return [entry] * len(self.optimizer.param_groups) if self.group_schedules is None else list(entry)

    def _entry(self, step: int) -> Any:
        """The precomputed entry of ``step``: ``schedule(step)``, or the tuple of each group's value given a list."""
        i = step - self._buf_start
        if 0 <= i < len(self._buf):
            return self._buf[i]
        if step < 0:
            raise ValueError(f"step must be >= 0 (got {step})")
        schedules = self.group_schedules or (self.schedule,)
        self._buf_start = step
        self._buf = self._evaluate(min((block_steps(s, step, _BLOCK) for s in schedules), key=len))
        return self._buf[0]

    def _evaluate(self, positions: np.ndarray) -> list[Any]:
        """The entries at ``positions`` by one ``at()`` per schedule (one per distinct one, given a list): floats,
        or one tuple of the groups' values per position."""
        if self.group_schedules is None:
            return self.schedule.at(positions).tolist()
        columns: dict[int, list[float]] = {}
        for s in self.group_schedules:
            if id(s) not in columns:
                columns[id(s)] = s.at(positions).tolist()
        return list(zip(*(columns[id(s)] for s in self.group_schedules)))

    def _evaluate_one(self, position: int) -> Any:
        if self.group_schedules is None:
            return self.schedule(position)
        return tuple(s(position) for s in self.group_schedules)

    def _put(self, entry: Any) -> None:
        """Set every group's rate from ``entry`` (:meth:`_entry`), a tensor ``lr`` filled in place."""
        groups = self.optimizer.param_groups
        if self._plain == len(groups):  # no tensor lr, and as many groups as when that was checked
            if self.group_schedules is None:
                for group in groups:
                    group["lr"] = entry * group.get("group_multiplier", 1.0)
            else:
                for group, value in zip(groups, entry):
                    group["lr"] = value * group.get("group_multiplier", 1.0)
            return
        values = [entry] * len(groups) if self.group_schedules is None else entry
        if len(values) != len(groups):
            raise ValueError(f"the optimizer has {len(groups)} param groups and the scheduler {len(values)} "
                             "schedules, one per group: build the scheduler after the last add_param_group()")
        filled: dict[int, tuple[int, float]] = {}  # id of a tensor lr -> the group and the rate it was filled with
        for i, (group, value) in enumerate(zip(groups, values)):
            lr = value * group.get("group_multiplier", 1.0)
            current = group["lr"]
            if isinstance(current, torch.Tensor):
                first, rate = filled.setdefault(id(current), (i, lr))
                if rate != lr:
                    raise ValueError(_shared_tensor_message(first, i, f" ({rate!r} and {lr!r})"))
                current.fill_(lr)  # the tensor stays (compiled steps and capturable optimizers hold it)
            else:
                group["lr"] = lr
        self._plain = -1 if filled else len(groups)

    def apply(self, step: int) -> float:
        """Set every group's rate to that of update ``step``, ``schedule(step) * group_multiplier``, and return
        ``schedule(step)``; the step counter is not moved. For a schedule counted in samples or tokens ``step``
        is the position (the units consumed before the update).

        For a loop that sets the rate of each update itself, right before ``optimizer.step()``
        (as :class:`lrtempo.train.TrainState` does) rather than through :meth:`step`.
        """
        if self.unit != "steps":
            entry = self._unit_rate(step)
            entry = self._evaluate_one(step) if entry is None else entry
            self._put(entry)
            return entry if self.group_schedules is None else entry[0]
        entry = self._entry(step)
        self._put(entry)
        if self.hyper is not None:
            self.hyper.apply(step)
        return entry if self.group_schedules is None else entry[0]

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
        entry = buf[i] if 0 <= i < len(buf) else self._entry(step)
        groups = self.optimizer.param_groups
        if self._plain == len(groups) and self.group_schedules is None:  # one schedule, every lr a number
            for group in groups:
                group["lr"] = entry * group.get("group_multiplier", 1.0)
        else:
            self._put(entry)
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
        entry = self._unit_rate(position)
        if entry is None:  # off the block: refill it when the increment repeats, else one value
            if consumed == self._last_consumed and position <= _INT64_MAX - _BLOCK * consumed:
                self._ubuf_start, self._ubuf_stride = position, consumed
                self._ubuf = self._evaluate(np.arange(_BLOCK, dtype=np.int64) * consumed + position)
                entry = self._ubuf[0]
            else:
                entry = self._evaluate_one(position)
        self._last_consumed = consumed
        self._put(entry)
        return True

    def _unit_rate(self, position: int) -> Any:
        """The entry of ``position`` from the block of positions ``start + i * stride``, or None when off it."""
        i, off = divmod(position - self._ubuf_start, self._ubuf_stride)
        return self._ubuf[i] if off == 0 and 0 <= i < len(self._ubuf) else None

    def _check_order(self, lead: int) -> None:
        """Warn once per cause: an advance before the optimizer's first step can be either a loop that steps the
        scheduler first or one that steps it per micro-batch; a lead of 2 or more tells the second apart."""
        if self._warned == 2 or not self.warn_order or (self._warned == 1 and lead < 2):
            return
        if not self._warned and lead == self.last_epoch - self._count_start:  # the optimizer never stepped
            self._warned = 1
            message = ("scheduler.step() was called before optimizer.step() had made an update: either the loop "
                       "calls scheduler.step() before optimizer.step() (the first update then runs at the second "
                       "step's rate and the schedule is off by one: call optimizer.step() first), or it calls "
                       "scheduler.step() once per micro-batch (gradient accumulation; with accelerate, step it only "
                       "when accelerator.sync_gradients).")
        else:
            self._warned = 2
            message = (f"the scheduler has advanced {lead} more times than the optimizer stepped: call "
                       "scheduler.step() once per optimizer update, not once per micro-batch (gradient accumulation; "
                       "with accelerate, only when accelerator.sync_gradients), not for skipped updates, and not "
                       "through accelerate's default prepared scheduler under several processes (it steps once per "
                       "process: use step_scheduler_with_optimizer=False).")
        warnings.warn(message, ScheduleOrderWarning, stacklevel=3)

    def get_last_lr(self) -> list[float | torch.Tensor]:
        """Every group's rate (a tensor ``lr`` as a copy, as torch's schedulers return it)."""
        return [lr.clone() if isinstance(lr := group["lr"], torch.Tensor) else lr
                for group in self.optimizer.param_groups]

    def get_lr(self) -> list[float]:
        groups = self.optimizer.param_groups
        if self.unit == "steps":
            values = self.rates(self.last_epoch)
        else:
            entry = self._evaluate_one(self.position)
            values = [entry] * len(groups) if self.group_schedules is None else entry
        return [value * g.get("group_multiplier", 1.0) for value, g in zip(values, groups)]

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
        if self.group_spec_hashes is not None:
            state["group_spec_hashes"] = list(self.group_spec_hashes)
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
        changed_schedule = self._changed_schedule(state_dict)
        if changed_schedule is not None and not self.allow_schedule_change:
            raise ScheduleChangedError(f"{changed_schedule}; pass allow_schedule_change=True to continue under the "
                                       "new schedule")
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

    def _changed_schedule(self, state_dict: dict[str, Any]) -> str | None:
        """How the rate schedules of ``state_dict`` differ from this scheduler's (None: they do not, or it
        records none). A state of one schedule ran it in every group; any hash a run recorded is accepted."""
        saved, groups = state_dict.get("spec_hash"), state_dict.get("group_spec_hashes")
        if groups is None and self.group_schedules is None:
            if saved is None or saved in spec_hashes(self.schedule):
                return None
            return (f"the checkpoint was written under schedule {saved[:12]} but this scheduler runs "
                    f"{self.spec_hash[:12]}")
        if groups is not None and not (isinstance(groups, (list, tuple)) and all(isinstance(h, str) for h in groups)):
            raise ValueError(f"state_dict['group_spec_hashes'] must be a list of spec hashes (got {groups!r})")
        if groups is None and saved is None:
            return None
        mine = self.group_schedules or (self.schedule,) * len(groups)
        groups = [saved] * len(mine) if groups is None else groups
        if len(groups) != len(mine):
            return (f"the checkpoint holds the schedules of {len(groups)} param groups but this scheduler runs "
                    f"{len(mine)}")
        known: dict[int, frozenset[str]] = {}  # each distinct schedule's hashes, computed once
        for i, (h, s) in enumerate(zip(groups, mine)):
            if id(s) not in known:
                known[id(s)] = spec_hashes(s)
            if h not in known[id(s)]:
                return (f"the checkpoint was written under schedule {h[:12]} for param_groups[{i}] but this "
                        f"scheduler runs {spec_hash(s)[:12]} there")
        return None

    def close(self) -> None:
        """Remove the optimizer hooks (the scheduler stops counting optimizer steps)."""
        self._hook.remove()
        self._load_hook.remove()
        if self.hyper is not None:
            self.hyper.close()


def _given_schedules(optimizer: torch.optim.Optimizer, schedule: Any) -> tuple[Schedule, tuple[Schedule, ...] | None]:
    """The scheduler's schedule and its per-group schedules (None: one schedule for every group), checked: a list
    or tuple holds one schedule per param group, all counting one unit, none a ``type: plateau``."""
    if isinstance(schedule, Schedule):
        return schedule, None
    if not isinstance(schedule, (list, tuple)):
        raise TypeError(f"schedule must be an lrtempo Schedule or a list of them, one per param group (got "
                        f"{type(schedule).__name__})")
    n = len(optimizer.param_groups)
    if len(schedule) != n:
        raise ValueError(f"schedule: a list needs one schedule per param group: got {len(schedule)} schedules for "
                         f"{n} param groups")
    for i, s in enumerate(schedule):
        if not isinstance(s, Schedule):
            raise TypeError(f"schedule[{i}] must be an lrtempo Schedule (got {type(s).__name__})")
    if n == 1:
        return schedule[0], None
    units = sorted({s.unit for s in schedule})
    if len(units) > 1:
        raise ValueError(f"schedule: the schedules of a list must count one unit, their position is one counter "
                         f"(got {', '.join(units)})")
    for i, s in enumerate(schedule):
        if find_plateau(s) is not None:
            raise ValueError(f"schedule[{i}] is a type: plateau schedule, which a list cannot hold: its reductions "
                             "are decided by one watched loss for one schedule; give every group the plateau "
                             "schedule and set each group's 'group_multiplier'")
    return schedule[0], tuple(schedule)


def _shared_tensor_message(first: int, other: int, rates: str = "") -> str:
    return (f"param_groups[{first}] and param_groups[{other}] hold one lr tensor (the optimizer's lr=, which torch "
            f"gives every group that has none of its own) but get different rates{rates}: give each group its own "
            "lr tensor ({'params': ..., 'lr': torch.tensor(...)})")


def _check_shared_tensors(optimizer: torch.optim.Optimizer, schedules: tuple[Schedule, ...] | None) -> None:
    """Refuse groups that hold one lr tensor and would get different rates (another schedule or multiplier): filling
    it for one would change the other's."""
    first: dict[int, int] = {}
    groups = optimizer.param_groups
    for i, group in enumerate(groups):
        if not isinstance(group["lr"], torch.Tensor):
            continue
        j = first.setdefault(id(group["lr"]), i)
        if j != i and (group.get(GROUP_MULTIPLIER, 1.0) != groups[j].get(GROUP_MULTIPLIER, 1.0)
                       or (schedules is not None and schedules[i] != schedules[j])):
            raise ValueError(_shared_tensor_message(j, i))


def _list_hash(hashes: tuple[str, ...]) -> str:
    """The spec hash of a list of per-group schedules: SHA-256 of their spec hashes as a compact JSON list."""
    return hashlib.sha256(json.dumps(list(hashes), separators=(",", ":")).encode("utf-8")).hexdigest()


def _warn_unequal_rates(optimizer: torch.optim.Optimizer) -> None:
    """A :class:`ParamGroupWarning` when the groups were built with different rates (beyond a relative 1e-6) and
    none has a ``group_multiplier``: one schedule gives them all ``schedule(step)`` (torch's ``LambdaLR`` scales
    each)."""
    groups = optimizer.param_groups
    if len(groups) < 2 or any(GROUP_MULTIPLIER in g for g in groups):
        return
    rates = [float(g.get("initial_lr", g["lr"])) for g in groups]
    other = [i for i, r in enumerate(rates) if not math.isclose(r, rates[0], rel_tol=1e-6)]  # beyond float32 rounding
    if not other:
        return
    shown = ", ".join(f"param_groups[{i}] lr={r!r}" for i, r in enumerate(rates[:4]))
    shown += ", ..." if len(rates) > 4 else ""
    k = other[0]
    example = "" if rates[0] == 0 else f": {rates[k] / rates[0]!r} for param_groups[{k}] if the schedule is " \
                                       "param_groups[0]'s"
    warnings.warn(f"the param groups were built with different rates ({shown}) and none has a 'group_multiplier': "
                  "every group gets schedule(step), their own rates are ignored (torch's LambdaLR would scale each "
                  f"by its own). Set each group's 'group_multiplier' (its rate over the schedule's{example}), or "
                  "pass one schedule per group: LRTempoScheduler(optimizer, [schedule_0, schedule_1, ...])",
                  ParamGroupWarning, stacklevel=3)


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
