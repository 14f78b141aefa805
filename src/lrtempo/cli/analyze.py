"""``lrtempo analyze RUN_DIR|LOG.csv``: phases, events and trap status of a run, and a PNG."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..monitor import MonitorSettings
from ._common import UsageError, json_text, positive_int

#: how analyze and report read a log, for their --help (the full rules: docs/diagnostics.md)
READING = ("The log is read exactly or refused with its line number (exit 2): steps are whole numbers >= 0 "
           "and increase; a step that goes back to one already logged is a resumed run, whose rows replace "
           "the earlier ones from that step on (said in a note); each column is named once; lr is finite "
           "and >= 0.")
#: the --trap-window help of analyze and report, its default the monitor's
TRAP_WINDOW_HELP = (f"updates in the trap detector's window (default: the run's setting, else "
                    f"{MonitorSettings().trap_window})")
HELP = "summarise a run or any CSV with step,lr,grad_l2_norm,loss: phases, events, trap status, a PNG"
#: the TARGET help of analyze and report
TARGET_HELP = ("an lrtempo run directory or a log CSV; or another trainer's record: a Hugging Face Trainer output "
               "or checkpoint folder (trainer_state.json), a Lightning CSVLogger folder (metrics.csv; of a "
               "lightning_logs folder the newest version_N), a TensorBoard folder or event file")
#: how analyze and report read other trainers' records, for their --help
FOREIGN = ("Steps follow lrtempo's convention, row step = the updates applied before it: a Hugging Face entry "
           "at global step s is update s - 1 (the Trainer logs after the update, with the rate that update used); "
           "Lightning's step and other TensorBoard files are read as written. See 'Logs from other trainers' "
           "in docs/diagnostics.md.")
#: the --map help of analyze and report
MAP_HELP = ("name the record's columns or tags: COLUMN=TAG,... with COLUMN one of step (CSV only), lr, "
            "grad_l2_norm, loss, val_loss (default: lrtempo's names, then Hugging Face's learning_rate, "
            "grad_norm, loss, eval_loss and train/..., eval/... tags, then Lightning's lr-<optimizer>, "
            "train_loss, val_loss)")


def mapping_of(args: argparse.Namespace) -> dict[str, str] | None:
    """The ``--map`` argument (``lr=TAG,loss=TAG,...``) as a dict; bad text is a one-line usage error."""
    from ..analysis._foreign import parse_mapping

    if args.map is None:
        return None
    try:
        return parse_mapping(args.map)
    except ValueError as exc:
        raise UsageError(f"--map: {exc}") from None


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("analyze", help=HELP, description=HELP + ".", epilog=READING + " " + FOREIGN)
    p.add_argument("target", metavar="RUN_DIR|LOG.csv", help=TARGET_HELP)
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.add_argument("--png", metavar="FILE", default=None,
                   help="write the plot here (default for a folder: FOLDER/analysis.png)")
    p.add_argument("--trap-window", metavar="N", type=positive_int, default=None, help=TRAP_WINDOW_HELP)
    p.add_argument("--map", metavar="COLUMN=TAG,...", default=None, help=MAP_HELP)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from .._util import MissingDependency
    from ..analysis import analysis_png, analyze_log
    from ..rundir import RunDir
    from ._recorded import note_schedule_changes

    analysis = analyze_log(args.target, trap_window=args.trap_window, mapping=mapping_of(args))
    if Path(args.target).is_dir():
        note_schedule_changes(RunDir(args.target).config, "the phases shown are those")
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
