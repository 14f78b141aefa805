"""Shared pieces of the compat layer: keyword checking and the evaluator record."""

from __future__ import annotations

import math
import numbers
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._base import MAX_STEPS, did_you_mean

__all__ = ["CompatError", "Impl", "Kwargs", "MISSING", "build", "steps_horizon"]

MISSING = object()


def _is_int_list(value: Any) -> bool:
    """A list or tuple of ints (no bools)."""
    return isinstance(value, (list, tuple)) and all(isinstance(v, int) and not isinstance(v, bool) for v in value)


class CompatError(ValueError):
    """A compat spec the library itself would reject; ``problems`` are ``(field, message)``."""

    def __init__(self, problems: list[tuple[str, str]]):
        self.problems = problems
        super().__init__("; ".join(f"{f}: {m}" if f else m for f, m in problems))


@dataclass(frozen=True)
class Impl:
    """A compat schedule ready to evaluate.

    ``values(k)`` maps an int64 array of steps to float64 rates. ``horizon``
    is the step where the library's schedule nominally ends (for display).
    ``last_valid_step`` is set where the library raises past some step.
    ``momentum`` maps steps to the momentum the library sets alongside the rate
    (torch's ``cycle_momentum``), or is None where it sets none.
    """

    values: Callable[[np.ndarray], np.ndarray]
    horizon: int
    last_valid_step: int | None = None
    phases: tuple[tuple[str, int, int | None], ...] = ()
    momentum: Callable[[np.ndarray], np.ndarray] | None = None


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


class Kwargs:
    """Reads a library's keyword arguments, checking types, recording problems.

    ``signature`` lists every keyword the library function accepts (with the
    defaults used when absent); unknown keywords are problems, as they would be
    a ``TypeError`` in the library.
    """

    def __init__(self, kwargs: Mapping[str, Any], signature: Mapping[str, Any], where: str):
        self.raw = dict(kwargs)
        self.signature = dict(signature)
        self.where = where
        self.problems: list[tuple[str, str]] = []
        for key in self.raw:
            if key not in self.signature:
                self.fail(key, f"{where} has no keyword {key!r}{did_you_mean(key, self.signature)} "
                          f"(its keywords: {', '.join(self.signature) or 'none'})")

    def fail(self, name: str, message: str) -> None:
        self.problems.append((f"kwargs.{name}" if name else "kwargs", message))

    def _get(self, name: str) -> Any:
        value = self.raw.get(name, self.signature[name])
        if value is MISSING:
            self.fail(name, f"missing: {self.where} requires it")
        return value

    def number(self, name: str, *, allow_none: bool = False) -> Any:
        value = self._get(name)
        if value is MISSING or (value is None and allow_none):
            return None
        if not _is_number(value):
            self.fail(name, f"must be a number (got {value!r})")
            return None
        if isinstance(value, numbers.Integral) and abs(value) > sys.float_info.max:
            self.fail(name, f"must be finite (got an integer of {abs(int(value)).bit_length()} bits)")
            return None
        if not math.isfinite(value):
            self.fail(name, f"must be finite (got {value!r})")
            return None
        return value

    def integer(self, name: str, *, allow_none: bool = False) -> Any:
        value = self._get(name)
        if value is MISSING or (value is None and allow_none):
            return None
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if not isinstance(value, int) or isinstance(value, bool):
            self.fail(name, f"must be an integer (got {value!r})")
            return None
        if abs(value) > MAX_STEPS:
            self.fail(name, f"must be within -2**53..2**53, the longest schedule (got {value})")
            return None
        return value

    def _valid(self, name: str, test: Callable[[Any], bool], message: Callable[[Any], str]) -> Any:
        """The value of ``name`` if ``test`` passes it (None when absent); else ``message(value)`` is recorded."""
        value = self._get(name)
        if value is MISSING:
            return None
        if not test(value):
            self.fail(name, message(value))
            return None
        return value

    def boolean(self, name: str) -> Any:
        return self._valid(name, lambda v: isinstance(v, bool), lambda v: f"must be true or false (got {v!r})")

    def string(self, name: str, choices: tuple[str, ...]) -> Any:
        return self._valid(name, lambda v: v in choices, lambda v: f"must be one of {', '.join(map(repr, choices))} "
                           f"(got {v!r}){did_you_mean(v, choices)}")

    def integer_list(self, name: str) -> Any:
        value = self._valid(name, _is_int_list, lambda v: f"must be a list of integers (got {v!r})"[:300])
        if value is None:
            return None
        if any(abs(v) > MAX_STEPS for v in value):
            self.fail(name, "every entry must be within -2**53..2**53, the longest schedule")
            return None
        return list(value)

    def raw_value(self, name: str) -> Any:
        value = self._get(name)
        return None if value is MISSING else value

    def done(self) -> None:
        if self.problems:
            raise CompatError(self.problems)


def build(library: str, table: Mapping[str, Any], name: Any, kwargs: Any, *args: Any) -> Impl:
    """Look ``name`` up in a library's table and build it from ``kwargs`` (and ``base_lr`` in ``args``)."""
    if not isinstance(name, str) or name not in table:
        raise CompatError([("name", f"unknown {library} schedule {name!r}{did_you_mean(name, table)} "
                                    f"(supported: {', '.join(table)})")])
    if not isinstance(kwargs, Mapping):
        raise CompatError([("kwargs", f"must be a mapping of {name}'s keyword arguments (got {kwargs!r})")])
    signature, builder = table[name]
    return builder(Kwargs(kwargs, signature, name), *args)


def steps_horizon(*candidates: Any) -> int:
    """The largest positive integer among the candidates (at least 1)."""
    best = 1
    for c in candidates:
        if _is_number(c) and abs(c) <= MAX_STEPS:
            best = max(best, int(c))
    return min(best, MAX_STEPS)


class Context:
    """Reads a compat spec's ``context`` (what a schedule needs beyond its kwargs), recording problems.

    ``keys`` maps every key the library's context takes to a one-line description used in errors.
    """

    def __init__(self, context: Mapping[str, Any], library: str, keys: Mapping[str, str]):
        self.raw = dict(context)
        self.library = library
        self.keys = dict(keys)
        self.problems: list[tuple[str, str]] = []
        for key in self.raw:
            if key not in self.keys:
                self.problems.append((f"context.{key}", f"unknown key{did_you_mean(key, self.keys)} ({library}'s "
                                                        f"context takes: {', '.join(self.keys)})"))

    def count(self, name: str, default: Any = MISSING, minimum: int = 1) -> Any:
        """A whole number from ``minimum`` to 2**53; ``default`` when absent (a problem when MISSING)."""
        value = self.raw.get(name, default)
        if value is MISSING:
            self.problems.append((f"context.{name}", f"missing: {self.keys[name]}"))
            return None
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if not isinstance(value, int) or isinstance(value, bool) or not minimum <= value <= MAX_STEPS:
            self.problems.append((f"context.{name}", f"must be a whole number from {minimum} to 2**53 "
                                                     f"(got {value!r})"[:200]))
            return None
        return value

    def done(self) -> None:
        if self.problems:
            raise CompatError(self.problems)
