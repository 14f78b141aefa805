"""What each update of ``lrtempo train`` consumes: its micro-batches, samples and tokens, and the schedule's position.

Every number here is a pure function of the update's number ``n`` (the step), so a
resumed run consumes exactly what an uninterrupted one would: the batch of update
``n`` is the ramp's (:class:`lrtempo.config.BatchRamp`) or the configured one, and
the samples and tokens before it are sums of whole micro-batches.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..config import BatchRamp, ConfigError, Problem
from ..schedules import ByUpdate, Schedule

__all__ = ["Consumption"]


@dataclass(frozen=True, slots=True)
class Consumption:
    """The consumption of a run's updates.

    ``samples_per_micro_batch`` and ``tokens_per_micro_batch`` are one process's;
    a ``full_batch`` task's update takes its one batch whatever its micro-batches.
    Without a ``ramp`` every update has ``accumulation_steps`` micro-batches per
    process; with one, update ``n`` has ``ramp.batch_of_update(n) /
    (samples_per_micro_batch * world_size)``.

    >>> c = Consumption(accumulation_steps=4, world_size=2, samples_per_micro_batch=8, tokens_per_micro_batch=512,
    ...                 ramp=BatchRamp(16, 16, 96, 64, 16), unit="tokens")
    >>> [c.micro_batches(n) for n in range(5)], c.through(3), c.position(3), c.consumed(3)
    ([1, 1, 2, 3, 4], (64, 4096), 4096, 3072)
    """

    accumulation_steps: int
    world_size: int
    samples_per_micro_batch: int
    tokens_per_micro_batch: int
    full_batch: bool = False
    ramp: BatchRamp | None = None
    unit: str = "steps"

    @classmethod
    def of(cls, config: Any, task: Any, world_size: int) -> Consumption:
        """A run config's consumption on its task (built), refusing a ramp the task cannot run (ConfigError)."""
        ramp = None
        if config.batch_ramp is not None:
            if task.full_batch:
                raise ConfigError([Problem("batch_ramp", f"task {config.task!r} trains on one fixed batch, so its "
                                                         "batch size cannot ramp; remove batch_ramp")])
            micro = task.samples_per_micro_batch * world_size
            try:
                ramp = config.batch_ramp.ramp(micro * config.accumulation_steps, micro)
            except ValueError as exc:
                path, _, message = str(exc).partition(": ")
                raise ConfigError([Problem(path, message)]) from None
        return cls(config.accumulation_steps, world_size, task.samples_per_micro_batch, task.tokens_per_micro_batch,
                   task.full_batch, ramp, config.schedule.unit)

    def micro_batches(self, n: int) -> int:
        """The micro-batches of update ``n`` on each process."""
        if self.ramp is None:
            return self.accumulation_steps
        return self.ramp.batch_of_update(n) // (self.samples_per_micro_batch * self.world_size)

    def through(self, n: int) -> tuple[int, int]:
        """``(samples, tokens)`` the updates ``0 .. n - 1`` consumed on all processes together."""
        if self.ramp is not None:  # every batch is whole micro-batches on every process
            micro = self.ramp.samples_before(n) // self.samples_per_micro_batch
            return micro * self.samples_per_micro_batch, micro * self.tokens_per_micro_batch
        per = 1 if self.full_batch else self.accumulation_steps
        micro = n * per * self.world_size
        return micro * self.samples_per_micro_batch, micro * self.tokens_per_micro_batch

    def position(self, n: int) -> int:
        """The schedule's position before update ``n``: ``n`` for a steps schedule, else the samples or tokens
        consumed before it."""
        if self.unit == "steps":
            return n
        samples, tokens = self.through(n)
        return samples if self.unit == "samples" else tokens

    def consumed(self, n: int) -> int | None:
        """The units of the schedule update ``n`` consumes (None for a steps schedule: it counts updates)."""
        if self.unit == "steps":
            return None
        return self.position(n + 1) - self.position(n)

    def positions(self, steps: np.ndarray) -> np.ndarray:
        """:meth:`position` of every update of an int64 array ``steps``, vectorized."""
        steps = np.asarray(steps, dtype=np.int64)
        if self.unit == "steps":
            return steps
        if self.ramp is None:
            return steps * self.position(1)
        first, before, batch = (np.array(column, dtype=np.int64) for column in zip(*self.ramp.table))
        i = np.searchsorted(first, steps, side="right") - 1
        samples = before[i] + (steps - first[i]) * batch[i]
        return samples if self.unit == "samples" else samples // self.samples_per_micro_batch * \
            self.tokens_per_micro_batch

    def updates_for(self, position: int) -> int:
        """The first update whose position is at least ``position`` (the updates that consume it)."""
        if self.unit == "steps":
            return position
        if self.ramp is None:
            return -(-position // self.position(1))
        if self.unit == "tokens":  # the samples of the whole micro-batches that hold that many tokens
            position = -(-position // self.tokens_per_micro_batch) * self.samples_per_micro_batch
        return self.ramp.updates_for(position)

    def over_steps(self, schedule: Schedule) -> Schedule:
        """``schedule`` (counted in this run's unit) as a function of the update count: what step-indexed
        readers (the monitor) see. A steps schedule is itself."""
        return schedule if self.unit == "steps" else ByUpdate(schedule, self.positions, self.updates_for)
