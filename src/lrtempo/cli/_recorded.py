"""A run directory's schedule as it was applied: its ``config.yaml`` schedule with the decisions the run recorded.

A ``type: plateau`` schedule's reductions are decided during training and
recorded in the run directory (``reductions.jsonl``), not in the spec; ``lrtempo
show``, ``values`` and ``plot`` of a run directory apply them, so they print the
curve the run's log holds, bit for bit.
"""

from __future__ import annotations

import sys
from pathlib import Path

from ..rundir import RUN_FILES, RunDir
from ..schedules import Plateau, Schedule

__all__ = ["as_applied", "note_schedule_changes", "run_record"]


def as_applied(schedule: Schedule, config_path: str | Path) -> Schedule:
    """``schedule`` with the reductions recorded next to ``config_path`` when that is a run's ``config.yaml``
    and the schedule is a ``type: plateau`` (else ``schedule`` itself). ValueError for a damaged record."""
    path = Path(config_path)
    if path.name != RUN_FILES.config or not isinstance(schedule, Plateau):
        return schedule
    run = RunDir(path.parent)
    recorded = run.read_reductions()
    if not recorded:
        return schedule
    try:
        return schedule.with_reductions(recorded)
    except ValueError as exc:
        raise ValueError(f"{run.reductions}: {exc}") from None


def run_record(config_path: str | Path) -> tuple[int | None, list[int]]:
    """For a run's ``config.yaml``: the updates it runs (its ``steps``) and the steps at which a resume changed
    its schedule (``run.json``'s ``schedule_changes``, less a branch's own point, whose spec holds the whole
    curve); ``(None, [])`` for any other file."""
    path = Path(config_path)
    run = RunDir(path.parent)
    if path.name != RUN_FILES.config or not run.meta.exists():
        return None, []
    from ..config import read_config_file

    steps = read_config_file(path).get("steps")
    meta = run.read_meta()
    branch = (meta.get("branch") or {}).get("at_step")
    changes = [c["step"] for c in meta.get("schedule_changes", []) if c.get("step") != branch]
    return (steps if isinstance(steps, int) else None), changes


def note_schedule_changes(config_path: str | Path, shown: str) -> None:
    """A note on stderr for each step at which a resume changed the schedule of the run whose ``config.yaml`` is
    ``config_path`` (nothing for any other file): ``shown`` says what of the output follows the schedule in force
    now; the updates before the step ran under the one kept in ``config.before-step-N.yaml``."""
    try:
        _, changes = run_record(config_path)
    except (OSError, ValueError):
        return
    for step in changes:
        print(f"lrtempo: note: {config_path} changed its schedule on a resume at step {step}: {shown} of the "
              f"schedule in force now; the updates before {step} ran under the one kept in "
              f"config.before-step-{step}.yaml", file=sys.stderr)
