"""What every subcommand shares: the parser class, the config argument, bounded numbers, step specs, errors."""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

import numpy as np

from .._rundir_schema import RUN_FILES
from ..config import ConfigError, load_schedule
from ..rundir import strict_json
from ..schedules import Schedule

__all__ = ["UsageError", "Parser", "add_config_argument", "config_path", "schedule_from_args", "step_ranges",
           "last_step_of", "bounded_int", "positive_int", "non_negative_int", "bounded_float", "escape_help",
           "fail", "handle", "json_text", "MAX_INT", "RUN_CONFIG"]

#: the largest integer any argument takes: steps are counted in int64 everywhere
MAX_INT = 2 ** 63 - 1

#: the file a run directory keeps its resolved run config in
RUN_CONFIG = RUN_FILES.config

#: the one line printed when a command needs PyTorch and it is not installed
TORCH_HINT = "this command needs PyTorch, which is not installed: pip install 'lrtempo[torch]' (or see pytorch.org)"


class UsageError(ValueError):
    """Bad command-line input: reported on one line, exit status 2."""


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors: ``lrtempo CMD: error: ...``, exit status 2 (``--help`` has the usage)."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


_NOT_A_FORMAT = re.compile(r"%(?!\(\w+\)[sdrf]|%)")


def escape_help(text: str | None) -> str | None:
    """Escape every ``%`` that is not ``%%`` or ``%(name)s``, so argparse's %-formatting cannot fail on it.

    >>> escape_help("the last 10% of the run, default %(default)s")
    'the last 10%% of the run, default %(default)s'
    """
    if text is None or text is argparse.SUPPRESS:
        return text
    return _NOT_A_FORMAT.sub("%%", text)


def add_config_argument(parser: argparse.ArgumentParser, *, until: bool = True) -> None:
    parser.add_argument("config", metavar="CONFIG", type=config_path,
                        help="a schedule spec or run config (.yaml, .yml, .json or .toml), or a run directory "
                             f"(its {RUN_CONFIG})")
    if until:
        parser.add_argument("--until", metavar="STEP", type=non_negative_int, default=None,
                            help="last step to show (default: the schedule's end, or a few periods of an "
                                 "endless schedule)")


def config_path(text: str) -> str:
    """The config file a CONFIG argument names: the file itself, or a run directory's ``config.yaml``."""
    path = Path(text)
    if not path.is_dir():
        return text
    inside = path / RUN_CONFIG
    if not inside.is_file():
        raise argparse.ArgumentTypeError(f"{text} is a directory without {RUN_CONFIG}, so not a run directory; "
                                         "give a config file (.yaml, .yml, .json or .toml) or a run directory")
    return str(inside)


def bounded_int(low: int, high: int = MAX_INT, what: str = "a whole number"):
    """An argparse ``type`` for integers in ``[low, high]``; the error names the range."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {what} (got {text[:40]!r})") from None
        if not low <= value <= high:
            shown = text if len(text) <= 40 else text[:20] + "..." + text[-10:]
            raise argparse.ArgumentTypeError(f"must be {what} from {low} to {high} (got {shown})")
        return value

    parse.__name__ = f"int_{low}_{high}"
    parse.bounds = (low, high)  # type: ignore[attr-defined]
    return parse


non_negative_int = bounded_int(0)
positive_int = bounded_int(1)
_non_negative_int = non_negative_int  # the older private name


def bounded_float(low: float, high: float = float("inf"), *, low_open: bool = False, high_open: bool = False):
    """An argparse ``type`` for finite numbers in a range (open or closed at either end)."""
    rule = f"{'>' if low_open else '>='} {low:g}"
    if high != float("inf"):
        rule += f" and {'<' if high_open else '<='} {high:g}"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a number (got {text[:40]!r})") from None
        ok = (value > low if low_open else value >= low) and (value < high if high_open else value <= high)
        if not (ok and np.isfinite(value)):
            raise argparse.ArgumentTypeError(f"must be a finite number {rule} (got {text[:40]})")
        return value

    parse.bounds = (low, high)  # type: ignore[attr-defined]
    return parse


def schedule_from_args(args: argparse.Namespace) -> Schedule:
    """The CONFIG argument's schedule; of a run directory, as the run applied it (its recorded reductions)."""
    from ._recorded import as_applied

    path = config_path_or_fail(args.config)
    return as_applied(load_schedule(path, task_data_facts), path)


