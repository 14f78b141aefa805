"""``lrtempo report RUN_DIR|LOG.csv``: one self-contained HTML page of a run."""

from __future__ import annotations

import argparse

from ._common import positive_int
from .analyze import FOREIGN, MAP_HELP, READING, TARGET_HELP, TRAP_WINDOW_HELP, mapping_of

HELP = ("write one self-contained HTML page of a run: interactive charts of lr, grad_l2_norm, loss, val_loss and "
        "the effective rate on one step axis, with phases, events, summary, config and hashes")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help=HELP, description=HELP + ". The page fetches nothing: open it anywhere.",
                       epilog=READING + " " + FOREIGN)
    p.add_argument("target", metavar="RUN_DIR|LOG.csv", help=TARGET_HELP)
    p.add_argument("-o", "--output", metavar="FILE", default=None,
                   help="where to write the page (default: RUN_DIR/report.html, or LOG.report.html beside a CSV)")
    p.add_argument("--trap-window", metavar="N", type=positive_int, default=None, help=TRAP_WINDOW_HELP)
    p.add_argument("--map", metavar="COLUMN=TAG,...", default=None, help=MAP_HELP)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..analysis import run_report

    report = run_report(args.target, args.output, trap_window=args.trap_window, mapping=mapping_of(args))
    for note in report.notes:
        print(f"note: {note}")
    print(f"wrote {report.path}: {report.rows} log rows, {len(report.charts)} charts ({', '.join(report.charts)}), "
          f"{report.events} events")
    return 0
