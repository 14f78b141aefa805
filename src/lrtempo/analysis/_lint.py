"""``lrtempo lint``: the schedule bugs known to cost runs, caught from the config.

Each finding has a rule id, a severity (error, warning, info), the offending
field, a one-line explanation and the fix. The rules (schedule bugs known to
have cost real runs, and what users of other libraries report) are the table
``RULES``: one small function per rule, registered with ``@_rule`` under its id,
severity and a one-line summary. ``lint_mapping`` runs them in table order,
which is the order findings come out in. ``docs/tools.md`` lists the same ids
and severities (a test checks it).

>>> [(r.id, r.severity) for r in RULES][:3]
[('LR001', 'warning'), ('LR004', 'error'), ('LR002', 'warning')]
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import ConfigError, OptimizerConfig, Problem, build_schedule, read_config_file
from ..config import schedule_spec_of as _spec_of
from ..config._horizon import TaskFacts, run_budget
from ..config._optimizer import ADAM_FAMILY
from ..config._typed import build_settings
from ..monitor._phases import PhaseMap
from ..schedules import NATIVE_TYPES
from ._budget import run_clock

__all__ = ["Finding", "Rule", "RULES", "lint_config", "lint_mapping", "SEVERITY_ORDER", "exit_status"]

SEVERITY_ORDER = {"info": 0, "warning": 1, "error": 2}
#: a run at least this long is "long" for LR009 (runs of days to a week or more)
LONG_RUN_STEPS = 100_000
#: usual peak ranges: (low, high); "far outside" is 10x beyond either end
USUAL_PEAK = {"adamw": (1e-5, 1e-2), "schedulefree": (1e-5, 1e-2), "sgd": (1e-3, 1.0)}
#: a run config's optimizer defaults (the same as training's)
_OPT = OptimizerConfig()


@dataclass(frozen=True)
class Finding:
    rule: str
    severity: str
    field: str
    message: str
    fix: str

    def line(self) -> str:
        where = f" {self.field}:" if self.field else ""
        return f"{self.severity} {self.rule}{where} {self.message} Fix: {self.fix}"

    def to_json(self) -> dict[str, str]:
        return {"rule": self.rule, "severity": self.severity, "field": self.field, "message": self.message,
                "fix": self.fix}


def exit_status(findings: list[Finding]) -> int:
    """0 with nothing above info, 1 with warnings, 2 with errors."""
    worst = max((SEVERITY_ORDER[f.severity] for f in findings), default=0)
    return worst


@dataclass(frozen=True)
class _Run:
    """What the rules read: the schedule spec, the built schedule and its phases, the run config around it.

    ``warmup``, ``hold`` and ``decay`` are update counts of the phase kinds over
    the first ``run_len`` updates (of a samples or tokens schedule, where the
    run config gives its batch; else in its unit, ``count``); ``run`` is ``{}``
    for a bare schedule spec.
    """

    spec: dict
    root: str
    schedule: Any
    run: dict
    opt_name: str
    beta2: float | None
    accumulation: int
    run_len: int
    warmup: int
    hold: int
    decay: int
    peak: float
    final: float | None
    #: the run's budget (``lrtempo.config._horizon.Horizon``): from ``total``, else ``data.epochs``; or None
    horizon: Any = None
    #: what ``warmup``, ``hold``, ``decay`` and ``run_len`` count: ``steps`` (updates), or a samples or tokens
    #: schedule's unit when no run config gives the batch that turns it into updates
    count: str = "steps"

    def p(self, name: str) -> str:
        """The field path of ``name`` inside the schedule spec."""
        return f"{self.root}.{name}" if self.root else name

    @property
    def where(self) -> str:
        """The schedule as a whole, for findings about no single field."""
        return self.root or "schedule"

    @property
    def warmup_field(self) -> str:
        return self.p("warmup_steps") if "warmup_steps" in self.spec or "warmup" in self.spec else self.where

    @property
    def data(self) -> dict | None:
        """The run config's ``data`` section, if it has one."""
        return self.run.get("data") if isinstance(self.run.get("data"), dict) else None


