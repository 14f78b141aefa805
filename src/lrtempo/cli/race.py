"""``lrtempo race PRESET|CONFIG``: one task under several schedules, over seeds."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ._common import UsageError, bounded_int, config_path, config_path_or_fail, json_text

HELP = ("train one task under several schedules (same initial weights and data per seed) and compare final "
        "and best losses; presets: quadratic, flipnet, charlm, cooldown")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("race", help=HELP, description=HELP + ". A schedule whose end differs from the race's "
                       "length is raced as it is, with a warning; --fit stretches it to the race. Progress goes "
                       "to stderr.")
    p.add_argument("target", metavar="PRESET|CONFIG",
                   help="quadratic, flipnet, charlm, cooldown (one WSD stable run with a 1-sqrt cooldown branch "
                        "per budget, 100, 200 and 300 updates of charlm, against cosine per budget), or a run "
                        "config (or a run directory)")
    p.add_argument("--schedule", metavar="FILE", action="append", default=[], type=config_path,
                   help="another schedule to race (repeatable; a schedule or run config, or a run directory)")
    p.add_argument("--fit", action="store_true",
                   help="stretch every schedule's step durations so that it ends where the race ends")
    p.add_argument("--optimizer", choices=("schedulefree",), default=None,
                   help="also race schedule-free AdamW (needs pip install 'lrtempo[schedulefree]'): on charlm at "
                        "3e-3 and 6e-3 after the preset's 30-update warmup, on a run config at its schedule's "
                        "peak, warmed up as fast as that schedule reaches it; then constant. Not for quadratic "
                        "or flipnet, which run their own update rule")
    p.add_argument("--seeds", metavar="N", type=bounded_int(1, 10**6), default=None,
                   help="seeds per schedule (default: 1, or 3 for charlm)")
    p.add_argument("--jobs", metavar="N", type=bounded_int(1, 256), default=None,
                   help="parallel processes for training races, 1 to 256 (default: the cores, at most 4)")
    p.add_argument("--png", metavar="FILE", default="race.png",
                   help="the loss curves (default race.png); beside it NAME.report.html, one self-contained page "
                        "with every (schedule, seed) overlaid as in lrtempo report A B ...")
    p.add_argument("--html", metavar="FILE", default=None,
                   help="also write one self-contained page with the table and the curves")
    p.add_argument("--runs", metavar="DIR", default=None,
                   help="cooldown: keep the race's run directories (stable runs, branches, cosine runs) under DIR")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    p.set_defaults(func=run)


def _warn(message: str) -> None:
    print(f"lrtempo: warning: {message}", file=sys.stderr)


def _command(args: argparse.Namespace) -> str:
    """The command line that reproduces the race's numbers (what changes them: the target, schedules, seeds)."""
    parts = ["lrtempo", "race", args.target, *(f"--schedule {f}" for f in args.schedule)]
    parts += ["--fit"] if args.fit else []
    parts += [f"--seeds {args.seeds}"] if args.seeds is not None else []
    return " ".join(parts)


def run(args: argparse.Namespace) -> int:
    from .._progress import Progress
    from ..config import load_schedule
    from ..plot import MissingDependency, race_png
    from ..plot._race import race_report, race_report_path
    from ..train._race import (
        COOLDOWN,
        PRESETS,
        Contender,
        contender_name,
        default_jobs,
        race_config,
        race_cooldown,
        race_preset,
    )

    report_path = race_report_path(args.png)
    if args.html is not None and Path(args.html).resolve() == report_path.resolve():
        raise UsageError(f"--html {args.html}: the race's multi-run page goes there; give another name")
    jobs = args.jobs or default_jobs()
    with Progress("race", 1, enabled=not args.quiet) as progress:
        def update(done: int, total: int, note: str) -> None:
            progress.update(done, note, total=total)

        common = dict(jobs=jobs, progress=update, fit=args.fit, warn=_warn, optimizer=args.optimizer)
        if args.runs is not None and args.target != COOLDOWN:
            raise UsageError("--runs goes with the cooldown race")
        if args.optimizer is not None and (args.target == COOLDOWN or (args.target in PRESETS
                                                                      and PRESETS[args.target].run is not None)):
            raise UsageError(f"--optimizer {args.optimizer}: the {args.target} preset runs its own update rule; "
                             "race it on charlm or on a run config")
        if args.target == COOLDOWN:
            if args.schedule or args.fit:
                raise UsageError("the cooldown race races its own runs: it takes no --schedule or --fit")
            if args.runs is not None and Path(args.runs).exists():
                raise UsageError(f"--runs: {args.runs} exists: give a new folder for the race's run directories")
            result, digits = race_cooldown(seeds=args.seeds, jobs=jobs, folder=args.runs, progress=update), 4
        elif args.target in PRESETS:
            extra = [Contender(contender_name(f), load_schedule(f)) for f in args.schedule]
            result, digits = race_preset(args.target, seeds=args.seeds, extra=extra, **common)
        elif Path(args.target).is_dir() or Path(args.target).suffix.lower() in (".yaml", ".yml", ".json", ".toml"):
            result = race_config(config_path_or_fail(args.target), schedules=args.schedule, seeds=args.seeds or 1,
                                 **common)
            digits = 4
        else:
            raise UsageError(f"{args.target!r} is neither a preset ({', '.join([*PRESETS, COOLDOWN])}) nor a config "
                             "file (.yaml, .yml, .json, .toml) nor a run directory")
    png = None
    try:
        png = race_png(result.curves, args.png, title=result.title, x_label=result.x_label)
    except MissingDependency as exc:
        _warn(f"no PNG: {exc}")
    if args.html is not None:
        from ..plot._race import race_page

        race_page(result, args.html, png=png, command=_command(args))
    race_report(result, report_path)
    if args.json:
        out = result.to_json()
        out["png"] = str(png) if png else None
        out["report"] = str(report_path)
        print(json_text(out))
    else:
        print(result.table(digits))
        if png:
            print(f"wrote {png}")
        print(f"wrote {report_path}")
        if args.html is not None:
            print(f"wrote {args.html}")
    return 0

