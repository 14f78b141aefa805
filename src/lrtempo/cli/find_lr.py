"""``lrtempo find-lr [CONFIG]``: the LR range test on a built-in task."""

from __future__ import annotations

import argparse
from pathlib import Path

from ._common import UsageError, bounded_float, bounded_int, config_path, json_text

HELP = "LR range test: sweep the rate up exponentially, suggest a peak (steepest and valley), plot it"

_PEAK_FIELDS = ("peak_lr", "max_lr", "lr", "base_lr")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("find-lr", help=HELP, description=HELP + ". The model and optimizer of the run config "
                       "(default: charlm) are used and restored. Progress goes to stderr.")
    p.add_argument("config", metavar="CONFIG", nargs="?", default=None, type=config_path,
                   help="a run config or a run directory (default: charlm)")
    p.add_argument("--start-lr", type=bounded_float(0.0, low_open=True), default=1e-6,
                   help="first rate (default 1e-6)")
    p.add_argument("--end-lr", type=bounded_float(0.0, low_open=True), default=1.0, help="last rate (default 1)")
    p.add_argument("--updates", type=bounded_int(2, 10**9), default=100, help="updates in the sweep (default 100)")
    p.add_argument("--smoothing", type=bounded_float(0.0, 1.0, high_open=True), default=0.9,
                   help="moving-average factor of the loss, in [0, 1) (default 0.9)")
    p.add_argument("--stop-factor", type=bounded_float(1.0, low_open=True), default=4.0,
                   help="stop when the smoothed loss exceeds this times its best, > 1 (default 4)")
    p.add_argument("--png", metavar="FILE", default="lr_range_test.png", help="the plot (default lr_range_test.png)")
    p.add_argument("--write", metavar="SCHEDULE_CONFIG", default=None,
                   help="set the suggested peak in this schedule config (peak_lr, max_lr, lr or base_lr), "
                        "changing only that number in the file")
    p.add_argument("--suggestion", choices=("valley", "steepest"), default="valley",
                   help="which suggestion --write uses (default valley)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from .._util import MissingDependency
    from ..analysis._range_test import range_test_png
    from ..train import DEFAULT_RUN, load_run_config, parse_run_config

    if not args.start_lr < args.end_lr:
        raise UsageError(f"--start-lr ({args.start_lr}) must be below --end-lr ({args.end_lr})")
    if args.write:
        peak_field(args.write)  # refuse a target it could not write before the sweep, not after it
    config = load_run_config(args.config) if args.config else parse_run_config(DEFAULT_RUN)
    result = _sweep(config, args)
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
        print(json_text(out))
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


def _sweep(config, args: argparse.Namespace):
    """The range test on the run config's task, model and optimizer, with progress on stderr."""
    import torch

    from .._progress import Progress
    from ..analysis._range_test import lr_range_test
    from ..train import build_optimizer
    from ..train.tasks import TASKS

    torch.manual_seed(config.seed)
    task = TASKS[config.task](config.task_options, config.seed)
    opt = config.optimizer
    optimizer = build_optimizer(task.model, name=opt.name, lr=args.start_lr, betas=opt.betas, eps=opt.eps,
                                weight_decay=opt.weight_decay, momentum=opt.momentum)

    def batches():
        while True:
            yield task.micro_batches(1)[0]

    with Progress("find-lr", args.updates, enabled=not args.quiet) as progress:
        return lr_range_test(task.model, optimizer, task.loss, batches(), start_lr=args.start_lr,
                             end_lr=args.end_lr, updates=args.updates, smoothing=args.smoothing,
                             stop_factor=args.stop_factor, on_update=progress.update)


def _fmt(value: float | None) -> str:
    return "none" if value is None else f"{value:.3e}"


def peak_field(path: str) -> tuple[str, str]:
    """(the schedule's field path in the file, the peak field's name) of a schedule config, or a clear refusal."""
    from ..config import ConfigError, Problem, read_config_file, schedule_spec_of

    if Path(path).is_dir():
        raise UsageError(f"--write {path}: is a directory; give the schedule config file to edit (a run "
                         "directory's config.yaml is the record of that run and is not edited)")
    data = read_config_file(path)
    spec, root = schedule_spec_of(data, path)
    field = next((f for f in _PEAK_FIELDS if isinstance(spec, dict) and f in spec), None)
    if field is None:
        raise ConfigError([Problem(root or "", f"no peak field to set (looked for {', '.join(_PEAK_FIELDS)})")],
                          source=path)
    return root, field


def write_peak(path: str, peak: float) -> str:
    """Set ``peak`` (to 3 significant digits) in a schedule config or a run config's schedule, changing only
    that number in the file; returns ``field = value``."""
    from ..config import build_schedule, read_config_file, schedule_spec_of
    from ._edit import write_number

    root, field = peak_field(path)
    value = float(f"{peak:.3g}")
    spec = schedule_spec_of(read_config_file(path), path)[0]
    build_schedule({**spec, field: value}, root, source=path)  # refuse to write a config that no longer builds
    where = f"{root + '.' if root else ''}{field}"
    write_number(path, lambda data: schedule_spec_of(data, path)[0], field, value, where)
    return f"{where} = {value!r} in {path}"
