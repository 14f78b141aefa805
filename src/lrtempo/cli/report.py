"""``lrtempo report RUN_DIR|LOG.csv [MORE ...]``: one self-contained HTML page of a run, or of several overlaid."""

from __future__ import annotations

import argparse

from ._common import positive_int
from .analyze import FOREIGN, MAP_HELP, READING, TARGET_HELP, TRAP_WINDOW_HELP, mapping_of

HELP = ("write one self-contained HTML page of a run: interactive charts of lr, grad_l2_norm, loss, val_loss and "
        "the effective rate on one step axis, with phases, events, summary, config and hashes; of several runs, "
        "one page with them overlaid")

MULTI = ("Given several targets (run directories, log CSVs, a race's or a branch's run directories), the page "
         "overlays them: one line per run on each chart, a legend with each run's name, a smoothing control (an "
         "exponential moving average, bias-corrected), a step / wall-clock axis toggle (the log's seconds "
         "column) and a table of each run's rows, last step, final loss, lowest val_loss and schedule hash.")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help=HELP, description=HELP + ". The page fetches nothing: open it anywhere. "
                       + MULTI, epilog=READING + " " + FOREIGN)
    p.add_argument("target", metavar="RUN_DIR|LOG.csv", nargs="+",
                   help=TARGET_HELP + "; several for one page with the runs overlaid")
    p.add_argument("-o", "--output", metavar="FILE", default=None,
                   help="where to write the page (default: RUN_DIR/report.html, or LOG.report.html beside a CSV; "
                        "for several targets compare.html in the current folder, a name ending in .html)")
    p.add_argument("--trap-window", metavar="N", type=positive_int, default=None, help=TRAP_WINDOW_HELP)
    p.add_argument("--map", metavar="COLUMN=TAG,...", default=None, help=MAP_HELP)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if len(args.target) > 1:
        return _run_multi(args)
    from ..analysis import run_report

    report = run_report(args.target[0], args.output, trap_window=args.trap_window, mapping=mapping_of(args))
    for note in report.notes:
        print(f"note: {note}")
    print(f"wrote {report.path}: {report.rows} log rows, {len(report.charts)} charts ({', '.join(report.charts)}), "
          f"{report.events} events")
    return 0


def _run_multi(args: argparse.Namespace) -> int:
    from ..analysis import run_multi_report

    report = run_multi_report(args.target, args.output, trap_window=args.trap_window, mapping=mapping_of(args))
    for note in report.notes:
        print(f"note: {note}")
    print(f"wrote {report.path}: {len(report.runs)} runs ({', '.join(report.runs)}), {sum(report.rows)} log rows, "
          f"{len(report.charts)} charts ({', '.join(report.charts)})")
    return 0
