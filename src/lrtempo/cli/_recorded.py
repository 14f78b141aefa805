"""A run directory's schedule as it was applied: its ``config.yaml`` schedule with the decisions the run recorded.

A ``type: plateau`` schedule's reductions are decided during training and
recorded in the run directory (``reductions.jsonl``), not in the spec; ``lrtempo
show``, ``values`` and ``plot`` of a run directory apply them, so they print the
curve the run's log holds, bit for bit.
"""

from __future__ import annotations

from pathlib import Path

from ..rundir import RUN_FILES, RunDir
from ..schedules import Plateau, Schedule

__all__ = ["as_applied"]


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
