"""``lrtempo scale CONFIG --batch-size B --to-batch-size B2 --rule linear|sqrt``: a schedule for another batch."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ._common import UsageError, add_config_argument, positive_int, task_data_facts

HELP = "rewrite a schedule (or a run config's) for another batch size: rates by a scaling rule, steps by the data"
DESCRIPTION = (
    "Rewrite a schedule spec, or a run config's schedule (the whole run config comes back), for the global "
    "batch B2 instead of B, with k = B2 / B: every rate (peak, floor, warmup start, at any depth) times k "
    "(--rule linear, Goyal et al. 2017: the rule for SGD) or sqrt(k) (--rule sqrt, Malladi et al. 2022: the "
    "rule usually used with Adam and AdamW); every duration in steps divided by k, so the schedule covers the "
    "same samples: rounded half up to a whole step, at least 1 (a join's pieces at their cumulative "
    "boundaries, so they still add up); a run config's steps too. --warmup keep-steps keeps the warmups' steps "
    "instead. A schedule with unit: samples or tokens keeps its durations (they count data already) and "
    "only its rates change. The rewritten config goes to standard output as YAML, or to -o FILE; the notes "
    "(the factor, each field old -> new, a warning where rounding changed the data a duration covers) to "
    "standard error. A field given as auto stays auto: it takes the run's budget (total), which follows the "
    "batch (a total in steps is divided by k); the notes say what it takes at each batch. A compat spec is "
    "refused: convert it first (lrtempo convert).")


def register(sub: argparse._SubParsersAction) -> None:
    from ..config._scale import RULES, WARMUP_MODES

    p = sub.add_parser("scale", help=HELP, description=DESCRIPTION)
    add_config_argument(p, until=False)
    p.add_argument("--batch-size", metavar="B", type=positive_int, required=True,
                   help="the global batch the schedule was made for (samples per optimizer update)")
    p.add_argument("--to-batch-size", metavar="B2", type=positive_int, required=True,
                   help="the global batch to rewrite it for")
    p.add_argument("--rule", choices=RULES, required=True,
                   help="linear: rates times B2/B (SGD); sqrt: rates times sqrt(B2/B) (Adam, AdamW)")
    p.add_argument("--warmup", choices=WARMUP_MODES, default=WARMUP_MODES[0],
                   help="keep-samples (default): warmups cover the same samples, their steps divided like every "
                        "duration; keep-steps: warmups keep their steps")
    p.add_argument("-o", "--output", metavar="FILE", default=None,
                   help="write the rewritten config to FILE (.yaml, .yml, .json or .toml; replaced atomically; "
                        "never the input file) instead of standard output")
    p.set_defaults(func=run)


def _same_file(a: str, b: str) -> bool:
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def run(args: argparse.Namespace) -> int:
    from ..config import format_config, read_config_file, scale_spec
    from . import convert

    if args.output is not None and _same_file(args.output, args.config):
        raise UsageError(f"-o {args.output}: is the input {args.config}; write the rewritten config to another "
                         "file (the input is never replaced)")
    data = read_config_file(args.config)
    scaled = scale_spec(data, args.batch_size, args.to_batch_size, rule=args.rule, warmup=args.warmup,
                        source=str(Path(args.config)), task_facts=task_data_facts)
    if args.output is None:
        sys.stdout.write(format_config(scaled.config, "yaml"))
    else:
        convert._write(args.output, scaled.config)
    for line in scaled.notes():
        print(f"lrtempo scale: {line}", file=sys.stderr)
    if args.output is not None:
        print(f"lrtempo scale: wrote {args.output}", file=sys.stderr)
    return 0
