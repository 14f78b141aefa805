"""The schedule base class, phases, parameter validation and step checking.

A schedule is a pure function of the optimizer-step counter (docs/contract.md):
``schedule(step)`` is the rate used by update number ``step`` (0-based) and
``schedule.at(steps)`` evaluates an array of steps with identical results.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import numbers
import re
import typing
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, ClassVar

import numpy as np

__all__ = ["MAX_STEPS", "Phase", "Schedule", "ParameterError", "Checks", "as_steps", "did_you_mean",
           "piecewise_values", "PHASE_KINDS", "PARAM_KINDS", "param_kind", "families", "NATIVE_TYPES",
           "has_finite_end"]

#: the longest schedule (and the largest step count of any parameter): 2**53.
#: Beyond it float64 cannot tell consecutive steps apart, so no schedule could
#: be exact at every step; every end, duration and boundary must lie within it.
MAX_STEPS = 2**53


class ParameterError(ValueError):
    """Invalid schedule parameters; ``problems`` lists ``(field, message)`` pairs.

    The message names every bad field at once:

    >>> raise ParameterError([("peak_lr", "must be > 0 (got -1.0)")])
    Traceback (most recent call last):
    ...
    lrtempo.schedules._base.ParameterError: peak_lr: must be > 0 (got -1.0)
    """

    def __init__(self, problems: list[tuple[str, str]]):
        self.problems = list(problems)
        super().__init__("; ".join(f"{field}: {msg}" for field, msg in self.problems))


#: what a phase is, whatever it is called: ``warmup`` (the ramp up to the peak at the start), ``hold`` (the
#: rate held: a plateau, WSD's stable phase, a constant), ``decay`` (the rate falls toward a floor: a decay
#: curve, a step level), ``cycle`` (one cycle, or one half-cycle, of a repeating schedule: restarts, cyclic)
#: and ``ramp`` (a ramp whose direction is its values': ``linear``, ``ramp``). The tail of a decay and the
#: steps past the end are no phases a schedule declares: the monitor finds them from the values and the end.
PHASE_KINDS = ("warmup", "hold", "decay", "cycle", "ramp")
#: the kind of a phase made without one, by its name (the names other libraries' schedules use)
_HOLD_NAMES = ("plateau", "stable", "constant", "hold")


def _kind_of_name(name: str) -> str:
    if name == "warmup":
        return "warmup"
    if name in _HOLD_NAMES:
        return "hold"
    return "cycle" if name.startswith("cycle") else "ramp"


@dataclass(frozen=True, slots=True)
class Phase:
    """A named step range ``[start, stop)`` of a :data:`PHASE_KINDS` ``kind``; ``stop`` is None when open-ended.

    The name is what users see; code asks the kind. A phase made without a kind (a ``compat`` schedule's,
    named after its library's phases) gets the kind its name says:

    >>> Phase("cycle 2", 20, 30).kind, Phase("stable", 5, 9).kind, Phase("level 1", 3, 6, "decay").kind
    ('cycle', 'hold', 'decay')
    """

    name: str
    start: int
    stop: int | None
    kind: str = ""

    def __post_init__(self) -> None:
        if not self.kind:
            object.__setattr__(self, "kind", _kind_of_name(self.name))
        elif self.kind not in PHASE_KINDS:
            raise ValueError(f"phase kind must be one of {', '.join(PHASE_KINDS)} (got {self.kind!r})")

    def shifted(self, offset: int) -> Phase:
        stop = None if self.stop is None else self.stop + offset
        return Phase(self.name, self.start + offset, stop, self.kind)

    def cut(self, stop: int) -> Phase:
        """The phase ending at ``stop`` at the latest."""
        return Phase(self.name, self.start, stop if self.stop is None else min(self.stop, stop), self.kind)


def did_you_mean(value: Any, choices: Any) -> str:
    """``"; did you mean 'x'?"`` for a near miss among ``choices``, else ``""``.

    >>> did_you_mean("cosin", ["cosine", "linear"])
    "; did you mean 'cosine'?"
    """
    if not isinstance(value, str):
        return ""
    close = difflib.get_close_matches(value, [str(c) for c in choices], n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


class Checks:
    """Collects parameter problems for one schedule and normalises values.

    Each check records a problem instead of raising, so that every bad field is
    reported together; :meth:`done` raises :class:`ParameterError` if any.
    Numbers are normalised in place (ints to ``int``, rates to ``float``).
    """

    __slots__ = ("obj", "problems")

    def __init__(self, obj: Any):
        self.obj = obj
        self.problems: list[tuple[str, str]] = []

    def fail(self, name: str, message: str) -> None:
        self.problems.append((name, message))

    def ok(self, *names: str) -> bool:
        """True when none of ``names`` has a problem recorded so far."""
        bad = {n for n, _ in self.problems}
        return not bad.intersection(names)

    def _set(self, name: str, value: Any) -> None:
        object.__setattr__(self.obj, name, value)

    def real(
        self,
        name: str,
        *,
        low: float | None = None,
        low_open: bool = False,
        high: float | None = None,
        high_open: bool = False,
    ) -> None:
        """A finite real number within the optional bounds."""
        value = getattr(self.obj, name)
        if not _is_real(value):
            self.fail(name, f"must be a number (got {value!r})")
            return
        try:
            value = float(value)
        except OverflowError:  # an int beyond float64's range
            self.fail(name, f"must be finite (got an integer of {abs(int(value)).bit_length()} bits)")
            return
        if not math.isfinite(value):
            self.fail(name, f"must be finite (got {value!r})")
            return
        self._set(name, value)
        if low is not None and (value <= low if low_open else value < low):
            self.fail(name, f"must be {'>' if low_open else '>='} {low:g} (got {value!r})")
        elif high is not None and (value >= high if high_open else value > high):
            self.fail(name, f"must be {'<' if high_open else '<='} {high:g} (got {value!r})")

    def integer(self, name: str, *, low: int = 0) -> None:
        """A whole number of steps in ``[low, MAX_STEPS]``; integral floats are accepted."""
        value = getattr(self.obj, name)
        if _is_real(value) and not _is_int(value):
            if math.isfinite(value) and float(value).is_integer():
                value = int(value)
            else:
                self.fail(name, f"must be a whole number of steps (got {value!r})")
                return
        if not _is_int(value):
            self.fail(name, f"must be an integer (got {value!r})")
            return
        value = int(value)
        self._set(name, value)
        if value < low:
            self.fail(name, f"must be >= {low} (got {value})")
        elif value > MAX_STEPS:
            self.fail(name, too_long(value))

    def optional_integer(self, name: str, *, low: int = 0) -> None:
        if getattr(self.obj, name) is not None:
            self.integer(name, low=low)

    def choice(self, name: str, choices: tuple[str, ...]) -> None:
        value = getattr(self.obj, name)
        if not isinstance(value, str) or value not in choices:
            valid = ", ".join(repr(c) for c in choices)
            self.fail(name, f"must be one of {valid} (got {value!r}){did_you_mean(value, choices)}")

    def boolean(self, name: str) -> None:
        value = getattr(self.obj, name)
        if not isinstance(value, (bool, np.bool_)):
            self.fail(name, f"must be true or false (got {value!r})")
        else:
            self._set(name, bool(value))

    def schedule(self, name: str) -> None:
        """A schedule counted in steps: a unit is set on the outermost schedule only, which a child follows."""
        value = getattr(self.obj, name)
        if not isinstance(value, Schedule):
            self.fail(name, f"must be a schedule (got {value!r})")
        elif value.unit != "steps":
            self.fail(name, f"must not set a unit of its own (got one counting {value.unit}): the unit is set "
                      "on the outermost schedule only, and every schedule inside counts it")

    def order(self, low_name: str, high_name: str, *, strict: bool = False) -> None:
        """``low_name <= high_name`` (``<`` when strict), if both passed their checks."""
        if not self.ok(low_name, high_name):
            return
        low, high = getattr(self.obj, low_name), getattr(self.obj, high_name)
        if low > high or (strict and low == high):
            rel = "<" if strict else "<="
            self.fail(low_name, f"must be {rel} {high_name} (got {low!r} > {high!r})"
                      if low > high else f"must be {rel} {high_name} (got {low!r} == {high!r})")

    def done(self) -> None:
        if self.problems:
            raise ParameterError(self.problems)


def too_long(steps: int, what: str = "") -> str:
    """The message for a step count beyond :data:`MAX_STEPS`.

    >>> too_long(2**63)
    'must be <= 2**53 = 9007199254740992, the longest schedule (got 9223372036854775808)'
    """
    lead = f"{what} " if what else ""
    shown: Any = steps
    if steps.bit_length() > 64:
        try:
            shown = f"about {float(steps):.4g}"
        except OverflowError:
            shown = f"an integer of {steps.bit_length()} bits"
    return f"{lead}must be <= 2**53 = {MAX_STEPS}, the longest schedule (got {shown})"


def as_steps(steps: Any) -> np.ndarray:
    """Validate an array-like of steps: non-negative integers, returned as int64.

    >>> as_steps([0, 1, 5]).tolist()
    [0, 1, 5]
    """
    arr = np.asarray(steps)
    if arr.dtype.kind == "O" and arr.size and all(_is_int(v) for v in arr.flat):
        top = max(int(v) for v in arr.flat)
        if top > _INT64_MAX:
            raise ValueError(f"steps must be < 2**63 (got {top})")
        arr = arr.astype(np.int64)
    if arr.dtype.kind == "u" and arr.size and int(arr.max()) > _INT64_MAX:
        raise ValueError(f"steps must be < 2**63 (got {int(arr.max())})")
    if arr.dtype.kind == "b" or (arr.dtype.kind not in "iu" and arr.size):
        if arr.dtype.kind == "f" and np.all(np.isfinite(arr)) and np.all(arr == np.floor(arr)):
            if arr.max() >= 2.0**63:
                raise ValueError(f"steps must be < 2**63 (got {float(arr.max())!r})")
            arr = arr.astype(np.int64)
        else:
            raise ValueError(f"steps must be integers (got dtype {arr.dtype})")
    arr = arr.astype(np.int64, copy=False)
    if arr.size and arr.min() < 0:
        raise ValueError(f"steps must be >= 0 (got {int(arr.min())})")
    return arr


_CHUNK = 1 << 15
_INT64_MAX = 2**63 - 1


def _check_step(step: Any, end: int | None) -> int:
    """A valid step as an ``int``; past int64's range an ended schedule's end (it holds its value)."""
    if isinstance(step, int) and not isinstance(step, bool):
        if step < 0:
            raise ValueError(f"step must be >= 0 (got {step})")
        if step > _INT64_MAX:
            if end is None:
                raise ValueError(f"step must be < 2**63 (got {step})")
            return end
        return step
    if _is_int(step):
        return _check_step(int(step), end)
    raise TypeError(f"step must be a non-negative integer (got {step!r})")


#: the type of a family's parameter (its field's type hint) -> the value kind config reads and writes
#: (``?``: may be null). ``tuple[Piece, ...]`` is added where ``Piece`` is defined.
PARAM_KINDS: dict[Any, str] = {
    float: "number", float | None: "number?",
    int: "integer", int | None: "integer?",
    bool: "boolean", str: "string",
    tuple[int, ...]: "integer_list",
}


def param_kind(hint: Any) -> str | None:
    """The value kind of a parameter with type hint ``hint``, or None when config cannot read it.

    >>> param_kind(float), param_kind(int | None), param_kind(list)
    ('number', 'integer?', None)
    """
    if isinstance(hint, type) and issubclass(hint, Schedule):
        return "schedule"
    try:
        return PARAM_KINDS.get(hint)
    except TypeError:  # an unhashable hint
        return None


#: every family by its ``type`` name, in the order the classes were made (see :class:`Schedule`)
_FAMILIES: dict[str, type[Schedule]] = {}
#: families that live apart from the native ones: config handles them on its own
_APART = ("compat",)
_TYPE_NAME = re.compile(r"[a-z][a-z0-9_]*")


def families() -> Mapping[str, type[Schedule]]:
    """Every registered family (``compat`` included, once imported) by type name: a live, read-only view."""
    return MappingProxyType(_FAMILIES)


class _NativeTypes(Mapping):
    """The native families by type name: the registry less ``compat``, live (a family made later is in it)."""

    def __getitem__(self, name: str) -> type[Schedule]:
        if name in _APART:
            raise KeyError(name)
        return _FAMILIES[name]

    def __iter__(self) -> Iterator[str]:
        return (name for name in list(_FAMILIES) if name not in _APART)

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __repr__(self) -> str:
        return f"NATIVE_TYPES({', '.join(self)})"


#: every native schedule class, by its config ``type`` name (live: read from the registry)
NATIVE_TYPES: Mapping[str, type[Schedule]] = _NativeTypes()


def _contract_problems(cls: type) -> list[str]:
    """What a family's class breaks of the contract config relies on (empty when it keeps it)."""
    problems = []
    name = cls.type_name
    if not isinstance(name, str) or not _TYPE_NAME.fullmatch(name):
        problems.append(f"type_name must be lower-case letters, digits and _ (got {name!r})")
    if not cls.__dataclass_params__.frozen:  # type: ignore[attr-defined]
        problems.append("must be @dataclass(frozen=True, slots=True)")
    doc = (cls.__doc__ or "").strip()
    if not doc or doc.startswith(f"{cls.__name__}("):  # none, or the signature @dataclass writes in its place
        problems.append("needs a docstring (its first paragraph describes the type in the schema and docs)")
    try:
        hints = typing.get_type_hints(cls)
    except Exception as exc:  # noqa: BLE001 - any failure to resolve the hints is the class's problem
        return [*problems, f"its field annotations must resolve at module level ({exc})"]
    kinds = {f.name: param_kind(hints.get(f.name)) for f in dataclasses.fields(cls) if f.init}
    defaults = {f.name: f.default for f in dataclasses.fields(cls) if f.init}
    if name not in _APART:  # config reads compat's parameters on its own
        problems += [f"field {n!r}: config cannot read its type {hints.get(n)!r} (known: {_known_hints()})"
                     for n, k in kinds.items() if k is None]
    if "type" in kinds:
        problems.append("no field may be called 'type' (the spec key that names the family)")
    for field, choices in cls.field_choices.items():
        if kinds.get(field) != "string":
            problems.append(f"field_choices: {field!r} is not a str field")
        elif not choices or not isinstance(choices, tuple) or not all(isinstance(c, str) for c in choices):
            problems.append(f"field_choices[{field!r}] must be a non-empty tuple of strings")
        elif defaults[field] is not dataclasses.MISSING and defaults[field] not in choices:
            problems.append(f"field_choices[{field!r}] lacks the field's default {defaults[field]!r}")
    if cls.phase_kind not in PHASE_KINDS:
        problems.append(f"phase_kind must be one of {', '.join(PHASE_KINDS)} (got {cls.phase_kind!r})")
    if cls.start_field is not None and kinds.get(cls.start_field) != "number":
        problems.append(f"start_field: {cls.start_field!r} is not a float field")
    problems += [f"period_fields: {f!r} is not an int or tuple[int, ...] field" for f in cls.period_fields
                 if kinds.get(f) not in ("integer", "integer?", "integer_list")]
    for alias, field in cls.fraction_fields.items():
        if kinds.get(field) != "integer" or kinds.get("total_steps") != "integer":
            problems.append(f"fraction_fields: {alias!r} needs int fields {field!r} and 'total_steps'")
        elif alias in kinds:
            problems.append(f"fraction_fields: {alias!r} is also a field name")
    return problems


def _known_hints() -> str:
    return ", ".join(sorted({getattr(h, "__name__", None) or str(h) for h in PARAM_KINDS} | {"Schedule"}))


def _register(cls: type[Schedule]) -> None:
    """Check a family's class against the contract and add it to the registry (TypeError if it breaks it)."""
    problems = _contract_problems(cls)
    old = _FAMILIES.get(cls.type_name)
    if old is not None and (old.__module__, old.__name__) != (cls.__module__, cls.__name__):
        problems.append(f"type_name {cls.type_name!r} is taken by {old.__module__}.{old.__qualname__}")
    if problems:
        raise TypeError(f"schedule family {cls.__module__}.{cls.__name__}: " + "; ".join(problems))
    _FAMILIES[cls.type_name] = cls  # a class made again (its module reloaded) replaces itself


class _Finishing(type):
    """The schedules' metaclass: constructing a schedule runs its finishing step after ``__init__``."""

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        obj = super().__call__(*args, **kwargs)
        if "type_name" in cls.__dict__ and _FAMILIES.get(cls.type_name) is not cls:
            raise TypeError(f"{cls.__qualname__} sets type_name {cls.type_name!r} but is not registered: "
                            "a family is a @dataclass(frozen=True, slots=True)")
        obj._finish()
        return obj


class Schedule(metaclass=_Finishing):
    """Base class of every schedule: a pure function of the step.

    * ``schedule(step)`` -> float, ``schedule.at(steps)`` -> float64 array, equal bit for bit.
    * ``end_step``: the first step from which the value never changes again
      (the schedule's end), or None when it changes forever.
    * ``phases(horizon)``: named step ranges covering ``[0, horizon)``, each of a :data:`PHASE_KINDS` kind
      (what monitor, lint and analysis go by; the names are for people).

    **The contract of a family** (checked where it can be; a class that breaks
    a checked rule is refused with a ``TypeError`` when it is made):

    1. It is a ``@dataclass(frozen=True, slots=True)`` subclass whose fields
       are its parameters, with the same names in config files. Each field's
       type hint is one :data:`PARAM_KINDS` knows (float, int, bool, str, a
       ``Schedule``, ``tuple[int, ...]``, ``X | None``...): config reads and
       validates the field by it, and ``lrtempo schema`` describes it by it.
    2. It sets the class variable ``type_name`` (its config ``type``); the class
       is then registered under it when it is made (:func:`families`), and
       config, lint, ``lrtempo schema`` and the CLI find it there. Optional
       class variables config reads: ``field_choices`` (str field -> the
       values it may take, the default among them) and ``fraction_fields``
       (config key -> int field that may be given as a fraction of the
       family's ``total_steps``), and for lint ``start_field`` and
       ``period_fields``. The first paragraph of its docstring is its
       description. Intermediate bases set no ``type_name``.
    3. ``__post_init__`` validates every field with :class:`Checks` and sets
       what evaluation needs (``object.__setattr__`` on ``init=False``
       fields). Nothing changes after construction: evaluating never writes to
       the schedule. The finishing step (checking the end against
       :data:`MAX_STEPS`, binding the one-step evaluator) runs after
       ``__init__`` by itself.
    4. It implements ``_values(steps)`` (an int64 array of steps up to the
       end -> float64 array; past the end the base class holds the value) and
       the ``end_step`` property. It overrides ``_phases(horizon)`` unless one
       phase of its class variable ``phase_kind`` describes it; every phase
       has a kind. It may override ``_make_f`` with a faster one-step closure
       that does the same operations, and ``_endless_horizon``. Ramp formulas
       come from :mod:`lrtempo.schedules._shapes`; any other formula is in the
       family's own docstring, with a doctest.

    Combinators call a child's ``_f(step)`` and ``_at_steps(steps)``: the unchecked paths.
    """

    __slots__ = ("_f",)
    #: the ``type`` name of this schedule in config files (set by every family; see the contract above)
    type_name: ClassVar[str] = ""
    #: str field -> the values it may take
    field_choices: ClassVar[Mapping[str, tuple[str, ...]]] = {}
    #: durations a config may give as a fraction of ``total_steps`` (config key -> int field)
    fraction_fields: ClassVar[Mapping[str, str]] = {}
    #: the kind of the one phase the default ``_phases`` gives
    phase_kind: ClassVar[str] = "ramp"
    #: the float field that sets the rate at step 0 (a warmup's start), if one does (lint's LR005 names it)
    start_field: ClassVar[str | None] = None
    #: the int fields that are restart periods, step sizes or milestones (lint's LR008 checks them)
    period_fields: ClassVar[tuple[str, ...]] = ()
    #: what the position (the schedule's argument) counts: ``steps`` (updates applied) for every schedule but
    #: an :class:`~lrtempo.schedules.InUnit` of ``samples`` or ``tokens`` (see :mod:`._units`)
    unit: ClassVar[str] = "steps"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # ``@dataclass(slots=True)`` makes the class anew with its fields: that is the one registered
        if "type_name" in cls.__dict__ and "__dataclass_fields__" in cls.__dict__:
            _register(cls)

    def __call__(self, step: int) -> float:
        if step.__class__ is int and 0 <= step <= _INT64_MAX:  # the hot path: one check, one call
            return self._f(step)
        return self._f(_check_step(step, self.end_step))

    def __reduce__(self):
        # rebuild from the parameters (the bound evaluator is not picklable)
        return (type(self), tuple(getattr(self, f.name) for f in dataclasses.fields(self) if f.init))

    def canonical(self) -> Schedule:
        """The one form of this schedule: its child schedules in their canonical forms, then the parameters
        that change nothing dropped (:meth:`_simplified`: a warmup of 0 steps, a scale by 1, ...).

        Its values, phases and end are this schedule's at every step, bit for bit; config hashes it, so two
        ways of writing one schedule have one ``spec_hash``.

        >>> from lrtempo.schedules import CosineDecay, Scale, Warmup
        >>> c = CosineDecay(peak_lr=1.0, decay_steps=10)
        >>> Warmup(Scale(c, 1.0), 0).canonical() == c
        True
        """
        changes = {}
        for f in dataclasses.fields(self) if dataclasses.is_dataclass(self) else ():
            value = getattr(self, f.name) if f.init else None
            if isinstance(value, Schedule):
                changes[f.name] = value.canonical()
            elif isinstance(value, tuple) and value and all(hasattr(v, "schedule") for v in value):
                changes[f.name] = tuple(dataclasses.replace(v, schedule=v.schedule.canonical()) for v in value)
        changed = {k: v for k, v in changes.items() if v != getattr(self, k)}
        return (dataclasses.replace(self, **changed) if changed else self)._simplified()

    def _simplified(self) -> Schedule:
        """This schedule without the parameters that change nothing (children already canonical); a family
        whose parameters can be idle overrides it."""
        return self

    def _finish(self) -> None:
        """Check the end against :data:`MAX_STEPS` and bind the scalar evaluator, once.

        Run after ``__init__`` by the metaclass. Combinators check their own
        sums first (naming the field); this is the guard behind them.
        """
        try:
            self._f  # noqa: B018 - bound already (a class that still calls this itself)
            return
        except AttributeError:
            pass
        end = self.end_step
        if end is not None and end > MAX_STEPS:
            raise ParameterError([("", too_long(end, "the schedule's end step"))])
        object.__setattr__(self, "_f", self._make_f())

    def _make_f(self) -> Any:
        """A closure ``int -> float`` for one step, holding the value past the end.

        By default it is the array path on one element, so the two agree bit for
        bit by construction. (NumPy may route a ufunc on Python scalars through
        other code than on arrays: ``np.power(0.2, 2)`` and ``np.power(0.2,
        [2])`` differ by an ulp.) Schedules override this with a faster closure
        only where the arithmetic is the same operations in the same order.
        """
        end, values = self.end_step, self._values

        def one(k: int) -> float:
            if end is not None and k > end:
                k = end
            return float(values(np.array([k], dtype=np.int64))[0])

        return one

    def at(self, steps: Any) -> np.ndarray:
        arr = as_steps(steps)
        flat = arr.reshape(-1)
        if flat.size <= _CHUNK:
            return self._at_steps(flat).reshape(arr.shape)
        # Cache-sized chunks: the intermediate arrays stay in cache, which
        # makes a long evaluation about twice as fast as one pass per ufunc.
        out = np.empty(flat.size, dtype=np.float64)
        for lo in range(0, flat.size, _CHUNK):
            out[lo:lo + _CHUNK] = self._at_steps(flat[lo:lo + _CHUNK])
        return out.reshape(arr.shape)

    # -- unchecked evaluation, used by combinators --------------------------
    def _at_steps(self, steps: np.ndarray) -> np.ndarray:
        end = self.end_step
        if end is not None and steps.size and steps.max() > end:
            steps = np.minimum(steps, end)
        return np.asarray(self._values(steps), dtype=np.float64)

    # -- to implement ---------------------------------------------------
    def _values(self, steps: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def end_step(self) -> int | None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _phases(self, horizon: int) -> list[Phase]:
        """One phase named after the type, of the class's ``phase_kind``, to the end."""
        return [Phase(self.type_name or type(self).__name__.lower(), 0, self.end_step, self.phase_kind)]

    # -- derived ----------------------------------------------------------
    @property
    def horizon(self) -> int:
        """A step range that shows the whole schedule: its end step, or for an
        endless schedule a few of its periods or time constants (at least 1, at
        most :data:`MAX_STEPS`)."""
        end = self.end_step
        return max(1, end if end is not None else min(self._endless_horizon(), MAX_STEPS))

    def _endless_horizon(self) -> int:
        return 1000

    @property
    def final_value(self) -> float | None:
        """The value held from ``end_step`` on, or None for an endless schedule."""
        end = self.end_step
        return None if end is None else self(end)

    def phases(self, horizon: int | None = None) -> tuple[Phase, ...]:
        """Named phases starting before ``horizon`` (default: the end step + 1)."""
        end = self.end_step
        if horizon is None:
            if end is None:
                raise ValueError("this schedule has no end: give a horizon")
            horizon = end + 1
        out = [p for p in self._phases(horizon) if p.start < horizon and
               (p.stop is None or p.stop > p.start)]
        return tuple(out)

    def boundaries(self, horizon: int | None = None) -> tuple[int, ...]:
        """Every step where a phase starts or ends, ascending, within the horizon."""
        marks = {0}
        for p in self.phases(horizon):
            marks.add(p.start)
            if p.stop is not None:
                marks.add(p.stop)
        end = self.end_step
        if end is not None:
            marks.add(end)
        if horizon is not None:
            marks = {m for m in marks if m <= horizon}
        return tuple(sorted(marks))


def has_finite_end(schedule: Schedule) -> bool:
    """Whether ``schedule`` is made to end: an ``end_step`` above 0 and every phase closed before it. A
    schedule whose last phase runs on forever (a constant, a warmup into one, a decay with no end) holds its
    value by design, and one whose end is step 0 never changes: a run is never past the end of either.

    >>> from lrtempo.schedules import Constant, Warmup, WarmupCosine
    >>> has_finite_end(WarmupCosine(peak_lr=1.0, total_steps=100)), has_finite_end(Constant(0.1))
    (True, False)
    >>> has_finite_end(Warmup(Constant(0.1), warmup_steps=10))
    False
    """
    end = schedule.end_step
    return end is not None and end > 0 and all(p.stop is not None for p in schedule.phases(end + 1))


class Composed(Schedule):
    """A schedule that is a composition of others: ``__post_init__`` checks the fields and sets ``_inner``,
    which does the evaluation (a subclass gives its own phases)."""

    # the composition is a slot, not a dataclass field: it is no parameter
    __slots__ = ("_inner",)

    @property
    def end_step(self) -> int | None:
        return self._inner.end_step  # type: ignore[attr-defined]

    def _make_f(self):
        return self._inner._f  # type: ignore[attr-defined]

    def _endless_horizon(self) -> int:
        return self._inner.horizon  # type: ignore[attr-defined]

    def _values(self, steps: np.ndarray) -> np.ndarray:
        return self._inner._at_steps(steps)  # type: ignore[attr-defined]


def piecewise_values(
    steps: np.ndarray, starts: tuple[int, ...], evaluators: tuple[Any, ...]
) -> np.ndarray:
    """Evaluate ``evaluators[i](steps - starts[i])`` on steps in ``[starts[i], starts[i+1])``.

    ``starts`` is ascending and begins at 0. Sorted input (the usual
    ``np.arange``) is split into contiguous slices, anything else by masks.
    """
    if len(starts) == 1:
        return evaluators[0](steps - starts[0])
    out = np.empty(steps.shape, dtype=np.float64)
    if steps.size == 0:
        return out
    if steps.size < 2 or bool(np.all(steps[1:] >= steps[:-1])):
        cuts = np.searchsorted(steps, np.asarray(starts[1:], dtype=np.int64), side="left")
        lo = 0
        for start, ev, hi in zip(starts, evaluators, [*cuts.tolist(), steps.size]):
            if hi > lo:
                out[lo:hi] = ev(steps[lo:hi] - start)
            lo = max(lo, hi)
        return out
    piece = np.zeros(steps.shape, dtype=np.intp)
    for start in starts[1:]:
        piece += steps >= start
    for i, (start, ev) in enumerate(zip(starts, evaluators)):
        sel = np.flatnonzero(piece == i)
        if sel.size:
            out[sel] = ev(steps[sel] - start)
    return out
