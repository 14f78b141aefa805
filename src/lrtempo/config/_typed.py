"""Typed settings: frozen dataclasses read from a config mapping field by field, every problem at once.

A settings class (``RunConfig``, ``OptimizerConfig``, ``MonitorSettings``) is a
frozen, keyword-only dataclass whose fields are declared with :func:`setting`:
the default, a one-line ``doc`` and the rules the value obeys. The field's real
type hint says what kind of value it takes:

==========================  ==========================================================
hint                        a config value must be
==========================  ==========================================================
``bool``                    ``true`` or ``false``
``int``                     a whole number (``2.0`` is read as 2)
``float``                   a finite number
``str``                     a string (one of ``choices`` where given)
``tuple[float, float]``     a list of that many numbers, each checked as its item
``tuple[int, ...]``         a list of any length, each item checked
``dict``                    a mapping, kept as written
a settings class            a mapping of that class's settings
``Schedule``                a schedule spec, built
``X | None``                an ``X``, or null
==========================  ==========================================================

Rules (keys of :func:`setting`): ``minimum``, ``exclusive_minimum``, ``maximum``,
``exclusive_maximum`` (numbers, and each item of a tuple), ``choices`` (strings;
a tuple, or a function returning one, for a registry known only when asked),
``check`` (a function returning a problem's text, or None), ``words`` (strings a number field also takes
as themselves, such as ``all``), ``section`` (on a
``dict | None`` field: ``true``, ``false`` or a mapping of that settings class's
keys, kept as written), ``derived`` (not a config key: computed by the
caller) and ``computed`` (the default is worked out from other keys, as the
doc says, so the schema shows none). A key given as null takes the field's default (on an ``X | None``
field null is None). :func:`read_settings` walks a mapping against a class and collects
every :class:`Problem` with its field path (``optimizer.betas[1]: must be < 1
(got 1.0)``); :func:`check_settings`, from a class's ``__post_init__``, applies
the same rules to the values it was built with. The JSON Schema of a settings
class (:func:`lrtempo.config.settings_schema`) is generated from the same fields.

>>> from dataclasses import dataclass
>>> @dataclass(frozen=True, kw_only=True)
... class Demo:
...     config_title = "a demo"
...     every: int = setting(5, doc="updates between two looks", minimum=1)
>>> problems = []
>>> read_settings(Demo, {"every": 0, "evry": 1}, "demo", problems)
{}
>>> [str(p) for p in problems]  # doctest: +NORMALIZE_WHITESPACE
["demo.evry: unknown key in a demo; did you mean 'every'? (valid keys: every)",
 'demo.every: must be >= 1 (got 0)']
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any

from .._util import did_you_mean
from ..schedules import Schedule
from ._build import build_schedule
from ._errors import ConfigError, Problem
from ._values import _brief, _check_number, _describe, _join

__all__ = ["setting", "settings_fields", "read_settings", "build_settings", "missing_settings",
           "check_settings", "read_value", "one_of"]

_RULES = ("minimum", "exclusive_minimum", "maximum", "exclusive_maximum", "choices", "check", "section", "derived",
          "computed", "words")


def setting(default: Any = dataclasses.MISSING, *, doc: str, factory: Callable[[], Any] | None = None,
            compare: bool = True, **rules: Any) -> Any:
    """A settings field: its default (or ``factory``), its one-line ``doc`` and its rules (see the module)."""
    unknown = set(rules) - set(_RULES)
    if unknown:
        raise TypeError(f"unknown setting rules: {sorted(unknown)}")
    kwargs: dict[str, Any] = {"metadata": {"doc": doc, **rules}, "compare": compare}
    if factory is not None:
        kwargs["default_factory"] = factory
    elif default is not dataclasses.MISSING:
        kwargs["default"] = default
    return dataclasses.field(**kwargs)


@functools.cache
def settings_fields(cls: type) -> tuple[tuple[dataclasses.Field, Any], ...]:
    """``(field, resolved type hint)`` of every field of a settings class, in declaration order."""
    hints = typing.get_type_hints(cls)
    return tuple((f, hints[f.name]) for f in dataclasses.fields(cls))


def _keys(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f, _ in settings_fields(cls) if not f.metadata.get("derived"))


def _optional(hint: Any) -> tuple[Any, bool]:
    """``(X, True)`` for ``X | None``, else ``(hint, False)``."""
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(hint)) == 2:
            return args[0], True
    return hint, False


def one_of(choices: tuple[str, ...]) -> str:
    """``'a'``, ``'a' or 'b'``, ``'a', 'b' or 'c'``.

    >>> one_of(("cpu", "cuda", "auto"))
    "'cpu', 'cuda' or 'auto'"
    """
    quoted = [repr(c) for c in choices]
    return quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} or {quoted[-1]}"


def _choices(meta: Mapping) -> tuple[str, ...] | None:
    choices = meta.get("choices")
    return tuple(choices()) if callable(choices) else choices


def _bounds(value: Any, meta: Mapping, path: str, problems: list[Problem], given: Any) -> Any:
    """``value`` if it is within the field's bounds, else None (and the problem, quoting ``given``)."""
    for rule, fails, op in (("minimum", lambda v, b: v < b, ">="), ("exclusive_minimum", lambda v, b: v <= b, ">"),
                            ("maximum", lambda v, b: v > b, "<="), ("exclusive_maximum", lambda v, b: v >= b, "<")):
        bound = meta.get(rule)
        if bound is not None and fails(value, bound):
            problems.append(Problem(path, f"must be {op} {bound:g} (got {given!r})"))
            return None
    return value


