"""A schedule rewritten for another batch size: rates by a scaling rule, step durations so the data is the same.

With ``k = B2 / B`` (the new global batch over the old):

* every rate of the spec (each ``lr`` or ``*_lr`` field, and ``noam``'s ``scale``, at any depth) is multiplied by
  ``k`` (the linear rule, Goyal et al. 2017, "Accurate, Large Minibatch SGD: Training ImageNet in 1 Hour") or
  by ``sqrt(k)`` (the square-root rule, the one usually used with Adam: Malladi et al. 2022, "On the SDEs and
  Scaling Rules for Adaptive Gradient Algorithms"); factors, shapes and powers are kept;
* every duration in steps is divided by ``k`` so that it covers the same samples, rounded half up to a whole
  step (at least 1 where it was at least 1; 0 stays 0; a ``join``'s pieces are rounded at their cumulative
  boundaries, so they still add up): the duration scaling of :mod:`lrtempo.config._stretch`. With
  ``warmup="keep-steps"`` the warmups (``warmup_steps`` fields) keep their steps instead;
* a schedule that counts samples or tokens (``unit: samples|tokens``) already counts data: its durations are
  kept and only its rates change.

A run config comes back whole, its ``schedule`` rewritten (and its ``steps``, when given, divided like a
duration). A ``compat`` spec is refused: its arguments are another library's; convert it first.

A field given as ``auto`` stays ``auto``: it takes the run's budget (``total``), which follows the batch by
itself when it counts data (epochs, samples, tokens) and is divided like a duration when it counts updates
(``total: {steps: N}``). The other fields are rescaled from the schedule ``auto`` gives at the old batch; where
``auto`` at the new batch gives another value than the rescaled one (rounding, a ``data.steps_per_epoch``
measured at the old batch), a warning says so.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from ._build import REGISTRY, build_schedule, schedule_to_spec
from ._errors import ConfigError, Problem
from ._horizon import AUTO, Horizon, TaskFacts, _whole, derive_horizon, fill_auto, has_auto, run_budget
from ._optimizer import OptimizerConfig
from ._stretch import _scaled, _stretch_spec

__all__ = ["RULES", "WARMUP_MODES", "Change", "Scaled", "scale_rate", "scale_spec"]

#: the scaling rules: how the rates follow ``k = B2 / B``
RULES = ("linear", "sqrt")
#: what a warmup keeps: the samples it covers (its steps divided by ``k``) or its steps
WARMUP_MODES = ("keep-samples", "keep-steps")
#: the duration fields that are warmups (what ``keep-steps`` keeps)
WARMUP_FIELDS = frozenset({"warmup_steps"})
#: spec units that count data, not updates (their durations already cover the same data at any batch size)
DATA_UNITS = ("samples", "tokens")
#: rate fields whose names do not end in ``lr``, by type
_OTHER_RATES = {"noam": frozenset({"scale"})}
#: run-config keys that hold other schedules over the same counter (their durations move with the rate's)
_HYPER_KEYS = ("momentum", "weight_decay")

_RULE_NOTE = ("the linear rule (Goyal et al. 2017) is the one for SGD, with or without momentum; the square-root "
              "rule (Malladi et al. 2022) the one for Adam and AdamW; both hold only up to a critical batch size, "
              "so check the rescaled run")
_USUAL_RULE = {"adamw": "sqrt", "schedulefree": "sqrt", "sgd": "linear"}


@dataclass(frozen=True, slots=True)
class Change:
    """One field the rewrite changed: its path, the old and the new value."""

    path: str
    old: Any
    new: Any

    def __str__(self) -> str:
        return f"{self.path}: {self.old!r} -> {self.new!r}"


@dataclass(frozen=True)
class Scaled:
    """What :func:`scale_spec` made: the rewritten config, the changes and the notes on them."""

    #: the rewritten schedule spec, or the whole run config with its schedule rewritten
    config: dict
    batch_size: int
    to_batch_size: int
    rule: str
    warmup: str
    #: the spec's unit: ``steps`` (durations rescaled) or ``samples``/``tokens`` (durations kept)
    unit: str
    changes: tuple[Change, ...]
    warnings: tuple[str, ...]
    #: the run config's optimizer name, when the config is a run config
    optimizer: str | None = None
    #: a line for each field kept as ``auto``: what the budget fills it with at each batch
    autos: tuple[str, ...] = ()

    @property
    def k(self) -> Fraction:
        """``B2 / B``, exact."""
        return Fraction(self.to_batch_size, self.batch_size)

    def notes(self) -> list[str]:
        """The lines that explain the rewrite: the factor, what moved, each change, the warnings, the rules."""
        k = self.k
        shown = str(k) if k.denominator == 1 else f"{k} = {float(k):.6g}"
        factor = shown if self.rule == "linear" else f"sqrt({shown}) = {math.sqrt(float(k)):.6g}"
        lines = [f"batch size {self.batch_size} -> {self.to_batch_size}: k = {shown}; {self.rule} rule: every "
                 f"rate x {factor}"]
        if self.unit in DATA_UNITS:
            lines.append(f"unit: {self.unit}: the durations count {self.unit} already, so they are kept; only the "
                         "rates change")
        else:
            kept = " (warmups kept in steps: --warmup keep-steps)" if self.warmup == "keep-steps" else ""
            lines.append(f"every duration in steps divided by k, rounded half up to a whole step (at least 1), so "
                         f"the schedule covers the same samples{kept}")
        lines += [str(c) for c in self.changes] or ["nothing changed (k = 1)"]
        lines += list(self.autos)
        lines += [f"warning: {w}" for w in self.warnings]
        if self.optimizer is not None:
            lines.append("the run config's batch settings (task_options, accumulation_steps) are left as written: "
                         f"set them so that an update takes {self.to_batch_size} samples")
        lines.append(_RULE_NOTE)
        usual = _USUAL_RULE.get(self.optimizer or "")
        if usual is not None and usual != self.rule:
            lines.append(f"note: this run config's optimizer is {self.optimizer}, for which the {usual} rule is "
                         "the usual one")
        return lines


def scale_rate(value: float, batch_size: int, to_batch_size: int, rule: str) -> float:
    """A rate for the batch ``to_batch_size`` instead of ``batch_size``, under ``rule``.

    linear: the float64 nearest to ``value * B2 / B`` (computed exactly, rounded once); sqrt:
    ``value * sqrt(B2 / B)`` in float64.

    >>> scale_rate(0.003, 256, 1024, "linear"), scale_rate(0.003, 256, 1024, "sqrt")
    (0.012, 0.006)
    """
    if rule == "linear":
        return float(Fraction(value) * Fraction(to_batch_size, batch_size))
    return value * math.sqrt(to_batch_size / batch_size)


def _check(batch_size: Any, to_batch_size: Any, rule: Any, warmup: Any) -> None:
    problems = []
    for name, value in (("batch_size", batch_size), ("to_batch_size", to_batch_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            problems.append(Problem(name, f"must be a whole number >= 1, the global batch (got {value!r})"))
    if rule not in RULES:
        problems.append(Problem("rule", f"must be one of {', '.join(RULES)} (got {rule!r})"))
    if warmup not in WARMUP_MODES:
        problems.append(Problem("warmup", f"must be one of {', '.join(WARMUP_MODES)} (got {warmup!r})"))
    if problems:
        raise ConfigError(problems)


def _is_rate(kind: str, name: str, value: Any) -> bool:
    return isinstance(value, float) and (name == "lr" or name.endswith("_lr")
                                         or name in _OTHER_RATES.get(kind, ()))


def _scale_rates(spec: dict, rate: Any) -> dict:
    """``spec`` with ``rate(value)`` for every rate field, at every depth."""
    kind = spec["type"]
    fields = {f.name: f.kind for f in REGISTRY[kind].fields}
    out = dict(spec)
    for name, value in spec.items():
        k = fields.get(name)
        if k == "schedule":
            out[name] = _scale_rates(value, rate)
        elif k == "pieces":
            out[name] = [dict(p, schedule=_scale_rates(p["schedule"], rate)) for p in value]
        elif k is not None and k.startswith("number") and _is_rate(kind, name, value):
            out[name] = rate(value)
    return out


def _walk(spec: Any, path: str):
    """``(path, type, field, value)`` of every field of a resolved spec, nested ones included."""
    kind = spec["type"]
    for name, value in spec.items():
        here = f"{path}.{name}" if path else name
        if isinstance(value, Mapping) and "type" in value:
            yield from _walk(value, here)
        elif name == "pieces" and isinstance(value, list):
            for i, piece in enumerate(value):
                if "steps" in piece:
                    yield f"{here}[{i}].steps", "join", "steps", piece["steps"]
                yield from _walk(piece["schedule"], f"{here}[{i}].schedule")
        else:
            yield here, kind, name, value


def _refuse_compat(spec: dict, where: str) -> None:
    for path, kind, _, _ in _walk(spec, where):
        if kind == "compat":
            at = path.rsplit(".", 1)[0] if "." in path else where
            raise ConfigError([Problem(at, "a compat schedule keeps its library's own arguments and is not "
                                           "rescaled; rewrite it as a native spec first (lrtempo convert CONFIG "
                                           "-o native.yaml), then scale that")])


def _resolved(spec: Any, where: str, source: str | None) -> tuple[dict, str]:
    """The spec resolved to its full native form (fractions to steps, defaults in), and its unit."""
    if not isinstance(spec, Mapping):
        build_schedule(spec, where, source=source)  # the one-line error of a spec that is not a mapping
    unit = spec.get("unit", "steps")
    if unit not in ("steps", *DATA_UNITS):
        raise ConfigError([Problem(f"{where}.unit" if where else "unit",
                                   f"must be steps, samples or tokens (got {unit!r})")], source=source)
    body = {k: v for k, v in spec.items() if k != "unit"}
    return schedule_to_spec(build_schedule(body, where, source=source)), unit


def _rescaled(resolved: dict, where: str, unit: str, batch_size: int, to_batch_size: int, rule: str,
              warmup: str) -> dict:
    _refuse_compat(resolved, where)
    new = resolved
    if unit == "steps":
        keep = WARMUP_FIELDS if warmup == "keep-steps" else frozenset()
        new = _stretch_spec(new, Fraction(batch_size, to_batch_size), keep)
    new = _scale_rates(new, lambda v: scale_rate(v, batch_size, to_batch_size, rule))
    try:
        build_schedule(new, where)
    except ConfigError as exc:
        raise ConfigError([Problem(p.path, f"{p.message} after rescaling for batch {to_batch_size} (--warmup "
                                           f"{warmup}); set it by hand") for p in exc.problems]) from None
    return new


def _changes(old: dict, new: dict, where: str) -> list[Change]:
    return [Change(path, a, b) for (path, _, _, a), (_, _, _, b) in zip(_walk(old, where), _walk(new, where))
            if a != b]


def _steps(n: int) -> str:
    return f"{n} step" if n == 1 else f"{n} steps"


def _coverage(old: dict, new: dict, where: str, batch_size: int, to_batch_size: int, warmup: str) -> list[str]:
    """A warning for every duration whose samples changed: rounded, or a warmup kept in steps."""
    out = []
    pairs = []
    for (path, _, name, a), (_, _, _, b) in zip(_walk(old, where), _walk(new, where)):
        if isinstance(a, list):
            pairs += [(f"{path}[{i}]", name, x, y) for i, (x, y) in enumerate(zip(a, b))]
        else:
            pairs.append((path, name, a, b))
    for path, name, a, b in pairs:
        if not isinstance(a, int) or isinstance(a, bool) or a == 0 or a * batch_size == b * to_batch_size:
            continue
        if a == b and name in WARMUP_FIELDS and warmup == "keep-steps":
            out.append(f"{path}: kept at {_steps(a)} (--warmup keep-steps), so it now covers {a * to_batch_size} "
                       f"samples instead of {a * batch_size}")
        else:  # rounded (a duration of 1 that stays 1 included)
            exact = Fraction(a * batch_size, to_batch_size)
            out.append(f"{path}: {_steps(a)} of {batch_size} covered {a * batch_size} samples; {a} x {batch_size} "
                       f"/ {to_batch_size} = {float(exact):g} is rounded to {_steps(b)} of {to_batch_size}, which "
                       f"cover {b * to_batch_size}")
    return out


def scale_spec(config: Mapping, batch_size: int, to_batch_size: int, *, rule: str,
               warmup: str = "keep-samples", source: str | None = None,
               task_facts: TaskFacts | None = None) -> Scaled:
    """``config`` (a schedule spec, or a run config with one) rewritten for the global batch ``to_batch_size``.

    See the module's docstring for the rules. Bad input, a ``compat`` spec, or a rewrite that is not a valid
    schedule (a warmup kept in steps that outlasts the shortened total) raise :class:`ConfigError`.
    ``task_facts`` gives a built-in task's data size, for a run config whose ``auto`` takes a budget in
    epochs, samples or tokens (see ``lrtempo.train.tasks.task_data_facts``).

    >>> s = scale_spec({"type": "warmup_cosine", "peak_lr": 0.003, "min_lr": 0.0003, "total_steps": 300,
    ...                 "warmup_steps": 30}, 256, 1024, rule="sqrt")
    >>> s.config["peak_lr"], s.config["total_steps"], s.config["warmup_steps"]
    (0.006, 75, 8)
    >>> print(s.warnings[0])
    warmup_steps: 30 steps of 256 covered 7680 samples; 30 x 256 / 1024 = 7.5 is rounded to 8 steps of 1024,
    which cover 8192
    >>> run = {"task": "own", "total": {"steps": 300}, "schedule": {"type": "cosine", "peak_lr": 0.1,
    ...                                                             "decay_steps": "auto"}}
    >>> s = scale_spec(run, 256, 1024, rule="linear")
    >>> s.config["total"], s.config["schedule"]["decay_steps"], s.config["schedule"]["peak_lr"]
    ({'steps': 75}, 'auto', 0.4)
    """
    from . import schedule_spec_of

    _check(batch_size, to_batch_size, rule, warmup)
    if not isinstance(config, Mapping):
        raise ConfigError([Problem("", f"must be a schedule spec or a run config, a mapping (got "
                                       f"{type(config).__name__})")], source=source)
    spec, where = schedule_spec_of(dict(config), source)
    args = (batch_size, to_batch_size, rule, warmup)
    spec, horizon = _filled(dict(config) if where else {}, spec, where, task_facts, source)
    resolved, unit = _resolved(spec, where, source)
    new = _rescaled(resolved, where, unit, *args)
    changes, warnings = _changes(resolved, new, where), []
    if unit == "steps":
        warnings = _coverage(resolved, new, where, batch_size, to_batch_size, warmup)
    autos: list[str] = []
    if horizon is not None:  # an auto field takes the budget, whatever its rescaled value covers
        warnings = [w for w in warnings if w.split(":", 1)[0] not in dict(horizon.filled)]
        new = _keep_auto(new, unit, where, horizon, args, autos, warnings, source)
    if isinstance(spec, Mapping) and "unit" in spec:
        new = {"type": new["type"], "unit": spec["unit"], **{k: v for k, v in new.items() if k != "type"}}
    if not where:
        return Scaled(new, *args, unit, tuple(changes), tuple(warnings))
    out, optimizer = _run_config(dict(config), new, unit, args, changes, warnings, source)
    return Scaled(out, *args, unit, tuple(changes), tuple(warnings), optimizer, tuple(autos))


def _filled(run: Mapping, spec: Any, where: str, task_facts: TaskFacts | None,
            source: str | None) -> tuple[Any, Horizon | None]:
    """The spec with its ``auto`` fields filled from the run's budget at the old batch, and that budget (None
    when the spec has no ``auto``; without a budget, building the spec says what ``auto`` needs)."""
    if not run or not has_auto(spec):
        return spec, None
    problems: list[Problem] = []
    horizon, spec = run_budget(run, spec, where, problems, task_facts)
    if problems:
        raise ConfigError(problems, source=source)
    return spec, horizon if horizon is not None and horizon.filled else None


def _new_budget(horizon: Horizon, batch_size: int, to_batch_size: int) -> Horizon:
    """The run's budget at the new global batch: a budget in steps divided like a duration; one in data counted
    again at ``to_batch_size`` samples an update (the tokens of a sample kept)."""
    (key, value), = horizon.given.items()
    if key == "steps":
        value = _scaled(value, Fraction(batch_size, to_batch_size))
    return derive_horizon(key, value, dataclasses.replace(horizon.facts, update_batch=to_batch_size))


def _keep_auto(new: dict, unit: str, where: str, horizon: Horizon, args: tuple, autos: list[str],
               warnings: list[str], source: str | None) -> dict:
    """The rescaled spec with ``auto`` back in every field the budget filled, a note on what it takes at each
    batch, and a warning where the budget at the new batch fills it with another value than the rescaled one."""
    batch_size, to_batch_size, _, _ = args
    try:
        after = _new_budget(horizon, batch_size, to_batch_size)
    except ValueError as exc:
        raise ConfigError([Problem("total", f"at the new batch {to_batch_size}: {exc}")], source=source) from None
    out = new
    for path, _ in horizon.filled:
        out = _set(out, _tokens(path, where), AUTO)
    refilled: list[tuple[str, int]] = []
    problems: list[Problem] = []
    fill_auto(out if unit == "steps" else {**out, "unit": unit}, after, where, problems, refilled)
    if problems:
        raise ConfigError([Problem(p.path, f"{p.message} at the new batch {to_batch_size}") for p in problems],
                          source=source)
    (key, given), = after.given.items()
    for (path, old), (_, value) in zip(horizon.filled, refilled):
        rescaled = _get(new, _tokens(path, where))
        autos.append(f"{path}: auto kept: the budget total {{{key}: {given}}} fills it with {value:,} at batch "
                     f"{to_batch_size} ({old:,} at {batch_size})")
        if value != rescaled and unit == "steps":  # a samples or tokens schedule's durations are its own
            warnings.append(f"{path}: auto takes {value:,} at batch {to_batch_size}, where the rescaled schedule "
                            f"has {rescaled:,}, the length its other rescaled durations were made for; give "
                            f"{rescaled} instead of auto to keep them in step, or check the data section for the "
                            "new batch")
    return out


def _tokens(path: str, where: str) -> list[str | int]:
    """The keys and indices of a field path below ``where`` (``schedule.pieces[1].steps`` -> pieces, 1, steps)."""
    rest = path[len(where):].lstrip(".") if where and path.startswith(where) else path
    return [int(i) if i else k for k, i in re.findall(r"([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]", rest)]


def _get(node: Any, tokens: list[str | int]) -> Any:
    for t in tokens:
        node = node[t]
    return node


def _set(node: Any, tokens: list[str | int], value: Any) -> Any:
    """A copy of ``node`` with the field at ``tokens`` set to ``value``."""
    if not tokens:
        return value
    head, rest = tokens[0], tokens[1:]
    if isinstance(node, list):
        return [_set(v, rest, value) if i == head else v for i, v in enumerate(node)]
    return {**node, head: _set(node[head], rest, value)}


def _updates(path: str, steps: int, args: tuple, changes: list[Change], warnings: list[str]) -> int:
    """A count of updates of the run config divided by ``k`` like a duration, with its change and a warning where
    the samples they cover changed."""
    batch_size, to_batch_size, _, _ = args
    new = _scaled(steps, Fraction(batch_size, to_batch_size))
    if new != steps:
        changes.append(Change(path, steps, new))
    if new * to_batch_size != steps * batch_size:
        warnings.append(f"{path}: {steps} updates of {batch_size} become {new} of {to_batch_size}, "
                        f"{new * to_batch_size} samples instead of {steps * batch_size}")
    return new


def _run_config(config: dict, schedule: dict, unit: str, args: tuple, changes: list[Change], warnings: list[str],
                source: str | None) -> tuple[dict, str | None]:
    """The whole run config with the rewritten schedule, its ``steps`` and a ``total: {steps: N}`` divided by
    ``k`` (counts of updates) and the durations of its momentum and weight-decay schedules (when given as specs)
    rescaled as the rate's are."""
    batch_size, to_batch_size, _, warmup = args
    out = dict(config, schedule=schedule)
    total = config.get("total")
    if isinstance(total, Mapping) and list(total) == ["steps"] and _whole(total["steps"]) is not None:
        out["total"] = {"steps": _updates("total.steps", _whole(total["steps"]), args, changes, warnings)}
    steps = config.get("steps")
    if isinstance(steps, int) and not isinstance(steps, bool) and steps > 0:
        out["steps"] = _updates("steps", steps, args, changes, warnings)
    for key in _HYPER_KEYS:
        value = config.get(key)
        if isinstance(value, Mapping) and "type" in value and unit == "steps":
            resolved, _ = _resolved(value, key, source)
            _refuse_compat(resolved, key)
            keep = WARMUP_FIELDS if warmup == "keep-steps" else frozenset()
            out[key] = _stretch_spec(resolved, Fraction(batch_size, to_batch_size), keep)
            changes += _changes(resolved, out[key], key)
    optimizer = config.get("optimizer")
    default = OptimizerConfig().name
    name = optimizer.get("name", default) if isinstance(optimizer, Mapping) else default
    return out, name if isinstance(name, str) else None
