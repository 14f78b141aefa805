"""The training step: one call, one optimizer update, the rate set before ``optimizer.step()``."""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import torch

from ..config import OptimizerConfig
from ..schedules import Schedule
from ..torch import LRTempoScheduler
from ._runconfig import RunConfig

__all__ = ["TrainState", "UpdateResult", "TrainingDiverged", "build_optimizer"]


class TrainingDiverged(RuntimeError):
    """Too many consecutive updates had a non-finite loss or gradient."""


@dataclass(frozen=True, slots=True)
class UpdateResult:
    """What one call of :meth:`TrainState.update` did.

    ``step`` is the update's number (the step whose rate ``lr`` it used);
    ``skipped`` updates changed nothing and did not advance the step.
    """

    step: int
    lr: float
    grad_l2_norm: float
    loss: float
    skipped: bool
    #: the monitor's log columns for this update (empty without a monitor)
    monitor: dict = field(default_factory=dict)


def _decays(name: str, param: torch.nn.Parameter) -> bool:
    # biases and norm weights are 1-d (or scalars): no weight decay by default
    return param.ndim >= 2


_OPT = OptimizerConfig()  # the defaults of a run config's optimizer section
#: the defaults of a run config's keys (TrainState's keywords of the same names take them)
_RUN = {f.name: f.default for f in fields(RunConfig)}


