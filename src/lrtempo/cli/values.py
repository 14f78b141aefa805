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
from ..schedules import Schedule
from ._common import UsageError, add_config_argument, last_step_of, schedule_from_args

HELP = "print the rate at chosen steps as CSV (step,lr), exactly (floats written with repr)"
#: the largest step NumPy's int64 step arrays hold
MAX_STEP = 2**63 - 1


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("values", help=HELP, description=HELP + ".")
    add_config_argument(p)
    p.add_argument("--steps", metavar="SPEC", default=None,
                   help="comma list of steps and half-open ranges a:b[:stride], e.g. 0:100,1000,2000:2010 "
                        "(default: every step from 0 to the end, inclusive)")
    p.add_argument("-o", "--output", metavar="FILE", default=None,
                   help="write the CSV to FILE instead of standard output: a regular file (or the file a "
                        "symlink points to) is replaced atomically, so a failure leaves the old one intact; "
                        "a FIFO, a device such as /dev/null, or an open descriptor such as /dev/stdout is written through; "
                        "a directory is refused")
    p.set_defaults(func=run)


def step_ranges(spec: str) -> list[range]:
    """Parse ``0:100,1000,2000:2010`` (integers and half-open ``a:b`` or ``a:b:stride`` ranges) into ranges.

    Nothing is materialised, so a range of any length costs nothing until it is written.

    >>> step_ranges("0:3,10,20:26:2")
    [range(0, 3), range(10, 11), range(20, 26, 2)]
    """
    parts = []
    for item in spec.split(","):
        item = item.strip()
        if not item:
            raise UsageError(f"--steps: empty item in {spec!r}; write e.g. 0:100,1000,2000:2010")
        fields = item.split(":")
        try:
            nums = [int(f) for f in fields]
        except ValueError:
            raise UsageError(f"--steps: {item!r} is not an integer or a range a:b[:stride]") from None
        if any(n < 0 for n in nums):
            raise UsageError(f"--steps: steps must be >= 0 (got {item!r})")
        if any(n > MAX_STEP for n in nums):
            raise UsageError(f"--steps: steps must be at most 2**63 - 1 = {MAX_STEP} (got {item!r})")
        if len(nums) == 1:
            parts.append(range(nums[0], nums[0] + 1))
        elif len(nums) in (2, 3):
            a, b = nums[0], nums[1]
            stride = nums[2] if len(nums) == 3 else 1
            if stride < 1:
                raise UsageError(f"--steps: the stride must be >= 1 (got {item!r})")
            if b <= a:
                raise UsageError(f"--steps: the range {item!r} is empty (a:b runs from a up to b - 1)")
            parts.append(range(a, b, stride))
        else:
            raise UsageError(f"--steps: {item!r} has too many ':' (use a:b or a:b:stride)")
    return parts


def csv_rows(steps: np.ndarray, values: np.ndarray) -> str:
    """``step,lr`` rows, one per line, the rate written with ``repr`` (it reads back to the same bits).

    >>> csv_rows(np.array([0, 1]), np.array([0.0, 0.1]))
    '0,0.0\\n1,0.1\\n'
    """
    return "".join(f"{s},{v!r}\n" for s, v in zip(steps.tolist(), values.tolist()))


def write_csv(fh: TextIO, schedule: Schedule, ranges: list[range]) -> None:
    """The header, then the rows chunk by chunk: memory does not grow with the number of rows."""
    fh.write("step,lr\n")
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
