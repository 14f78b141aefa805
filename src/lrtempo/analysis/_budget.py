"""Where the compute goes under a schedule: steps and wall-clock per phase and per rate band.

Computed exactly from the schedule, vectorized in chunks of a fixed size (so memory does not
grow with the run; see :mod:`lrtempo._chunks`): every
step from 0 to ``total - 1`` is evaluated (about 30 ns a step here, so a
100M-step schedule takes a few seconds), nothing is sampled.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from .._chunks import MAX_EVALUATED_STEPS, rate_chunks
from ..config._horizon import Horizon
from ..monitor._phases import PHASES, PhaseMap
from ..schedules import Schedule

__all__ = ["Budget", "compute_budget", "format_budget", "format_horizon", "parse_duration"]

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

    def hours(self, steps: int) -> float | None:
        return None if self.step_seconds is None else steps * self.step_seconds / 3600

    def cost(self, steps: int) -> float | None:
        h = self.hours(steps)
        return None if h is None or self.gpu_hour_cost is None else h * self.gpus * self.gpu_hour_cost

    @property
    def warmup_share(self) -> float:
        return self.phase_steps.get("warmup", 0) / self.total_steps

    def to_json(self) -> dict:
        rows = {}
        for name, steps in [*self.phase_steps.items(), *self.band_steps.items(), ("<=10% of peak (tail)",
                                                                                   self.tail_steps)]:
            rows[name] = {"steps": steps, "share": steps / self.total_steps, "hours": self.hours(steps),
                          "gpu_hours": None if self.hours(steps) is None else self.hours(steps) * self.gpus,
                          "cost": self.cost(steps)}
        return {"total_steps": self.total_steps, "peak_lr": self.peak_lr, "warmup_share": self.warmup_share,
                "step_seconds": self.step_seconds, "gpus": self.gpus, "gpu_hour_cost": self.gpu_hour_cost,
                "rows": rows}


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


def compute_budget(schedule: Schedule, total_steps: int, *, step_seconds: float | None = None, gpus: int = 1,
                   gpu_hour_cost: float | None = None) -> Budget:
    """Count, over steps ``0 .. total_steps - 1``, the steps of each phase and rate band."""
    if total_steps < 1:
        raise ValueError(f"total_steps must be >= 1 (got {total_steps})")
    if total_steps > MAX_EVALUATED_STEPS:
        raise ValueError(f"total_steps must be at most {MAX_EVALUATED_STEPS:,}, the most steps a budget evaluates "
                         f"one by one (got {total_steps:,})")
    # the peak over the run: every step is visited below anyway, so take the exact maximum
    peak = 0.0
    for _, rates in rate_chunks(schedule, range(total_steps)):
        peak = max(peak, float(np.fmax.reduce(rates)))  # fmax: a NaN step does not hide the chunk's maximum
    phase_counts = np.zeros(len(PHASES), dtype=np.int64)
    band_counts = np.zeros(len(BANDS), dtype=np.int64)
    tail = 0
    phase_map = PhaseMap(schedule, max(total_steps, schedule.horizon))
    phase_map.peak = peak  # the exact peak over the run
    for steps, rates in rate_chunks(schedule, range(total_steps)):
        phase_counts += np.bincount(phase_map.labels(steps, rates), minlength=len(PHASES))
        for i, (_, frac) in enumerate(BANDS):
            band_counts[i] += np.count_nonzero(rates > frac * peak)
        tail += int(np.count_nonzero(rates <= 0.1 * peak))
    return Budget(total_steps, peak, {name: int(n) for name, n in zip(PHASES, phase_counts) if n},
                  {name: int(n) for (name, _), n in zip(BANDS, band_counts)}, tail, step_seconds, gpus,
                  gpu_hour_cost)


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
    """A table of steps, share, wall-clock (and cost) per phase and per rate band."""
    head = f"{'':26s} {'steps':>14s} {'share':>7s}"
    if b.step_seconds is not None:
        head += f" {'hours':>10s} {'GPU-hours':>11s}"
    if b.gpu_hour_cost is not None:
        head += f" {'cost':>12s}"
    lines = [f"total {b.total_steps:,} steps, peak lr {b.peak_lr!r}, warmup {b.warmup_share:.2%} of the run", "",
             head]

    def row(name: str, steps: int) -> str:
        line = f"{name:26s} {steps:>14,} {steps / b.total_steps:>7.1%}"
        if b.step_seconds is not None:
            line += f" {b.hours(steps):>10.2f} {b.hours(steps) * b.gpus:>11.2f}"
        if b.gpu_hour_cost is not None:
            line += f" {b.cost(steps):>12,.2f}"
        return line

    lines.append("by phase")
    lines += [row("  " + name, n) for name, n in b.phase_steps.items()]
    lines.append("by rate")
    lines += [row("  steps with lr " + name, n) for name, n in b.band_steps.items()]
    lines.append(row("  steps with lr <=10% (tail)", b.tail_steps))
    return "\n".join(lines)