def _read_run(data: dict, source: str | None, optimizer: str | None, task_facts: TaskFacts | None = None) -> _Run:
    """Build the schedule (``auto`` filled from the run's budget; invalid configs raise ConfigError, exit 2) and
    measure its phases."""
    spec, root = _spec_of(data, source)
    run = data if root else {}
    problems: list[Problem] = []
    budget, spec = run_budget(run, spec, root, problems, task_facts)
    # the optimizer section read as training reads it (its name, betas, ...), or the defaults
    opt = _OPT if run.get("optimizer") is None else build_settings(OptimizerConfig, run["optimizer"], "optimizer",
                                                                       problems)
    if problems:
        raise ConfigError(problems, source=source)
    schedule = build_schedule(spec, root, source=source)
    opt_name = optimizer or opt.name
    beta2 = opt.betas[1] if opt_name in ADAM_FAMILY else None
    # a samples or tokens schedule is measured by update where the run config gives its batch, else in its unit
    clock = _update_clock(run, schedule, task_facts, source, root)
    measured = schedule if clock is None else clock.over_updates(schedule)
    by_update = schedule.unit == "steps" or clock is not None
    # the run's length in updates: its steps, else its budget's, else where the schedule ends
    steps = run.get("steps") if by_update else None
    if isinstance(steps, int):
        total = steps
    elif budget is not None and "total" in run and by_update:
        total = budget.steps
    else:
        total = measured.end_step
    horizon = max(total or 0, measured.horizon)
    pm = PhaseMap(measured, horizon)
    run_len = max(0, total or horizon)
    counts = pm.coarse_counts(run_len)  # from the phase intervals: no step is evaluated, whatever the length
    return _Run(spec, root, schedule, run, opt_name, beta2, int(run.get("accumulation_steps", 1) or 1), run_len,
                counts["warmup"], counts["plateau"], counts["decay"], pm.peak, schedule.final_value, budget,
                "steps" if by_update else schedule.unit)


def _update_clock(run: dict, schedule: Any, task_facts: TaskFacts | None, source: str | None, root: str) -> Any:
    """Where the run's updates put a samples or tokens schedule (:func:`lrtempo.analysis.run_clock`), or None: a
    steps schedule, or a spec without the run's batch (its phases are then counted in its unit)."""
    if schedule.unit == "steps" or not run:
        return None
    try:
        return run_clock(run, schedule.unit, task_facts, source, root)
    except ConfigError:
        return None


#: what a rule yields: (field, message, fix); the rule's id and severity come from its table entry
Hit = tuple[str, str, str]


@dataclass(frozen=True)
class Rule:
    """One lint rule: its id, severity, a one-line summary and the check that yields its hits."""

    id: str
    severity: str
    summary: str
    check: Callable[[_Run], Iterable[Hit]]

    def findings(self, run: _Run) -> list[Finding]:
        return [Finding(self.id, self.severity, field, message, fix) for field, message, fix in self.check(run)]


#: the rules in the order their findings come out
RULES: list[Rule] = []


def _rule(rule_id: str, severity: str, summary: str):
    """Register the decorated check in ``RULES`` under ``rule_id``."""
    def register(check: Callable[[_Run], Iterable[Hit]]):
        RULES.append(Rule(rule_id, severity, summary, check))
        return check
    return register


def lint_mapping(data: dict, source: str | None = None, *, optimizer: str | None = None,
                 task_facts: TaskFacts | None = None) -> list[Finding]:
    """Lint a schedule spec or a run config (already read into a mapping): every rule of ``RULES``, in order.

    ``task_facts`` gives a built-in task's data size for a ``total`` in epochs, samples or tokens (see
    ``lrtempo.train.tasks.task_data_facts``); without it, the ``data`` section must give them.
    """
    run = _read_run(data, source, optimizer, task_facts)
    return [finding for rule in RULES for finding in rule.findings(run)]


def lint_config(path: str | Path, *, optimizer: str | None = None,
                task_facts: TaskFacts | None = None) -> list[Finding]:
    """Lint a config file (a schedule spec or a run config)."""
    data = read_config_file(path)
    findings = lint_mapping(data, str(path), optimizer=optimizer, task_facts=task_facts)
    return sorted(findings, key=lambda f: (-SEVERITY_ORDER[f.severity], f.rule))


# -- the rules ---------------------------------------------------------------------------------------------------

def _warmup_covers_run(r: _Run) -> bool:
    """The warmup is not shorter than the run (LR004; LR002 and LR003 then stay quiet)."""
    return r.schedule.end_step is not None and r.warmup >= r.run_len and r.run_len > 0


