"""Specs <-> schedules: the ``type`` registry, validation, canonical form and hash.

A schedule spec is a mapping with a ``type`` key naming a registered family,
combinator, recipe or ``compat``. Every other key is one of that type's
parameters (the dataclass fields, with the same names). Nested schedules are
specs themselves. Validation collects every problem, each with its field
path, before raising one :class:`ConfigError`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import numbers
import sys
import typing
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from .._util import did_you_mean
from ..schedules import NATIVE_TYPES, UNITS, InUnit, ParameterError, Piece, Schedule, param_kind, steps_from_fraction
from ..schedules._plateau import Plateau, unit_problem
from ._errors import SHOWN_PROBLEMS, ConfigError, Problem
from ._files import MAX_DEPTH
from ._values import _brief, _check_integer, _check_number, _describe, _join

__all__ = [
    "FieldSpec",
    "TypeSpec",
    "REGISTRY",
    "build_schedule",
    "schedule_to_spec",
    "canonical_spec",
    "spec_hash",
    "spec_hashes",
]

@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One parameter of a spec type: its name, kind, default and choices."""

    name: str
    kind: str
    required: bool
    default: Any = None
    choices: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class TypeSpec:
    """A registered spec ``type``: its class, parameters and fraction aliases."""

    name: str
    cls: type
    fields: tuple[FieldSpec, ...]
    fractions: Mapping[str, str]
    doc: str

    def field(self, name: str) -> FieldSpec | None:
        for f in self.fields:
            if f.name == name:
                return f
        return None

    @property
    def keys(self) -> tuple[str, ...]:
        return ("type", *(f.name for f in self.fields), *self.fractions)


def _type_spec(cls: type[Schedule]) -> TypeSpec:
    """A family's spec type, from its dataclass fields: the kind of each is its type hint's
    (:func:`~lrtempo.schedules.param_kind`; the class was checked when it was made, so every hint is known)."""
    fields = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        kind = param_kind(hints[f.name])
        if kind is None:  # pragma: no cover - refused when the class was made
            raise TypeError(f"{cls.__qualname__}.{f.name}: no value kind for {hints[f.name]!r}")
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        default = None if required else f.default
        fields.append(FieldSpec(f.name, kind, required, default, cls.field_choices.get(f.name)))
    doc = (cls.__doc__ or "").strip().split("\n\n")[0].replace("\n", " ")
    return TypeSpec(cls.type_name, cls, tuple(fields), cls.fraction_fields, doc)


class _Registry(Mapping):
    """Every native spec type by name, read from the family registry (``compat`` is handled on its own).

    Live: a family whose class is made after this module is imported is in it too. The spec type of a
    class is made once.
    """

    def __init__(self) -> None:
        self._made: dict[type, TypeSpec] = {}

    def __getitem__(self, name: str) -> TypeSpec:
        cls = NATIVE_TYPES[name]
        ts = self._made.get(cls)
        if ts is None:
            ts = self._made[cls] = _type_spec(cls)
        return ts

    def __iter__(self) -> Iterator[str]:
        return iter(NATIVE_TYPES)

    def __len__(self) -> int:
        return len(NATIVE_TYPES)


#: every native spec type by name (``compat`` is handled on its own)
REGISTRY: Mapping[str, TypeSpec] = _Registry()


