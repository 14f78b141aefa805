"""Ramp shapes: the one place where the ramp formulas live, in the registry :data:`SHAPES`.

A ramp goes from value ``a`` at local step 0 to value ``b`` at local step
``n``. Its shape is a fraction ``F(x)`` of the way from ``a`` to ``b`` at
progress ``x = k / n``:

=============  ============================================  ===============
shape           F(x)                                           used by
=============  ============================================  ===============
linear          x                                              warmup, linear
cosine          (1 - cos(pi x)) / 2                            cosine decay
1-sqrt          sqrt(x)                                        WSD decay
power           1 - (1 - x) ** power                           polynomial
tanh            normalised tanh between ``lower`` and ``upper``  tanh decay
exponential     geometric: a * (b / a) ** x                    warmup, WSD
=============  ============================================  ===============

Precision. The textbook forms cancel near the end of a ramp: ``min + (peak -
min) * (1 + cos(pi x)) / 2`` has a relative error of about 1e-3 at the last
step of a 10M-step cosine to 0. Every shape here is evaluated from the nearer
end instead: for ``x <= 1/2`` as ``a + (b - a) * F(x)`` and for ``x > 1/2`` as
``b + (a - b) * G(r)`` with ``r = (n - k) / n`` formed from the exact integer
``n - k`` and ``G(r) = 1 - F(1 - r)`` rewritten without cancellation (for the
cosine ``G(r) = sin(pi r / 2) ** 2``). Both ends are then exact (``a`` at
``k = 0``, ``b`` at ``k = n``) and every value is within a few ulp.

Each shape is one entry of :data:`SHAPES`: ``F`` and ``G`` as functions of
the distance ``d`` to the nearer end and the length ``n``, written once. The
array path (:func:`ramp_values`) makes and calls them with NumPy; the one-step
path (:func:`make_ramp`) makes the same functions once per ramp with ``math``
and calls them with Python numbers where that gives NumPy's bits (linear, cosine, 1-sqrt), and the
array path on one element otherwise, so ``schedule(k) ==
schedule.at([k])[0]`` bit for bit (the test suite checks it on random
schedules). A family names the shapes it offers with :func:`shape_names`.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["SHAPES", "Shape", "ShapeFormula", "check_ends", "geometric_problem", "is_geometric", "make_ramp",
           "ramp_values", "shape_names"]

_HALF_PI = 0.5 * math.pi


def _libm_sin_matches_numpy() -> bool:
    """True when ``math.sin`` gives NumPy's bits on a dense probe of [0, pi/2].

    The scalar path uses ``math.sin`` (ten times cheaper than a NumPy call on
    one float) only where it agrees with the array path; otherwise it calls
    NumPy, so ``schedule(k) == schedule.at([k])[0]`` holds either way. The
    test suite checks the identity on random schedules.
    """
    probe = np.concatenate([
        np.linspace(0.0, _HALF_PI, 8193),
        np.random.default_rng(20261122).uniform(0.0, _HALF_PI, 8192),
        np.geomspace(1e-300, 1e-3, 512),
    ])
    return probe.size > 0 and np.array_equal(np.sin(probe), np.array([math.sin(x) for x in probe.tolist()]))


_scalar_sin = math.sin if _libm_sin_matches_numpy() else (lambda x: float(np.sin(x)))


@dataclass(frozen=True, slots=True)
class Shape:
    """A ramp shape: ``name`` (a key of :data:`SHAPES`) plus its parameters (``power``, ``lower``, ``upper``)."""

    name: str
    power: float = 1.0
    lower: float = -7.0
    upper: float = 3.0


#: ``F`` or ``G`` of a shape, made for a ramp: ``(n, shape, ops)`` -> a function ``d -> fraction`` (``d / n``
#: the progress from the nearer end) with the ramp's constants bound; ``ops`` is ``numpy``, or for a
#: one-step evaluation of a shape whose operations agree with NumPy's, :data:`_SCALAR_OPS`
Fraction = Callable[[Any, Shape, Any], Callable[[Any], Any]]


@dataclass(frozen=True, slots=True)
class ShapeFormula:
    """One shape's formula, evaluated from the nearer end of a ramp.

    ``head`` makes ``F(d / n)`` for the first half (``d = k``), ``tail`` makes
    ``G(d / n) = 1 - F(1 - d / n)`` for the second (``d = n - k``), written
    without cancellation; a symmetric shape (``F = G``) leaves ``tail`` None.
    ``scalar``: the functions, made with ``math`` and called with Python
    numbers, give NumPy's bits. ``ends`` replaces the affine form
    ``a + (b - a) * F`` for a shape that is not one (the geometric ramp):
    ``ends(near, far, d / n)``.
    """

    head: Fraction | None
    tail: Fraction | None = None
    scalar: bool = False
    ends: Callable[[Any, Any, Any], Any] | None = None


def _linear(n: Any, shape: Shape, ops: Any) -> Callable[[Any], Any]:
    return lambda d: d / n


def _cosine(n: Any, shape: Shape, ops: Any) -> Callable[[Any], Any]:
    # (1 - cos(pi x)) / 2 = sin(pi x / 2) ** 2: no cancellation at either end. The angle is formed from the
    # progress d / n (one correctly rounded division of two integers), so a ramp counted in another unit
    # (d and n both times B) gives the same bits
    sin = ops.sin

    def cosine(d: Any) -> Any:
        f = sin((d / n) * _HALF_PI)
        return f * f

    return cosine


def _sqrt_head(n: Any, shape: Shape, ops: Any) -> Callable[[Any], Any]:
    sqrt = ops.sqrt
    return lambda d: sqrt(d / n)


def _sqrt_tail(n: Any, shape: Shape, ops: Any) -> Callable[[Any], Any]:
    # 1 - sqrt(1 - x) = x / (1 + sqrt(1 - x)); sqrt is correctly rounded in math and NumPy alike
    sqrt = ops.sqrt

    def one_minus_sqrt(d: Any) -> Any:
        x = d / n
        return x / (1.0 + sqrt(1.0 - x))

    return one_minus_sqrt


def _power_head(n: Any, shape: Shape, ops: Any) -> Callable[[Any], Any]:
    return lambda d: -np.expm1(shape.power * np.log1p(-(d / n)))  # 1 - (1 - x) ** power


def _power_tail(n: Any, shape: Shape, ops: Any) -> Callable[[Any], Any]:
    return lambda d: np.power(d / n, shape.power)


def _tanh_head(n: Any, shape: Shape, ops: Any) -> Callable[[Any], Any]:
    # (tanh(lower + span x) - tanh(lower)) / (tanh(upper) - tanh(lower)) by the tanh subtraction formula
    low, up, span = shape.lower, shape.upper, shape.upper - shape.lower
    return lambda d: np.sinh(span * (d / n)) * math.cosh(up) / (np.cosh(low + span * (d / n)) * math.sinh(span))


def _tanh_tail(n: Any, shape: Shape, ops: Any) -> Callable[[Any], Any]:
    low, up, span = shape.lower, shape.upper, shape.upper - shape.lower
    return lambda d: np.sinh(span * (d / n)) * math.cosh(low) / (np.cosh(up - span * (d / n)) * math.sinh(span))


def _geometric(a: Any, b: Any, x: Any) -> Any:
    # a * (b / a) ** x with a, b > 0 (validated by callers: geometric_problem)
    return a * np.exp(x * np.log(b / a))


#: every ramp shape by name, in the order of the table above (a family offers some: :func:`shape_names`)
SHAPES: dict[str, ShapeFormula] = {
    "linear": ShapeFormula(_linear, scalar=True),
    "cosine": ShapeFormula(_cosine, scalar=True),
    "1-sqrt": ShapeFormula(_sqrt_head, _sqrt_tail, scalar=True),
    "power": ShapeFormula(_power_head, _power_tail),
    "tanh": ShapeFormula(_tanh_head, _tanh_tail),
    "exponential": ShapeFormula(None, ends=_geometric),
}


def shape_names(*names: str) -> tuple[str, ...]:
    """The shapes a family offers, in its order, each checked against :data:`SHAPES`.

    >>> shape_names("cosine", "linear")
    ('cosine', 'linear')
    """
    unknown = [n for n in names if n not in SHAPES]
    if unknown or not names:
        raise ValueError(f"unknown shapes {unknown} (known: {', '.join(SHAPES)})")
    return names


def is_geometric(name: Any) -> bool:
    """True for a shape that is no affine ramp (``exponential``): both its ends must pass :func:`geometric_problem`."""
    formula = SHAPES.get(name) if isinstance(name, str) else None
    return formula is not None and formula.ends is not None


def check_ends(c: Any, shape: Any, a_name: str, b_name: str) -> None:
    """Record on ``c`` (a :class:`~._base.Checks`) why a ramp of ``shape`` from field ``a_name`` to ``b_name``
    would not be finite, if it would not: only a geometric shape can fail, checked once both fields passed
    their own checks."""
    if is_geometric(shape) and c.ok(a_name, b_name):
        problem = geometric_problem(getattr(c.obj, a_name), getattr(c.obj, b_name), a_name, b_name)
        if problem is not None:
            c.fail(*problem)


class _ScalarOps:
    """The ``ops`` of a one-step evaluation: ``math`` where it gives NumPy's bits."""

    sin = staticmethod(_scalar_sin)
    sqrt = staticmethod(math.sqrt)