@_rule("LR001", "warning", "the floor of a decay is 0")
def _floor_zero(r: _Run) -> Iterable[Hit]:
    """A decay to exactly 0: the last updates barely move the weights, and the flat loss looks like convergence."""
    if r.decay and r.final is not None and r.final == 0.0 and r.peak > 0:
        field = r.p("min_lr") if "min_lr" in r.spec or "peak_lr" in r.spec else r.root
        yield (field, "the decay ends at 0: the last updates barely move the weights and the flat loss looks like "
               "convergence.", "set min_lr to about 1-10% of peak_lr.")


@_rule("LR004", "error", "warmup not shorter than the run")
def _warmup_not_shorter(r: _Run) -> Iterable[Hit]:
    """A warmup as long as the run or longer: the rate never reaches the peak the schedule is built around."""
    if _warmup_covers_run(r):
        yield (r.warmup_field, f"the warmup ({r.warmup} {r.count}) is not shorter than the run ({r.run_len} "
               f"{r.count}): the rate never reaches its schedule.", "shorten the warmup to a few percent of the run.")


@_rule("LR002", "warning", "warmup shorter than Adam's second moment needs (or none)")
def _warmup_short_for_adam(r: _Run) -> Iterable[Hit]:
    """Adam's second moment averages over about ``1 / (1 - beta2)`` updates; a warmup of ``0.2 / (1 - beta2)``
    updates (200 at beta2 = 0.999) keeps the first, badly normalised updates small. Quiet under LR004."""
    if r.opt_name not in ADAM_FAMILY or r.beta2 is None or _warmup_covers_run(r):
        return
    need = int(round(0.2 / (1 - r.beta2)))
    if r.warmup == 0 and r.peak > 0 and r.run_len > need:
        yield (r.warmup_field, "no warmup with an Adam-family optimizer: its first updates run at many times the "
               "nominal rate (a one-sample second moment).", f"add a warmup of at least {need} updates "
               "(warmup_steps).")
    elif r.count == "steps" and 0 < r.warmup < need and r.run_len > 2 * need:  # a count of updates, not units
        yield (r.warmup_field, f"a warmup of {r.warmup} updates is shorter than the ~{need} updates Adam's second "
               f"moment (beta2={r.beta2}) needs.", f"warm up for at least {need} updates.")


@_rule("LR003", "warning", "warmup over ~10% of the run")
def _warmup_long(r: _Run) -> Iterable[Hit]:
    """A warmup over a tenth of the run (but shorter than it) spends compute below the peak for little gain."""
    if r.run_len and 0.1 * r.run_len < r.warmup < r.run_len:
        yield (r.warmup_field, f"the warmup is {r.warmup / r.run_len:.0%} of the run: over ~10% spends compute "
               "below the peak for little gain.", "warm up for 1-5% of the run.")




@_rule("LR005", "info", "the first update gets rate 0 (warmup from 0, the default)")
def _first_rate_zero(r: _Run) -> Iterable[Hit]:
    """Rate 0 at step 0: the first update changes nothing. Documented default of a warmup from 0, hence info."""
    if r.schedule(0) == 0.0:
        field, fix = _start_fix(r.spec)
        yield (r.p(field) if field else r.where, "the first update gets rate 0 (it changes nothing); "
               "this is the documented default of a warmup from 0.", fix)


#: compat library -> (its argument that sets the first rate, or None; the fix LR005 names)
_COMPAT_START = {
    "optax": ("kwargs.init_value", "set init_value above 0 to use it."),
    "timm": ("kwargs.warmup_lr_init", "set warmup_lr_init above 0 to use it."),
    "megatron": ("kwargs.init_lr", "set init_lr above 0 to use it."),
    "composer": (None, "Composer's warmups start at 0 and take no argument for it (the first two batches run at rate "
                       "0: the Trainer steps the scheduler before it counts the batch); lrtempo convert writes the "
                       "native spec, where warmup_start_lr sets the first rate."),
    "keras": ("kwargs.initial_learning_rate", "set initial_learning_rate (CosineDecay's warmup start) above 0 to "
                                             "use it."),
    "olmo-core": ("base_lr", "OLMo-core's warmups start one step in (update 0 runs at current 1), so only an "
                             "optimizer lr of 0 gives rate 0 here: set base_lr above 0."),
    "torchtitan": ("base_lr", "torchtitan's warmup starts at base_lr / warmup_steps (update 0 runs at (0 + 1) / "
                              "warmup_steps), so only an optimizer lr of 0 gives rate 0 here: set base_lr above 0."),
    "torch": (None, "give the warmup's LinearLR a start_factor above 0."),
    "transformers": (None, "transformers' warmups start at 0 and take no argument for it; lrtempo convert writes "
                           "the native spec, where warmup_start_lr sets the first rate."),
}


