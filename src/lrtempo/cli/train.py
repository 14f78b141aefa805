"""``lrtempo train [CONFIG]``: train a built-in task under a schedule into a run directory."""

from __future__ import annotations

import argparse

from ._common import UsageError, config_path, positive_int

HELP = "train a built-in task under a schedule (default: charlm under warmup+cosine, 300 updates)"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help=HELP, description=HELP + ". Writes runs/<name>/ with the config, log.csv, "
                       "the schedule plots, checkpoints and summary.json; works under torchrun (DDP). "
                       "Ctrl-C or SIGTERM stop it at an update boundary with a checkpoint; after any stop, "
                       "--resume RUN_DIR continues it exactly.")
    p.add_argument("config", metavar="CONFIG", nargs="?", default=None, type=config_path,
                   help="a run config (.yaml, .json or .toml) with task and schedule keys, or a run directory "
                        "(its config.yaml: a new run under the same config)")
    p.add_argument("--out", metavar="DIR", default="runs", help="parent folder of the run directory (default runs)")
    p.add_argument("--steps", metavar="N", type=positive_int, default=None,
                   help="optimizer updates to run (default: the config's steps, else the schedule's end); "
                        "with --resume, a larger N extends the run")
    p.add_argument("--resume", metavar="RUN_DIR", default=None,
                   help="continue the run in RUN_DIR from its latest checkpoint (from step 0 if it was stopped "
                        "before its first one); the one command after any interruption")
    p.add_argument("--allow-schedule-change", action="store_true",
                   help="with --resume: continue under a different schedule, from a CONFIG or an edited "
                        "config.yaml (recorded in run.json)")
    p.add_argument("--quiet", action="store_true", help="no progress line")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..train import DEFAULT_RUN, TrainingDiverged, load_run_config, parse_run_config, train

    if args.allow_schedule_change and not args.resume:
        raise UsageError("--allow-schedule-change goes with --resume RUN_DIR")
    if args.config is not None:
        config = load_run_config(args.config)  # all of the config's problems first, then the linter's
    elif args.resume is None:
        config = parse_run_config(DEFAULT_RUN)
    else:
        config = None
    lint = args.resume is None or args.config is not None
    try:  # the linter speaks once the run is opened, so a refusal is the one line it prints
        summary = train(config, args.out, resume=args.resume, allow_schedule_change=args.allow_schedule_change,
                        steps=args.steps, progress=not args.quiet,
                        on_start=(lambda: _lint_first(args.config)) if lint else None)
    except TrainingDiverged as exc:
        raise RuntimeError(f"{exc}; the last good state is checkpointed, see the run's summary.json") from None
    except KeyboardInterrupt:  # a second signal: stopped at once, the latest periodic checkpoint stands
        import sys
        from pathlib import Path

        run_dir = args.resume if args.resume is not None else Path(args.out) / config.name
        print(f"lrtempo: {run_dir}: stopped at once by a second signal; continue from its latest checkpoint "
              f"with `lrtempo train --resume {run_dir}`", file=sys.stderr)
        return 130
    return _report(summary)


def _report(summary) -> int:
    """One line on how the run ended; the exit status (128 + the signal's number when one stopped it)."""
    import signal
    import sys

    run_dir = summary.run_dir
    if summary.status == "interrupted":
        print(f"lrtempo: {run_dir}: stopped by {summary.signal} after {summary.steps} updates and checkpointed; "
              f"continue with `lrtempo train --resume {run_dir}`", file=sys.stderr)
        return 128 + signal.Signals[summary.signal].value
    if summary.updates_run == 0:
        print(f"{run_dir}: already finished ({summary.steps} updates); nothing to do (extend it with "
              f"`lrtempo train --resume {run_dir} --steps N`, N > {summary.steps})")
        return 0
    loss = "" if summary.final_loss is None else f", final loss {summary.final_loss:.4f}"
    val = "" if summary.final_val_loss is None else f", validation loss {summary.final_val_loss:.4f}"
    print(f"{run_dir}: {summary.steps} updates{loss}{val}, {summary.wall_seconds:.1f} s")
    return 0


def _lint_first(path: str | None) -> None:
    """Run the linter on the config and print its warnings and errors (training goes on)."""
    import sys

    from ..analysis import lint_config, lint_mapping
    from ..train import DEFAULT_RUN
    from ._common import task_data_facts

    findings = lint_config(path, task_facts=task_data_facts) if path is not None else lint_mapping(DEFAULT_RUN)
    for f in findings:
        if f.severity != "info":
            print(f"lint: {f.line()}", file=sys.stderr)
