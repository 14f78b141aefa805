"""The ``lrtempo`` command line: one module per subcommand, each a thin shell over the library.

Known errors become one line on stderr: exit status 2 for bad input
(arguments, config), 1 for a failure while running; ``--debug`` shows the
traceback instead.
"""

from __future__ import annotations

import argparse
import sys

from .. import __version__
from . import analyze, budget, demo, find_lr, lint, plot, race, report, schema, show, train, values
from ._common import handle

__all__ = ["main", "build_parser"]

_COMMANDS = (train, demo, show, values, plot, lint, find_lr, race, budget, analyze, report, schema)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lrtempo",
        description="Exact, reproducible learning-rate schedules: train under them, inspect, tabulate and plot them.",
    )
    parser.add_argument("--version", action="version", version=f"lrtempo {__version__}")
    parser.add_argument("--debug", action="store_true", help="show a traceback on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in _COMMANDS:
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    return handle(args.func, args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
