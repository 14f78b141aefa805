"""Batch-size ramps (Megatron-LM's batch-size rampup): the global batch of every update, in integers.

A ramp grows the global batch from ``start_batch_size`` by ``increment`` in
equal sample intervals until it reaches the run's batch ``batch_size`` after
``ramp_samples`` samples. With ``k = (batch_size - start_batch_size) /
increment`` increments, the batch at ``c`` samples consumed is

    ``batch(c) = start_batch_size + increment * min(k, c * k // ramp_samples)``

(the interval is ``ramp_samples / k`` samples, kept as the exact rational: no
float is rounded), and update ``n`` runs at ``batch(s(n))`` where ``s(n)``, the
samples the updates before it consumed, is ``s(0) = 0``, ``s(n + 1) = s(n) +
batch(s(n))``. The module works out a table of the stages the updates enter,
so ``s(n)``, the batch of update ``n`` and the updates a number of samples
takes are each a bisection and a product, and every one is a pure function of
``n``: a resumed run gets the same batches. It imports nothing but the
standard library (the linter and ``lrtempo budget`` read it without torch).
"""

from __future__ import annotations

import bisect
import numbers
from dataclasses import dataclass, field
from typing import ClassVar

from ._typed import check_settings, setting

__all__ = ["BatchRampConfig", "BatchRamp", "MAX_RAMP_STAGES"]

#: the most increments a ramp may have (its stage table is built once, one entry per increment)
MAX_RAMP_STAGES = 1_000_000


@dataclass(frozen=True, kw_only=True)
class BatchRampConfig:
    """The ``batch_ramp`` section of a run config: the global batch grows from ``start_batch_size`` by
    ``increment`` in equal sample intervals to the run's batch (micro-batch size x ``accumulation_steps`` x
    world size) after ``ramp_samples`` samples, by changing the micro-batches of each update."""

    config_title: ClassVar[str] = "the batch-size ramp"
    config_path: ClassVar[str] = "batch_ramp"

    start_batch_size: int = setting(doc="the global batch (samples) of the first update", minimum=1)
    increment: int = setting(doc="samples the global batch grows by at each stage of the ramp", minimum=1)
    ramp_samples: int = setting(doc="samples consumed until the batch is the run's batch", minimum=1)

    def __post_init__(self) -> None:
        check_settings(self)

    def ramp(self, batch_size: int, multiple: int = 1) -> BatchRamp:
        """The ramp to a run's global ``batch_size`` whose batches are multiples of ``multiple`` (the samples
        of one micro-batch on every process)."""
        return BatchRamp(self.start_batch_size, self.increment, self.ramp_samples, batch_size, multiple)


