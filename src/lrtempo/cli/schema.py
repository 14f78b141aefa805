"""``lrtempo schema``: the JSON Schema of a schedule spec."""

from __future__ import annotations

import argparse
import json

from ..config import json_schema

HELP = "print the JSON Schema of a schedule spec"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("schema", help=HELP, description=HELP + ".")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    print(json.dumps(json_schema(), indent=2))
    return 0
