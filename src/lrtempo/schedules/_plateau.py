"""Reduce-on-plateau: a base schedule times the reductions recorded in the run, and the rule that decides them.

Torch's ``ReduceLROnPlateau`` multiplies the optimizer's current rate by
``factor`` when a watched loss has stopped improving. Here the decisions are
data, not state: a :class:`Plateau` is a pure function of the step *and* its
recorded :class:`Reduction` s, so a resume, ``lrtempo values RUN_DIR`` and
every rank give the same bits. The stateful part (best value, bad evaluations,
cooldown) is :class:`PlateauDecider`, kept apart and saved in checkpoints.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from ._base import MAX_STEPS, Checks, Phase, Schedule
from ._units import InUnit

__all__ = ["Plateau", "Reduction", "PlateauDecider", "PLATEAU_MONITORS", "find_plateau", "unit_problem"]

#: the losses a plateau schedule may watch, by their log column names
PLATEAU_MONITORS = ("val_loss", "loss")


@dataclass(frozen=True, slots=True)
class Reduction:
    """One recorded decision: from update ``step`` on, the rate is multiplied by ``factor`` (``0 <= factor <= 1``).

    >>> Reduction(40, 0.5)
    Reduction(step=40, factor=0.5)
    """

    step: int
    factor: float

    def __post_init__(self) -> None:
        step, factor = self.step, self.factor
        if not isinstance(step, numbers.Integral) or isinstance(step, bool) or not 0 <= step <= MAX_STEPS:
            raise ValueError(f"a reduction's step must be a whole number from 0 to 2**53 (got {step!r})")
        if not isinstance(factor, numbers.Real) or isinstance(factor, bool) or not 0.0 <= factor <= 1.0:
            raise ValueError(f"a reduction's factor must be a number from 0 to 1 (got {factor!r})")
        object.__setattr__(self, "step", int(step))
        object.__setattr__(self, "factor", float(factor))

    def to_json(self) -> dict[str, Any]:
        return {"step": self.step, "factor": self.factor}

    @classmethod
    def from_json(cls, value: Any) -> Reduction:
        """A reduction from ``{"step": S, "factor": F}`` or ``[S, F]`` (ValueError for anything else)."""
        if isinstance(value, Reduction):
            return value
        if isinstance(value, dict) and {"step", "factor"} <= set(value):
            return cls(value["step"], value["factor"])
        if isinstance(value, (list, tuple)) and len(value) == 2:
            return cls(value[0], value[1])
        raise ValueError(f"a reduction must be {{'step': S, 'factor': F}} (got {value!r})")


@dataclass(frozen=True, slots=True)
class Plateau(Schedule):
    """Reduce-on-plateau: ``base`` times the reductions recorded so far, floored at ``min_lr``.

    The decision rule is torch's ``ReduceLROnPlateau``, with its names and defaults: after each evaluation
    of the watched loss (``monitor``: ``val_loss`` or the training ``loss``), when it has not improved on the
    best so far by ``threshold`` (``rel``: a fraction of the best; ``abs``: an amount) for more than
    ``patience`` evaluations, the rate is multiplied by ``factor``; then ``cooldown`` evaluations are
    ignored. ``mode: max`` watches for a rise instead. A reduction that would change the rate by ``eps`` or
    less is not made. The reductions are recorded decisions (:meth:`with_reductions`), not parameters: the
    spec and its hash are the rule's.

    With reductions ``r_1 <= r_2 <= ...`` of factors ``f_i`` and ``m(k)`` the product of the ``f_i`` with
    ``r_i <= k``:

        ``lr(k) = min(base(k), max(base(k) * m(k), min_lr))``

    so the floor ``min_lr`` holds the reduced rate up but never lifts it above the base's own value (a
    warmup of the base is left as it is). Endless: a reduction may come at any step.

    >>> from lrtempo.schedules import Constant
    >>> p = Plateau(Constant(0.1), factor=0.5, min_lr=0.03).with_reductions([(10, 0.5), (20, 0.5)])
    >>> [p(k) for k in (9, 10, 19, 20)]
    [0.1, 0.05, 0.05, 0.03]
    """

    base: Schedule
    factor: float = 0.1
    patience: int = 10
    threshold: float = 1e-4
    threshold_mode: str = "rel"
    mode: str = "min"
    cooldown: int = 0
    min_lr: float = 0.0
    eps: float = 1e-8
    monitor: str = "val_loss"
    #: the recorded decisions, oldest first (not parameters: no part of the spec or its hash)
    reductions: tuple[Reduction, ...] = field(default=(), init=False)
    _at: Any = field(default=None, init=False, compare=False, repr=False)
    _mult: Any = field(default=None, init=False, compare=False, repr=False)
    type_name: ClassVar[str] = "plateau"
    field_choices: ClassVar[dict[str, tuple[str, ...]]] = {
        "threshold_mode": ("rel", "abs"), "mode": ("min", "max"), "monitor": PLATEAU_MONITORS}

    def __post_init__(self) -> None:
        c = Checks(self)
        c.schedule("base")
        c.real("factor", low=0.0)
        if c.ok("factor") and not self.factor < 1.0:
            c.fail("factor", f"must be < 1: each reduction multiplies the rate by it (got {self.factor!r})")
        c.integer("patience")
        c.real("threshold", low=0.0)
        c.choice("threshold_mode", ("rel", "abs"))
        c.choice("mode", ("min", "max"))
        if c.ok("threshold", "threshold_mode", "mode") and (self.mode, self.threshold_mode) == ("min", "rel") \
                and not self.threshold < 1.0:
            c.fail("threshold", "must be < 1 with mode 'min' and threshold_mode 'rel': the loss must fall below "
                   f"best * (1 - threshold) to improve (got {self.threshold!r})")
        c.integer("cooldown")
        c.real("min_lr", low=0.0)
        c.real("eps", low=0.0)
        c.choice("monitor", PLATEAU_MONITORS)
        if c.ok("base") and _contains(self.base, Plateau):
            c.fail("base", "must not itself reduce on plateau: one plateau rule per schedule")
        c.done()
        self._set_reductions(())

    def _set_reductions(self, reductions: tuple[Reduction, ...]) -> None:
        object.__setattr__(self, "reductions", reductions)
        object.__setattr__(self, "_at", np.array([r.step for r in reductions], dtype=np.int64))
        mult = np.ones(len(reductions) + 1, dtype=np.float64)
        np.cumprod(np.array([r.factor for r in reductions], dtype=np.float64), out=mult[1:])
        object.__setattr__(self, "_mult", mult)

    # -- the recorded decisions --------------------------------------------------------------------------------
    def with_reductions(self, reductions: Iterable[Any]) -> Plateau:
        """This rule with ``reductions`` recorded (:class:`Reduction` s, ``(step, factor)`` pairs or their
        JSON), in order of step; the rule and its spec hash are unchanged.

        >>> from lrtempo.schedules import Constant
        >>> Plateau(Constant(1.0)).with_reductions([(5, 0.1)]).reductions
        (Reduction(step=5, factor=0.1),)
        """
        recorded = tuple(Reduction.from_json(r) for r in reductions)
        for before, after in zip(recorded, recorded[1:]):
            if after.step < before.step:
                raise ValueError(f"reductions must be in order of step (step {after.step} after {before.step})")
        new = dataclasses.replace(self)
        new._set_reductions(recorded)
        return new

    def reduced_at(self, step: int) -> Plateau | None:
        """This schedule with one more reduction by ``factor`` from ``step`` on, or None when that would change
        the rate at ``step`` by ``eps`` or less (torch's rule: such a reduction is not made).

        >>> from lrtempo.schedules import Constant
        >>> p = Plateau(Constant(1.0), factor=0.5, min_lr=0.5).reduced_at(3)
        >>> p(3), p.reduced_at(4)
        (0.5, None)
        """
        last = self.reductions[-1].step if self.reductions else 0
        if step < last:
            raise ValueError(f"a reduction at step {step} would come before the last one, at step {last}")
        new = self.with_reductions((*self.reductions, Reduction(step, self.factor)))
        return new if self(step) - new(step) > self.eps else None

    def decider(self) -> PlateauDecider:
        """A fresh decider for this rule (no evaluation seen yet)."""
        return PlateauDecider(self)

    def canonical(self) -> Schedule:
        """The rule in its canonical form, its recorded reductions kept (they are part of the values)."""
        out = Schedule.canonical(self)
        return out.with_reductions(self.reductions) if self.reductions else out

    def __reduce__(self):
        params = tuple(getattr(self, f.name) for f in dataclasses.fields(self) if f.init)
        return (_rebuild, (params, self.reductions))

    # -- values ---------------------------------------------------------------------------------------------------
    @property
    def end_step(self) -> int | None:
        return None

    def _endless_horizon(self) -> int:
        last = self.reductions[-1].step + 1 if self.reductions else 0
        return max(self.base.horizon, last)

    def _values(self, steps: np.ndarray) -> np.ndarray:
        base = self.base._at_steps(steps)
        if not self.reductions:
            return base
        mult = self._mult[np.searchsorted(self._at, steps, side="right")]
        return np.minimum(base, np.maximum(base * mult, self.min_lr))

    def _phases(self, horizon: int) -> list[Phase]:
        return list(self.base.phases(horizon))


def _rebuild(params: tuple, reductions: tuple[Reduction, ...]) -> Plateau:
    plateau = Plateau(*params)
    return plateau.with_reductions(reductions) if reductions else plateau


def _children(schedule: Schedule) -> Iterator[Schedule]:
    """The schedules a schedule is made of (its fields, and the pieces of a join)."""
    if not dataclasses.is_dataclass(schedule):
        return
    for f in dataclasses.fields(schedule):
        value = getattr(schedule, f.name, None) if f.init else None
        if isinstance(value, Schedule):
            yield value
        elif isinstance(value, tuple):
            yield from (v.schedule for v in value if isinstance(getattr(v, "schedule", None), Schedule))


def _contains(schedule: Schedule, cls: type) -> bool:
    return any(isinstance(c, cls) or _contains(c, cls) for c in _children(schedule))


def unit_problem(unit: str) -> str:
    """Why ``type: plateau`` takes no ``unit`` of samples or tokens (the message of every refusal of one)."""
    return (f"type: plateau counts optimizer updates (its reductions are decided at evaluations and recorded at "
            f"update counts), so it takes no unit of samples or tokens (got unit: {unit}); remove unit")


def find_plateau(schedule: Schedule) -> Plateau | None:
    """The schedule if it is a :class:`Plateau`, None if it holds none; ValueError for one inside another
    schedule (its reductions would scale only a part of the curve).

    >>> from lrtempo.schedules import Constant
    >>> find_plateau(Plateau(Constant(1.0))) is not None, find_plateau(Constant(1.0))
    (True, None)
    """
    if isinstance(schedule, Plateau):
        return schedule
    if isinstance(schedule, InUnit):  # the spec's unit: a key of the spec, not a schedule around it
        found = find_plateau(schedule.schedule)
        if found is not None and schedule.unit != "steps":
            raise ValueError(unit_problem(schedule.unit))
        return found
    if _contains(schedule, Plateau):
        raise ValueError(f"type: plateau must be the outermost schedule (here it is inside type: "
                         f"{schedule.type_name or type(schedule).__name__}): its reductions scale the whole curve")
    return None


class PlateauDecider:
    """Torch's ``ReduceLROnPlateau`` decision, torch-free: :meth:`observe` each evaluation; True means reduce now.

    State (:meth:`state_dict`, torch's names): ``best``, ``num_bad_epochs``, ``cooldown_counter``, and
    ``evaluations`` seen. An evaluation counts as an improvement when (``rel``/``abs``, ``min``/``max``)
    ``a < best * (1 - threshold)``, ``a < best - threshold``, ``a > best * (1 + threshold)`` or
    ``a > best + threshold``; a NaN never improves.

    >>> from lrtempo.schedules import Constant
    >>> d = Plateau(Constant(1.0), patience=1).decider()
    >>> [d.observe(x) for x in (3.0, 3.0, 3.0, 2.0, 2.5, 2.5)]
    [False, False, True, False, False, True]
    """

    __slots__ = ("rule", "best", "num_bad_epochs", "cooldown_counter", "evaluations")

    def __init__(self, rule: Plateau) -> None:
        self.rule = rule
        self.best = math.inf if rule.mode == "min" else -math.inf
        self.num_bad_epochs = self.cooldown_counter = self.evaluations = 0

    def is_better(self, value: float, best: float) -> bool:
        rule = self.rule
        if rule.mode == "min":
            return value < (best * (1.0 - rule.threshold) if rule.threshold_mode == "rel" else best - rule.threshold)
        return value > (best * (rule.threshold + 1.0) if rule.threshold_mode == "rel" else best + rule.threshold)

    def observe(self, value: float) -> bool:
        """Count one evaluation of the watched loss; True when the rate is to be reduced from now on."""
        value = float(value)
        self.evaluations += 1
        if self.is_better(value, self.best):
            self.best, self.num_bad_epochs = value, 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0  # bad evaluations in cooldown do not count
        if self.num_bad_epochs > self.rule.patience:
            self.cooldown_counter, self.num_bad_epochs = self.rule.cooldown, 0
            return True
        return False

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "num_bad_epochs": self.num_bad_epochs,
                "cooldown_counter": self.cooldown_counter, "evaluations": self.evaluations}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`'s values (ValueError naming a missing or bad one)."""
        best = state.get("best") if isinstance(state, dict) else None
        if not isinstance(best, numbers.Real) or isinstance(best, bool):
            raise ValueError(f"plateau state: best must be a number (got {best!r})")
        counts = {}
        for name in ("num_bad_epochs", "cooldown_counter", "evaluations"):
            value = state.get(name)
            if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 0:
                raise ValueError(f"plateau state: {name} must be a whole number >= 0 (got {value!r})")
            counts[name] = int(value)
        self.best = float(best)
        self.num_bad_epochs, self.cooldown_counter = counts["num_bad_epochs"], counts["cooldown_counter"]
        self.evaluations = counts["evaluations"]