@dataclass(frozen=True, slots=True)
class BatchRamp:
    """The global batch of every update under a ramp from ``start_batch_size`` to ``batch_size``.

    ``multiple``: every batch must be a whole number of micro-batches on every
    process (the micro-batch size times the world size), so the start and the
    increment are multiples of it. A ``ValueError`` names the field at fault.

    >>> r = BatchRamp(start_batch_size=2, increment=2, ramp_samples=12, batch_size=6)
    >>> [r.batch_of_update(n) for n in range(7)]
    [2, 2, 2, 4, 4, 6, 6]
    >>> [r.samples_before(n) for n in range(7)]
    [0, 2, 4, 6, 10, 14, 20]
    >>> r.updates_for(12), r.updates_for(14), r.updates_for(15)
    (5, 5, 6)
    """

    start_batch_size: int
    increment: int
    ramp_samples: int
    batch_size: int
    multiple: int = 1
    #: ``(first update, samples before it, batch)`` of each stage the updates enter, the last one ``batch_size``
    _stages: tuple[tuple[int, int, int], ...] = field(init=False, repr=False, compare=False)
    _starts: tuple[int, ...] = field(init=False, repr=False, compare=False)  # the samples before each stage

    def __post_init__(self) -> None:
        problem = self._problem()
        if problem is not None:
            raise ValueError(f"batch_ramp.{problem}")
        object.__setattr__(self, "_stages", self._table())
        object.__setattr__(self, "_starts", tuple(c for _, c, _ in self._stages))

    def _problem(self) -> str | None:
        """What is wrong with the ramp (``field: message``), or None."""
        for name in ("start_batch_size", "increment", "ramp_samples", "batch_size", "multiple"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                return f"{name}: must be a whole number >= 1 (got {value!r})"
        start, inc, final, unit = self.start_batch_size, self.increment, self.batch_size, self.multiple
        if start >= final:
            return (f"start_batch_size: must be < the run's global batch {final} (micro-batch size x "
                    f"accumulation_steps x world size) (got {start})")
        for name in ("start_batch_size", "increment"):
            if getattr(self, name) % unit:
                return (f"{name}: must be a multiple of {unit} (the micro-batch size x the world size), so that "
                        f"every batch is whole micro-batches (got {getattr(self, name)})")
        if (final - start) % inc:
            return (f"increment: {final} - {start} (the run's batch less start_batch_size) must be a multiple of "
                    f"it (got {inc})")
        if (final - start) // inc > MAX_RAMP_STAGES:
            return f"increment: the ramp would have more than {MAX_RAMP_STAGES:,} stages (got {inc}); raise it"
        return None

    @property
    def stages(self) -> int:
        """The increments of the ramp, ``k = (batch_size - start_batch_size) / increment``."""
        return (self.batch_size - self.start_batch_size) // self.increment

    def batch_at(self, samples: int) -> int:
        """The global batch once ``samples`` samples are consumed: ``start + increment * min(k, samples * k //
        ramp_samples)``."""
        k = self.stages
        return self.start_batch_size + self.increment * min(k, samples * k // self.ramp_samples)

    def _table(self) -> tuple[tuple[int, int, int], ...]:
        k, total = self.stages, self.ramp_samples
        out, update, consumed = [], 0, 0
        for j in range(k):
            stop = -(-(j + 1) * total // k)  # the first sample count of stage j + 1: ceil((j + 1) N / k)
            if consumed >= stop:  # the previous stage's last update carried past this one
                continue
            batch = self.start_batch_size + j * self.increment
            out.append((update, consumed, batch))
            updates = -(-(stop - consumed) // batch)
            update, consumed = update + updates, consumed + updates * batch
        out.append((update, consumed, self.batch_size))
        return tuple(out)

    @property
    def table(self) -> tuple[tuple[int, int, int], ...]:
        """``(first update, samples before it, batch)`` of each stage the updates enter, ascending; the last
        stage's batch is ``batch_size``, held from then on."""
        return self._stages

    def _stage_of_update(self, n: int) -> tuple[int, int, int]:
        i = bisect.bisect_right(self._stages, (n, float("inf"), 0)) - 1
        return self._stages[i]

    def batch_of_update(self, n: int) -> int:
        """The global batch of update ``n`` (0-based)."""
        return self._stage_of_update(_count(n, "n"))[2]

    def samples_before(self, n: int) -> int:
        """``s(n)``: the samples consumed by updates ``0 .. n - 1``."""
        n = _count(n, "n")
        first, consumed, batch = self._stage_of_update(n)
        return consumed + (n - first) * batch

    def updates_for(self, samples: int) -> int:
        """The fewest updates that consume at least ``samples`` samples (the smallest ``n`` with
        ``s(n) >= samples``)."""
        samples = _count(samples, "samples")
        i = bisect.bisect_left(self._starts, samples)
        if i < len(self._stages) and self._stages[i][1] == samples:
            return self._stages[i][0]
        first, consumed, batch = self._stages[i - 1]
        return first + -(-(samples - consumed) // batch)


def _count(value: int, name: str) -> int:
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{name} must be a whole number >= 0 (got {value!r})")
    return int(value)
