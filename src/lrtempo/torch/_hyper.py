"""Momentum and weight decay on schedules, applied to the optimizer with the rate, before each update.

:class:`HyperSchedules` is what :class:`lrtempo.torch.LRTempoScheduler` runs
when it is given ``momentum=`` or ``weight_decay=`` schedules. Before update
``step`` every param group holds:

- momentum: ``momentum(step)`` as SGD's (and RMSprop's) ``group["momentum"]``,
  or as ``group["betas"][0]`` in a group with ``betas`` (Adam, AdamW, NAdam,
  ...), the key torch's ``OneCycleLR`` and ``CyclicLR`` use;
- weight decay: ``group["weight_decay"] = weight_decay(step) *
  group["weight_decay_multiplier"]``. The multiplier is set once, when the
  schedule is first attached, from the weight decay the group was built with:
  1 for a decayed group, 0 for a group built without decay (the biases and
  norm weights lrtempo's optimizers leave undecayed), so those stay at 0 and a
  decayed group follows the schedule's value exactly. It lives in the param
  group, so it is saved and loaded with the optimizer's state; set it yourself
  for another ratio.

The values come from one vectorized ``at()`` per block of steps, checked
against the bounds the optimizer accepts (:mod:`lrtempo.config._hyper`) as
each block is computed; a bad value raises before it reaches a param group.
SGD's rule against a momentum that returns to 0 and rises again needs the
whole run's steps: ``lrtempo train`` checks it before a run starts
(:func:`lrtempo.config._hyper.hyper_problem` does it for a loop of your own).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from ..config import spec_hash, spec_hashes
from ..config._hyper import (
    HYPER_NAMES,
    MOMENTUM_BETA1,
    MOMENTUM_SGD,
    WEIGHT_DECAY,
    Bounds,
    bounds_problem,
    kind_problem,
)
from ..schedules import Schedule

__all__ = ["HyperSchedules", "WEIGHT_DECAY_MULTIPLIER", "block_steps"]

#: values precomputed per refill (one vectorized ``at()`` per schedule)
_BLOCK = 1024
#: the param-group key of a group's factor on the weight-decay schedule's value
WEIGHT_DECAY_MULTIPLIER = "weight_decay_multiplier"


def block_steps(schedule: Schedule, step: int, size: int = _BLOCK) -> np.ndarray:
    """The steps of one precomputed block from ``step``: ``size`` of them, but none past the last step the
    schedule computes (torch's ``OneCycleLR`` raises past its total; the step past it is left to raise).

    >>> from lrtempo.schedules import Constant
    >>> block_steps(Constant(1.0), 5, 3).tolist()
    [5, 6, 7]
    """
    last = getattr(schedule, "last_valid_step", None)
    stop = step + size if last is None or step > last else min(step + size, last + 1)
    return np.arange(step, stop, dtype=np.int64)


class HyperSchedules:
    """The momentum and weight-decay schedules of one optimizer (either may be None, not both).

    >>> from lrtempo.schedules import Constant, Linear
    >>> w, b = torch.nn.Parameter(torch.zeros(2, 2)), torch.nn.Parameter(torch.zeros(2))
    >>> opt = torch.optim.AdamW([{"params": [w]}, {"params": [b], "weight_decay": 0.0}], lr=0.1, weight_decay=0.1)
    >>> hyper = HyperSchedules(opt, momentum=Linear(0.95, 0.85, 4), weight_decay=Constant(0.05))
    >>> hyper.apply(4); opt.param_groups[0]["betas"][0], [g["weight_decay"] for g in opt.param_groups]
    (0.85, [0.05, 0.0])
    """

    def __init__(self, optimizer: torch.optim.Optimizer, *, momentum: Schedule | None = None,
                 weight_decay: Schedule | None = None) -> None:
        for name, schedule in (("momentum", momentum), ("weight_decay", weight_decay)):
            if schedule is not None and not isinstance(schedule, Schedule):
                raise TypeError(f"{name} must be an lrtempo Schedule (got {type(schedule).__name__})")
            problem = None if schedule is None else kind_problem(name, schedule)
            if problem is not None:
                raise ValueError(problem)
        if momentum is None and weight_decay is None:
            raise ValueError("give a momentum or a weight_decay schedule")
        self.optimizer = optimizer
        self.momentum, self.weight_decay = momentum, weight_decay
        self.spec_hashes = {name: spec_hash(s) for name, s in self.schedules().items()}
        if momentum is not None:
            _check_momentum_groups(optimizer)
        if weight_decay is not None:
            _weight_decay_multipliers(optimizer)
        self._start = 0
        self._m: list[float] = []
        self._w: list[float] = []
        self._n = 0
        #: why the values of the next update are out of bounds (None: they are in the groups); raised by the
        #: optimizer step that would use them, so a bad value at a step no update runs (past the run) is no error
        self._bad: str | None = None
        self._register_hooks()

    def _register_hooks(self) -> None:
        if self.weight_decay is not None:
            self._load_hook = self.optimizer.register_load_state_dict_post_hook(_weight_decay_multipliers)
        self._step_hook = self.optimizer.register_step_pre_hook(self._check_before_step)

    def __getstate__(self) -> dict[str, Any]:  # a pickled or copied one registers its hooks again
        return {k: v for k, v in self.__dict__.items() if k not in ("_load_hook", "_step_hook")}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._register_hooks()

    def schedules(self) -> dict[str, Schedule]:
        """``{name: schedule}`` of the ones given, in :data:`HYPER_NAMES` order."""
        return {name: s for name, s in zip(HYPER_NAMES, (self.momentum, self.weight_decay)) if s is not None}

    # -- hot path ------------------------------------------------------------------------------------------------
    def _check_before_step(self, *_: Any) -> None:
        if self._bad is not None:
            raise ValueError(self._bad)

    def apply(self, step: int) -> None:
        """Set every group's momentum and weight decay to those of update ``step`` (out of bounds: the groups are
        left as they are and the optimizer's next step raises)."""
        i = step - self._start
        if not 0 <= i < self._n:
            self._bad = self._refill(step)
            if self._bad is not None:
                return
            i = 0
        self._bad = None
        groups = self.optimizer.param_groups
        if self._m:
            m = self._m[i]
            for group in groups:
                if "betas" in group:
                    group["betas"] = (m, *group["betas"][1:])
                else:
                    group["momentum"] = m
        if self._w:
            w = self._w[i]
            try:
                for group in groups:
                    group["weight_decay"] = w * group[WEIGHT_DECAY_MULTIPLIER]
            except KeyError:  # a group added since (add_param_group): it takes the rule from its own decay
                _weight_decay_multipliers(self.optimizer)
                self.apply(step)

    def _refill(self, step: int) -> str | None:
        """Precompute the block from ``step``; a bad value ahead in it shortens the block to ``step`` alone, and a
        bad value at ``step`` itself is returned as the problem (the block is then empty)."""
        if step < 0:
            raise ValueError(f"step must be >= 0 (got {step})")
        steps = min((block_steps(s, step) for s in self.schedules().values()), key=len)
        for block in (steps, steps[:1]):
            try:
                self._m = self._block("momentum", self.momentum, block, self._momentum_bounds())
                self._w = self._block("weight_decay", self.weight_decay, block, WEIGHT_DECAY)
            except ValueError as exc:
                problem = str(exc)
                continue
            self._start, self._n = step, len(block)
            return None
        self._n = 0
        return problem

    @staticmethod
    def _block(name: str, schedule: Schedule | None, steps: np.ndarray, bounds: Bounds) -> list[float]:
        if schedule is None:
            return []
        values = schedule.at(steps)
        problem = bounds_problem(name, bounds, steps, values)
        if problem is not None:
            raise ValueError(problem)
        return values.tolist()

    def _momentum_bounds(self) -> Bounds:
        groups = self.optimizer.param_groups
        return MOMENTUM_BETA1 if any("betas" in g for g in groups) else MOMENTUM_SGD

    def values(self, step: int) -> dict[str, float]:
        """``{name: schedule(step)}``: what :meth:`apply` sets (times a group's multiplier, for weight decay)."""
        return {name: float(s(step)) for name, s in self.schedules().items()}

    # -- state ---------------------------------------------------------------------------------------------------
    def state(self) -> dict[str, str]:
        """The spec hashes, as the scheduler's ``state_dict()`` keys ``momentum_spec_hash``, ..."""
        return {f"{name}_spec_hash": h for name, h in self.spec_hashes.items()}

    def changed(self, state_dict: dict[str, Any]) -> list[str]:
        """The hyperparameters whose schedule in ``state_dict`` is not this one's (given in one, not the other,
        or another spec)."""
        return changed_hypers(state_dict, self.schedules())

    def close(self) -> None:
        self._step_hook.remove()
        if self.weight_decay is not None:
            self._load_hook.remove()


def changed_hypers(state_dict: dict[str, Any], schedules: dict[str, Schedule]) -> list[str]:
    """The names of :data:`HYPER_NAMES` whose recorded hash (``NAME_spec_hash``) does not match ``schedules``."""
    out = []
    for name in HYPER_NAMES:
        saved, schedule = state_dict.get(f"{name}_spec_hash"), schedules.get(name)
        if saved is None and schedule is None:
            continue
        if saved is None or schedule is None or saved not in spec_hashes(schedule):
            out.append(name)
    return out


def _check_momentum_groups(optimizer: torch.optim.Optimizer) -> None:
    """Every group has a momentum to schedule: ``betas`` (as floats) or ``momentum``."""
    for i, group in enumerate(optimizer.param_groups):
        if "betas" in group:
            if isinstance(group["betas"][0], torch.Tensor):
                raise ValueError(f"param_groups[{i}]['betas'] holds tensors: a momentum schedule sets betas[0] as "
                                 "a float; build the optimizer with float betas")
        elif "momentum" not in group:
            raise ValueError(f"param_groups[{i}] has neither 'momentum' (SGD, RMSprop) nor 'betas' (Adam, AdamW): "
                             f"{type(optimizer).__name__} has no momentum to schedule")


def _weight_decay_multipliers(optimizer: torch.optim.Optimizer) -> None:
    """Give every group a ``weight_decay_multiplier`` (1 if it was built with weight decay, else 0) unless it
    has one, and check it (a finite number >= 0)."""
    for i, group in enumerate(optimizer.param_groups):
        if "weight_decay" not in group:
            raise ValueError(f"param_groups[{i}] has no 'weight_decay': {type(optimizer).__name__} has no weight "
                             "decay to schedule")
        value = group.setdefault(WEIGHT_DECAY_MULTIPLIER, 1.0 if group["weight_decay"] != 0 else 0.0)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            raise ValueError(f"param_groups[{i}][{WEIGHT_DECAY_MULTIPLIER!r}] must be a finite number >= 0 "
                             f"(got {value!r})")