class _Builder:
    """Walks a spec, collecting problems, and builds the schedule if there are none."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []
        self.depth = 0

    def fail(self, path: str, message: str) -> None:
        self.problems.append(Problem(path, message))

    @property
    def terse(self) -> bool:
        """True once more problems are known than a message shows: skip the costly hints."""
        return len(self.problems) >= SHOWN_PROBLEMS

    def schedule(self, spec: Any, path: str) -> Schedule | None:
        if isinstance(spec, Schedule):
            return spec
        if self.depth >= MAX_DEPTH:
            self.fail(path, f"schedules are nested deeper than {MAX_DEPTH} levels")
            return None
        self.depth += 1
        try:
            return self._schedule(spec, path)
        finally:
            self.depth -= 1

    def _schedule(self, spec: Any, path: str) -> Schedule | None:
        if not isinstance(spec, Mapping):
            self.fail(path, f"must be a schedule spec, a mapping with a 'type' key (got {_describe(spec)})")
            return None
        if "unit" in spec:
            return self._unit(spec, path)
        return self._of_type(spec, path)

    def _unit(self, spec: Mapping, path: str) -> Schedule | None:
        """A spec with a ``unit``: on the top-level spec the schedule counted in it; inside, a problem."""
        upath, unit = _join(path, "unit"), spec["unit"]
        rest = {k: v for k, v in spec.items() if k != "unit"}
        if self.depth > 1:
            self.fail(upath, "a unit is set on the top-level schedule only (every schedule inside counts it); "
                      "remove it here")
            self._of_type(rest, path)
            return None
        if not isinstance(unit, str) or unit not in UNITS:
            self.fail(upath, f"must be one of {', '.join(map(repr, UNITS))} (got {_brief(unit)})"
                      f"{did_you_mean(unit, UNITS)}")
            self._of_type(rest, path)
            return None
        schedule = self._of_type(rest, path)
        if isinstance(schedule, Plateau) and unit != "steps":
            self.fail(upath, unit_problem(unit))
            return None
        if schedule is None or unit == "steps":  # steps: what every schedule counts
            return schedule
        return InUnit(schedule, unit)

    def _of_type(self, spec: Mapping, path: str) -> Schedule | None:
        kind = spec.get("type")
        if kind is None:
            self.fail(_join(path, "type"), "missing; every schedule spec needs a 'type' "
                      f"(one of: {', '.join(known_types())})")
            return None
        if kind == "compat":
            from ..schedules.compat import build_compat

            return build_compat(spec, path, self)
        if not isinstance(kind, str) or kind not in REGISTRY:
            self.fail(_join(path, "type"), f"unknown type {_brief(kind)}{did_you_mean(kind, known_types())} "
                      f"(known: {', '.join(known_types())})")
            return None
        return self._typed(REGISTRY[kind], spec, path)

    def _typed(self, ts: TypeSpec, spec: Mapping, path: str) -> Schedule | None:
        before = len(self.problems)
        keys = ts.keys
        valid = ", ".join(keys[1:])
        for key in spec:
            if key not in keys:
                hint = "" if self.terse else did_you_mean(key, keys)
                self.fail(_join(path, key), f"unknown key for type {ts.name!r}{hint} (valid keys: {valid})")
        values = dict(spec)
        self._resolve_fractions(ts, values, path)
        kwargs: dict[str, Any] = {}
        for f in ts.fields:
            fpath = _join(path, f.name)
            if f.name not in values:
                if f.required:
                    self.fail(fpath, f"missing (required for type {ts.name!r})")
                continue
            value = self._value(f, values[f.name], fpath)
            if value is not None or f.kind.endswith("?"):
                kwargs[f.name] = value
        if len(self.problems) > before:
            self._range_problems(ts, kwargs, path, {p.path for p in self.problems[before:]})
            return None
        try:
            return ts.cls(**kwargs)
        except ParameterError as exc:
            for name, message in exc.problems:
                self.fail(_join(path, name), message)
            return None

    def _range_problems(self, ts: TypeSpec, kwargs: dict, path: str, reported: set[str]) -> None:
        """The type's own checks (ranges, order) on the fields that passed, so that every problem is
        reported at once even when others stop the schedule from being built."""
        obj = object.__new__(ts.cls)
        for f in dataclasses.fields(ts.cls):
            if f.init:
                default = None if f.default is dataclasses.MISSING else f.default
                object.__setattr__(obj, f.name, kwargs.get(f.name, default))
        try:
            obj.__post_init__()
        except ParameterError as exc:
            for name, message in exc.problems:
                fpath = _join(path, name)
                if name in kwargs and kwargs[name] is not None and fpath not in reported:
                    self.fail(fpath, message)
        except Exception:  # noqa: BLE001 - a partial object may fail in other ways; the problems found stand
            pass

    def _resolve_fractions(self, ts: TypeSpec, values: dict, path: str) -> None:
        for alias, steps_field in ts.fractions.items():
            if alias not in values:
                continue
            apath = _join(path, alias)
            if steps_field in values:
                self.fail(apath, f"give {steps_field} (steps) or {alias} (a fraction of total_steps), not both")
                continue
            frac = _check_number(values.pop(alias), apath, self.problems)
            if frac is None:
                continue
            if not 0.0 <= frac <= 1.0:
                self.fail(apath, f"must be a fraction of total_steps in [0, 1] (got {frac!r}); "
                          f"give {steps_field} for a number of steps")
                continue
            total = values.get("total_steps")
            if total == "auto":
                continue  # an unfilled auto: its own problem says what it needs
            if isinstance(total, bool) or not isinstance(total, numbers.Real) or abs(total) > sys.float_info.max \
                    or not math.isfinite(total) or total != int(total) or total < 0:
                self.fail(apath, "needs a valid total_steps to resolve the fraction")
                continue
            values[steps_field] = steps_from_fraction(frac, int(total))

    def _value(self, f: FieldSpec, value: Any, path: str) -> Any:
        kind = f.kind.rstrip("?")
        if value is None:
            if f.kind.endswith("?"):
                return None
            self.fail(path, f"must not be empty (null); {_expected(f)}")
            return None
        if value == "auto" and kind in ("number", "integer"):
            self.fail(path, _AUTO_UNFILLED)
            return None
        if kind == "number":
            return _check_number(value, path, self.problems)
        if kind == "integer":
            return _check_integer(value, path, self.problems)
        if kind == "boolean":
            if not isinstance(value, bool):
                self.fail(path, f"must be true or false (got {_describe(value)})")
                return None
            return value
        if kind == "string":
            if not isinstance(value, str):
                self.fail(path, f"must be a string (got {_describe(value)})")
                return None
            return value
        if kind == "schedule":
            return self.schedule(value, path)
        if kind == "integer_list":
            if not isinstance(value, (list, tuple)):
                self.fail(path, f"must be a list of step numbers (got {_describe(value)})")
                return None
            items = [_check_integer(v, f"{path}[{i}]", self.problems) for i, v in enumerate(value)]
            return None if any(v is None for v in items) else tuple(items)
        if kind == "pieces":
            return self._pieces(value, path)
        raise AssertionError(kind)  # pragma: no cover

    def _pieces(self, value: Any, path: str) -> tuple[Piece, ...] | None:
        if not isinstance(value, (list, tuple)) or not value:
            self.fail(path, f"must be a non-empty list of pieces {{schedule: SPEC, steps: N}} "
                      f"(got {_describe(value)})")
            return None
        pieces = []
        for i, item in enumerate(value):
            ipath = f"{path}[{i}]"
            if isinstance(item, Piece):
                pieces.append(item)
                continue
            if not isinstance(item, Mapping):
                self.fail(ipath, f"must be a mapping {{schedule: SPEC, steps: N}} (got {_describe(item)})")
                continue
            for key in item:
                if key not in ("schedule", "steps"):
                    self.fail(_join(ipath, key), f"unknown key for a piece{did_you_mean(key, ('schedule', 'steps'))}"
                              " (valid keys: schedule, steps)")
            if "schedule" not in item:
                self.fail(_join(ipath, "schedule"), "missing (every piece needs a schedule)")
                continue
            sched = self.schedule(item["schedule"], _join(ipath, "schedule"))
            steps = None
            if item.get("steps") is not None:
                steps = _check_integer(item["steps"], _join(ipath, "steps"), self.problems)
                if steps is not None and steps < 1:
                    self.fail(_join(ipath, "steps"), f"must be >= 1 (got {steps})")
                    steps = None
            elif i < len(value) - 1:
                self.fail(_join(ipath, "steps"), "missing (required on every piece but the last)")
            if sched is not None:
                pieces.append(Piece(sched, steps))
        return tuple(pieces) if len(pieces) == len(value) else None


#: a field left ``auto`` when the spec is built: no run budget filled it (see ``_horizon.fill_auto``)
_AUTO_UNFILLED = ("auto takes the run's budget: give the run config total: {steps: N} (or epochs, samples, "
                  "tokens), or a number")


def _expected(f: FieldSpec) -> str:
    return {"number": "expected a number", "integer": "expected a whole number",
            "boolean": "expected true or false", "string": "expected a string",
            "schedule": "expected a schedule spec", "integer_list": "expected a list of integers",
            "pieces": "expected a list of pieces"}[f.kind.rstrip("?")]


def known_types() -> list[str]:
    return [*REGISTRY, "compat"]


def build_schedule(spec: Any, path: str = "", source: str | None = None) -> Schedule:
    """Validate a spec and build its schedule; raise :class:`ConfigError` with every problem.

    >>> build_schedule({"type": "warmup_cosine", "peak_lr": 1.0, "total_steps": 10, "warmup": 0.2})(2)
    1.0
    >>> build_schedule({"type": "cosine", "peak_lr": "high", "decay_step": 5})
    Traceback (most recent call last):
    ...
    lrtempo.config._errors.ConfigError: decay_step: unknown key for type 'cosine'; did you mean 'decay_steps'? ...
    """
    builder = _Builder()
    schedule = builder.schedule(spec, path)
    if builder.problems or schedule is None:
        raise ConfigError(builder.problems or [Problem(path, "invalid schedule")], source=source)
    return schedule


def _plain(value: Any) -> Any:
    if isinstance(value, Schedule):
        return schedule_to_spec(value)
    if isinstance(value, Piece):
        out = {"schedule": schedule_to_spec(value.schedule)}
        if value.steps is not None:
            out["steps"] = value.steps
        return out
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def schedule_to_spec(schedule: Schedule) -> dict:
    """The canonical spec of a schedule: its type and every parameter, defaults included.

    Parameters that are None (not set) are left out.

    >>> from lrtempo.schedules import CosineDecay
    >>> schedule_to_spec(CosineDecay(peak_lr=1.0, decay_steps=10))
    {'type': 'cosine', 'peak_lr': 1.0, 'decay_steps': 10, 'min_lr': 0.0}
    """
    to_spec = getattr(schedule, "to_spec", None)
    if to_spec is not None:
        return to_spec()
    if isinstance(schedule, InUnit):  # the unit is a key of the spec it counts: {type: ..., unit: tokens, ...}
        inner = schedule_to_spec(schedule.schedule)
        return {"type": inner.pop("type"), "unit": schedule.unit, **inner}
    out: dict[str, Any] = {"type": schedule.type_name}
    for f in dataclasses.fields(schedule):
        if not f.init:
            continue
        value = getattr(schedule, f.name)
        if value is not None:
            out[f.name] = _plain(value)
    return out


def canonical_spec(spec: Any) -> dict:
    """The canonical form of a spec (or schedule): built, put in its one form (:meth:`Schedule.canonical`:
    idle parameters dropped, so ``{type: warmup, warmup_steps: 0, schedule: X}`` is ``X``), written out in full.

    >>> canonical_spec({"type": "scale", "factor": 1, "schedule": {"type": "constant", "lr": 0.1}})
    {'type': 'constant', 'lr': 0.1}
    """
    schedule = spec if isinstance(spec, Schedule) else build_schedule(spec)
    return schedule_to_spec(schedule.canonical())


def _digest(spec: dict) -> str:
    text = json.dumps(spec, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def spec_hash(spec: Any) -> str:
    """SHA-256 of the canonical spec as compact, key-sorted JSON: the schedule's identity.

    Two specs that build the same schedule (``warmup: 0.1`` or
    ``warmup_steps: 100`` of 1000; a warmup of 0 steps or none) have the same hash.

    >>> a = spec_hash({"type": "warmup_cosine", "peak_lr": 1.0, "total_steps": 1000, "warmup": 0.1})
    >>> a == spec_hash({"type": "warmup_cosine", "peak_lr": 1, "total_steps": 1000, "warmup_steps": 100})
    True
    """
    return _digest(canonical_spec(spec))


def spec_hashes(spec: Any) -> frozenset[str]:
    """Every hash a run may have recorded for this schedule: :func:`spec_hash`, and the hash of its written-out
    spec as written, idle parameters in (what runs recorded before canonical forms). A resume or a
    checkpoint load accepts any of them as the same schedule.

    >>> spec = {"type": "ramp", "start_lr": 1.0, "end_lr": 0.0, "steps": 4, "power": 2.0}
    >>> len(spec_hashes(spec)), spec_hash(spec) in spec_hashes(spec)
    (2, True)
    """
    schedule = spec if isinstance(spec, Schedule) else build_schedule(spec)
    return frozenset((spec_hash(schedule), _digest(schedule_to_spec(schedule))))
