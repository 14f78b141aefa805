"""``lrtempo diff A B``: where two schedules differ, step by step, streamed in chunks.

Both sides are any schedule spec or run config, or a run directory. Every
step of the range is evaluated on both sides and compared bit for bit; the
report gives the first differing step, the largest absolute and relative
difference, and the same per phase of A. Exit status, as ``cmp`` and ``diff``:
0 when every step gives the same float64 bits, 1 when some step differs, 2 for
bad input.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field

import numpy as np

from .._chunks import MAX_EVALUATED_STEPS, step_chunks
from ..config import load_schedule
from ..schedules import Schedule
from ._common import UsageError, config_path, json_text, non_negative_int, step_ranges, task_data_facts

HELP = "compare two schedules (configs or run directories) step by step: first difference, largest differences"
DESCRIPTION = (
    "Compare two schedules step by step. A and B are schedule specs, run configs (.yaml, .yml, .json, .toml) or "
    "run directories; every step of the range is evaluated on both sides, in chunks, and compared bit for bit. "
    "The report gives the first differing step and the largest absolute |a - b| and relative "
    "|a - b| / max(|a|, |b|) differences, overall and per phase of A. Exit status (as cmp and diff): 0 identical "
    "(the same float64 bits at every step), 1 they differ, 2 bad input.")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("diff", help=HELP, description=DESCRIPTION)
    for name in ("A", "B"):
        p.add_argument(name.lower(), metavar=name, type=config_path,
                       help="a schedule spec or run config (.yaml, .yml, .json or .toml), or a run directory")
    p.add_argument("--steps", metavar="SPEC", default=None,
                   help="comma list of steps and half-open ranges a:b[:stride], e.g. 0:1000,5000 (default: every "
                        "step from 0 to the later of the two schedules' ends, inclusive)")
    p.add_argument("--until", metavar="STEP", type=non_negative_int, default=None,
                   help="compare steps 0..STEP (instead of --steps)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=run)


@dataclass
class Tally:
    """The comparison over a set of steps, fed chunk by chunk (exact: it does not depend on the chunks)."""

    label: str
    start: int | None = None
    stop: int | None = None
    steps: int = 0
    differing: int = 0
    first: tuple[int, float, float] | None = None
    max_abs: tuple[float, int, float, float] = (0.0, -1, 0.0, 0.0)
    max_rel: tuple[float, int, float, float] = (0.0, -1, 0.0, 0.0)

    def add(self, steps: np.ndarray, a: np.ndarray, b: np.ndarray) -> None:
        if steps.size == 0:
            return
        self.steps += int(steps.size)
        differs = a.view(np.uint64) != b.view(np.uint64)
        if not differs.any():
            return
        self.differing += int(np.count_nonzero(differs))
        if self.first is None:
            i = int(np.argmax(differs))
            self.first = (int(steps[i]), float(a[i]), float(b[i]))
        absolute, relative = differences(a, b)
        for name, values in (("max_abs", absolute), ("max_rel", relative)):
            i = int(np.argmax(values))  # the first step holding the largest value in this chunk
            current = getattr(self, name)
            if values[i] > current[0] or current[1] < 0:
                setattr(self, name, (float(values[i]), int(steps[i]), float(a[i]), float(b[i])))

    def as_dict(self) -> dict:
        out: dict = {"label": self.label, "steps": self.steps, "differing_steps": self.differing,
                     "identical": self.differing == 0}
        if self.start is not None:
            out["start"], out["stop"] = self.start, self.stop
        if self.first is not None:
            out["first_difference"] = dict(zip(("step", "a", "b"), self.first))
            out["max_abs_difference"] = dict(zip(("value", "step", "a", "b"), self.max_abs))
            out["max_rel_difference"] = dict(zip(("value", "step", "a", "b"), self.max_rel))
        return out


def differences(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``|a - b|`` and ``|a - b| / max(|a|, |b|)`` (0 where both are 0; inf where only one is NaN).

    >>> [x.tolist() for x in differences(np.array([1.0, 0.0, 2.0]), np.array([1.5, 0.0, -2.0]))]
    [[0.5, 0.0, 4.0], [0.3333333333333333, 0.0, 2.0]]
    """
    with np.errstate(invalid="ignore", over="ignore"):
        absolute = np.abs(a - b)
        scale = np.maximum(np.abs(a), np.abs(b))
        relative = np.where(absolute == 0, 0.0, absolute / np.where(scale == 0, 1.0, scale))
    one_nan = np.isnan(a) != np.isnan(b)
    absolute = np.where(one_nan, np.inf, np.nan_to_num(absolute, nan=0.0))
    relative = np.where(one_nan, np.inf, np.nan_to_num(relative, nan=0.0))
    return absolute, relative


@dataclass
class Comparison:
    """The whole comparison: overall, per phase of A, and past A's last phase."""

    total: Tally = field(default_factory=lambda: Tally("all"))
    phases: list[Tally] = field(default_factory=list)


#: the most phases of A reported one by one
MAX_PHASES = 100


