"""Ramp shapes: the one place where the interpolation formulas live.

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

The same functions serve one step (Python floats) and many (NumPy arrays),
through NumPy ufuncs in both cases, so ``schedule(k) == schedule.at([k])[0]``
bit for bit.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Shape", "geometric_problem", "make_ramp", "ramp_values"]

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
    """A ramp shape: ``name`` plus its parameters (``power``, ``lower``, ``upper``)."""

    name: str
    power: float = 1.0
    lower: float = -7.0
    upper: float = 3.0

    def head(self, x: Any) -> Any:
        """``F(x)`` for ``x <= 1/2``: the fraction of the way from ``a`` to ``b``."""
        name = self.name
        if name == "linear":
            return x
        if name == "1-sqrt":
            return np.sqrt(x)
        if name == "power":
            return -np.expm1(self.power * np.log1p(-x))
        if name == "tanh":
            span = self.upper - self.lower
            return np.sinh(span * x) * math.cosh(self.upper) / (np.cosh(self.lower + span * x) * math.sinh(span))
        raise ValueError(f"unknown shape {name!r}")  # pragma: no cover - validated earlier

    def tail(self, x: Any) -> Any:
        """``G(x) = 1 - F(1 - x)`` for ``x <= 1/2``, written without cancellation."""
        name = self.name
        if name == "linear":
            return x
        if name == "1-sqrt":
            return x / (1.0 + np.sqrt(1.0 - x))
        if name == "power":
            return np.power(x, self.power)
        if name == "tanh":
            span = self.upper - self.lower
            return np.sinh(span * x) * math.cosh(self.lower) / (np.cosh(self.upper - span * x) * math.sinh(span))
        raise ValueError(f"unknown shape {name!r}")  # pragma: no cover - validated earlier


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


def _geometric(a: Any, b: Any, x: Any) -> Any:
    # a * (b / a) ** x with a, b > 0 (validated by callers)
    return a * np.exp(x * np.log(b / a))


def _cosine_ramp(a: float, b: float, n: int) -> Callable[[int], float]:
    half, up, down, c, sin = n // 2, b - a, a - b, _HALF_PI / n, _scalar_sin

    def cosine(k: int) -> float:
        if k >= n:
            return b
        if k <= half:
            s = sin(k * c)
            return a + up * (s * s)
        s = sin((n - k) * c)
        return b + down * (s * s)

    return cosine


def _linear_ramp(a: float, b: float, n: int) -> Callable[[int], float]:
    half, up, down = n // 2, b - a, a - b

    def linear(k: int) -> float:
        if k >= n:
            return b
        if k <= half:
            return a + up * (k / n)
        return b + down * ((n - k) / n)

    return linear


def _one_minus_sqrt_ramp(a: float, b: float, n: int) -> Callable[[int], float]:
    # sqrt is correctly rounded (IEEE 754) in math and NumPy alike, so these
    # are the array path's operations and results
    half, up, down, sqrt = n // 2, b - a, a - b, math.sqrt

    def one_minus_sqrt(k: int) -> float:
        if k >= n:
            return b
        if k <= half:
            return a + up * sqrt(k / n)
        x = (n - k) / n
        return b + down * (x / (1.0 + sqrt(1.0 - x)))

    return one_minus_sqrt


#: shapes with a scalar evaluator of their own: the same operations as :func:`ramp_values`
_SCALAR_RAMPS = {"cosine": _cosine_ramp, "linear": _linear_ramp, "1-sqrt": _one_minus_sqrt_ramp}


def make_ramp(shape: Shape, a: float, b: float, n: int) -> Callable[[int], float]:
    """The scalar evaluator of a ramp from ``a`` (k = 0) to ``b`` (k >= n).

    With ``d = min(k, n - k)``: the head half (``k <= n // 2``) is
    ``a + (b - a) * F(d / n)``, the tail half ``b + (a - b) * G(d / n)``; the
    cosine's ``F = G = sin(d * (pi / 2 / n)) ** 2``. Constants are bound once;
    linear, cosine and 1-sqrt ramps cost a call and a few float operations (the
    same operations as :func:`ramp_values`), other shapes go through
    :func:`ramp_values` on one element.

    >>> f = make_ramp(Shape("cosine"), 1.0, 0.0, 4)
    >>> f(0), f(2), f(4), f(9)
    (1.0, 0.5000000000000001, 0.0, 0.0)
    """
    scalar = _SCALAR_RAMPS.get(shape.name)
    if scalar is not None:
        return scalar(a, b, n)

    # other shapes: the array path on one element (NumPy's scalar and array
    # ufunc paths may differ in the last bit)
    def general(k: int) -> float:
        if k >= n:
            return b
        return float(ramp_values(shape, a, b, np.array([k], dtype=np.int64), n)[0])

    return general


def ramp_values(shape: Shape, a: Any, b: Any, k: np.ndarray, n: Any) -> np.ndarray:
    """:func:`ramp` over an int64 array of local steps ``0 <= k <= n`` (same bits, vectorized).

    ``a``, ``b`` and ``n`` may be scalars or arrays shaped like ``k``.
    """
    head = k <= n // 2
    name = shape.name
    if np.ndim(n) == 0 and np.ndim(a) == 0 and name in ("cosine", "linear") and k.size:
        # the common case of a long evaluation: a cache-sized chunk lies in one
        # half of the ramp, so the same operations run without the selects
        if head.all():
            return _one_half(name, a, b - a, k, n)
        if not head.any():
            return _one_half(name, b, a - b, n - k, n)
    d = np.where(head, k, n - k)
    if name == "exponential":
        x = d / n
        return np.where(head, _geometric(a, b, x), _geometric(b, a, x))
    if name == "cosine":
        f = np.sin(d * (_HALF_PI / n))
        np.multiply(f, f, out=f)
    elif name == "linear":
        f = d / n
    else:
        x = d / n
        f = np.where(head, shape.head(x), shape.tail(x))
    out = np.where(head, b - a, a - b)
    np.multiply(out, f, out=out)
    np.add(out, np.where(head, a, b), out=out)
    return out


def _one_half(name: str, base: float, delta: float, d: np.ndarray, n: int) -> np.ndarray:
    """``base + delta * F(d / n)`` for cosine or linear: :func:`ramp_values` on one half."""
    if name == "cosine":
        f = np.sin(d * (_HALF_PI / n))
        np.multiply(f, f, out=f)
    else:
        f = d / n
    np.multiply(f, delta, out=f)
    np.add(f, base, out=f)
    return f
