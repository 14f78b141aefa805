"""``lrtempo lint CONFIG``: the schedule bugs known to cost runs."""

from __future__ import annotations

import argparse

from ._common import config_path, json_text, task_data_facts

HELP = "check a schedule or run config for known schedule bugs (exit 0: clean, 1: warnings, 2: errors)"


def register(sub: argparse._SubParsersAction) -> None:
    from ..config._optimizer import OPTIMIZERS

    p = sub.add_parser("lint", help=HELP, description=HELP + ".")
    p.add_argument("config", metavar="CONFIG", type=config_path,
                   help="a schedule spec or run config, or a run directory")
    p.add_argument("--optimizer", choices=OPTIMIZERS, default=None,
                   help="the optimizer the rules assume (LR002's warmup for Adam's second moment, LR012's usual "
                        "peak), as a run config's optimizer.name: adamw, sgd or schedulefree (schedule-free AdamW: "
                        "an Adam-family optimizer); default: the run config's, else adamw")
    p.add_argument("--json", action="store_true", help="print the findings as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..analysis import exit_status, lint_config

    findings = lint_config(args.config, optimizer=args.optimizer, task_facts=task_data_facts)
    if args.json:
        print(json_text([f.to_json() for f in findings]))
    else:
        for f in findings:
            print(f.line())
        if not findings:
            print(f"{args.config}: no findings")
    return exit_status(findings)