def _start_fix(spec: dict) -> tuple[str | None, str]:
    """The field that sets a spec's first rate (None: none of its own) and the fix LR005 names."""
    if spec.get("type") == "compat" and spec.get("library") in _COMPAT_START:
        return _COMPAT_START[spec["library"]]
    family = NATIVE_TYPES.get(spec.get("type"))
    start_field = family.start_field if family is not None else None
    return start_field, f"set {start_field or 'warmup_start_lr (or start_lr)'} above 0 to use it."


@_rule("LR007", "warning", "a WSD decay under 5% of the run")
def _wsd_decay_short(r: _Run) -> Iterable[Hit]:
    """A warmup-stable-decay schedule whose decay is under 5% of the run ends before the loss can settle."""
    if r.spec.get("type") == "wsd" and r.run_len and r.decay < 0.05 * r.run_len:
        yield (r.p("decay_steps"), f"the WSD decay is {r.decay / r.run_len:.1%} of the run: under ~5% it ends "
               "before the loss can settle.", "give the decay 10-20% of the run (decay: 0.1 to 0.2).")


@_rule("LR006", "warning", "a decay phase under 10% of the run")
def _decay_short(r: _Run) -> Iterable[Hit]:
    """A (non-WSD) schedule whose decay phases take under 10% of the run: too short to anneal."""
    if r.spec.get("type") != "wsd" and r.run_len and 0 < r.decay < 0.1 * r.run_len and r.final is not None:
        yield (r.where, f"the decay phase is {r.decay} {r.count}, {r.decay / r.run_len:.1%} of the run: too short to "
               "anneal.", "give the decay most of the run, or use wsd with a 10-20% decay.")


@_rule("LR009", "warning", "a long run with no hold at peak between warmup and decay")
def _no_hold(r: _Run) -> Iterable[Hit]:
    """A run of ``LONG_RUN_STEPS`` or more that goes from warmup straight into decay meets it with stale momentum."""
    if r.count == "steps" and r.run_len >= LONG_RUN_STEPS and r.warmup > 0 and r.decay > 0 and r.hold == 0:
        yield (r.where, f"a {r.run_len:,}-step run goes straight from warmup into decay: Adam's momentum meets the "
               "decay stale.", "hold the peak for 500-2000 steps first (warmup_plateau_cosine or wsd).")


#: (floor key, peak key) pairs of LR010; a peak key of None means the node's ``base_lr``
_FLOOR_PEAK = [("min_lr", "peak_lr"), ("min_lr", "max_lr"), ("eta_min", None), ("lr_min", None),
               ("end_value", "peak_value"), ("end_lr", "base_lr"), ("min_lr", None)]


@_rule("LR010", "error", "a floor above the peak")
def _floor_above_peak(r: _Run) -> Iterable[Hit]:
    """A floor above the peak anywhere in the spec, compat ``kwargs`` included: the 'decay' raises the rate."""
    out: list[Hit] = []
    for path, node in _walk(r.spec, r.root):
        base = node.get("base_lr") if isinstance(node.get("base_lr"), (int, float)) else None
        kwargs = node.get("kwargs") if isinstance(node.get("kwargs"), dict) else {}
        for low_key, high_key in _FLOOR_PEAK:
            for where, holder in ((path, node), (f"{path}.kwargs" if path else "kwargs", kwargs)):
                low, high = holder.get(low_key), holder.get(high_key) if high_key else base
                if _number(low) and isinstance(high, (int, float)) and low > high > 0:
                    hit = (f"{where}.{low_key}" if where else low_key, f"the floor {low!r} is above the peak "
                           f"{high!r}: the 'decay' raises the rate.", f"set {low_key} below {high_key or 'base_lr'}.")
                    if hit not in out:
                        out.append(hit)
    return out


@_rule("LR008", "warning", "restart periods or milestones in epochs while the batch count per epoch varies")
def _epoch_marks(r: _Run) -> Iterable[Hit]:
    """Restart periods or milestones that are whole epochs drift when the batch count per epoch varies."""
    data = r.data
    if data is None:
        return
    counts, _ = _steps_per_epoch(data, r.accumulation)
    if counts and (len(set(counts)) > 1 or data.get("varying_batches")):
        for field, value in _step_marks(r.spec, r.root):
            if any(value % c == 0 for c in counts if c > 0):
                yield (field, f"{value} steps is a whole number of epochs at {counts} batches per epoch, but the "
                       "batch count per epoch varies: epoch-based boundaries drift.",
                       "give restart periods and milestones in optimizer steps.")


