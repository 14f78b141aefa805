r"""The run's budget: its length resolved once, from steps, epochs, samples or tokens, with its derivation.

A run config's ``total`` gives the budget in one unit (exactly one key):

==================  ==========================================================================
``{steps: S}``      ``S`` updates
``{epochs: E}``     ``E x u`` updates, ``u = ceil(N / G)`` (``drop_last: false``: the last
                    update takes the remainder) or ``floor(N / G)`` (``drop_last: true``),
                    ``N`` the training examples, ``G = batch_size x accumulation_steps x
                    world_size`` the global batch; or ``E x steps_per_epoch`` when given
``{samples: M}``    ``ceil(M / G)`` updates: the fewest that see ``M`` samples
``{tokens: K}``     ``ceil(K / (G x tokens_per_sample))`` updates: the fewest that see ``K`` tokens
==================  ==========================================================================

The budget also counts what those updates consume (``samples``, ``tokens``),
and a schedule's ``auto`` field takes the budget in the schedule's ``unit``
(:func:`fill_auto`). One derivation (:func:`derive_horizon`) serves
``lrtempo train``, ``lrtempo lint`` and ``lrtempo budget``.

>>> h = derive_horizon("epochs", 3, DataFacts(examples=1000, batch_size=32, accumulation_steps=2))
>>> h.steps, h.samples
(48, 3000)
>>> print(h.derivation.replace("; ", "\n"))
3 epochs x ceil(1000 / 64) = 3 x 16 = 48 updates
global batch 64 = 32 x 2 x 1 (batch_size x accumulation_steps x world_size)
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..schedules import NATIVE_TYPES
from ._errors import Problem
from ._values import _brief, _describe, _join

__all__ = ["AUTO", "TOTAL_KEYS", "UNITS", "DataFacts", "Horizon", "auto_field", "derive_horizon", "fill_auto",
           "has_auto", "read_total", "data_facts", "run_facts", "run_horizon", "run_budget"]

#: the word a schedule field takes to be filled from the run's budget
AUTO = "auto"
#: the keys of ``total``: the units a budget may be given in
TOTAL_KEYS = ("steps", "epochs", "samples", "tokens")
#: the units a schedule counts (its spec's ``unit``), and so the units ``auto`` is filled in
UNITS = ("steps", "samples", "tokens")
#: the keys of a run config's ``data`` section the budget reads (``epochs`` is LR011's, without ``total``)
DATA_KEYS = ("examples", "batch_size", "world_size", "drop_last", "tokens_per_sample", "steps_per_epoch")


@dataclass(frozen=True)
class DataFacts:
    """What a budget reads about the data and the batching, and where each came from.

    ``update_batch`` is for a task whose every update sees a fixed number of
    samples whatever the accumulation and world size (its whole data set);
    ``source`` names where each fact came from (``data`` or the task).
    """

    examples: int | None = None
    batch_size: int | None = None
    accumulation_steps: int = 1
    world_size: int = 1
    drop_last: bool = False
    tokens_per_sample: int | None = None
    steps_per_epoch: int | None = None
    update_batch: int | None = None
    source: Mapping[str, str] = dataclasses.field(default_factory=dict)

    @property
    def global_batch(self) -> int | None:
        """Samples per update: ``batch_size x accumulation_steps x world_size`` (or ``update_batch``)."""
        if self.update_batch is not None:
            return self.update_batch
        if self.batch_size is None:
            return None
        return self.batch_size * self.accumulation_steps * self.world_size

    @property
    def tokens_per_update(self) -> int | None:
        g = self.global_batch
        return None if g is None or self.tokens_per_sample is None else g * self.tokens_per_sample

    def batch_text(self) -> str:
        """How the global batch is formed, e.g. ``64 = 32 x 2 x 1 (batch_size x accumulation_steps x world_size)``."""
        if self.update_batch is not None:
            return f"{self.update_batch} (every update sees the task's whole data)"
        return (f"{self.global_batch} = {self.batch_size} x {self.accumulation_steps} x {self.world_size} "
                f"(batch_size x accumulation_steps x world_size)")

    def to_json(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "source"}
        out = {k: v for k, v in out.items() if v is not None}
        out["global_batch"] = self.global_batch
        if self.tokens_per_update is not None:
            out["tokens_per_update"] = self.tokens_per_update
        out["source"] = dict(self.source)
        return out


@dataclass(frozen=True)
class Horizon:
    """A resolved budget: ``steps`` updates, the ``samples`` and ``tokens`` they consume (None: not known).

    ``given`` is the budget as written (``{"epochs": 3}``); ``derivation`` the arithmetic, in words.
    """

    given: Mapping[str, int]
    facts: DataFacts
    steps: int
    samples: int | None
    tokens: int | None
    derivation: str
    #: ``(field path, value)`` of each schedule field ``auto`` took from this budget
    filled: tuple[tuple[str, int], ...] = ()

    def in_unit(self, unit: str) -> int | None:
        """The budget counted in ``unit`` (steps, samples or tokens)."""
        return {"steps": self.steps, "samples": self.samples, "tokens": self.tokens}[unit]

    def to_json(self) -> dict[str, Any]:
        return {"given": dict(self.given), "steps": self.steps, "samples": self.samples, "tokens": self.tokens,
                "derivation": self.derivation, "inputs": self.facts.to_json(), "filled": dict(self.filled)}


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def derive_horizon(key: str, value: int, facts: DataFacts) -> Horizon:
    r"""The budget ``{key: value}`` resolved against ``facts``; ValueError (naming what is missing) if it cannot be.

    Steps: ``S``. Epochs: ``E x u``, ``u`` as in the module's table. Samples: ``ceil(M / G)``.
    Tokens: ``ceil(K / (G x tokens_per_sample))``. The samples consumed are ``steps x G``, except for
    epochs without ``drop_last``, where the last update of each epoch takes what remains: ``E x N``.

    >>> h = derive_horizon("tokens", 2_000_000_000, DataFacts(batch_size=8, accumulation_steps=4, world_size=8,
    ...                                                       tokens_per_sample=2048))
    >>> print(h.derivation.replace("; ", "\n"))
    ceil(2,000,000,000 tokens / 524,288 per update (256 samples x 2048 tokens)) = 3815 updates
    global batch 256 = 8 x 4 x 8 (batch_size x accumulation_steps x world_size)
    """
    g, tpu = facts.global_batch, facts.tokens_per_update
    if key == "steps":
        steps, samples, text = value, None if g is None else value * g, f"{value} updates as given"
    elif key == "epochs":
        steps, samples, text = _epochs(value, facts)
    elif key == "samples":
        if g is None:
            raise ValueError("total.samples: needs the global batch: give data.batch_size (per device; "
                             "accumulation_steps and data.world_size multiply it)")
        steps = _ceil_div(value, g)
        samples, text = steps * g, f"ceil({value:,} samples / {g} per update) = {steps} updates"
    elif key == "tokens":
        if tpu is None:
            raise ValueError("total.tokens: needs the tokens per update: give data.batch_size and "
                             "data.tokens_per_sample (the sequence length)")
        steps = _ceil_div(value, tpu)
        samples = steps * g
        text = (f"ceil({value:,} tokens / {tpu:,} per update ({g} samples x {facts.tokens_per_sample} tokens)) = "
                f"{steps} updates")
    else:
        raise ValueError(f"total: unknown key {key!r} (one of: {', '.join(TOTAL_KEYS)})")
    tokens = None if samples is None or facts.tokens_per_sample is None else samples * facts.tokens_per_sample
    if key != "steps" and g is not None:
        text += f"; global batch {facts.batch_text()}"
    return Horizon({key: value}, facts, steps, samples, tokens, text)


def _epochs(epochs: int, facts: DataFacts) -> tuple[int, int | None, str]:
    """(updates, samples consumed, the derivation) of ``epochs`` passes over the data."""
    g, n = facts.global_batch, facts.examples
    if facts.steps_per_epoch is not None:
        spe = facts.steps_per_epoch
        steps = epochs * spe
        return steps, None if g is None else steps * g, f"{epochs} epochs x {spe} steps_per_epoch = {steps} updates"
    if n is None or g is None:
        raise ValueError("total.epochs: needs the data's size: give data.examples and data.batch_size (per "
                         "device), or data.steps_per_epoch")
    if facts.drop_last:
        per = n // g
        if per == 0:
            raise ValueError(f"total.epochs: with drop_last, {n} examples make no full global batch of {g} "
                             f"({facts.batch_text()}): 0 updates per epoch")
        samples, rule = epochs * per * g, f"floor({n} / {g})"
    else:
        per, samples, rule = _ceil_div(n, g), epochs * n, f"ceil({n} / {g})"
    steps = epochs * per
    return steps, samples, f"{epochs} epochs x {rule} = {epochs} x {per} = {steps} updates"


def read_total(value: Any, path: str, problems: list[Problem]) -> tuple[str, int] | None:
    """``(key, whole number >= 1)`` of a ``total`` mapping with exactly one of :data:`TOTAL_KEYS`, or None
    and the problem (one line naming the field, the value and what is valid)."""
    keys = ", ".join(TOTAL_KEYS)
    if not isinstance(value, Mapping) or len(value) != 1:
        got = (_describe(value) if not isinstance(value, Mapping)
               else f"{len(value)} keys: {', '.join(map(str, value)) or 'none'}")
        problems.append(Problem(path, f"must be a mapping with exactly one of {keys}, e.g. {{epochs: 3}} "
                                      f"(got {got})"))
        return None
    (key, number), = value.items()
    kpath = _join(path, str(key))
    if key not in TOTAL_KEYS:
        from .._util import did_you_mean

        problems.append(Problem(kpath, f"unknown key{did_you_mean(str(key), TOTAL_KEYS)} (one of: {keys})"))
        return None
    whole = _whole(number)
    if whole is None or whole < 1:
        problems.append(Problem(kpath, f"must be a whole number >= 1 (got {_brief(number)})"
                                       + ("; for part of an epoch give samples" if key == "epochs" else "")))
        return None
    return key, whole


def _whole(x: Any) -> int | None:
    """``x`` as an int when it is a finite whole number (``2.0e9`` included), else None."""
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return None
    if isinstance(x, float) and not (math.isfinite(x) and x.is_integer()):
        return None
    return int(x)


def data_facts(data: Mapping, accumulation_steps: int, task: DataFacts | None, problems: list[Problem],
               path: str = "data", task_name: str = "the task") -> DataFacts:
    """The facts of a run config's ``data`` section over those of its task (``task``; None: no task's).

    Each fact is the ``data`` section's where it gives one, else the task's. A built-in task fixes its
    examples, micro-batch and tokens per sample: a ``data`` value that differs is a problem (training
    uses the task's).
    """
    given: dict[str, Any] = {}
    for key in DATA_KEYS:
        if data.get(key) is None:
            continue
        value = data[key]
        if key == "drop_last":
            if not isinstance(value, bool):
                problems.append(Problem(_join(path, key), f"must be true or false (got {_brief(value)})"))
                continue
        elif key == "steps_per_epoch" and isinstance(value, list):
            continue  # a varying count per epoch: LR008's, no one length
        elif _whole(value) is None or _whole(value) < 1:
            problems.append(Problem(_join(path, key), f"must be a whole number >= 1 (got {_brief(value)})"))
            continue
        given[key] = value if key == "drop_last" else _whole(value)
    base = task or DataFacts()
    source = {k: "data" for k in given}
    for key in ("examples", "batch_size", "tokens_per_sample"):
        own = getattr(base, key)
        if own is not None and key in given and given[key] != own:
            problems.append(Problem(_join(path, key), f"{given[key]} differs from {task_name}'s {own} "
                                                      f"({base.source.get(key, task_name)}), which training uses"))
        if own is not None and key not in given:
            source[key] = base.source.get(key, task_name)
    if base.update_batch is not None:
        source["update_batch"] = base.source.get("update_batch", task_name)
    if base.update_batch is not None and "batch_size" in given:
        problems.append(Problem(_join(path, "batch_size"), "this task's every update sees its whole data "
                                f"({base.update_batch} samples): give no batch_size"))
    merged = {**{k: getattr(base, k) for k in DATA_KEYS}, **given}
    return DataFacts(**merged, accumulation_steps=accumulation_steps, update_batch=base.update_batch,
                     source=source)


#: the facts of a built-in task: ``(task name, task_options) -> DataFacts`` (ValueError for bad options)
TaskFacts = Callable[[str, Mapping], DataFacts]


def run_facts(run: Mapping, problems: list[Problem], task_facts: TaskFacts | None = None, *,
              need_task: bool = True) -> DataFacts | None:
    """The data facts of a run config mapping: its ``data`` section over its task's (:func:`data_facts`), or None
    and the problems. A task whose facts need PyTorch raises ImportError without it when ``need_task``, else
    counts as giving none."""
    data = run.get("data") if isinstance(run.get("data"), Mapping) else {}
    accumulation = _whole(run.get("accumulation_steps", 1) or 1)
    if accumulation is None or accumulation < 1:
        return None
    task = None
    if task_facts is not None and isinstance(run.get("task"), str):
        try:
            task = task_facts(run["task"], run.get("task_options") or {})
        except (KeyError, ValueError):
            task = None  # an unknown task or bad options: their own problems say so
        except ImportError:
            if need_task:
                raise
            task = None
    before = len(problems)
    facts = data_facts(data, accumulation, task, problems, task_name=f"task {run.get('task')}")
    return None if len(problems) > before else facts


def run_horizon(run: Mapping, problems: list[Problem], task_facts: TaskFacts | None = None) -> Horizon | None:
    """The budget of a run config mapping (its ``total``; None without one), or None and the problems."""
    if run.get("total") is None:
        return None
    total = read_total(run["total"], "total", problems)
    if total is not None and total[0] != "steps" and run.get("batch_ramp") is not None:
        problems.append(Problem("total", "a budget in epochs, samples or tokens is counted at a constant batch; "
                                         "with batch_ramp give total: {steps: N} or steps"))
        return None
    if total is None:
        return None
    # a steps budget needs no task to count its updates (its samples go uncounted without one)
    facts = run_facts(run, problems, task_facts, need_task=total[0] != "steps")
    if facts is None:
        return None
    try:
        return derive_horizon(*total, facts)
    except ValueError as exc:
        problems.append(Problem("", str(exc)))
        return None


def run_budget(run: Mapping, spec: Any, root: str, problems: list[Problem],
               task_facts: TaskFacts | None = None) -> tuple[Horizon | None, Any]:
    """A config's budget and its schedule spec with ``auto`` filled from it, for the tools that read a config
    (lint, budget): the run config's ``total``, else the ``data`` section's ``epochs`` over its own size and
    batching (None where it gives no length; training reads ``total`` only). ``run`` is ``{}`` for a bare spec.
    """
    horizon = run_horizon(run, problems, task_facts)
    filled: list[tuple[str, int]] = []
    spec = fill_auto(spec, horizon, root, problems, filled)
    if horizon is not None and filled:
        horizon = dataclasses.replace(horizon, filled=tuple(filled))
    data = run.get("data")
    if problems or horizon is not None or not isinstance(data, Mapping):
        return horizon, spec
    epochs, accumulation = _whole(data.get("epochs")), _whole(run.get("accumulation_steps", 1) or 1)
    if epochs is None or epochs < 1 or accumulation is None or accumulation < 1:
        return None, spec
    quiet: list[Problem] = []  # the section's own problems are the linter's findings, not the config's
    facts = data_facts(data, accumulation, None, quiet)
    try:
        return (None if quiet else derive_horizon("epochs", epochs, facts)), spec
    except ValueError:
        return None, spec  # the section gives no length: nothing to compare


# -- auto: a schedule's total from the budget ---------------------------------------------------------------------

#: types whose ``total_steps`` is no budget to fill: a branch's is the target of an extension, which
#: ``lrtempo branch --extend`` writes
_NOT_A_TOTAL = ("branch",)


def auto_field(type_name: str) -> str | None:
    """The field of a native type that ``auto`` may fill: the one that says where the schedule ends.

    ``total_steps`` where the type has one (warmup_cosine, wsd, warmup_plateau_cosine, one_cycle), else the
    length of a ramp or decay family (``decay_steps`` of cosine, polynomial, tanh; ``steps`` of linear,
    ramp). Other types have none.

    >>> auto_field("wsd"), auto_field("cosine"), auto_field("ramp"), auto_field("step")
    ('total_steps', 'decay_steps', 'steps', None)
    """
    cls = NATIVE_TYPES.get(type_name)
    if cls is None or type_name in _NOT_A_TOTAL:
        return None
    names = [f.name for f in dataclasses.fields(cls) if f.init]
    if "total_steps" in names:
        return "total_steps"
    ends = getattr(cls, "_ends", None)  # a ramp family names its (start, end, length) fields
    return ends[2] if ends and ends[2] in names else None


#: combinators whose inner schedule runs on the same clock as the schedule itself
_SAME_CLOCK = ("clamp", "scale")


def fill_auto(spec: Any, horizon: Horizon | None, path: str, problems: list[Problem],
              filled: list[tuple[str, int]] | None = None) -> Any:
    """``spec`` with every ``auto`` field filled from the budget in the spec's ``unit`` (a copy; ``spec`` is kept);
    each field filled is added to ``filled`` as ``(path, value)``.

    ``auto`` fills a schedule's end (:func:`auto_field`) where the schedule runs on the run's clock: at the
    top, under clamp and scale, after a warmup (the budget less ``warmup_steps``), in a join's piece (less
    the pieces before it). Elsewhere it is a problem; without a budget the spec is returned as it is (and
    building it says what ``auto`` needs).
    """
    unit = spec.get("unit", "steps") if isinstance(spec, Mapping) else None
    if horizon is None or unit not in UNITS or not has_auto(spec):
        return spec  # without a budget, building the spec says what auto needs; a bad unit says so itself
    else:
        total = horizon.in_unit(unit)
        need = "data.batch_size" + (" and data.tokens_per_sample" if unit == "tokens" else "")
        why = None if total is not None else f"has no count of {unit} in the budget {_given(horizon)}: give {need}"
    return _fill(spec, total, why, path, problems, [] if filled is None else filled)


def _given(h: Horizon) -> str:
    (k, v), = h.given.items()
    return f"{{{k}: {v}}}"


def has_auto(node: Any) -> bool:
    """Whether ``auto`` is a value anywhere in ``node``."""
    if isinstance(node, Mapping):
        return any(has_auto(v) for v in node.values())
    if isinstance(node, list):
        return any(has_auto(v) for v in node)
    return isinstance(node, str) and node == AUTO


def _fill(node: Any, left: int | None, why: str | None, path: str, problems: list[Problem],
          filled: list[tuple[str, int]]) -> Any:
    """``node`` with ``auto`` filled by ``left`` (the budget left on this node's clock; None: ``why`` not)."""
    if isinstance(node, list):
        return [_fill(v, None, why or "not a schedule's total", f"{path}[{i}]", problems, filled)
                for i, v in enumerate(node)]
    if not isinstance(node, Mapping):
        if node == AUTO:
            problems.append(Problem(path, f"auto {why or 'is not valid here'}"))
        return node
    kind = node.get("type")
    own = auto_field(kind) if isinstance(kind, str) else None
    out = dict(node)
    for key, value in node.items():
        kpath = _join(path, str(key))
        if key == own and value == AUTO:
            if left is None:
                problems.append(Problem(kpath, f"auto {why}"))
            elif left < 1:
                problems.append(Problem(kpath, f"auto: the budget leaves {left} steps for this schedule"))
            else:
                out[key] = left
                filled.append((kpath, left))
        elif key == "pieces" and kind == "join" and isinstance(value, list):
            out[key] = _fill_pieces(value, left, why, kpath, problems, filled)
        elif isinstance(value, Mapping) and "type" in value:
            inner, inner_why = _inner_left(node, left, why)
            out[key] = _fill(value, inner, inner_why, kpath, problems, filled)
        elif value == AUTO:
            fields = f"{own} takes it" if own else "this type has no total that takes it"
            problems.append(Problem(kpath, f"auto fills only a schedule's total ({fields}); give a number"))
        elif isinstance(value, (list, Mapping)):
            out[key] = _fill(value, None, "fills only a schedule's total; give a number", kpath, problems, filled)
    return out


def _inner_left(node: Mapping, left: int | None, why: str | None) -> tuple[int | None, str | None]:
    """The budget left on the clock of ``node``'s inner schedule."""
    if left is None:
        return None, why
    kind = node.get("type")
    if kind in _SAME_CLOCK:
        return left, why
    if kind == "warmup":
        w = _whole(node.get("warmup_steps"))
        return (left - w, why) if w is not None else (None, "needs the warmup's warmup_steps as a number")
    return None, f"inside {kind!r}: its inner schedule's steps are not the run's; give a number"


def _fill_pieces(pieces: list, left: int | None, why: str | None, path: str, problems: list[Problem],
                 filled: list[tuple[str, int]]) -> list:
    out = []
    for i, piece in enumerate(pieces):
        ipath = f"{path}[{i}]"
        if not isinstance(piece, Mapping):
            out.append(piece)
            continue
        out.append({**piece, **({"schedule": _fill(piece["schedule"], left, why, _join(ipath, "schedule"),
                                                   problems, filled)} if "schedule" in piece else {})})
        steps = _whole(piece.get("steps"))
        if left is not None:
            left, why = (left - steps, why) if steps is not None else (None, "needs the pieces before it to give "
                                                                              "steps as numbers")
    return out
