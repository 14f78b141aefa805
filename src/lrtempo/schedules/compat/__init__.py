"""Other libraries' schedules, reproduced value for value without importing them.

A compat schedule is named by library and function/class name and takes that
library's own keyword arguments and conventions::

    Compat(library="torch", name="CosineAnnealingLR", base_lr=0.1, kwargs={"T_max": 100})

Compat lives apart from the native families: it follows each library's rules
(where warmup starts, whether "total" includes warmup, what happens past the
end), not lrtempo's own contract. Where the library raises, compat raises a clear error.
``curve="momentum"`` gives the momentum the library sets alongside the rate
instead (torch's ``CyclicLR`` and ``OneCycleLR`` with ``cycle_momentum``), a
schedule for :class:`lrtempo.torch.LRTempoScheduler`'s ``momentum=``.
See ``docs/compat.md``.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

import numpy as np

from .._base import MAX_STEPS, Phase, Schedule, did_you_mean
from . import _composer, _keras, _megatron, _olmo_core, _optax, _timm, _torch, _torchtitan, _transformers
from ._common import CompatError, Impl

__all__ = ["Compat", "CompatError", "LIBRARIES", "CURVES", "build_compat", "momentum_curve"]

#: library -> the names it offers
LIBRARIES: dict[str, tuple[str, ...]] = {
    "torch": tuple(_torch.TORCH),
    "transformers": tuple(_transformers.TRANSFORMERS),
    "optax": tuple(_optax.OPTAX),
    "timm": tuple(_timm.TIMM),
    "megatron": tuple(_megatron.MEGATRON),
    "olmo-core": tuple(_olmo_core.OLMO_CORE),
    "torchtitan": tuple(_torchtitan.TORCHTITAN),
    "keras": tuple(_keras.KERAS),
    "composer": tuple(_composer.COMPOSER),
}

#: what a compat schedule's values are: the rate, or the momentum the library sets with it
CURVES = ("lr", "momentum")


def _freeze(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k) if not isinstance(k, int) else k: _freeze(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_freeze(v) for v in value]
    return value


@dataclass(frozen=True, slots=True, eq=False)
class Compat(Schedule):
    """A named schedule of another library (torch, transformers, optax, timm, keras, composer, megatron,
    torchtitan, olmo-core), value for value.

    ``base_lr`` is the optimizer's lr (not used by optax, keras and megatron,
    whose schedules carry their values). ``kwargs`` are exactly the library's
    keyword arguments; ``context`` is what the schedule needs beyond them (the
    run's length, the batches per epoch, ...). ``curve`` is ``lr`` (the rate) or
    ``momentum`` (the momentum torch's ``CyclicLR`` and ``OneCycleLR`` set with
    ``cycle_momentum``). Evaluation is vectorized; one step is the array path
    on one element, so both agree bit for bit.

    >>> s = Compat("torch", "StepLR", base_lr=1.0, kwargs={"step_size": 2, "gamma": 0.5})
    >>> [s(k) for k in range(5)]
    [1.0, 1.0, 0.5, 0.5, 0.25]
    """

    library: str
    name: str
    base_lr: float | None = None
    kwargs: dict = field(default_factory=dict)
    context: dict = field(default_factory=dict)
    curve: str = "lr"
    type_name: ClassVar[str] = "compat"
    _impl: Impl = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        impl = _make(self.library, self.name, self.base_lr, _freeze(self.kwargs), _freeze(self.context))
        if self.curve != "lr":
            impl = _curve(impl, self.library, self.name, self.curve)
        object.__setattr__(self, "kwargs", _freeze(self.kwargs))
        object.__setattr__(self, "context", _freeze(self.context))
        object.__setattr__(self, "_impl", impl)
        self._finish()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Compat) and self.to_spec() == other.to_spec()

    def __hash__(self) -> int:
        return hash((self.library, self.name, self.base_lr))

    @property
    def end_step(self) -> None:
        return None  # the library decides what happens past its end: never clamp

    @property
    def last_valid_step(self) -> int | None:
        """The last step the library computes, where it raises past some step (torch's OneCycleLR); else None."""
        return self._impl.last_valid_step

    @property
    def horizon(self) -> int:
        """Where the library's schedule nominally ends (for plots and tables), at most 2**53."""
        return min(self._impl.horizon, MAX_STEPS)

    def _make_f(self):
        values = self._impl.values

        def one(k: int) -> float:
            return float(values(np.asarray([k], dtype=np.int64))[0])

        return one

    def _values(self, steps: np.ndarray) -> np.ndarray:
        return np.asarray(self._impl.values(steps), dtype=np.float64)

    def _phases(self, horizon: int) -> list[Phase]:
        if self._impl.phases:
            return [Phase(n, a, b) for n, a, b in self._impl.phases]
        return [Phase(self.name, 0, None)]

    def to_spec(self) -> dict:
        out: dict[str, Any] = {"type": "compat", "library": self.library, "name": self.name}
        if self.base_lr is not None:
            out["base_lr"] = self.base_lr
        out["kwargs"] = self.kwargs
        if self.context:
            out["context"] = self.context
        if self.curve != "lr":
            out["curve"] = self.curve
        return out


def _curve(impl: Impl, library: str, name: str, curve: Any) -> Impl:
    """The ``curve`` of a built compat schedule (``momentum``: the one its library sets with the rate)."""
    if curve not in CURVES:
        raise CompatError([("curve", f"must be one of {', '.join(map(repr, CURVES))} (got {curve!r})"[:300])])
    if impl.momentum is None:
        why = ("with cycle_momentum: false" if library == "torch" and name in _torch.MOMENTUM else
               "(only torch's CyclicLR and OneCycleLR do, with cycle_momentum: true, their default)")
        raise CompatError([("curve", f"{library}'s {name} sets no momentum {why}: give curve: lr or leave it out")])
    momentum = Impl(impl.momentum, impl.horizon, impl.last_valid_step, impl.phases)
    _check_finite(momentum)
    return momentum


def momentum_curve(schedule: Schedule) -> Compat | None:
    """The momentum a compat schedule's library sets with its rate, as a compat schedule (``curve: momentum``);
    None for any other schedule, or one whose library sets no momentum.

    >>> spec = dict(max_lr=1.0, total_steps=10, pct_start=0.5, anneal_strategy="linear")
    >>> m = momentum_curve(Compat("torch", "OneCycleLR", kwargs=spec))
    >>> [round(m(k), 4) for k in (0, 4, 9)]
    [0.95, 0.85, 0.95]
    """
    if not isinstance(schedule, Compat) or schedule.curve != "lr" or schedule._impl.momentum is None:
        return None
    return replace(schedule, curve="momentum")


#: libraries whose schedules need more than their kwargs, and the context keys they take
_CONTEXT = {"timm": "updates_per_epoch", "megatron": "increment", "olmo-core": "t_max",
            "torchtitan": "training_steps", "composer": "max_duration, batches_per_epoch"}

#: libraries that scale the optimizer's lr and take a context: their ``make(name, kwargs, base_lr, context)``
_WITH_CONTEXT = {"timm": _timm.make, "olmo-core": _olmo_core.make, "torchtitan": _torchtitan.make,
                 "composer": _composer.make}

#: libraries whose schedules carry their own rates: they take no optimizer lr (base_lr)
_OWN_RATES = {"optax": "init_value, peak_value", "megatron": "init_lr, max_lr, min_lr",
              "keras": "initial_learning_rate, values"}


def _make(library: Any, name: Any, base_lr: Any, kwargs: Any, context: Any = None) -> Impl:
    if library not in LIBRARIES:
        raise CompatError([("library", f"unknown library {library!r}{did_you_mean(library, LIBRARIES)} "
                                       f"(one of: {', '.join(LIBRARIES)})")])
    context = {} if context is None else context
    if not isinstance(context, Mapping):
        raise CompatError([("context", f"must be a mapping (got {context!r})"[:200])])
    if context and library not in _CONTEXT:
        takers = ", ".join(f"{lib} ({keys})" for lib, keys in _CONTEXT.items())
        raise CompatError([("context", f"{library} schedules take no context (only these libraries take one: "
                                       f"{takers}); leave it out")])
    if library in _OWN_RATES:
        if base_lr is not None:
            raise CompatError([("base_lr", f"{library} schedules carry their own values ({_OWN_RATES[library]}); "
                                           "leave base_lr out")])
        if library == "megatron":
            impl = _megatron.make(name, kwargs, dict(context))
        else:
            impl = {"optax": _optax, "keras": _keras}[library].make(name, kwargs)
        impl.values(np.zeros(1, dtype=np.int64))
        _check_finite(impl)
        return impl
    if library == "torch" and name in _torch.OWN_RATE:
        # torch accepts any optimizer lr here and overwrites it (CyclicLR with its base_lr kwarg,
        # OneCycleLR with max_lr / div_factor): the top-level base_lr may be given and has no effect
        base_lr = 0.0 if base_lr is None else base_lr
    if base_lr is None:
        raise CompatError([("base_lr", f"missing: the optimizer's lr, which {library}'s {name} scales")])
    if isinstance(base_lr, bool) or not isinstance(base_lr, (int, float)) or abs(base_lr) > sys.float_info.max \
            or not np.isfinite(base_lr) or base_lr < 0:
        raise CompatError([("base_lr", f"must be a finite number >= 0 (got {base_lr!r})")])
    if library in _WITH_CONTEXT:
        impl = _WITH_CONTEXT[library](name, kwargs, float(base_lr), dict(context))
    else:
        impl = {"torch": _torch, "transformers": _transformers}[library].make(name, kwargs, float(base_lr))
    impl.values(np.zeros(1, dtype=np.int64))  # the library computes step 0 on construction: fail now
    _check_finite(impl)
    return impl


def _probe_steps(impl: Impl) -> np.ndarray:
    """Steps that expose a compat schedule leaving the finite range: its boundaries, a sweep over a
    few horizons, and far steps up to 2**53 (where unbounded growth has overflowed)."""
    horizon = min(max(impl.horizon, 1), MAX_STEPS)
    marks = [m for _, a, b in impl.phases for m in (a, b) if m is not None]
    far = [10**k for k in range(3, 16)] + [MAX_STEPS]
    steps = np.concatenate([np.asarray(marks + far, dtype=np.int64), np.arange(min(horizon, 64) + 2),
                            np.linspace(0, min(4 * horizon, MAX_STEPS), 257).astype(np.int64)])
    steps = np.unique(np.clip(steps, 0, MAX_STEPS))
    if impl.last_valid_step is not None:
        steps = steps[steps <= impl.last_valid_step]
    return steps


def _check_finite(impl: Impl) -> None:
    """Refuse a compat schedule whose value is not finite at some step (a growth factor above 1, a
    product of scales that overflows, a division by zero), naming the first such step found."""
    steps = _probe_steps(impl)
    with np.errstate(all="ignore"):
        values = np.asarray(impl.values(steps), dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        k = int(steps[bad[0]])
        raise CompatError([("kwargs", f"the schedule is not finite at step {k} (it gives {float(values[bad[0]])!r}); "
                                      "a schedule must stay within float64's range at every step")])


_SPEC_KEYS = ("type", "library", "name", "base_lr", "kwargs", "context", "curve")


def build_compat(spec: Mapping, path: str, builder: Any) -> Compat | None:
    """Build a ``type: compat`` spec, reporting problems through the config builder."""

    def where(key: str) -> str:
        return f"{path}.{key}" if path else key

    ok = True
    for key in spec:
        if key not in _SPEC_KEYS:
            builder.fail(where(key), f"unknown key for type 'compat'{did_you_mean(key, _SPEC_KEYS)} "
                         f"(valid keys: {', '.join(_SPEC_KEYS[1:])})")
            ok = False
    for key in ("library", "name"):
        if key not in spec:
            builder.fail(where(key), "missing (required for type 'compat')")
            ok = False
    if not ok:
        return None
    try:
        return Compat(spec["library"], spec["name"], spec.get("base_lr"), spec.get("kwargs") or {},
                      spec.get("context") or {}, spec.get("curve", "lr"))
    except CompatError as exc:
        for field_name, message in exc.problems:
            builder.fail(where(field_name) if field_name else path, message)
    except ValueError as exc:
        builder.fail(path, str(exc))
    except ArithmeticError as exc:  # a division by zero or an overflow in the library's own formula
        builder.fail(where("kwargs"), f"the library's formula fails on these arguments ({type(exc).__name__}: "
                                      f"{exc})")
    return None
