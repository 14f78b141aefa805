"""Where the compute goes under a schedule: steps and wall-clock per phase and per rate band.

A schedule that counts samples or tokens is tabulated by update too: update ``n`` runs at the units the
updates before it consumed (:class:`UpdateClock`), and each row also counts the units its updates consumed.

Computed exactly from the schedule, vectorized in chunks of a fixed size (so memory does not
grow with the run; see :mod:`lrtempo._chunks`): every
step from 0 to ``total - 1`` is evaluated (about 30 ns a step here, so a
100M-step schedule takes a few seconds), nothing is sampled.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from .._chunks import MAX_EVALUATED_STEPS, step_chunks
from ..config import BatchRamp, BatchRampConfig, ConfigError, Problem
from ..config._horizon import Horizon, TaskFacts, run_facts
from ..config._typed import build_settings
from ..monitor._phases import PHASES, PhaseMap
from ..schedules import ByUpdate, Schedule

__all__ = ["Budget", "UpdateClock", "compute_budget", "format_budget", "format_horizon", "parse_duration",
           "run_clock"]

BANDS = ((">90% of peak", 0.9), (">50% of peak", 0.5), (">10% of peak", 0.1))


@dataclass(frozen=True)
class Budget:
    total_steps: int
    peak_lr: float
    phase_steps: dict[str, int]
    band_steps: dict[str, int]
    tail_steps: int
    step_seconds: float | None = None
    gpus: int = 1
    gpu_hour_cost: float | None = None
    #: the schedule's unit; for ``samples`` or ``tokens``, the ``*_units`` count what the updates consumed
    unit: str = "steps"
    total_units: int | None = None
    phase_units: dict[str, int] = field(default_factory=dict)
    band_units: dict[str, int] = field(default_factory=dict)
    tail_units: int | None = None

    def hours(self, steps: int) -> float | None:
        return None if self.step_seconds is None else steps * self.step_seconds / 3600

    def cost(self, steps: int) -> float | None:
        h = self.hours(steps)
        return None if h is None or self.gpu_hour_cost is None else h * self.gpus * self.gpu_hour_cost

    @property
    def warmup_share(self) -> float:
        return self.phase_steps.get("warmup", 0) / self.total_steps

    @property
    def by_units(self) -> bool:
        """Whether the rows also count samples or tokens (the schedule counts them)."""
        return self.unit != "steps" and self.total_units is not None

    def rows(self) -> list[tuple[str, int, int | None]]:
        """``(name, steps, units)`` of every row: the phases, the rate bands, the tail (units: None by steps)."""
        units = {**self.phase_units, **self.band_units}
        out = [(name, n, units.get(name)) for name, n in [*self.phase_steps.items(), *self.band_steps.items()]]
        return out + [("<=10% of peak (tail)", self.tail_steps, self.tail_units)]

    def to_json(self) -> dict:
        rows = {}
        for name, steps, units in self.rows():
            rows[name] = {"steps": steps, "share": steps / self.total_steps, "hours": self.hours(steps),
                          "gpu_hours": None if self.hours(steps) is None else self.hours(steps) * self.gpus,
                          "cost": self.cost(steps)}
            if self.by_units:
                rows[name].update({self.unit: units, f"{self.unit}_share": units / self.total_units})
        out = {"total_steps": self.total_steps, "peak_lr": self.peak_lr, "warmup_share": self.warmup_share,
               "step_seconds": self.step_seconds, "gpus": self.gpus, "gpu_hour_cost": self.gpu_hour_cost,
               "unit": self.unit, "rows": rows}
        if self.by_units:
            out[f"total_{self.unit}"] = self.total_units
        return out


def parse_duration(text: str) -> float:
    """``200ms``, ``1.5s``, ``2m``, ``0.25`` (seconds) -> seconds.

    >>> parse_duration("200ms"), parse_duration("1.5s"), parse_duration("2m")
    (0.2, 1.5, 120.0)
    """
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*(ms|s|m|h|us)?\s*", text)
    if not m:
        raise ValueError(f"--step-time: {text!r} is not a duration such as 200ms, 1.5s or 2m")
    value = float(m.group(1)) * {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}[m.group(2)]
    if not value > 0:
        raise ValueError(f"--step-time: must be > 0 (got {text!r})")
    return value


@dataclass(frozen=True)
class UpdateClock:
    """Where a run's updates put a schedule that counts ``samples`` or ``tokens``: update ``n`` runs at the units
    updates ``0 .. n - 1`` consumed, ``n x batch`` samples at a constant global batch, the sum of the ramp's
    batches under a ``ramp``; tokens are samples x ``tokens_per_sample``.

    >>> c = UpdateClock("tokens", batch=64, tokens_per_sample=16)
    >>> c.positions(np.array([0, 1, 3])).tolist(), c.updates_for(1024), c.updates_for(1025)
    ([0, 1024, 3072], 1, 2)
    >>> r = UpdateClock("samples", batch=6, ramp=BatchRamp(start_batch_size=2, increment=2, ramp_samples=12,
    ...                                                    batch_size=6))
    >>> r.positions(np.arange(7)).tolist(), r.updates_for(14)
    ([0, 2, 4, 6, 10, 14, 20], 5)
    """

    unit: str
    batch: int
    tokens_per_sample: int = 1
    ramp: BatchRamp | None = None

    def positions(self, steps: np.ndarray) -> np.ndarray:
        """The position (in the unit) before each update of an int64 array ``steps``."""
        steps = np.asarray(steps, dtype=np.int64)
        if self.ramp is None:
            samples = steps * self.batch
        else:
            first, before, batch = (np.array(column, dtype=np.int64) for column in zip(*self.ramp.table))
            i = np.searchsorted(first, steps, side="right") - 1
            samples = before[i] + (steps - first[i]) * batch[i]
        return samples if self.unit == "samples" else samples * self.tokens_per_sample

    def updates_for(self, position: int) -> int:
        """The first update whose position is at least ``position``."""
        samples = -(-int(position) // (1 if self.unit == "samples" else self.tokens_per_sample))
        return -(-samples // self.batch) if self.ramp is None else self.ramp.updates_for(samples)

    def over_updates(self, schedule: Schedule) -> Schedule:
        """``schedule`` as a function of the update: its rate at each update's position."""
        return ByUpdate(schedule, self.positions, self.updates_for)


