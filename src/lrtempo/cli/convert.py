"""``lrtempo convert CONFIG``: a compat spec as the equivalent native spec, with the difference measured."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ..config import ConfigError, build_schedule, format_config, load_schedule
from ..schedules.compat import Compat
from ..schedules.compat._convert import Conversion, NotConvertible, to_native
from . import diff
from ._common import UsageError, add_config_argument, non_negative_int, task_data_facts

HELP = "rewrite a compat spec (any library) as the equivalent native spec"
DESCRIPTION = (
    "Rewrite a type: compat spec as the native spec with the same curve (SequentialLR(LinearLR, "
    "CosineAnnealingLR) or a transformers cosine with warmup as warmup_cosine, ...), to standard output or "
    "-o FILE (format by suffix). A line on standard error says whether the form is exact or the nearest one, "
    "with the largest difference over steps 0..2 x the schedule's end, measured as lrtempo diff measures it "
    "(two float64 computations: an exact form may still differ in the last bits). No native form: exit 2.")


#: the most steps measured on either side of the library's end; a longer range is measured at a stride
MEASURED_STEPS = 10**7


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("convert", help=HELP, description=DESCRIPTION)
    add_config_argument(p, until=False)
    p.add_argument("-o", "--output", metavar="FILE", default=None,
                   help="write the native spec to FILE (.yaml, .yml, .json or .toml; replaced atomically) instead "
                        "of standard output")
    p.add_argument("--until", metavar="STEP", type=non_negative_int, default=None,
                   help="measure the difference over steps 0..STEP (default: twice the schedule's end)")
    p.set_defaults(func=run)


def native_of(schedule: Compat) -> Conversion:
    """The native spec with its exactness and note; an error (exit 2) where there is none."""
    try:
        conversion = to_native(schedule)
        build_schedule(conversion.spec)
    except NotConvertible as exc:
        raise UsageError(f"no native form: {exc}") from None
    except ConfigError as exc:
        raise UsageError(f"no native form for these arguments: {exc.one_line()}") from None
    return conversion


def check_ranges(compat: Compat, native, until: int | None) -> list[range]:
    """Steps 0 to the library's end, and past it (to ``until``, default twice the later end)."""
    end = compat.horizon
    last = until if until is not None else 2 * max(end, native.horizon)
    if compat.last_valid_step is not None:
        last = min(last, compat.last_valid_step)
    end = min(end, last)
    return [_thinned(r) for r in (range(end + 1), range(end + 1, last + 1)) if len(r)]


def _thinned(steps: range) -> range:
    """Every step of a range of at most MEASURED_STEPS, else every k-th step from its first."""
    if len(steps) <= MEASURED_STEPS:
        return steps
    stride = -(-(len(steps) - 1) // (MEASURED_STEPS - 1))
    return range(steps.start, steps.stop, stride)


def measured(schedule: Compat, native, steps: range) -> str:
    t = diff.compare(schedule, native, [steps]).total
    span = f"steps {steps[0]}..{steps[-1]}" + (f" every {steps.step}" if steps.step != 1 else "")
    if t.first is None:
        return f"{span} identical"
    return (f"{span} largest difference {t.max_abs[0]!r} (relative {t.max_rel[0]!r}) at step {t.max_abs[1]}, "
            f"first at step {t.first[0]}")


def run(args: argparse.Namespace) -> int:
    schedule = load_schedule(args.config, task_data_facts)
    if not isinstance(schedule, Compat):
        raise UsageError(f"{args.config}: not a compat spec (type: compat); it is already native")
    conversion = native_of(schedule)
    spec = conversion.spec
    native = build_schedule(spec)
    summary = "; ".join(measured(schedule, native, steps) for steps in check_ranges(schedule, native, args.until))
    form = "exact native form" if conversion.exact else f"nearest native form ({conversion.note})"
    if args.output is None:
        sys.stdout.write(format_config(spec, "yaml"))
    else:
        _write(args.output, spec)
    print(f"lrtempo convert: {schedule.library} {schedule.name} -> {spec['type']}: {form}; {summary}",
          file=sys.stderr)
    return 0


def _write(output: str, spec: dict, yaml_header: str = "") -> None:
    """Write ``spec`` to ``output`` atomically, format by suffix; ``yaml_header`` (comment lines) leads a YAML file."""
    from .._atomic import atomic_write_text

    out = Path(output)
    fmt = {".yaml": "yaml", ".yml": "yaml", ".json": "json", ".toml": "toml"}.get(out.suffix.lower())
    if fmt is None:
        raise UsageError(f"-o {out}: give a .yaml, .yml, .json or .toml file (got {out.suffix or 'no suffix'})")
    if Path(os.path.realpath(out)).is_dir():
        raise UsageError(f"-o {out}: is a directory; give a file to write the spec to")
    if not Path(os.path.realpath(out)).parent.is_dir():
        raise UsageError(f"-o {out}: the folder {out.parent} does not exist")
    atomic_write_text(out, (yaml_header if fmt == "yaml" else "") + format_config(spec, fmt))
