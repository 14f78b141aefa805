"""What every subcommand shares: loading the config argument, parsing step specs, errors."""

from __future__ import annotations

import argparse
import sys

import numpy as np

from ..config import ConfigError, load_schedule
from ..schedules import Schedule

__all__ = ["UsageError", "add_config_argument", "schedule_from_args", "parse_steps", "last_step_of"]


class UsageError(ValueError):
    """Bad command-line input: reported on one line, exit status 2."""


def add_config_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", metavar="CONFIG",
                        help="a schedule spec or run config (.yaml, .yml, .json or .toml)")
    parser.add_argument("--until", metavar="STEP", type=_non_negative_int, default=None,
                        help="last step to show (default: the schedule's end, or a few periods of an "
                             "endless schedule)")


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number of steps (got {text!r})") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0 (got {value})")
    return value


def positive_int(text: str) -> int:
    value = _non_negative_int(text)
    if value == 0:
        raise argparse.ArgumentTypeError("must be >= 1 (got 0)")
    return value


def schedule_from_args(args: argparse.Namespace) -> Schedule:
    return load_schedule(args.config)


def last_step_of(schedule: Schedule, until: int | None) -> int:
    return schedule.horizon if until is None else until


def parse_steps(spec: str) -> np.ndarray:
    """Parse ``0:100,1000,2000:2010`` (integers and half-open ``a:b`` or ``a:b:stride`` ranges).

    >>> parse_steps("0:3,10,20:26:2").tolist()
    [0, 1, 2, 10, 20, 22, 24]
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
        if len(nums) == 1:
            parts.append(np.asarray(nums, dtype=np.int64))
        elif len(nums) in (2, 3):
            a, b = nums[0], nums[1]
            stride = nums[2] if len(nums) == 3 else 1
            if stride < 1:
                raise UsageError(f"--steps: the stride must be >= 1 (got {item!r})")
            if b <= a:
                raise UsageError(f"--steps: the range {item!r} is empty (a:b runs from a up to b - 1)")
            parts.append(np.arange(a, b, stride, dtype=np.int64))
        else:
            raise UsageError(f"--steps: {item!r} has too many ':' (use a:b or a:b:stride)")
    return np.concatenate(parts)


def fail(message: str, status: int) -> int:
    print(f"lrtempo: error: {message}", file=sys.stderr)
    return status


def handle(func, args: argparse.Namespace) -> int:
    """Run a subcommand, turning known errors into one line on stderr (exit 2 or 1)."""
    from ..plot import MissingDependency

    if getattr(args, "debug", False):
        return func(args)
    try:
        return func(args)
    except ConfigError as exc:
        return fail(exc.one_line(), 2)
    except UsageError as exc:
        return fail(str(exc), 2)
    except MissingDependency as exc:
        return fail(str(exc), 1)
    except BrokenPipeError:
        return 0
    except (OSError, ValueError, RuntimeError) as exc:
        return fail(str(exc), 1)
    except KeyboardInterrupt:
        return fail("interrupted", 130)
    except Exception as exc:  # a bug: say so in one line, keep the traceback for --debug
        return fail(f"internal error: {type(exc).__name__}: {exc} (rerun with --debug for the traceback, "
                    "and please report it)", 1)