def run_clock(run: Mapping, unit: str, task_facts: TaskFacts | None = None, source: str | None = None,
              where: str = "schedule") -> UpdateClock:
    """The :class:`UpdateClock` of a run config mapping (``{}`` for a bare spec) whose schedule counts ``unit``
    (samples or tokens): its global batch, tokens per sample and batch ramp. A :class:`ConfigError` of one
    problem names what is missing."""
    def refuse(path: str, text: str) -> ConfigError:
        return ConfigError([Problem(path, text)], source=source)

    why = f"the schedule counts {unit}, so the table per update needs"
    if not run:
        raise refuse(f"{where}.unit" if where else "unit", f"{unit}: {why} the run's batch, which a schedule spec "
                     "does not give: give a run config (its task, or data.batch_size"
                     + (" and data.tokens_per_sample)" if unit == "tokens" else ")"))
    problems: list[Problem] = []
    facts = run_facts(run, problems, task_facts)
    if problems or facts is None:
        raise ConfigError(problems or [Problem("accumulation_steps", "must be a whole number >= 1")],
                          source=source)
    if facts.global_batch is None:
        raise refuse("data.batch_size", f"missing: {why} the samples of an update (data.batch_size, per device; "
                                        "accumulation_steps and data.world_size multiply it)")
    if unit == "tokens" and facts.tokens_per_sample is None:
        raise refuse("data.tokens_per_sample", f"missing: {why} the tokens of a sample (the sequence length)")
    ramp = None
    if run.get("batch_ramp") is not None and facts.update_batch is not None:
        raise refuse("batch_ramp", f"task {run.get('task')!r} trains on one fixed batch, so its batch size cannot "
                                   "ramp; remove batch_ramp")
    if run.get("batch_ramp") is not None:
        ramp_config = build_settings(BatchRampConfig, run["batch_ramp"], "batch_ramp", problems)
        micro = facts.global_batch // facts.accumulation_steps  # one micro-batch on every process
        try:
            ramp = None if ramp_config is None else ramp_config.ramp(facts.global_batch, micro)
        except ValueError as exc:
            path, _, message = str(exc).partition(": ")
            problems.append(Problem(path, message))
        if problems:
            raise ConfigError(problems, source=source)
    return UpdateClock(unit, facts.global_batch, facts.tokens_per_sample or 1, ramp)