def read_value(hint: Any, meta: Mapping, value: Any, path: str, problems: list[Problem]) -> Any:
    """The value a field of type ``hint`` (with rules ``meta``) takes from ``value``, or None and the problem.

    Numbers come back as the hint's type (``2.0`` as 2 for an ``int``, ``1`` as 1.0 for a ``float``),
    lists as tuples, a settings class's mapping as its instance.
    """
    hint, optional = _optional(hint)
    if value is None:
        if not optional:
            problems.append(Problem(path, "must not be empty (null)"))
        return None
    if meta.get("section") is not None:
        return _section(meta["section"], value, path, problems)
    words = meta.get("words", ())
    if words and isinstance(value, str):
        if value in words:
            return value
        problems.append(Problem(path, f"must be a number or {one_of(words)} (got {_brief(value)})"
                                      f"{did_you_mean(value, words)}"))
        return None
    before = len(problems)
    out = _typed(hint, meta, value, path, problems)
    if out is None or len(problems) > before:
        return None
    check = meta.get("check")
    message = check(out) if check is not None else None
    if message is not None:
        problems.append(Problem(path, f"{message} (got {_brief(value)})"))
        return None
    return out


def _typed(hint: Any, meta: Mapping, value: Any, path: str, problems: list[Problem]) -> Any:
    """The type check of :func:`read_value` (bounds and choices included), by the hint's kind."""
    origin = typing.get_origin(hint)
    if hint is bool:
        if not isinstance(value, bool):
            problems.append(Problem(path, f"must be true or false (got {_describe(value)})"))
            return None
        return value
    if hint in (int, float):
        return _number(hint, meta, value, path, problems)
    if hint is str:
        return _string(meta, value, path, problems)
    if origin is tuple:
        return _tuple(typing.get_args(hint), meta, value, path, problems)
    if hint is dict or origin is dict:
        if not isinstance(value, Mapping):
            problems.append(Problem(path, f"must be a mapping (got {_describe(value)})"))
            return None
        return dict(value)
    if dataclasses.is_dataclass(hint):
        if isinstance(value, hint):
            return value
        return build_settings(hint, value, path, problems)
    if hint is Schedule:
        return _schedule(value, path, problems)
    raise TypeError(f"{path}: no reader for a field of type {hint!r}")  # pragma: no cover - a programming error


def _number(hint: type, meta: Mapping, value: Any, path: str, problems: list[Problem]) -> Any:
    given = _check_number(value, path, problems)
    if given is None:
        return None
    if hint is int and float(given) != int(given):
        problems.append(Problem(path, f"must be a whole number (got {given!r})"))
        return None
    return _bounds(int(given) if hint is int else float(given), meta, path, problems, given)


def _string(meta: Mapping, value: Any, path: str, problems: list[Problem]) -> str | None:
    choices = _choices(meta)
    if choices is not None and value not in choices:
        hint = did_you_mean(value, choices) if isinstance(value, str) else ""
        problems.append(Problem(path, f"must be {one_of(choices)} (got {_brief(value)}){hint}"))
        return None
    if not isinstance(value, str):
        problems.append(Problem(path, f"must be a string (got {_describe(value)})"))
        return None
    return value


