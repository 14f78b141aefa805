"""``lrtempo values CONFIG``: the rate at chosen steps as CSV ``step,lr``, written as it is computed (of a run
directory, the rates it applied: a ``type: plateau`` schedule's recorded reductions included; of a run whose
schedule counts samples or tokens, one row per update, ``step,position,lr``, the position being the units the
updates before it consumed).

``--momentum`` and ``--weight-decay`` print those schedules instead (``step,momentum``, ``step,weight_decay``):
a run config's ``momentum:`` or ``weight_decay:`` spec, or for a schedule spec the momentum its library sets
with the rate (torch's ``OneCycleLR`` and ``CyclicLR`` with ``cycle_momentum``).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import numpy as np

from .._atomic import atomic_open
from .._chunks import rate_chunks, step_chunks
from ..config import ConfigError, Problem, build_schedule, read_config_file
from ..schedules import POSITION_COLUMNS, Schedule
from ..schedules.compat import momentum_curve
from ._common import (
    UsageError,
    add_config_argument,
    config_path_or_fail,
    last_step_of,
    schedule_from_args,
    step_ranges,
    task_data_facts,
)

if TYPE_CHECKING:
    from ..analysis import UpdateClock

HELP = ("print the rate at chosen steps as CSV (step,lr), exactly (floats written with repr); a schedule with "
        "a unit lists its positions in it (samples,lr or tokens,lr)")
#: what the description adds about a run directory
RUN_DIR_NOTE = ("Of a run directory, by default its own updates (0 .. steps - 1) at the rates the run applied: its "
                "config's schedule with the decisions it recorded (a type: plateau schedule's reductions), the lr "
                "column of its log.csv bit for bit; where a resume changed the schedule, a note on stderr says "
                "from which step these are the rates. A run whose schedule counts samples or tokens is listed "
                "by update too, as step,position,lr: the position is the samples or tokens the updates before it "
                "consumed, where the schedule gave its rate (--steps and --until then count updates).")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("values", help=HELP, description=HELP + ". " + RUN_DIR_NOTE)
    add_config_argument(p)
    p.add_argument("--steps", metavar="SPEC", default=None,
                   help="comma list of steps (positions in the schedule's unit; of a run directory, its updates) "
                        "and half-open ranges a:b[:stride], e.g. 0:100,1000,2000:2010 "
                        "(default: every step from 0 to the end, inclusive)")
    p.add_argument("-o", "--output", metavar="FILE", default=None,
                   help="write the CSV to FILE instead of standard output: a regular file (or the file a "
                        "symlink points to) is replaced atomically, so a failure leaves the old one intact; "
                        "a FIFO, a device such as /dev/null, or an open descriptor such as /dev/stdout is "
                        "written through; "
                        "a directory is refused")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--momentum", action="store_true",
                       help="print the momentum instead of the rate (step,momentum): a run config's momentum "
                            "schedule, or the momentum a schedule spec's library sets with the rate (torch's "
                            "OneCycleLR and CyclicLR with cycle_momentum)")
    which.add_argument("--weight-decay", action="store_true",
                       help="print a run config's weight_decay schedule instead of the rate (step,weight_decay)")
    p.set_defaults(func=run)


def csv_rows(steps: np.ndarray, values: np.ndarray) -> str:
    """``step,lr`` rows, one per line, the rate written with ``repr`` (it reads back to the same bits).

    >>> csv_rows(np.array([0, 1]), np.array([0.0, 0.1]))
    '0,0.0\\n1,0.1\\n'
    """
    return "".join(f"{s},{v!r}\n" for s, v in zip(steps.tolist(), values.tolist()))


def write_csv(fh: TextIO, schedule: Schedule, ranges: list[range], column: str = "lr") -> None:
    """The header (the position's column: ``step``, or the schedule's unit; then ``column``), then the rows chunk
    by chunk: memory does not grow with the number of rows."""
    fh.write(f"{POSITION_COLUMNS[schedule.unit]},{column}\n")
    for steps in ranges:
        for part, values in rate_chunks(schedule, steps):
            fh.write(csv_rows(part, values))


def write_update_csv(fh: TextIO, schedule: Schedule, clock: UpdateClock, ranges: list[range]) -> None:
    """``step,position,lr``: each update of ``ranges``, its position on a samples or tokens schedule (the units
    the updates before it consumed) and the rate there, chunk by chunk."""
    fh.write("step,position,lr\n")
    for steps in ranges:
        for part in step_chunks(steps):
            positions = clock.positions(part)
            rates = schedule.at(positions)
            fh.write("".join(f"{n},{p},{v!r}\n" for n, p, v in zip(part.tolist(), positions.tolist(),
                                                                     rates.tolist())))


def update_clock(path: str, schedule: Schedule) -> UpdateClock | None:
    """Of a run directory's ``config.yaml`` whose schedule counts samples or tokens: the clock that puts its
    updates on the schedule (its task's batch, its ``batch_ramp`` and the world size it ran at, from
    ``run.json``); None for anything else."""
    from ..analysis import run_clock
    from ..rundir import RUN_FILES, RunDir

    run = RunDir(Path(path).parent)
    if schedule.unit == "steps" or Path(path).name != RUN_FILES.config or not run.meta.exists():
        return None
    data = read_config_file(path)
    world = run.read_meta().get("world_size", 1)
    section = data.get("data") if isinstance(data.get("data"), dict) else {}
    return run_clock({**data, "data": {**section, "world_size": world}}, schedule.unit, task_data_facts, path)


def hyper_schedule(path: str, name: str) -> Schedule:
    """The ``name`` (``momentum`` or ``weight_decay``) schedule a config file gives: a run config's ``name``
    spec, or for ``momentum`` of a schedule spec, the momentum its library sets with the rate."""
    data = read_config_file(path)
    if "type" in data or "schedule" not in data:
        schedule = schedule_from_args(argparse.Namespace(config=path))
        curve = momentum_curve(schedule) if name == "momentum" else None
        if curve is None:
            raise ConfigError([Problem("", f"a schedule spec sets no {name}: --{name.replace('_', '-')} prints a "
                                           f"run config's `{name}:` schedule" +
                                       (" or the momentum torch's OneCycleLR and CyclicLR set (cycle_momentum)"
                                        if name == "momentum" else ""))], source=path)
        return curve
    if data.get(name) is None:
        rate = build_schedule(data["schedule"], "schedule", source=path)
        also = (f"; its schedule ({rate.library}'s {rate.name}) would set one: add `momentum:` with the same spec "
                "and `curve: momentum` to apply it" if name == "momentum" and momentum_curve(rate) else "")
        raise ConfigError([Problem(name, f"not given: this run config schedules no {name} (the optimizer keeps "
                                         f"its own){also}")], source=path)
    return build_schedule(data[name], name, source=path)


def _of_run(args: argparse.Namespace, schedule: Schedule, ranges: list[range], by_update: bool) -> list[range]:
    """Of a run directory: by default its own updates (``0 .. steps - 1``, for a steps schedule or one listed
    ``by_update``), and a note on stderr for each step where a resume changed its schedule (the values are the
    schedule in force now)."""
    from ._recorded import note_schedule_changes, run_record

    try:
        steps, _ = run_record(config_path_or_fail(args.config))
    except (OSError, ValueError):
        return ranges  # not a readable run directory: the schedule's own range
    note_schedule_changes(args.config, "these are the rates")
    if steps is not None and (schedule.unit == "steps" or by_update) and args.steps is None and args.until is None:
        return [range(steps)]
    return ranges


def run(args: argparse.Namespace) -> int:
    column = "momentum" if args.momentum else "weight_decay" if args.weight_decay else "lr"
    clock = None
    if column == "lr":
        schedule = schedule_from_args(args)
        clock = update_clock(config_path_or_fail(args.config), schedule)
    else:
        schedule = hyper_schedule(config_path_or_fail(args.config), column)
    if args.steps is not None:
        if args.until is not None:
            raise UsageError("give --steps or --until, not both")
        ranges = step_ranges(args.steps)
    else:
        ranges = [range(last_step_of(schedule if clock is None else clock.over_updates(schedule), args.until) + 1)]
    ranges = _of_run(args, schedule, ranges, clock is not None)

    def write(fh: TextIO) -> None:
        if clock is None:
            write_csv(fh, schedule, ranges, column)
        else:
            write_update_csv(fh, schedule, clock, ranges)

    if args.output is None:
        write(sys.stdout)
        return 0
    out = Path(args.output)
    target = Path(os.path.realpath(out))
    if target.is_dir():
        raise UsageError(f"-o {out}: is a directory; give a file to write the CSV to")
    if not target.parent.is_dir():
        raise UsageError(f"-o {out}: the folder {target.parent} does not exist")
    try:
        with atomic_open(out) as fh:
            write(fh)
    except BrokenPipeError:
        raise  # a FIFO's reader went away: like a closed standard output, not an error
    except OSError as exc:
        raise OSError(f"-o {out}: {exc.strerror or exc}") from exc
    return 0
