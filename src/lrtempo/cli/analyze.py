"""``lrtempo analyze RUN_DIR|LOG.csv``: phases, events and trap status of a run, and a PNG."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..monitor import MonitorSettings
from ._common import json_text, positive_int

#: how analyze and report read a log, for their --help (the full rules: docs/diagnostics.md)
READING = ("The log is read exactly or refused with its line number (exit 2): steps are whole numbers >= 0 "
           "and increase; a step that goes back to one already logged is a resumed run, whose rows replace "
           "the earlier ones from that step on (said in a note); each column is named once; lr is finite "
           "and >= 0.")
#: the --trap-window help of analyze and report, its default the monitor's
TRAP_WINDOW_HELP = (f"updates in the trap detector's window (default: the run's setting, else "
                    f"{MonitorSettings().trap_window})")
HELP = "summarise a run or any CSV with step,lr,grad_l2_norm,loss: phases, events, trap status, a PNG"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("analyze", help=HELP, description=HELP + ".", epilog=READING)
    p.add_argument("target", metavar="RUN_DIR|LOG.csv", help="an lrtempo run directory or a log CSV")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.add_argument("--png", metavar="FILE", default=None,
                   help="write the plot here (default for a run directory: RUN_DIR/analysis.png)")
    p.add_argument("--trap-window", metavar="N", type=positive_int, default=None, help=TRAP_WINDOW_HELP)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from .._util import MissingDependency
    from ..analysis import analysis_png, analyze_log
    from ..rundir import RunDir

    analysis = analyze_log(args.target, trap_window=args.trap_window)
    png = args.png or (str(RunDir(args.target).analysis_png) if Path(args.target).is_dir() else None)
    note = None
    if png:
        try:
            analysis_png(analysis, png)
        except MissingDependency as exc:
            if args.png:
                raise
            note = str(exc)
            png = None
    if args.json:
        out = analysis.to_json()
        out["png"] = png
        print(json_text(out))
    else:
        print(analysis.text())
        if png:
            print(f"\nwrote {png}")
        elif note:
            print(f"\n(no PNG: {note})")
    return 0
