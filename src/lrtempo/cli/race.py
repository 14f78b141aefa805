"""``lrtempo race PRESET|CONFIG``: one task under several schedules, over seeds."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ._common import UsageError, positive_int

HELP = ("train one task under several schedules (same initial weights and data per seed) and compare final "
        "and best losses; presets: quadratic, flipnet, charlm")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("race", help=HELP, description=HELP + ".")
    p.add_argument("target", metavar="PRESET|CONFIG", help="quadratic, flipnet, charlm, or a run config")
    p.add_argument("--schedule", metavar="FILE", action="append", default=[],
                   help="another schedule to race (repeatable)")
    p.add_argument("--seeds", metavar="N", type=positive_int, default=None,
                   help="seeds per schedule (default: 1, or 3 for charlm)")
    p.add_argument("--jobs", metavar="N", type=positive_int, default=None,
                   help="parallel processes for training races (default: the cores, at most 4)")
    p.add_argument("--png", metavar="FILE", default="race.png", help="the loss curves (default race.png)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..config import load_schedule
    from ..plot import MissingDependency
    from ..train._race import PRESETS, Contender, default_jobs, race_config, race_png, race_preset

    jobs = args.jobs or default_jobs()
    report = (lambda line: print(line, file=sys.stderr)) if not args.json else (lambda line: None)
    if args.target in PRESETS:
        extra = [Contender(Path(f).stem, load_schedule(f)) for f in args.schedule]
        result, digits = race_preset(args.target, seeds=args.seeds, extra=extra, jobs=jobs, report=report)
    elif Path(args.target).suffix.lower() in (".yaml", ".yml", ".json", ".toml"):
        result = race_config(args.target, schedules=args.schedule, seeds=args.seeds or 1, jobs=jobs, report=report)
        digits = 4
    else:
        raise UsageError(f"{args.target!r} is neither a preset ({', '.join(PRESETS)}) nor a config file")
    png = None
    try:
        png = race_png(result, args.png)
    except MissingDependency as exc:
        report(f"(no PNG: {exc})")
    if args.json:
        out = result.to_json()
        out["png"] = str(png) if png else None
        print(json.dumps(out, indent=2))
    else:
        print(result.table(digits))
        if png:
            print(f"wrote {png}")
    return 0
