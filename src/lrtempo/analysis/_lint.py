"""``lrtempo lint``: the schedule bugs known to cost runs, caught from the config.

Each finding has a rule id, a severity (error, warning, info), the offending
field, a one-line explanation and the fix. Rules (schedule bugs known to have
cost real runs, and what users of other libraries report):

======  ========  =========================================================
rule    severity  what
======  ========  =========================================================
LR001   warning   the floor of a decay is 0
LR002   warning   warmup shorter than Adam's second moment needs (or none)
LR003   warning   warmup over ~10% of the run
LR004   error     warmup not shorter than the run
LR005   info      the first update gets rate 0 (warmup from 0, the default)
LR006   warning   a decay phase under 10% of the run
LR007   warning   a WSD decay under 5% of the run
LR008   warning   restart periods or milestones in epochs while the batch
                  count per epoch varies
LR009   warning   a long run with no hold at peak between warmup and decay
LR010   error     a floor above the peak
LR011   warning   the schedule's total differs from the training length
                  derived from the data size, batch size, accumulation and
                  world size
LR012   warning   a peak rate far outside the usual range for the optimizer
======  ========  =========================================================
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import build_schedule, read_config_file
from ..config import schedule_spec_of as _spec_of
from ..monitor._phases import PhaseMap

__all__ = ["Finding", "lint_config", "lint_mapping", "SEVERITY_ORDER", "exit_status"]

SEVERITY_ORDER = {"info": 0, "warning": 1, "error": 2}
#: a run at least this long is "long" for LR009 (runs of days to a week or more)
LONG_RUN_STEPS = 100_000
#: usual peak ranges: (low, high); "far outside" is 10x beyond either end
USUAL_PEAK = {"adamw": (1e-5, 1e-2), "sgd": (1e-3, 1.0)}


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


def _walk(node: Any, path: str):
    """Yield (path, mapping) for every mapping in a spec tree."""
    if isinstance(node, dict):
        yield path, node
        for k, v in node.items():
            yield from _walk(v, f"{path}.{k}" if path else str(k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _walk(v, f"{path}[{i}]")


def _floor_above_peak(spec: Any, root: str) -> list[Finding]:
    out = []
    pairs = [("min_lr", "peak_lr"), ("min_lr", "max_lr"), ("eta_min", None), ("lr_min", None),
             ("end_value", "peak_value"), ("end_lr", "base_lr"), ("min_lr", None)]
    for path, node in _walk(spec, root):
        base = node.get("base_lr") if isinstance(node.get("base_lr"), (int, float)) else None
        kwargs = node.get("kwargs") if isinstance(node.get("kwargs"), dict) else {}
        for low_key, high_key in pairs:
            for where, holder in ((path, node), (f"{path}.kwargs" if path else "kwargs", kwargs)):
                low = holder.get(low_key)
                high = holder.get(high_key) if high_key else base
                if holder is kwargs and high_key is None:
                    high = base
                if isinstance(low, (int, float)) and isinstance(high, (int, float)) and not isinstance(low, bool) \
                        and low > high > 0:
                    field = f"{where}.{low_key}" if where else low_key
                    f = Finding("LR010", "error", field, f"the floor {low!r} is above the peak {high!r}: the "
                                "'decay' raises the rate.", f"set {low_key} below {high_key or 'base_lr'}.")
                    if f not in out:
                        out.append(f)
    return out


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


def lint_mapping(data: dict, source: str | None = None, *, optimizer: str | None = None) -> list[Finding]:
    """Lint a schedule spec or a run config (already read into a mapping)."""
    spec, root = _spec_of(data, source)
    schedule = build_schedule(spec, root, source=source)  # invalid configs raise ConfigError (exit 2)
    run = data if root else {}
    opt = dict(run.get("optimizer") or {})
    opt_name = optimizer or opt.get("name", "adamw")
    beta2 = (opt.get("betas") or [0.9, 0.999])[1] if opt_name == "adamw" else None
    accumulation = int(run.get("accumulation_steps", 1) or 1)
    p = (lambda name: f"{root}.{name}" if root else name)
    findings: list[Finding] = []

    total = run.get("steps") if isinstance(run.get("steps"), int) else schedule.end_step
    horizon = max(total or 0, schedule.horizon)
    pm = PhaseMap(schedule, horizon)
    run_len = max(0, total or horizon)
    counts = pm.coarse_counts(run_len)  # from the phase intervals: no step is evaluated, whatever the length
    warmup, hold, decay = counts["warmup"], counts["plateau"], counts["decay"]
    peak = pm.peak
    final = schedule.final_value
    warmup_field = p("warmup_steps") if "warmup_steps" in spec or "warmup" in spec else root or "schedule"

    # LR001: floor 0 on a decay
    if decay and final is not None and final == 0.0 and peak > 0:
        findings.append(Finding("LR001", "warning", p("min_lr") if "min_lr" in spec or "peak_lr" in spec else root,
                                "the decay ends at 0: the last updates barely move the weights and the flat loss "
                                "looks like convergence.", "set min_lr to about 1-10% of peak_lr."))
    # LR002-LR004: warmup share
    if schedule.end_step is not None and warmup >= run_len and run_len > 0:
        findings.append(Finding("LR004", "error", warmup_field, f"the warmup ({warmup} steps) is not shorter than "
                                f"the run ({run_len} steps): the rate never reaches its schedule.",
                                "shorten the warmup to a few percent of the run."))
    elif opt_name == "adamw" and beta2 is not None:
        need = int(round(0.2 / (1 - beta2)))
        if warmup == 0 and peak > 0 and run_len > need:
            findings.append(Finding("LR002", "warning", warmup_field, "no warmup with an Adam-family optimizer: its "
                                    "first updates run at many times the nominal rate (a one-sample second moment).",
                                    f"add a warmup of at least {need} updates (warmup_steps)."))
        elif 0 < warmup < need and run_len > 2 * need:
            findings.append(Finding("LR002", "warning", warmup_field, f"a warmup of {warmup} updates is shorter than "
                                    f"the ~{need} updates Adam's second moment (beta2={beta2}) needs.",
                                    f"warm up for at least {need} updates."))
    if run_len and warmup > 0.1 * run_len and warmup < run_len:
        findings.append(Finding("LR003", "warning", warmup_field, f"the warmup is {warmup / run_len:.0%} of the "
                                "run: over ~10% spends compute below the peak for little gain.",
                                "warm up for 1-5% of the run."))
    # LR005: the first update gets rate 0
    if schedule(0) == 0.0:
        start_field = {"warmup_cosine": "warmup_start_lr", "wsd": "warmup_start_lr",
                       "warmup_plateau_cosine": "warmup_start_lr", "warmup": "start_lr",
                       "linear": "start_lr", "ramp": "start_lr"}.get(spec.get("type"))
        findings.append(Finding("LR005", "info", p(start_field) if start_field else root or "schedule",
                                "the first update gets rate 0 (it changes nothing); this is the documented "
                                "default of a warmup from 0.", "set warmup_start_lr (or start_lr) above 0 to use it."))
    # LR006 / LR007: short decay
    if spec.get("type") == "wsd":
        if run_len and decay < 0.05 * run_len:
            findings.append(Finding("LR007", "warning", p("decay_steps"), f"the WSD decay is {decay / run_len:.1%} "
                                    "of the run: under ~5% it ends before the loss can settle.",
                                    "give the decay 10-20% of the run (decay: 0.1 to 0.2)."))
    elif run_len and 0 < decay < 0.1 * run_len and final is not None:
        findings.append(Finding("LR006", "warning", root or "schedule", f"the decay phase is {decay} steps, "
                                f"{decay / run_len:.1%} of the run: too short to anneal.",
                                "give the decay most of the run, or use wsd with a 10-20% decay."))
    # LR009: a long run straight from warmup into decay
    if run_len >= LONG_RUN_STEPS and warmup > 0 and decay > 0 and hold == 0:
        findings.append(Finding("LR009", "warning", root or "schedule", f"a {run_len:,}-step run goes straight from "
                                "warmup into decay: Adam's momentum meets the decay stale.",
                                "hold the peak for 500-2000 steps first (warmup_plateau_cosine or wsd)."))
    # LR010: a floor above the peak
    findings += _floor_above_peak(spec, root)
    # LR008 and LR011: data section
    data_section = run.get("data") if isinstance(run.get("data"), dict) else None
    if data_section is not None:
        counts, where = _steps_per_epoch(data_section, accumulation)
        marks = _step_marks(spec, root)
        if counts and (len(set(counts)) > 1 or data_section.get("varying_batches")):
            for field, value in marks:
                if any(value % c == 0 for c in counts if c > 0):
                    findings.append(Finding("LR008", "warning", field, f"{value} steps is a whole number of epochs "
                                            f"at {counts} batches per epoch, but the batch count per epoch varies: "
                                            "epoch-based boundaries drift.",
                                            "give restart periods and milestones in optimizer steps."))
        epochs = data_section.get("epochs")
        if counts and isinstance(epochs, int) and schedule.end_step is not None:
            derived = epochs * counts[0]
            if derived != schedule.end_step and abs(derived - schedule.end_step) > 0.01 * derived:
                findings.append(Finding("LR011", "warning", where or "data", f"the data gives {epochs} epochs x "
                                        f"{counts[0]} updates = {derived:,} updates, but the schedule ends at step "
                                        f"{schedule.end_step:,}.", "set total_steps from data size / (batch_size x "
                                        "accumulation_steps x world_size) x epochs."))
    # LR012: peak far outside the usual range
    usual = USUAL_PEAK.get(opt_name)
    if usual and peak > 0 and not (usual[0] / 10 <= peak <= usual[1] * 10):
        findings.append(Finding("LR012", "warning", p("peak_lr") if "peak_lr" in spec else root or "schedule",
                                f"a peak rate of {peak:g} is far outside the usual {usual[0]:g}-{usual[1]:g} for "
                                f"{opt_name}.", "check the units, or run lrtempo find-lr."))
    return findings


def _step_marks(spec: Any, root: str) -> list[tuple[str, int]]:
    keys = ("milestones", "period", "restart_period", "step_size", "step_size_up", "decay_steps")
    out = []
    for path, node in _walk(spec, root):
        for key in keys:
            value = node.get(key)
            field = f"{path}.{key}" if path else key
            if isinstance(value, int) and not isinstance(value, bool) and value > 0 and key != "decay_steps":
                out.append((field, value))
            elif key == "milestones" and isinstance(value, list):
                out += [(f"{field}[{i}]", v) for i, v in enumerate(value) if isinstance(v, int) and v > 0]
    return out


def lint_config(path: str | Path, *, optimizer: str | None = None) -> list[Finding]:
    """Lint a config file (a schedule spec or a run config)."""
    data = read_config_file(path)
    findings = lint_mapping(data, str(path), optimizer=optimizer)
    return sorted(findings, key=lambda f: (-SEVERITY_ORDER[f.severity], f.rule))