def _tuple(items: tuple, meta: Mapping, value: Any, path: str, problems: list[Problem]) -> tuple | None:
    if len(items) == 2 and items[1] is Ellipsis:  # tuple[X, ...]: a list of any length
        if not isinstance(value, (list, tuple)):
            problems.append(Problem(path, f"must be a list (got {_describe(value)})"))
            return None
        items = (items[0],) * len(value)
    if not isinstance(value, (list, tuple)) or len(value) != len(items):
        problems.append(Problem(path, f"must be a list of {len(items)} numbers (got {_describe(value)})"))
        return None
    out = [_typed(t, meta, v, f"{path}[{i}]", problems) for i, (t, v) in enumerate(zip(items, value))]
    return None if any(v is None for v in out) else tuple(out)


def _schedule(value: Any, path: str, problems: list[Problem]) -> Any:
    """The schedule a spec builds (its problems added, with their paths under ``path``)."""
    if isinstance(value, Schedule):
        return value
    try:
        return build_schedule(value, path)
    except ConfigError as exc:
        problems.extend(exc.problems)
        return None


def _section(cls: type, value: Any, path: str, problems: list[Problem]) -> dict | None:
    """A switchable section: ``true`` (the defaults: ``{}``), ``false`` (off: None) or a mapping of ``cls``'s
    settings, kept as written (each value checked and normalised)."""
    if value is True:
        return {}
    if value is False:
        return None
    if not isinstance(value, Mapping):
        problems.append(Problem(path, f"must be true, false or a mapping of {cls.config_title} "
                                      f"(got {_describe(value)})"))
        return {}
    out = read_settings(cls, value, path, problems)
    # kept as written, in the order written; a number where a float goes stays the number given (``1`` is not
    # rewritten ``1.0``), so that a run's config.yaml reads back to the same bytes
    return {k: value[k] if isinstance(out[k], float) else out[k] for k in value if k in out}


def read_settings(cls: type, data: Mapping, path: str, problems: list[Problem], *,
                  skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """The settings ``data`` gives for ``cls``, checked: ``{name: value}`` of the keys it has that passed.

    Every unknown key and every bad value is added to ``problems`` with its path; the fields named in
    ``skip`` are left to the caller.
    """
    keys = _keys(cls)
    for key in data:
        if key not in keys:
            problems.append(Problem(_join(path, key), f"unknown key in {cls.config_title}{did_you_mean(key, keys)} "
                                                      f"(valid keys: {', '.join(keys)})"))
    out = {}
    for f, hint in settings_fields(cls):
        if f.name in skip or f.metadata.get("derived") or f.name not in data:
            continue
        if data[f.name] is None and not _optional(hint)[1]:
            continue  # null: the default
        fpath = _join(path, f.name)
        before = len(problems)
        value = read_value(hint, f.metadata, data[f.name], fpath, problems)
        if len(problems) == before:
            out[f.name] = value
    return out


def build_settings(cls: type, data: Any, path: str, problems: list[Problem]) -> Any:
    """An instance of ``cls`` from a mapping (null: the defaults), or None with the problems added."""
    if not isinstance(data, Mapping):
        problems.append(Problem(path, f"must be a mapping of {cls.config_title} (got {_describe(data)})"))
        return None
    before = len(problems)
    kwargs = read_settings(cls, data, path, problems)
    missing_settings(cls, kwargs, path, problems)
    return cls(**kwargs) if len(problems) == before else None


def missing_settings(cls: type, given: Mapping, path: str, problems: list[Problem]) -> None:
    """A problem for every required field of ``cls`` (no default) that ``given`` lacks."""
    for f, _ in settings_fields(cls):
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        if required and f.name not in given:
            choices = _choices(f.metadata)
            also = f" (one of: {', '.join(choices)})" if choices else ""
            problems.append(Problem(_join(path, f.name), f"missing: {f.metadata.get('doc', '')}{also}"))


def check_settings(obj: Any, path: str | None = None) -> None:
    """Check a settings instance's values by its fields' rules (from ``__post_init__``); raise
    :class:`ConfigError` with every problem. ``path`` defaults to the class's ``config_path``."""
    path = getattr(obj, "config_path", "") if path is None else path
    problems: list[Problem] = []
    for f, hint in settings_fields(type(obj)):
        value = getattr(obj, f.name)
        if f.metadata.get("derived") or (f.metadata.get("section") is not None and isinstance(value, dict)):
            continue
        read_value(hint, f.metadata, value, _join(path, f.name), problems)
    if problems:
        raise ConfigError(problems)