def compare(a: Schedule, b: Schedule, ranges: list[range]) -> Comparison:
    """Compare ``a`` and ``b`` at every step of ``ranges``, chunk by chunk."""
    last = max((r[-1] for r in ranges if len(r)), default=0)
    result = Comparison()
    # A's phases to its end (a few periods of an endless schedule), at most MAX_PHASES of them: the
    # steps after those are one more row
    phases = a.phases(min(last, a.horizon) + 1)[:MAX_PHASES]
    result.phases = [Tally(p.name, p.start, p.stop) for p in phases]
    ends = [p.stop for p in phases if p.stop is not None]
    after = Tally("after A's phases", max(ends) if ends else None, None)
    starts = np.asarray([p.start for p in phases], dtype=np.int64)
    stops = np.asarray([np.iinfo(np.int64).max if p.stop is None else p.stop for p in phases], dtype=np.int64)
    for steps in ranges:
        for part in step_chunks(steps):
            va, vb = _values(a, part, "A"), _values(b, part, "B")
            result.total.add(part, va, vb)
            idx = np.searchsorted(starts, part, side="right") - 1
            inside = (idx >= 0) & (part < stops[np.maximum(idx, 0)])
            for i, tally in enumerate(result.phases):
                sel = inside & (idx == i)
                if sel.any():
                    tally.add(part[sel], va[sel], vb[sel])
            if not inside.all():
                after.add(part[~inside], va[~inside], vb[~inside])
    result.phases = [t for t in [*result.phases, after] if t.steps]  # the phases the range reaches
    return result


def _values(schedule: Schedule, steps: np.ndarray, side: str) -> np.ndarray:
    try:
        return np.ascontiguousarray(schedule.at(steps), dtype=np.float64)
    except ValueError as exc:  # e.g. a library schedule that raises past its end
        raise UsageError(f"{side} cannot be evaluated at steps {int(steps[0])}..{int(steps[-1])}: {exc} "
                         "(give --steps or --until within its range)") from None


def _ranges(args: argparse.Namespace, a: Schedule, b: Schedule) -> list[range]:
    if args.steps is not None and args.until is not None:
        raise UsageError("give --steps or --until, not both")
    if args.steps is not None:
        ranges = step_ranges(args.steps)
    else:
        ranges = [range((args.until if args.until is not None else max(a.horizon, b.horizon)) + 1)]
    total = sum(len(r) for r in ranges)
    if total > MAX_EVALUATED_STEPS:
        raise UsageError(f"{total:,} steps to compare: at most {MAX_EVALUATED_STEPS:,} (minutes of work); give "
                         "--until STEP or --steps with a stride, e.g. --steps 0:1000000000000:1000")
    return ranges


def _span(ranges: list[range]) -> str:
    return ", ".join(f"{r.start}..{r[-1]}" + (f" every {r.step}" if r.step != 1 else "") for r in ranges if len(r))


def _line(t: Tally) -> str:
    where = f"{t.start}..{t.stop - 1 if t.stop is not None else 'end'}" if t.start is not None else "-"
    if t.first is None:
        return f"  {t.label:<16} {where:<16} {t.steps:>10} {'identical':>10}"
    return (f"  {t.label:<16} {where:<16} {t.steps:>10} {t.differing:>10} {t.first[0]:>10} "
            f"{t.max_abs[0]:>12.4g} {t.max_rel[0]:>12.4g}")


def report(path_a: str, path_b: str, ranges: list[range], c: Comparison) -> str:
    t = c.total
    lines = [f"A         {path_a}", f"B         {path_b}", f"steps     {t.steps:,} compared ({_span(ranges)})"]
    if t.first is None:
        lines.append("identical every compared step gives the same float64 bits")
        return "\n".join(lines) + "\n"
    lines += [f"differ    at {t.differing:,} of {t.steps:,} steps",
              f"first     step {t.first[0]}: A {t.first[1]!r}, B {t.first[2]!r}",
              f"max abs   {t.max_abs[0]!r} at step {t.max_abs[1]} (A {t.max_abs[2]!r}, B {t.max_abs[3]!r})",
              f"max rel   {t.max_rel[0]!r} at step {t.max_rel[1]} (A {t.max_rel[2]!r}, B {t.max_rel[3]!r})",
              "per phase of A:",
              f"  {'phase':<16} {'steps':<16} {'compared':>10} {'differing':>10} {'first':>10} "
              f"{'max abs':>12} {'max rel':>12}"]
    lines += [_line(p) for p in c.phases]
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace) -> int:
    a, b = load_schedule(args.a, task_data_facts), load_schedule(args.b, task_data_facts)
    ranges = _ranges(args, a, b)
    c = compare(a, b, ranges)
    if args.json:
        print(json_text({"a": args.a, "b": args.b, "identical": c.total.differing == 0, **c.total.as_dict(),
                         "phases": [p.as_dict() for p in c.phases]}))
    else:
        print(report(args.a, args.b, ranges, c), end="")
    return 0 if c.total.differing == 0 else 1
