"""``lrtempo schema [--run]``: the JSON Schema of a schedule spec, or of a run config."""

from __future__ import annotations

import argparse
import json

HELP = "print the JSON Schema of a schedule spec (--run: of a run config)"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("schema", help=HELP, description=HELP + ".")
    p.add_argument("--run", action="store_true",
                   help="the schema of a run config (task, schedule, optimizer, monitor, ...), each key with its "
                        "description and default")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.run:
        from ..train._runconfig import run_config_schema

        schema = run_config_schema()
    else:
        from ..config import json_schema

        schema = json_schema()
    print(json.dumps(schema, indent=2))
    return 0