_SCALAR_OPS = _ScalarOps()


def geometric_problem(a: float, b: float, a_name: str, b_name: str) -> tuple[str, str] | None:
    """Why a geometric (exponential) ramp from ``a`` to ``b`` is not finite at every step, or None.

    The ramp is ``a * exp(x * log(b / a))`` from the start and ``b * exp(x *
    log(a / b))`` from the end; both ratios must be finite and nonzero, which
    needs both ends positive and normal (not subnormal) floats. Returns
    ``(field, message)`` naming the end to change.

    >>> geometric_problem(1e-320, 1e-3, "start_lr", "end_lr")[0]
    'start_lr'
    >>> geometric_problem(1e-6, 1e-3, "start_lr", "end_lr") is None
    True
    """
    tiny = sys.float_info.min
    for name, value in ((a_name, a), (b_name, b)):
        if value <= 0:
            return name, f"must be > 0 for the exponential shape (got {value!r})"
        if value < tiny:
            return name, (f"must be >= {tiny!r} (the smallest normal float64) for the exponential shape "
                          f"(got {value!r})")
    up, down = b / a, a / b
    if not (math.isfinite(up) and math.isfinite(down) and up > 0 and down > 0):
        small = a_name if a < b else b_name
        return small, (f"the exponential shape needs {a_name} / {b_name} within float64's range "
                       f"(got {a!r} / {b!r}); raise the smaller end")
    return None


