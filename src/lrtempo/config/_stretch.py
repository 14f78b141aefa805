"""Fitting a schedule to another run length: every step duration of its spec scaled exactly.

Used by ``lrtempo race --fit`` and ``lrtempo recipe show --total-steps``.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

from ..schedules import Schedule
from ._build import REGISTRY, build_schedule, schedule_to_spec

__all__ = ["stretch"]

#: integer fields of native specs that are counts but not step durations
_NOT_DURATIONS = frozenset({"max_cycles", "d_model"})


def stretch(schedule: Schedule, steps: int) -> Schedule:
    """The schedule with every step duration scaled by ``steps / end_step``, so that it ends at ``steps``.

    Each duration ``d`` becomes ``round(d * steps / end_step)`` (half up; at least 1 where ``d >= 1``);
    the pieces of a ``join`` are scaled at their cumulative boundaries, so their sum is exact. Rates,
    factors and counts (``max_cycles``, ``d_model``) are kept. An endless schedule is returned as it is.
    A ``compat`` spec (whose arguments belong to another library), or one whose rounded durations do not
    end exactly at ``steps``, is refused with a ``ValueError`` that says why.

    >>> s = stretch(build_schedule({"type": "warmup_cosine", "peak_lr": 1.0, "total_steps": 20000,
    ...                             "warmup_steps": 400}), 300)
    >>> s.end_step, s.warmup_steps
    (300, 6)
    """
    end = schedule.end_step
    if end is None or end == 0 or end == steps:
        return schedule
    if schedule.unit != "steps":
        raise ValueError(f"it counts {schedule.unit}, so its end is no number of updates to fit to {steps} steps; "
                         f"set its durations in {schedule.unit} by hand")
    spec = schedule_to_spec(schedule)
    fitted = build_schedule(_stretch_spec(spec, Fraction(steps, end)))
    if fitted.end_step != steps:
        raise ValueError(f"its durations cannot be scaled to end exactly at {steps} (the nearest ends at "
                         f"{fitted.end_step}); set them by hand")
    return fitted


def _scaled(value: int, factor: Fraction) -> int:
    if value == 0:
        return 0
    return max(1, math.floor(value * factor + Fraction(1, 2)))


def _stretch_spec(spec: Any, factor: Fraction, keep: frozenset[str] = frozenset()) -> Any:
    """``spec`` with every step duration scaled by ``factor``, but the fields named in ``keep``."""
    kind = spec["type"]
    if kind == "compat":
        raise ValueError("a compat schedule keeps its library's own arguments and is not stretched; set its "
                         "lengths by hand")
    fields = {f.name: f.kind for f in REGISTRY[kind].fields}
    out = dict(spec)
    for name, value in spec.items():
        k = fields.get(name)
        if value is None or name in _NOT_DURATIONS or k is None:
            continue
        if k.startswith("integer_list") and name not in keep:
            out[name] = [_scaled(v, factor) for v in value]
        elif k.startswith("integer") and name not in keep:
            out[name] = _scaled(value, factor)
        elif k == "schedule":
            out[name] = _stretch_spec(value, factor, keep)
        elif k == "pieces":
            out[name] = _stretch_pieces(value, factor, keep)
    return out


def _stretch_pieces(pieces: list[dict], factor: Fraction, keep: frozenset[str] = frozenset()) -> list[dict]:
    """Each piece ends at its old boundary times ``factor``, rounded; its schedule is stretched by its own
    new length over its old one, so the pieces still fit together and the last one ends exactly."""
    out, old_at, new_at = [], 0, 0
    for piece in pieces:
        length = piece.get("steps")
        if length is None:  # the last piece runs as long as its schedule
            length = build_schedule(piece["schedule"]).end_step
            if length is None:
                out.append(dict(piece, schedule=_stretch_spec(piece["schedule"], factor, keep)))
                continue
        boundary = max(new_at + 1, _scaled(old_at + length, factor))
        local = Fraction(boundary - new_at, length) if length else factor
        piece = dict(piece, schedule=_stretch_spec(piece["schedule"], local, keep))
        if piece.get("steps") is not None:
            piece["steps"] = boundary - new_at
        old_at, new_at = old_at + length, boundary
        out.append(piece)
    return out