def compute_budget(schedule: Schedule, total_steps: int, *, step_seconds: float | None = None, gpus: int = 1,
                   gpu_hour_cost: float | None = None, clock: UpdateClock | None = None) -> Budget:
    """Count, over steps ``0 .. total_steps - 1``, the steps of each phase and rate band.

    With a ``clock`` (``schedule`` counts samples or tokens), the rate of update ``n`` is the schedule at the
    clock's position of ``n``, and each phase and band also counts the units its updates consumed.
    """
    if total_steps < 1:
        raise ValueError(f"total_steps must be >= 1 (got {total_steps})")
    if total_steps > MAX_EVALUATED_STEPS:
        raise ValueError(f"total_steps must be at most {MAX_EVALUATED_STEPS:,}, the most steps a budget evaluates "
                         f"one by one (got {total_steps:,})")
    by_update = schedule if clock is None else clock.over_updates(schedule)

    def chunks():
        for steps in step_chunks(range(total_steps)):
            used = None if clock is None else clock.positions(steps + 1) - clock.positions(steps)
            yield steps, by_update.at(steps), used

    # the peak over the run: every step is visited below anyway, so take the exact maximum
    peak = 0.0
    for _, rates, _ in chunks():
        peak = max(peak, float(np.fmax.reduce(rates)))  # fmax: a NaN step does not hide the chunk's maximum
    phase_counts, phase_used = np.zeros(len(PHASES), dtype=np.int64), [0] * len(PHASES)
    band_counts, band_used = np.zeros(len(BANDS), dtype=np.int64), [0] * len(BANDS)
    tail = tail_used = 0
    phase_map = PhaseMap(by_update, max(total_steps, by_update.horizon))
    phase_map.peak = peak  # the exact peak over the run
    for steps, rates, used in chunks():
        labels = phase_map.labels(steps, rates)
        phase_counts += np.bincount(labels, minlength=len(PHASES))
        for i, (_, frac) in enumerate(BANDS):
            band_counts[i] += np.count_nonzero(rates > frac * peak)
        tail += int(np.count_nonzero(rates <= 0.1 * peak))
        if used is not None:  # int64 sums, exact
            for i in range(len(PHASES)):
                phase_used[i] += int(used[labels == i].sum())
            for i, (_, frac) in enumerate(BANDS):
                band_used[i] += int(used[rates > frac * peak].sum())
            tail_used += int(used[rates <= 0.1 * peak].sum())
    units = {} if clock is None else {
        "unit": clock.unit, "total_units": int(clock.positions(np.array([total_steps]))[0]),
        "phase_units": {name: u for name, n, u in zip(PHASES, phase_counts, phase_used) if n},
        "band_units": {name: u for (name, _), u in zip(BANDS, band_used)}, "tail_units": tail_used}
    return Budget(total_steps, peak, {name: int(n) for name, n in zip(PHASES, phase_counts) if n},
                  {name: int(n) for (name, _), n in zip(BANDS, band_counts)}, tail, step_seconds, gpus,
                  gpu_hour_cost, **units)


