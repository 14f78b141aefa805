"""``lrtempo show CONFIG``: phases, boundary values, min, max, sum of the rate, hash."""

from __future__ import annotations

import argparse

import numpy as np

from .._chunks import MAX_EVALUATED_STEPS, Extremes, pairwise_sum
from ..config import schedule_to_spec, spec_hash
from ..schedules import position_name
from ._common import add_config_argument, last_step_of, schedule_from_args

HELP = "summarise a schedule: phases, values at every boundary, min, max, sum, hash"
DESCRIPTION = (HELP + ". The min, max and sum are exact: every step of the range is evaluated, in chunks "
               f"(memory stays flat), up to {MAX_EVALUATED_STEPS:,} steps; beyond that they are not computed "
               "and --until bounds the range.")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("show", help=HELP, description=DESCRIPTION)
    add_config_argument(p)
    p.set_defaults(func=run)


def rate_stats(schedule, last: int) -> tuple[Extremes, float]:
    """Min, max (and their first steps) and the sum of the rate over ``0 .. last``, in one chunked pass.

    Memory does not grow with ``last``; the numbers equal ``values.min()``, ``values.argmin()``, ...,
    ``np.sum(values)`` of the whole array exactly (see :mod:`lrtempo._chunks`).
    """
    extremes = Extremes()

    def leaf_sum(lo: int, hi: int) -> float:  # a piece of at most one chunk (128 steps when chunks are smaller)
        steps = np.arange(lo, hi, dtype=np.int64)
        values = schedule.at(steps)
        extremes.add(steps, values)
        return float(np.sum(values))

    return extremes, pairwise_sum(last + 1, leaf_sum)


def _stat_lines(schedule, last: int) -> list[str]:
    if last + 1 > MAX_EVALUATED_STEPS:
        why = f"not computed: over {MAX_EVALUATED_STEPS:,} steps (give --until STEP)"
        return [f"min       {why}", f"max       {why}", f"sum       {why}"]
    extremes, total = rate_stats(schedule, last)
    one, many = position_name(schedule.unit), position_name(schedule.unit, plural=True)
    return [f"min       {extremes.min!r} at {one} {extremes.min_step}",
            f"max       {extremes.max!r} at {one} {extremes.max_step}",
            f"sum       {total!r} (the rate summed over {many} 0..{last})"]


def summary(schedule, last: int) -> str:
    spec = schedule_to_spec(schedule)
    end = schedule.end_step
    one, many = position_name(schedule.unit), position_name(schedule.unit, plural=True)
    lines = [
        f"type      {spec['type']}" + (f" ({spec['library']} {spec['name']})" if spec["type"] == "compat" else ""),
        *([] if schedule.unit == "steps" else [f"unit      {schedule.unit}"]),
        f"hash      {spec_hash(schedule)}",
        f"{'end ' + one:<9} {end if end is not None else 'none (changes forever)'}"
        + (f", then holds {schedule(end)!r}" if end is not None else ""),
        f"range     {many} 0..{last}",
        *_stat_lines(schedule, last),
        "",
        "phases",
    ]
    phases = schedule.phases(last)
    width = max((len(p.name) for p in phases), default=5)
    for p in phases:
        stop = "" if p.stop is None else str(p.stop)
        first = schedule(p.start)
        last_in = schedule(p.stop - 1) if p.stop is not None and p.stop > p.start else None
        tail = f"   lr {first!r} .. {last_in!r}" if last_in is not None else f"   lr {first!r} .."
        lines.append(f"  {p.name:<{width}}  [{p.start}, {stop})" + tail)
    lines += ["", f"values at the boundaries ({one} - 1, {one}, {one} + 1)"]
    for b in schedule.boundaries(last):
        around = [k for k in (b - 1, b, b + 1) if k >= 0]
        lines.append(f"  {b:>10}  " + "  ".join(f"{k}: {schedule(k)!r}" for k in around))
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    schedule = schedule_from_args(args)
    print(summary(schedule, last_step_of(schedule, args.until)))
    return 0
