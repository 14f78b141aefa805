"""``lrtempo budget CONFIG``: the run's budget and its derivation, and where the compute goes under a schedule."""

from __future__ import annotations

import argparse

from .._chunks import MAX_EVALUATED_STEPS
from ._common import UsageError, add_config_argument, bounded_float, json_text, positive_int, task_data_facts

HELP = ("the run's budget and how it was derived (total: steps, epochs, samples or tokens), then steps, "
        "wall-clock and cost per phase and per rate band (>90/50/10% of peak, the tail) of a schedule; a "
        "schedule that counts samples or tokens is tabulated per update of its run config, with the samples or "
        "tokens each row's updates consume")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("budget", help=HELP, description=HELP + ". Exact: every step is evaluated.")
    add_config_argument(p, until=False)
    p.add_argument("--steps", metavar="N", type=positive_int, default=None,
                   help="steps in the run (default: the run config's steps, else its budget, else the "
                        "schedule's end)")
    p.add_argument("--step-time", metavar="DURATION", default=None, help="time per step, e.g. 200ms, 1.2s")
    p.add_argument("--gpus", metavar="N", type=positive_int, default=1, help="GPUs the run uses (default 1)")
    p.add_argument("--gpu-hour-cost", metavar="X", type=bounded_float(0.0), default=None,
                   help="price of one GPU-hour (needs --step-time)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..analysis import compute_budget, format_budget, format_horizon, parse_duration

    if args.gpu_hour_cost is not None and args.step_time is None:
        raise UsageError("--gpu-hour-cost needs --step-time")
    try:
        step_seconds = parse_duration(args.step_time) if args.step_time else None
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    schedule, data, horizon, clock = _read(args.config)
    steps = args.steps
    if steps is None and "schedule" in data and isinstance(data.get("steps"), int):
        steps = data["steps"]
    if steps is None and horizon is not None:
        steps = horizon.steps
    if steps is None:
        end = (schedule if clock is None else clock.over_updates(schedule)).end_step  # in updates
        if end is None or schedule.end_step < 1:
            raise UsageError("this schedule never ends: give --steps")
        steps = end
    if steps > MAX_EVALUATED_STEPS:  # bad input, so exit 2 (compute_budget's own check is for library callers)
        raise UsageError(f"steps: at most {MAX_EVALUATED_STEPS:,} steps, the most a budget evaluates one by one "
                         f"(got {steps:,}); give --steps N")
    budget = compute_budget(schedule, steps, step_seconds=step_seconds, gpus=args.gpus,
                            gpu_hour_cost=args.gpu_hour_cost, clock=clock)
    if args.json:
        print(json_text({**budget.to_json(), "budget": None if horizon is None else horizon.to_json()}))
    else:
        print(format_budget(budget) if horizon is None else format_horizon(horizon) + "\n\n" + format_budget(budget))
    return 0


def _read(path: str):
    """The config's schedule (``auto`` filled), the config mapping, its budget (None without one) and, for a
    schedule counted in samples or tokens, the clock that puts the run's updates on it (else None)."""
    from ..analysis import run_clock
    from ..config import read_config_file, schedule_spec_of
    from ..config._horizon import run_budget

    data = read_config_file(path)
    spec, root = schedule_spec_of(data, path)
    horizon, _ = run_budget(data if root else {}, spec, root, [], task_data_facts)
    from ..config import load_schedule

    schedule = load_schedule(path, task_data_facts)
    clock = None
    if schedule.unit != "steps":
        clock = run_clock(data if root else {}, schedule.unit, task_data_facts, path, root)
    return schedule, data, horizon, clock