@_rule("LR011", "warning", "the schedule's total differs from the run's budget (total, or the data section's "
       "epochs over its size, batch size, accumulation and world size), in the schedule's unit")
def _length_mismatch(r: _Run) -> Iterable[Hit]:
    """The schedule's end differs by over 1% from the run's budget counted in the schedule's unit (steps,
    samples or tokens): ``total``, else ``data.epochs`` over the ``data`` section's size and batching."""
    h, end = r.horizon, r.schedule.end_step
    unit = getattr(r.schedule, "unit", "steps")
    want = None if h is None else h.in_unit(unit)
    if want is None or end is None or end == want or abs(end - want) <= 0.01 * want:
        return
    where = "total" if "total" in r.run else "data"
    yield (where, f"the run's budget is {want:,} {unit} ({h.derivation}), but the schedule ends at {end:,} {unit}.",
           f"set the schedule's total to auto (it takes the budget) or to {want}.")


@_rule("LR012", "warning", "a peak rate far outside the usual range for the optimizer")
def _peak_unusual(r: _Run) -> Iterable[Hit]:
    """A peak more than 10x outside ``USUAL_PEAK`` for the optimizer: usually a units mistake."""
    usual = USUAL_PEAK.get(r.opt_name)
    if usual and r.peak > 0 and not (usual[0] / 10 <= r.peak <= usual[1] * 10):
        yield (r.p("peak_lr") if "peak_lr" in r.spec else r.where, f"a peak rate of {r.peak:g} is far outside the "
               f"usual {usual[0]:g}-{usual[1]:g} for {r.opt_name}.", "check the units, or run lrtempo find-lr.")


@_rule("LR013", "warning", "a batch-size ramp under a schedule that counts steps")
def _ramp_under_steps(r: _Run) -> Iterable[Hit]:
    """A ``batch_ramp`` while the schedule counts updates: the ramp's small early batches move every phase to
    other points of the data seen; a schedule counting samples or tokens keeps its curve against the data."""
    ramp = r.run.get("batch_ramp")
    if isinstance(ramp, dict) and r.schedule.unit == "steps":
        yield ("batch_ramp", f"the global batch ramps from {ramp.get('start_batch_size')!r} over "
               f"{ramp.get('ramp_samples')!r} samples, but the schedule counts updates: the small early batches "
               "make each phase end at another point of the data than without the ramp.",
               f"give the schedule unit: samples (or tokens), with its durations in that unit, at {r.where}.")


# -- helpers -----------------------------------------------------------------------------------------------------

def _number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _walk(node: Any, path: str):
    """Yield (path, mapping) for every mapping in a spec tree."""
    if isinstance(node, dict):
        yield path, node
        for k, v in node.items():
            yield from _walk(v, f"{path}.{k}" if path else str(k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _walk(v, f"{path}[{i}]")


def _steps_per_epoch(data: dict, accumulation: int) -> tuple[list[int], str | None]:
    """The batch counts per epoch a run config's ``data`` section implies (several when it varies)."""
    spe = data.get("steps_per_epoch")
    if isinstance(spe, list) and spe:
        return [int(x) for x in spe], "data.steps_per_epoch"
    if isinstance(spe, int):
        return [spe], "data.steps_per_epoch"
    examples, batch = data.get("examples"), data.get("batch_size")
    world = int(data.get("world_size", 1) or 1)
    if not isinstance(examples, int) or not isinstance(batch, int) or batch <= 0:
        return [], None
    per_update = batch * accumulation * world
    if data.get("drop_last", False):
        return [examples // per_update], "data"
    return [math.ceil(examples / per_update)], "data"


def _step_marks(spec: Any, root: str) -> list[tuple[str, int]]:
    """(field, steps) of every restart period, milestone and step size in the spec (LR008)."""
    keys = sorted({f for cls in NATIVE_TYPES.values() for f in cls.period_fields})
    out = []
    for path, node in _walk(spec, root):
        for key in keys:
            value = node.get(key)
            field = f"{path}.{key}" if path else key
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                out.append((field, value))
            elif key == "milestones" and isinstance(value, list):
                out += [(f"{field}[{i}]", v) for i, v in enumerate(value) if isinstance(v, int) and v > 0]
    return out