def make_ramp(shape: Shape, a: float, b: float, n: int) -> Callable[[int], float]:
    """The scalar evaluator of a ramp from ``a`` (k = 0) to ``b`` (k >= n).

    With ``d = min(k, n - k)``: the head half (``k <= n // 2``) is
    ``a + (b - a) * F(d / n)``, the tail half ``b + (a - b) * G(d / n)``, the
    functions of :data:`SHAPES` on Python floats; a shape whose operations
    would not give NumPy's bits on floats goes through :func:`ramp_values` on
    one element.

    >>> f = make_ramp(Shape("cosine"), 1.0, 0.0, 4)
    >>> f(0), f(2), f(4), f(9)
    (1.0, 0.5000000000000001, 0.0, 0.0)
    """
    formula = SHAPES[shape.name]
    if not formula.scalar:
        def general(k: int) -> float:
            if k >= n:
                return b
            return float(ramp_values(shape, a, b, np.array([k], dtype=np.int64), n)[0])

        return general
    half, up, down = n // 2, b - a, a - b
    head = formula.head(n, shape, _SCALAR_OPS)  # type: ignore[misc]
    tail = head if formula.tail is None else formula.tail(n, shape, _SCALAR_OPS)

    def ramp(k: int) -> float:
        if k >= n:
            return b
        if k <= half:
            return a + up * head(k)
        return b + down * tail(n - k)

    return ramp


def ramp_values(shape: Shape, a: Any, b: Any, k: np.ndarray, n: Any) -> np.ndarray:
    """The ramp over an int64 array of local steps ``0 <= k <= n`` (the bits of :func:`make_ramp`, vectorized).

    ``a``, ``b`` and ``n`` may be scalars or arrays shaped like ``k``.
    """
    formula = SHAPES[shape.name]
    head = k <= n // 2
    if np.ndim(n) == 0 and np.ndim(a) == 0 and k.size:
        # the common case of a long evaluation: a cache-sized chunk lies in one half of the ramp, so the
        # same operations run without the selects
        if head.all():
            return _one_half(formula, shape, a, b, k, n, formula.head)
        if not head.any():
            return _one_half(formula, shape, b, a, n - k, n, formula.tail or formula.head)
    d = np.where(head, k, n - k)
    if formula.ends is not None:
        x = d / n
        return np.where(head, formula.ends(a, b, x), formula.ends(b, a, x))
    f = formula.head(n, shape, np)(d)  # type: ignore[misc]
    if formula.tail is not None:
        f = np.where(head, f, formula.tail(n, shape, np)(d))
    out = np.where(head, b - a, a - b)
    np.multiply(out, f, out=out)
    np.add(out, np.where(head, a, b), out=out)
    return out


def _one_half(formula: ShapeFormula, shape: Shape, near: Any, far: Any, d: np.ndarray, n: int,
              fraction: Fraction | None) -> np.ndarray:
    """``near + (far - near) * F(d / n)`` for steps all in one half of a ramp: :func:`ramp_values` without
    the selects (the same operations on the same values)."""
    if formula.ends is not None:
        return formula.ends(near, far, d / n)
    f = np.asarray(fraction(n, shape, np)(d), dtype=np.float64)  # type: ignore[misc]
    np.multiply(f, far - near, out=f)
    np.add(f, near, out=f)
    return f
