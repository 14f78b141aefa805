"""``lrtempo recipe list`` and ``lrtempo recipe show NAME``: named, cited schedules as published runs used them."""

from __future__ import annotations

import argparse
import sys

from ..schedules import MAX_STEPS
from ._common import UsageError, bounded_int

HELP = "named, cited schedules (LLaMA, GPT-3, BERT, ResNet-50, ViT, 1cycle, WSD, ...) as native specs"
DESCRIPTION = (
    "Schedules as published runs used them, each a native spec with its source and the run length it assumes. "
    "'recipe list' prints them; 'recipe show NAME' prints one as YAML (its source as a leading comment) or "
    "writes it with -o FILE (.yaml, .yml, .json or .toml; replaced atomically); --total-steps N rescales every "
    "duration in proportion (as 'lrtempo race --fit' does), keeping the rates; --budget RUN_CONFIG rescales it to "
    "the updates of that run config's total: (its steps, epochs, samples or tokens).")

#: --total-steps: a run length a schedule can have
total_steps_arg = bounded_int(1, MAX_STEPS)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("recipe", help=HELP, description=DESCRIPTION)
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True, parser_class=type(p))
    actions.add_parser("list", help="every recipe: name, total steps, peak rate, source",
                       description="Every recipe: name, total steps, peak rate and source.").set_defaults(func=run)
    show = actions.add_parser("show", help="one recipe as a spec (YAML, or -o FILE)",
                              description="One recipe as a native spec: YAML on standard output with the source "
                                          "as a comment, or -o FILE. The note says how each figure was obtained.")
    show.add_argument("name", metavar="NAME", help="a recipe name (see 'lrtempo recipe list')")
    show.add_argument("-o", "--output", metavar="FILE", default=None,
                      help="write the spec to FILE (.yaml, .yml, .json or .toml; replaced atomically)")
    length = show.add_mutually_exclusive_group()
    length.add_argument("--total-steps", metavar="N", type=total_steps_arg, default=None,
                        help="rescale the recipe to N steps: every duration times N / its total, rates kept")
    length.add_argument("--budget", metavar="RUN_CONFIG", default=None,
                        help="rescale the recipe to the updates of RUN_CONFIG's total: (steps, epochs, samples or "
                             "tokens, derived as 'lrtempo budget' prints it)")
    show.set_defaults(func=run)


def recipe_spec(name: str, total_steps: int | None = None) -> dict:
    """The recipe's spec, rescaled to ``total_steps`` when given; an unknown name is a usage error."""
    from .._util import did_you_mean
    from ..config import build_schedule, schedule_to_spec
    from ..config._recipes_catalog import RECIPES
    from ..config._stretch import stretch

    if name not in RECIPES:
        raise UsageError(f"recipe: unknown name {name!r}{did_you_mean(name, RECIPES)}; see 'lrtempo recipe list'")
    spec = RECIPES[name].spec
    if total_steps is None or total_steps == RECIPES[name].total_steps:
        return spec
    try:
        return schedule_to_spec(stretch(build_schedule(spec), total_steps))
    except ValueError as exc:
        raise UsageError(f"--total-steps {total_steps}: recipe {name!r} cannot be rescaled: {exc}") from None


def budget_steps(path: str) -> tuple[int, str]:
    """The updates of a run config's budget (its ``total``) and their derivation; a usage error without one."""
    from ..config import ConfigError, Problem, read_config_file
    from ..config._horizon import run_horizon
    from ._common import config_path_or_fail, task_data_facts

    data = read_config_file(config_path_or_fail(path))
    problems: list[Problem] = []
    horizon = run_horizon(data, problems, task_data_facts)
    if problems:
        raise ConfigError(problems, source=path)
    if horizon is None:
        raise UsageError(f"--budget {path}: it has no total: give the run config total: {{steps: N}} (or epochs, "
                         "samples, tokens)")
    return horizon.steps, horizon.derivation


def _list() -> None:
    from ..config._recipes_catalog import RECIPES

    width = max(len(n) for n in RECIPES)
    print(f"{'name':<{width}}  {'total_steps':>11}  {'peak_lr':>8}  source")
    for r in RECIPES.values():
        print(f"{r.name:<{width}}  {r.total_steps:>11}  {r.peak_lr:>8.3g}  {r.source}")


def _header(name: str, total_steps: int | None) -> str:
    """The comment lines that lead the YAML: name, source, total, the rescaling if any, and the note."""
    import textwrap

    from ..config._recipes_catalog import RECIPES

    r = RECIPES[name]
    lines = [f"{r.name}: {r.source}", f"assumes {r.total_steps} steps"
             + (f"; rescaled here to {total_steps} steps" if total_steps not in (None, r.total_steps) else "")]
    lines += textwrap.wrap(r.note, 100)
    return "".join(f"# {line}\n" for line in lines)


def run(args: argparse.Namespace) -> int:
    if args.action == "list":
        _list()
        return 0
    from ..config import format_config
    from . import convert

    total, why = args.total_steps, None
    if args.budget is not None:
        total, why = budget_steps(args.budget)
    spec = recipe_spec(args.name, total)
    header = _header(args.name, total) + (f"# the budget of {args.budget}: {why}\n" if why else "")
    if args.output is None:
        sys.stdout.write(header + format_config(spec, "yaml"))
    else:
        convert._write(args.output, spec, yaml_header=header)
    return 0
