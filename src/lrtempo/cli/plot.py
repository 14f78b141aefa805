"""``lrtempo plot CONFIG``: a text plot in the terminal, and a PNG on request."""

from __future__ import annotations

import argparse

from ..plot import png_plot, text_plot
from ..schedules import position_name
from ._common import add_config_argument, bounded_int, last_step_of, schedule_from_args

HELP = "plot a schedule in the terminal (and to a PNG with --png)"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("plot", help=HELP, description=HELP + ".")
    add_config_argument(p)
    p.add_argument("--png", metavar="FILE", default=None,
                   help="also write a PNG with the phase boundaries marked (needs matplotlib)")
    p.add_argument("--width", type=bounded_int(8, 10_000), default=72,
                   help="text plot width in columns, 8 to 10000 (default 72)")
    p.add_argument("--height", type=bounded_int(3, 10_000), default=16,
                   help="text plot height in rows, 3 to 10000 (default 16)")
    p.add_argument("--log-y", action="store_true", help="logarithmic rate axis")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    schedule = schedule_from_args(args)
    last = last_step_of(schedule, args.until)
    print(text_plot(schedule, last_step=last, width=args.width, height=args.height, log_y=args.log_y,
                    title=f"{args.config}: lr over {position_name(schedule.unit, plural=True)} 0..{last}"))
    if args.png:
        path = png_plot(schedule, args.png, last_step=last, log_y=args.log_y, title=str(args.config))
        print(f"wrote {path}")
    return 0
