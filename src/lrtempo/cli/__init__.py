"""The ``lrtempo`` command line: one module per subcommand, each a thin shell over the library.

Known errors become one line on stderr: exit status 2 for bad input
(arguments, config, a missing optional package), 1 for a failure while
running; ``--debug`` (before or after the subcommand) shows the traceback
instead. Bare ``lrtempo`` prints the help on stderr and exits 2, like any
other incomplete command line.
"""

from __future__ import annotations

import argparse
import sys

from .. import __version__
from . import (
    analyze,
    branch,
    budget,
    convert,
    demo,
    diff,
    find_lr,
    lint,
    plot,
    race,
    recipe,
    report,
    scale,
    schema,
    show,
    train,
    values,
)
from ._common import Parser, escape_help, handle

__all__ = ["main", "build_parser", "subcommand_parsers"]

_COMMANDS = (train, branch, demo, show, values, diff, convert, recipe, scale, plot, lint, find_lr, race, budget,
             analyze,
             report, schema)
_DEBUG_HELP = "show a traceback on errors"


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="lrtempo",
        description="Exact, reproducible learning-rate schedules: train under them, inspect, tabulate and plot them.",
    )
    parser.add_argument("--version", action="version", version=f"lrtempo {__version__}")
    parser.add_argument("--debug", action="store_true", help=_DEBUG_HELP)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for module in _COMMANDS:
        module.register(sub)
    for p in sub.choices.values():
        # SUPPRESS: a --debug before the subcommand is not reset by the subcommand's default
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=_DEBUG_HELP)
    _escape_all_help(parser)
    return parser


def subcommand_parsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """Every subcommand's parser by name."""
    out: dict[str, argparse.ArgumentParser] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            out.update(action.choices)
    return out


def _escape_all_help(parser: argparse.ArgumentParser) -> None:
    """Make every help string %-safe, so a ``%`` in any text can never break ``--help``."""
    for action in parser._actions:
        action.help = escape_help(action.help)
        if isinstance(action, argparse._SubParsersAction):
            for choice in action._choices_actions:
                choice.help = escape_help(choice.help)
    for p in subcommand_parsers(parser).values():
        _escape_all_help(p)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    return handle(args.func, args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