def format_horizon(h: Horizon) -> str:
    """The run's budget as ``lrtempo budget`` prints it: what was given, the derivation, the counts, the inputs
    and where each came from.

    >>> from lrtempo.config._horizon import DataFacts, derive_horizon
    >>> print(format_horizon(derive_horizon("epochs", 2, DataFacts(examples=100, batch_size=32,
    ...                                                              source={"examples": "data"}))))
    budget: total {epochs: 2}
      2 epochs x ceil(100 / 32) = 2 x 4 = 8 updates
      global batch 32 = 32 x 1 x 1 (batch_size x accumulation_steps x world_size)
      = 8 updates, 200 samples
      inputs: examples 100 (data), batch_size 32, accumulation_steps 1, world_size 1, drop_last false
    """
    (key, value), = h.given.items()
    counts = [f"{h.steps:,} updates"] + [f"{n:,} {unit}" for unit, n in (("samples", h.samples),
                                                                          ("tokens", h.tokens)) if n is not None]
    facts = h.facts.to_json()
    shown = [k for k in ("examples", "batch_size", "update_batch", "accumulation_steps", "world_size", "drop_last",
                         "tokens_per_sample", "steps_per_epoch") if k in facts]
    text = {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in facts.items()}
    inputs = ", ".join(f"{k} {text[k]}" + (f" ({h.facts.source[k]})" if k in h.facts.source else "") for k in shown)
    lines = [f"budget: total {{{key}: {value}}}", *("  " + part for part in h.derivation.split("; ")),
             "  = " + ", ".join(counts), "  inputs: " + inputs]
    lines += [f"  {path}: auto = {n:,}" for path, n in h.filled]
    return "\n".join(lines)


def format_budget(b: Budget) -> str:
    """A table of steps, share, wall-clock (and cost) per phase and per rate band; for a schedule counted in
    samples or tokens, also the units each row's updates consumed and their share.

    >>> from lrtempo.schedules import Linear
    >>> s = Linear(start_lr=0.0, end_lr=1.0, steps=640)
    >>> print(format_budget(compute_budget(s, 20, clock=UpdateClock("samples", batch=64))).splitlines()[0])
    total 20 steps (1,280 samples), peak lr 1.0, warmup 50.00% of the samples (50.00% of the steps)
    """
    head = f"{'':26s} {'steps':>14s} {'share':>7s}"
    if b.by_units:
        head += f" {b.unit:>16s} {'share':>7s}"
    if b.step_seconds is not None:
        head += f" {'hours':>10s} {'GPU-hours':>11s}"
    if b.gpu_hour_cost is not None:
        head += f" {'cost':>12s}"
    if b.by_units:
        warmup = b.phase_units.get("warmup", 0) / b.total_units
        title = (f"total {b.total_steps:,} steps ({b.total_units:,} {b.unit}), peak lr {b.peak_lr!r}, warmup "
                 f"{warmup:.2%} of the {b.unit} ({b.warmup_share:.2%} of the steps)")
    else:
        title = f"total {b.total_steps:,} steps, peak lr {b.peak_lr!r}, warmup {b.warmup_share:.2%} of the run"
    lines = [title, "", head]

    def row(name: str, steps: int, units: int | None) -> str:
        line = f"{name:26s} {steps:>14,} {steps / b.total_steps:>7.1%}"
        if b.by_units:
            line += f" {units:>16,} {units / b.total_units:>7.1%}"
        if b.step_seconds is not None:
            line += f" {b.hours(steps):>10.2f} {b.hours(steps) * b.gpus:>11.2f}"
        if b.gpu_hour_cost is not None:
            line += f" {b.cost(steps):>12,.2f}"
        return line

    lines.append("by phase")
    lines += [row("  " + name, n, b.phase_units.get(name)) for name, n in b.phase_steps.items()]
    lines.append("by rate")
    lines += [row("  steps with lr " + name, n, b.band_units.get(name)) for name, n in b.band_steps.items()]
    lines.append(row("  steps with lr <=10% (tail)", b.tail_steps, b.tail_units))
    return "\n".join(lines)