def config_path_or_fail(text: str) -> str:
    """:func:`config_path` for a value that did not come through argparse: a bad one is a UsageError."""
    try:
        return config_path(str(text))
    except argparse.ArgumentTypeError as exc:
        raise UsageError(str(exc)) from None


def last_step_of(schedule: Schedule, until: int | None) -> int:
    return schedule.horizon if until is None else until


def step_ranges(spec: str) -> list[range]:
    """Parse ``0:100,1000,2000:2010`` (integers and half-open ``a:b`` or ``a:b:stride`` ranges) into ranges.

    Every number must lie in ``0 .. 2**63 - 1`` (steps are int64). Nothing is materialised, so a
    range of any length costs nothing until its values are computed.

    >>> step_ranges("0:3,10,20:26:2")
    [range(0, 3), range(10, 11), range(20, 26, 2)]
    """
    return [range(*_step_item(item.strip(), spec)) for item in spec.split(",")]


def _step_item(item: str, spec: str) -> tuple[int, int, int]:
    """One item of a step list as a half-open range ``(a, b, stride)``; a single step ``k`` is ``(k, k + 1, 1)``."""
    if not item:
        raise UsageError(f"--steps: empty item in {spec[:60]!r}; write e.g. 0:100,1000,2000:2010")
    fields = item.split(":")
    try:
        nums = [int(f) for f in fields]
    except ValueError:
        raise UsageError(f"--steps: {item[:40]!r} is not an integer or a range a:b[:stride]") from None
    if any(n < 0 for n in nums):
        raise UsageError(f"--steps: steps must be >= 0 (got {item[:60]!r})")
    if any(n > MAX_INT for n in nums):
        raise UsageError(f"--steps: steps must be at most 2**63 - 1 = {MAX_INT} (got {item[:60]})")
    if len(nums) == 1:
        return nums[0], nums[0] + 1, 1
    if len(nums) > 3:
        raise UsageError(f"--steps: {item[:60]!r} has too many ':' (use a:b or a:b:stride)")
    a, b = nums[0], nums[1]
    stride = nums[2] if len(nums) == 3 else 1
    if stride < 1:
        raise UsageError(f"--steps: the stride must be >= 1 (got {item[:60]!r})")
    if b <= a:
        raise UsageError(f"--steps: the range {item[:60]!r} is empty (a:b runs from a up to b - 1)")
    return a, b, stride


def json_text(data: Any) -> str:
    """``--json`` output: strict JSON (RFC 8259 has no NaN or Infinity), so a non-finite number is ``null``.

    >>> print(json_text({"loss_change": float("nan"), "lr": [0.1, float("inf")]}))
    {
      "loss_change": null,
      "lr": [
        0.1,
        null
      ]
    }
    """
    return strict_json(data, indent=2)


def fail(message: str, status: int) -> int:
    print(f"lrtempo: error: {message}", file=sys.stderr)
    return status


def _missing_torch(exc: BaseException) -> bool:
    name = getattr(exc, "name", None) or ""
    return isinstance(exc, ModuleNotFoundError) and (name == "torch" or name.startswith("torch."))


def handle(func, args: argparse.Namespace) -> int:
    """Run a subcommand, turning known errors into one line on stderr (exit 2 or 1)."""
    from .._util import MissingDependency

    if getattr(args, "debug", False):
        return func(args)
    try:
        return func(args)
    except ConfigError as exc:
        return fail(exc.one_line(), 2)
    except UsageError as exc:
        return fail(str(exc), 2)
    except MissingDependency as exc:  # an optional package: the line says how to install it
        return fail(str(exc), 2)
    except ModuleNotFoundError as exc:
        if _missing_torch(exc):
            return fail(TORCH_HINT, 2)
        return _internal(exc)
    except BrokenPipeError:
        return 0
    except (OSError, ValueError, RuntimeError) as exc:
        return fail(str(exc), 1)
    except KeyboardInterrupt:
        return fail("interrupted", 130)
    except Exception as exc:  # a bug: say so in one line, keep the traceback for --debug
        return _internal(exc)


def _internal(exc: BaseException) -> int:
    return fail(f"internal error: {type(exc).__name__}: {exc} (rerun with --debug for the traceback, "
                "and please report it)", 1)


def task_data_facts(task: str, options: dict):
    """A built-in task's data facts for a run's budget (``lrtempo.train.tasks.task_data_facts``), imported only
    when a budget needs them (it needs PyTorch)."""
    from ..train.tasks import task_data_facts as facts

    return facts(task, options)
