"""``lrtempo branch RUN_DIR --at STEP --out NEW_DIR``: continue a run from one of its checkpoints under a changed
schedule, in a new run directory."""

from __future__ import annotations

import argparse

from ._common import UsageError, bounded_float, non_negative_int, positive_int

HELP = ("start a new run directory from a run's checkpoint at STEP under a changed schedule (a cooldown, an "
        "extension, a rewarm or a rewind), recorded; the parent run is never modified")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("branch", help=HELP, description=HELP + ". NEW_DIR starts with the parent's checkpoint of "
                       "STEP and its log up to STEP; its config.yaml holds the parent's schedule up to STEP joined "
                       "with the new tail, so `lrtempo show NEW_DIR` draws the whole curve. Continue it with "
                       "`lrtempo train --resume NEW_DIR`.")
    p.add_argument("run_dir", metavar="RUN_DIR", help="the parent run directory (only read)")
    p.add_argument("--at", metavar="STEP", type=positive_int, required=True,
                   help="the branch point: a step with a checkpoint in RUN_DIR (the state after STEP updates)")
    p.add_argument("--out", metavar="NEW_DIR", required=True, help="the branch's run directory (must not exist)")
    kind = p.add_mutually_exclusive_group(required=True)
    kind.add_argument("--cooldown", metavar="N", type=positive_int,
                      help="decay from the rate at STEP to the floor over N updates (WSD: cool down anywhere)")
    kind.add_argument("--extend", metavar="TOTAL", type=positive_int,
                      help="stretch what remains of the parent's schedule to end at update TOTAL (continuous at "
                           "STEP)")
    kind.add_argument("--rewarm", metavar="N", type=positive_int,
                      help="warm up again from the rate at STEP to --peak over N updates, then follow the rest of "
                           "the parent's schedule rescaled to start at the peak and end at its floor")
    kind.add_argument("--rewind", metavar="STEP2", type=non_negative_int,
                      help="from STEP on, replay the parent's rate curve as it was from STEP2 (< STEP)")
    p.add_argument("--shape", choices=("linear", "cosine", "1-sqrt"), default=None,
                   help="with --cooldown: the decay's shape (default linear; 1-sqrt is Hägele et al. 2024's)")
    p.add_argument("--to", metavar="MIN_LR", type=bounded_float(0.0), default=None,
                   help="with --cooldown: the rate to decay to (default: the parent schedule's floor)")
    p.add_argument("--peak", metavar="LR", type=bounded_float(0.0, low_open=True), default=None,
                   help="with --rewarm (required): the rate to warm up to")
    p.set_defaults(func=run)


def tail_of(args: argparse.Namespace):
    """The branch's new tail from the arguments; a flag that does not go with the kind is a UsageError."""
    from ..train._branch import BranchTail

    if args.cooldown is None:
        for flag, value in (("--shape", args.shape), ("--to", args.to)):
            if value is not None:
                raise UsageError(f"{flag} goes with --cooldown")
    if args.rewarm is None and args.peak is not None:
        raise UsageError("--peak goes with --rewarm")
    if args.cooldown is not None:
        return BranchTail("cooldown", steps=args.cooldown, shape=args.shape or "linear", min_lr=args.to)
    if args.extend is not None:
        return BranchTail("extend", total_steps=args.extend)
    if args.rewarm is not None:
        if args.peak is None:
            raise UsageError("--rewarm needs --peak LR, the rate to warm up to")
        return BranchTail("rewarm", steps=args.rewarm, peak_lr=args.peak)
    return BranchTail("rewind", from_step=args.rewind)


def run(args: argparse.Namespace) -> int:
    from ..train._branch import make_branch

    made = make_branch(args.run_dir, args.at, args.out, tail_of(args))
    record = made.record
    before, after, jump = record["lr_parent"], record["lr_branch"], record["jump"]
    change = (f"the rate at step {made.at_step} stays {after!r}" if jump == 0.0 else
              f"the rate at step {made.at_step} jumps from {before!r} to {after!r} ({jump:+.6g})")
    article = "an" if record["kind"][0] in "aeiou" else "a"
    print(f"{made.run_dir}: {article} {record['kind']} branch of {args.run_dir} at step {made.at_step}, {made.steps} "
          f"updates in all; {change}")
    print(f"continue it with: lrtempo train --resume {made.run_dir}")
    return 0
