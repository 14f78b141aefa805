"""Recipes: named compositions of families and combinators (no new formulas).

Each recipe validates its own parameters, builds its composition once, and
delegates evaluation to it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ._base import Checks, Composed, Phase, Schedule
from ._combinators import Join, Piece, Restarts, Warmup
from ._families import Constant, CosineDecay, InverseSqrt, Ramp
from ._shapes import check_ends, shape_names

__all__ = ["WarmupCosine", "WSD", "WarmupPlateauCosine", "Noam"]


class _Recipe(Composed):
    """A named composition: ``__post_init__`` checks the fields and sets ``_inner``, which does the rest."""

    __slots__ = ()


def _check_common(c: Checks) -> None:
    """The fields every warmup recipe has: the rates (``>= 0``), ``total_steps >= 1``, ``warmup_steps >= 0``."""
    c.real("peak_lr", low=0.0)
    c.real("min_lr", low=0.0)
    c.real("warmup_start_lr", low=0.0)
    c.integer("total_steps", low=1)
    c.integer("warmup_steps", low=0)


def _check_fits(c: Checks, obj: Schedule, part: str, *, strict: bool) -> None:
    """``warmup_steps + part`` within ``total_steps`` (``<`` when ``strict``, else ``<=``), blamed on ``part``."""
    if not c.ok("total_steps", "warmup_steps", part):
        return
    w, p, t = obj.warmup_steps, getattr(obj, part), obj.total_steps  # type: ignore[attr-defined]
    if w + p >= t if strict else w + p > t:
        rel, got = ("<", ">=") if strict else ("<=", ">")
        c.fail(part, f"warmup_steps + {part} must be {rel} total_steps (got {w} + {p} {got} {t})")


def _hold_then(lr: float, steps: int, then: Schedule) -> Schedule:
    """``lr`` for ``steps`` steps, then ``then``; just ``then`` when ``steps`` is 0."""
    return Join((Piece(Constant(lr), steps), Piece(then))) if steps else then


def _warmed(obj: Schedule, body: Schedule) -> Schedule:
    """``body`` behind the recipe's linear warmup (none when ``warmup_steps`` is 0)."""
    w = obj.warmup_steps  # type: ignore[attr-defined]
    return Warmup(body, w, start_lr=obj.warmup_start_lr) if w else body  # type: ignore[attr-defined]


def _named(spans: list[tuple[str, str, int, int | None]]) -> list[Phase]:
    """The phases ``(name, kind, start, stop)`` that are not empty."""
    return [Phase(name, a, b, kind) for name, kind, a, b in spans if b is None or b > a]


@dataclass(frozen=True, slots=True)
class WarmupCosine(_Recipe):
    """Linear warmup then cosine decay to a floor: the schedule of record (docs/contract.md).

    With ``W = warmup_steps``, ``T = total_steps``:

    * ``0 <= k <= W`` (W > 0): ``lr = warmup_start_lr + (peak_lr - warmup_start_lr) * k / W``
    * ``W < k <= T``: ``p = (k - W) / (T - W)``,
      ``lr = min_lr + (peak_lr - min_lr) * (1 + cos(pi p)) / 2``
    * ``k > T``: ``min_lr``

    ``lr(W) = peak_lr`` and ``lr(T) = min_lr`` exactly. With the default
    ``warmup_start_lr = 0`` the first update's rate is 0.

    >>> s = WarmupCosine(peak_lr=1.0, total_steps=10, warmup_steps=2, min_lr=0.1)
    >>> s(0), s(1), s(2), s(6), s(10), s(11)
    (0.0, 0.5, 1.0, 0.55, 0.1, 0.1)
    """

    peak_lr: float
    total_steps: int
    warmup_steps: int = 0
    min_lr: float = 0.0
    warmup_start_lr: float = 0.0
    type_name: ClassVar[str] = "warmup_cosine"
    start_field: ClassVar[str] = "warmup_start_lr"
    fraction_fields: ClassVar[dict] = {"warmup": "warmup_steps"}

    def __post_init__(self) -> None:
        c = Checks(self)
        _check_common(c)
        c.order("warmup_steps", "total_steps", strict=True)
        c.order("min_lr", "peak_lr")
        c.done()
        w = self.warmup_steps
        decay = CosineDecay(peak_lr=self.peak_lr, min_lr=self.min_lr, decay_steps=self.total_steps - w)
        object.__setattr__(self, "_inner", _warmed(self, decay))

    def _phases(self, horizon: int) -> list[Phase]:
        w, t = self.warmup_steps, self.total_steps
        return _named([("warmup", "warmup", 0, w), ("decay", "decay", w, t)])


_DECAY_SHAPES = shape_names("linear", "cosine", "1-sqrt", "power", "exponential")


