"""``lrtempo values CONFIG``: the rate at chosen steps as CSV ``step,lr``, written as it is computed."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TextIO

import numpy as np

from .._atomic import atomic_open
from .._chunks import rate_chunks
from ..schedules import POSITION_COLUMNS, Schedule
from ._common import UsageError, add_config_argument, last_step_of, schedule_from_args, step_ranges

HELP = ("print the rate at chosen steps as CSV (step,lr), exactly (floats written with repr); a schedule with "
        "a unit lists its positions in it (samples,lr or tokens,lr)")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("values", help=HELP, description=HELP + ".")
    add_config_argument(p)
    p.add_argument("--steps", metavar="SPEC", default=None,
                   help="comma list of steps (positions in the schedule's unit) and half-open ranges a:b[:stride], e.g. 0:100,1000,2000:2010 "
                        "(default: every step from 0 to the end, inclusive)")
    p.add_argument("-o", "--output", metavar="FILE", default=None,
                   help="write the CSV to FILE instead of standard output: a regular file (or the file a "
                        "symlink points to) is replaced atomically, so a failure leaves the old one intact; "
                        "a FIFO, a device such as /dev/null, or an open descriptor such as /dev/stdout is "
                        "written through; "
                        "a directory is refused")
    p.set_defaults(func=run)


def csv_rows(steps: np.ndarray, values: np.ndarray) -> str:
    """``step,lr`` rows, one per line, the rate written with ``repr`` (it reads back to the same bits).

    >>> csv_rows(np.array([0, 1]), np.array([0.0, 0.1]))
    '0,0.0\\n1,0.1\\n'
    """
    return "".join(f"{s},{v!r}\n" for s, v in zip(steps.tolist(), values.tolist()))


def write_csv(fh: TextIO, schedule: Schedule, ranges: list[range]) -> None:
    """The header (the position's column: ``step``, or the schedule's unit), then the rows chunk by chunk:
    memory does not grow with the number of rows."""
    fh.write(f"{POSITION_COLUMNS[schedule.unit]},lr\n")
    for steps in ranges:
        for part, values in rate_chunks(schedule, steps):
            fh.write(csv_rows(part, values))


def run(args: argparse.Namespace) -> int:
    schedule = schedule_from_args(args)
    if args.steps is not None:
        if args.until is not None:
            raise UsageError("give --steps or --until, not both")
        ranges = step_ranges(args.steps)
    else:
        ranges = [range(last_step_of(schedule, args.until) + 1)]
    if args.output is None:
        write_csv(sys.stdout, schedule, ranges)
        return 0
    out = Path(args.output)
    target = Path(os.path.realpath(out))
    if target.is_dir():
        raise UsageError(f"-o {out}: is a directory; give a file to write the CSV to")
    if not target.parent.is_dir():
        raise UsageError(f"-o {out}: the folder {target.parent} does not exist")
    try:
        with atomic_open(out) as fh:
            write_csv(fh, schedule, ranges)
    except BrokenPipeError:
        raise  # a FIFO's reader went away: like a closed standard output, not an error
    except OSError as exc:
        raise OSError(f"-o {out}: {exc.strerror or exc}") from exc
    return 0