def build_optimizer(model: torch.nn.Module, *, name: str = _OPT.name, lr: float = 1e-3,
                    betas: tuple[float, float] = _OPT.betas, eps: float = _OPT.eps,
                    weight_decay: float = _OPT.weight_decay, momentum: float = _OPT.momentum,
                    decay_all: bool = False) -> torch.optim.Optimizer:
    """AdamW (or SGD, or schedule-free AdamW) with two param groups: decayed matrices, undecayed biases and
    norm weights.

    The defaults are :class:`~lrtempo.config.OptimizerConfig`'s (``lr`` is a placeholder: the schedule
    sets the rate of every update). ``schedulefree`` needs the ``schedulefree`` package; it is returned in
    train mode, with no warmup of its own (see :mod:`lrtempo.train._schedulefree`)."""
    decay, no_decay = [], []
    for pname, param in model.named_parameters():
        if param.requires_grad:
            (decay if decay_all or _decays(pname, param) else no_decay).append(param)
    groups = [g for g in ({"params": decay, "weight_decay": weight_decay},
                          {"params": no_decay, "weight_decay": 0.0}) if g["params"]]
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
    if name == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=momentum, weight_decay=weight_decay)
    if name == "schedulefree":
        from ._schedulefree import build_schedulefree

        return build_schedulefree(groups, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
    raise ValueError(f"optimizer.name: must be 'adamw', 'sgd' or 'schedulefree' (got {name!r})")


def _check_consumed(consumed: int | None, unit: str) -> None:
    """``update(consumed=...)``: required (>= 1) for a samples or tokens schedule, absent or 1 for a steps one."""
    if consumed is None:
        if unit != "steps":
            raise ValueError(f"consumed: this schedule counts {unit}: give the {unit} the update consumes, "
                             "update(..., consumed=N)")
        return
    whole = isinstance(consumed, int) and not isinstance(consumed, bool)
    if not whole or consumed < 1 or (unit == "steps" and consumed != 1):
        want = "1 (a steps schedule counts updates)" if unit == "steps" else f"a whole number >= 1 of {unit}"
        raise ValueError(f"consumed: must be {want} (got {consumed!r})")


class TrainState:
    """A model, its optimizer and its schedule, advanced one optimizer update per call.

    :meth:`update` runs forward and backward over the update's micro-batches
    (gradient accumulation), computes the global gradient L2 norm once with
    batched ops (shared with clipping), sets the rate of this update on the
    optimizer, steps it, zeroes the gradients and advances the step (and,
    for a schedule counted in samples or tokens, the position by what the
    update consumed: ``update(..., consumed=N)``). A
    non-finite loss or gradient skips the update without advancing the step;
    after ``max_consecutive_skips`` in a row it raises :class:`TrainingDiverged`.
    One host read per update (the loss and the norm together). ``momentum`` and ``weight_decay``
    schedules, when given, are set with the rate (:class:`lrtempo.torch.LRTempoScheduler`).
    """

    def __init__(
        self,
        model: torch.nn.Module,
        schedule: Schedule,
        *,
        optimizer: torch.optim.Optimizer | None = None,
        grad_clip: float | None = None,
        accumulation_steps: int = _RUN["accumulation_steps"],
        bf16: bool = _RUN["bf16"],
        max_consecutive_skips: int = _RUN["max_consecutive_skips"],
        allow_schedule_change: bool = False,
        process_group: Any = None,
        monitor: Any = None,
        clip_grad_norm: float | None = None,
        momentum: Schedule | None = None,
        weight_decay: Schedule | None = None,
        sharded: Any = None,
    ) -> None:
        if clip_grad_norm is not None:
            warnings.warn("TrainState(clip_grad_norm=...) is renamed grad_clip=... (the run config's key)",
                          DeprecationWarning, stacklevel=2)
            if grad_clip is not None:
                raise TypeError("give grad_clip, not also its former name clip_grad_norm")
            grad_clip = clip_grad_norm
        if accumulation_steps < 1:
            raise ValueError(f"accumulation_steps must be >= 1 (got {accumulation_steps})")
        if grad_clip is not None and not grad_clip > 0:
            raise ValueError(f"grad_clip must be > 0 (got {grad_clip!r})")
        self.model = model
        self.schedule = schedule
        self.optimizer = optimizer if optimizer is not None else build_optimizer(model)
        self.scheduler = LRTempoScheduler(self.optimizer, schedule, allow_schedule_change=allow_schedule_change,
                                          momentum=momentum, weight_decay=weight_decay)
        self.grad_clip = grad_clip
        self.accumulation_steps = accumulation_steps
        self.bf16 = bf16
        self.max_consecutive_skips = max_consecutive_skips
        self.skipped_updates = 0
        self.consecutive_skips = 0
        self.process_group = process_group
        self.monitor = monitor
        #: FSDP2 (``lrtempo.train._fsdp.ShardedStats``): the norm, loss and monitor's statistics over every shard;
        #: the model and optimizer are then checkpointed by shard, not in :meth:`state_dict`
        self.sharded = sharded
        if monitor is not None:
            monitor.name_parameters(model)
        self._params = [p for g in self.optimizer.param_groups for p in g["params"]]

    @property
    def clip_grad_norm(self) -> float | None:
        """The former name of :attr:`grad_clip`."""
        warnings.warn("TrainState.clip_grad_norm is renamed grad_clip", DeprecationWarning, stacklevel=2)
        return self.grad_clip

    @property
    def step(self) -> int:
        """Optimizer updates applied so far (the step of the next update)."""
        return self.scheduler.last_epoch

    @property
    def position(self) -> int:
        """The schedule's position: the units consumed by the updates applied (the step for a steps schedule)."""
        return self.scheduler.position

    def _autocast(self):
        if not self.bf16:
            return contextlib.nullcontext()
        device = next(self.model.parameters()).device.type
        return torch.autocast(device_type=device, dtype=torch.bfloat16)

    def update(self, micro_batches: Sequence[Any], loss_fn: Callable[[torch.nn.Module, Any], torch.Tensor],
               *, consumed: int | None = None) -> UpdateResult:
        """One optimizer update over ``micro_batches`` (one per accumulation step), at the schedule's position;
        ``consumed``: the samples or tokens the update consumes, for a schedule counted in them (the position
        moves by it once the update is applied)."""
        model, n = self.model, len(micro_batches)
        if n != self.accumulation_steps:
            raise ValueError(f"expected {self.accumulation_steps} micro-batches, got {n}")
        _check_consumed(consumed, self.scheduler.unit)  # before anything changes
        loss_sum = None
        for i, batch in enumerate(micro_batches):
            sync = i == n - 1 or not hasattr(model, "no_sync")
            with (contextlib.nullcontext() if sync else model.no_sync()), self._autocast():
                loss = loss_fn(model, batch) / n
            loss.backward()
            loss_sum = loss.detach().float() if loss_sum is None else loss_sum + loss.detach().float()
        step = self.step
        lr = self.scheduler.apply(self.scheduler.position)  # this update's rate, set before anything reads it
        if self.sharded is not None:  # FSDP2: this rank's gradient shards, statistics summed over the shards
            grads, norm, names, stats = self.sharded.reduce(step, self.optimizer, loss_sum)
        else:
            grads, norm, names, stats = self._replicated_stats(step, loss_sum)
        values = stats.tolist()  # the one host read of this update
        loss_value, norm_value = values[0], values[1]
        if not (math.isfinite(loss_value) and math.isfinite(norm_value)):
            self.optimizer.zero_grad(set_to_none=True)
            self.skipped_updates += 1
            self.consecutive_skips += 1
            if self.monitor is not None:
                self.monitor.skipped(step, loss_value, norm_value)
            if self.consecutive_skips >= self.max_consecutive_skips:
                raise TrainingDiverged(
                    f"{self.consecutive_skips} consecutive updates at step {step} had a non-finite loss or gradient "
                    f"(loss={loss_value!r}, grad_l2_norm={norm_value!r}); stopping")
            return UpdateResult(step, lr, norm_value, loss_value, True)
        self.consecutive_skips = 0
        if self.grad_clip is not None:
            coef = torch.clamp(self.grad_clip / (norm + 1e-6), max=1.0)
            torch._foreach_mul_(grads, coef)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        if consumed is None:
            self.scheduler.step()
        else:
            self.scheduler.step(consumed=consumed)
        columns = {}
        if self.monitor is not None:
            columns = self.monitor.record(step, lr, loss_value, norm_value, dict(zip(names, values[2:])))
        return UpdateResult(step, lr, norm_value, loss_value, False, columns)

    def _replicated_stats(self, step: int, loss_sum: Any) -> tuple[list, Any, list[str], Any]:
        """``(gradients, norm, monitor names, [loss, norm, *monitor values])``, averaged over DDP's ranks."""
        grads = [p.grad for p in self._params if p.grad is not None]
        if grads:
            norm = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)).float())
        else:
            norm = torch.zeros((), device=loss_sum.device)
        stats = torch.stack([loss_sum.reshape(()), norm.to(loss_sum.device)])
        names: list[str] = []
        if self.monitor is not None:
            names, extra = self.monitor.device_stats(step, self.optimizer)
            if extra is not None:
                stats = torch.cat([stats, extra.to(stats.device)])
        if self.process_group is not None:
            # the norm is already global (DDP averaged the gradients); average the loss over ranks
            torch.distributed.all_reduce(stats, group=self.process_group)
            stats = stats / torch.distributed.get_world_size(self.process_group)
        return grads, norm, names, stats

    def state_dict(self) -> dict[str, Any]:
        model = self.model.module if hasattr(self.model, "module") else self.model
        sharded = self.sharded is not None  # FSDP2: the model and optimizer go by shard (lrtempo.train._fsdp)
        return {
            **({} if sharded else {"model": model.state_dict(), "optimizer": self.optimizer.state_dict()}),
            "scheduler": self.scheduler.state_dict(),
            "skipped_updates": self.skipped_updates,
            "consecutive_skips": self.consecutive_skips,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        model = self.model.module if hasattr(self.model, "module") else self.model
        if self.sharded is None:  # FSDP2's were loaded by shard (lrtempo.train._fsdp.load_sharded)
            model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.skipped_updates = int(state["skipped_updates"])
        self.consecutive_skips = int(state["consecutive_skips"])