@dataclass(frozen=True, slots=True)
class WSD(_Recipe):
    """Warmup, stable, decay (the trapezoidal / WSD schedule).

    Linear warmup from ``warmup_start_lr`` to ``peak_lr`` over ``warmup_steps``,
    then ``peak_lr`` held for ``stable = total_steps - warmup_steps -
    decay_steps`` steps, then a ramp of ``decay_shape`` (linear, cosine,
    1-sqrt, power with ``power``, exponential) from ``peak_lr`` down to
    ``min_lr`` over ``decay_steps``; ``min_lr`` after ``total_steps``.

    >>> s = WSD(peak_lr=1.0, total_steps=10, warmup_steps=2, decay_steps=4)
    >>> [s(k) for k in (0, 2, 5, 6, 8, 10)]
    [0.0, 1.0, 1.0, 1.0, 0.5, 0.0]
    """

    peak_lr: float
    total_steps: int
    decay_steps: int
    warmup_steps: int = 0
    min_lr: float = 0.0
    decay_shape: str = "linear"
    power: float = 1.0
    warmup_start_lr: float = 0.0
    type_name: ClassVar[str] = "wsd"
    start_field: ClassVar[str] = "warmup_start_lr"
    field_choices: ClassVar[dict] = {"decay_shape": _DECAY_SHAPES}
    fraction_fields: ClassVar[dict] = {"warmup": "warmup_steps", "decay": "decay_steps"}

    def __post_init__(self) -> None:
        c = Checks(self)
        _check_common(c)
        c.integer("decay_steps", low=1)
        c.choice("decay_shape", self.field_choices["decay_shape"])
        c.real("power", low=0.0, low_open=True)
        c.order("min_lr", "peak_lr")
        _check_fits(c, self, "decay_steps", strict=False)
        check_ends(c, self.decay_shape, "peak_lr", "min_lr")
        c.done()
        stable = self.total_steps - self.warmup_steps - self.decay_steps
        decay = Ramp(self.peak_lr, self.min_lr, self.decay_steps, shape=self.decay_shape, power=self.power)
        object.__setattr__(self, "_inner", _warmed(self, _hold_then(self.peak_lr, stable, decay)))

    def _phases(self, horizon: int) -> list[Phase]:
        w, t, d = self.warmup_steps, self.total_steps, self.decay_steps
        return _named([("warmup", "warmup", 0, w), ("stable", "hold", w, t - d), ("decay", "decay", t - d, t)])


@dataclass(frozen=True, slots=True)
class WarmupPlateauCosine(_Recipe):
    """Warmup, a hold at the peak, then cosine to the floor (optionally with restarts).

    Linear warmup to ``peak_lr`` over ``warmup_steps``; ``peak_lr`` for
    ``plateau_steps``; then the decay phase of ``D = total_steps - warmup_steps
    - plateau_steps`` steps: a cosine from ``peak_lr`` to ``min_lr`` over D, or,
    with ``restart_period``, SGDR cycles (``period_mult``, ``peak_decay``) cut
    off at ``total_steps``. ``min_lr`` from ``total_steps`` on.

    >>> s = WarmupPlateauCosine(peak_lr=1.0, total_steps=10, warmup_steps=2, plateau_steps=4)
    >>> [round(s(k), 12) for k in (0, 2, 6, 8, 10)]
    [0.0, 1.0, 1.0, 0.5, 0.0]
    """

    peak_lr: float
    total_steps: int
    warmup_steps: int = 0
    plateau_steps: int = 0
    min_lr: float = 0.0
    warmup_start_lr: float = 0.0
    restart_period: int | None = None
    period_mult: float = 1
    peak_decay: float = 1.0
    type_name: ClassVar[str] = "warmup_plateau_cosine"
    start_field: ClassVar[str] = "warmup_start_lr"
    period_fields: ClassVar[tuple[str, ...]] = ("restart_period",)
    fraction_fields: ClassVar[dict] = {"warmup": "warmup_steps", "plateau": "plateau_steps"}

    def __post_init__(self) -> None:
        c = Checks(self)
        _check_common(c)
        c.integer("plateau_steps", low=0)
        c.optional_integer("restart_period", low=1)
        c.real("period_mult", low=1.0)
        c.real("peak_decay", low=0.0, low_open=True, high=1.0)
        c.order("min_lr", "peak_lr")
        _check_fits(c, self, "plateau_steps", strict=True)
        c.done()
        if float(self.period_mult).is_integer():
            object.__setattr__(self, "period_mult", int(self.period_mult))
        d = self.total_steps - self.warmup_steps - self.plateau_steps
        if self.restart_period is None:
            decay: Schedule = CosineDecay(self.peak_lr, d, self.min_lr)
        else:
            cycles = Restarts(self.peak_lr, self.restart_period, self.min_lr, self.period_mult, self.peak_decay)
            decay = Join((Piece(cycles, d), Piece(Constant(self.min_lr))))
        object.__setattr__(self, "_inner", _warmed(self, _hold_then(self.peak_lr, self.plateau_steps, decay)))

    def _phases(self, horizon: int) -> list[Phase]:
        w, p, t = self.warmup_steps, self.plateau_steps, self.total_steps
        return _named([("warmup", "warmup", 0, w), ("plateau", "hold", w, w + p), ("decay", "decay", w + p, t)])


@dataclass(frozen=True, slots=True)
class Noam(_Recipe):
    """The original Transformer schedule ("Noam"):
    ``lr(k) = scale * d_model ** -0.5 * min(k ** -0.5, k * warmup_steps ** -1.5)``.

    It is :class:`InverseSqrt` with ``peak_lr = scale / sqrt(d_model *
    warmup_steps)`` and ``timescale = warmup_steps``. Here ``k`` is the 0-based
    step, so the first update's rate is 0, as with every linear warmup.

    >>> s = Noam(d_model=512, warmup_steps=4000)
    >>> round(s(4000), 10) == round(512 ** -0.5 * 4000 ** -0.5, 10)
    True
    """

    d_model: int
    warmup_steps: int
    scale: float = 1.0
    type_name: ClassVar[str] = "noam"

    def __post_init__(self) -> None:
        c = Checks(self)
        c.integer("d_model", low=1)
        c.integer("warmup_steps", low=1)
        c.real("scale", low=0.0, low_open=True)
        c.done()
        peak = self.scale / float(np.sqrt(float(self.d_model) * self.warmup_steps))
        object.__setattr__(self, "_inner", InverseSqrt(peak, self.warmup_steps))

    def _phases(self, horizon: int) -> list[Phase]:
        return list(self._inner.phases(horizon))
