"""``lrtempo values CONFIG``: the rate at chosen steps as CSV ``step,lr``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from .._atomic import atomic_write_text
from ._common import UsageError, add_config_argument, last_step_of, parse_steps, schedule_from_args

HELP = "print the rate at chosen steps as CSV (step,lr), exactly (floats written with repr)"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("values", help=HELP, description=HELP + ".")
    add_config_argument(p)
    p.add_argument("--steps", metavar="SPEC", default=None,
                   help="comma list of steps and half-open ranges a:b[:stride], e.g. 0:100,1000,2000:2010 "
                        "(default: every step from 0 to the end, inclusive)")
    p.add_argument("-o", "--output", metavar="FILE", default=None,
                   help="write the CSV to FILE (atomically) instead of standard output")
    p.set_defaults(func=run)


def csv_text(steps: np.ndarray, values: np.ndarray) -> str:
    rows = [f"{s},{v!r}" for s, v in zip(steps.tolist(), values.tolist())]
    return "step,lr\n" + "\n".join(rows) + ("\n" if rows else "")


def run(args: argparse.Namespace) -> int:
    schedule = schedule_from_args(args)
    if args.steps is not None:
        if args.until is not None:
            raise UsageError("give --steps or --until, not both")
        steps = parse_steps(args.steps)
    else:
        steps = np.arange(last_step_of(schedule, args.until) + 1, dtype=np.int64)
    text = csv_text(steps, schedule.at(steps))
    if args.output is None:
        sys.stdout.write(text)
        return 0
    out = Path(args.output)
    if out.is_dir():
        raise UsageError(f"-o {out}: is a directory")
    atomic_write_text(out, text)
    return 0
