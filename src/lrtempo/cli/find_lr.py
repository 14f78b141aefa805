"""``lrtempo find-lr [CONFIG]``: the LR range test on a built-in task."""

from __future__ import annotations

import argparse
import json

from ._common import UsageError, positive_int

HELP = "LR range test: sweep the rate up exponentially, suggest a peak (steepest and valley), plot it"

_PEAK_FIELDS = ("peak_lr", "max_lr", "lr", "base_lr")


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number (got {text!r})") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0 (got {text!r})")
    return value


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("find-lr", help=HELP, description=HELP + ". The model and optimizer of the run config "
                       "(default: charlm) are used and restored.")
    p.add_argument("config", metavar="CONFIG", nargs="?", default=None, help="a run config (default: charlm)")
    p.add_argument("--start-lr", type=_positive_float, default=1e-6, help="first rate (default 1e-6)")
    p.add_argument("--end-lr", type=_positive_float, default=1.0, help="last rate (default 1)")
    p.add_argument("--updates", type=positive_int, default=100, help="updates in the sweep (default 100)")
    p.add_argument("--smoothing", type=float, default=0.9, help="moving-average factor of the loss (default 0.9)")
    p.add_argument("--stop-factor", type=float, default=4.0,
                   help="stop when the smoothed loss exceeds this times its best (default 4)")
    p.add_argument("--png", metavar="FILE", default="lr_range_test.png", help="the plot (default lr_range_test.png)")
    p.add_argument("--write", metavar="SCHEDULE_CONFIG", default=None,
                   help="set the suggested peak in this schedule config (peak_lr, max_lr, lr or base_lr)")
    p.add_argument("--suggestion", choices=("valley", "steepest"), default="valley",
                   help="which suggestion --write uses (default valley)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..analysis._range_test import lr_range_test, range_test_png
    from ..plot import MissingDependency
    from ..train import DEFAULT_RUN, build_optimizer, load_run_config, parse_run_config
    from ..train.tasks import TASKS

    if not args.start_lr < args.end_lr:
        raise UsageError(f"--start-lr ({args.start_lr}) must be below --end-lr ({args.end_lr})")
    if args.updates < 2:
        raise UsageError("--updates must be >= 2")
    config = load_run_config(args.config) if args.config else parse_run_config(DEFAULT_RUN)
    import torch

    torch.manual_seed(config.seed)
    task = TASKS[config.task](config.task_options, config.seed)
    opt = config.optimizer
    optimizer = build_optimizer(task.model, name=opt.name, lr=args.start_lr, betas=opt.betas, eps=opt.eps,
                                weight_decay=opt.weight_decay, momentum=opt.momentum)

    def batches():
        while True:
            yield task.micro_batches(1)[0]

    result = lr_range_test(task.model, optimizer, task.loss, batches(), start_lr=args.start_lr, end_lr=args.end_lr,
                           updates=args.updates, smoothing=args.smoothing, stop_factor=args.stop_factor)
    png = None
    try:
        png = range_test_png(result, args.png, title=f"LR range test: {config.task}")
    except MissingDependency as exc:
        result.notes.append(str(exc))
    written = None
    if args.write:
        chosen = result.valley if args.suggestion == "valley" else result.steepest
        if chosen is None:
            raise RuntimeError(f"no {args.suggestion} suggestion to write: {'; '.join(result.notes)}")
        written = write_peak(args.write, chosen)
    if args.json:
        out = result.to_json()
        out.update(png=str(png) if png else None, written=written)
        print(json.dumps(out, indent=2))
    else:
        stop = "stopped when the loss blew up" if result.stopped_early else "ran to the end rate"
        print(f"{len(result.lrs)} updates from {args.start_lr:g} to {result.lrs[-1]:.3g} ({stop})")
        print(f"suggested peak, steepest descent: {_fmt(result.steepest)}")
        print(f"suggested peak, valley:           {_fmt(result.valley)}")
        for note in result.notes:
            print(f"note: {note}")
        if png:
            print(f"wrote {png}")
        if written:
            print(f"set {written}")
    return 0


def _fmt(value: float | None) -> str:
    return "none" if value is None else f"{value:.3e}"


def write_peak(path: str, peak: float) -> str:
    """Set ``peak`` in a schedule config (or a run config's schedule); returns ``field = value``."""
    from .._atomic import atomic_write_text
    from ..config import ConfigError, Problem, build_schedule, read_config_file, schedule_spec_of
    from ..config._files import format_config

    data = read_config_file(path)
    spec, root = schedule_spec_of(data, path)
    field = next((f for f in _PEAK_FIELDS if isinstance(spec, dict) and f in spec), None)
    if field is None:
        raise ConfigError([Problem(root or "", f"no peak field to set (looked for {', '.join(_PEAK_FIELDS)})")],
                          source=path)
    value = float(f"{peak:.3g}")
    spec[field] = value
    build_schedule(spec, root, source=path)  # refuse to write a config that no longer builds
    from pathlib import Path

    suffix = Path(path).suffix.lower()
    fmt = {".yml": "yaml", ".yaml": "yaml", ".json": "json", ".toml": "toml"}[suffix]
    atomic_write_text(Path(path), format_config(data, fmt))
    return f"{root + '.' if root else ''}{field} = {value!r} in {path}"
