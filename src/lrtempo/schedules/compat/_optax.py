"""optax schedules (``optax.schedules``), value for value, without importing JAX.

Value at step ``k`` = ``schedule(k)``. optax schedules carry their own values
(``init_value``, ``peak_value``), so no ``base_lr`` is given. optax computes in
JAX's default float32; compat evaluates the same formulas in float64 (see
``docs/compat.md``).
"""

from __future__ import annotations

import math

import numpy as np

from ._common import MISSING, CompatError, Impl, Kwargs, build, steps_horizon

_R = MISSING


def _constant(kw: Kwargs) -> Impl:
    value = kw.number("value")
    kw.done()
    return Impl(lambda k: np.full(k.shape, float(value)), 10)


def _polynomial_impl(init, end, power, steps, begin) -> Impl:
    if steps <= 0:  # optax: a constant schedule at init_value
        return Impl(lambda k: np.full(k.shape, float(init)), 10)
    begin = max(begin, 0)

    def values(k):
        count = np.clip(k - begin, 0, steps)
        frac = 1 - count / steps
        return (init - end) * np.power(frac, power) + end

    return Impl(values, begin + steps + 1, phases=(("hold", 0, begin), ("transition", begin, begin + steps)))


def _polynomial(kw: Kwargs) -> Impl:
    init, end, power = kw.number("init_value"), kw.number("end_value"), kw.number("power")
    steps, begin = kw.integer("transition_steps"), kw.integer("transition_begin")
    kw.done()
    return _polynomial_impl(init, end, power, steps, begin)


def _linear(kw: Kwargs) -> Impl:
    init, end = kw.number("init_value"), kw.number("end_value")
    steps, begin = kw.integer("transition_steps"), kw.integer("transition_begin")
    kw.done()
    return _polynomial_impl(init, end, 1, steps, begin)


def _cosine_decay_impl(init, decay_steps, alpha, exponent) -> Impl:
    def values(k):
        count = np.minimum(k, decay_steps).astype(np.float64)
        cosine = 0.5 * (1 + np.cos(math.pi * count / decay_steps))
        return init * ((1 - alpha) * np.power(cosine, exponent) + alpha)

    return Impl(values, int(decay_steps) + 1)


def _cosine_decay(kw: Kwargs) -> Impl:
    init, steps = kw.number("init_value"), kw.integer("decay_steps")
    alpha, exponent = kw.number("alpha"), kw.number("exponent")
    if steps is not None and not steps > 0:
        kw.fail("decay_steps", f"The cosine_decay_schedule requires positive decay_steps, got decay_steps={steps}.")
    kw.done()
    return _cosine_decay_impl(init, steps, alpha, exponent)


def _join_impls(impls: list[Impl], boundaries: list[int]) -> Impl:
    def values(k):
        out = impls[0].values(k)
        for boundary, impl in zip(boundaries, impls[1:]):
            later = k >= boundary
            if later.any():
                out = np.where(later, impl.values(np.maximum(k - boundary, 0)), out)
        return out

    last = boundaries[-1] if boundaries else 0
    return Impl(values, last + impls[-1].horizon)


def _warmup_cosine_impl(kw: Kwargs, prefix: str = "") -> Impl | None:
    init, peak = kw.number("init_value"), kw.number("peak_value")
    warmup, decay_steps = kw.integer("warmup_steps"), kw.integer("decay_steps")
    end, exponent = kw.number("end_value"), kw.number("exponent")
    if warmup is not None and decay_steps is not None and not decay_steps - warmup > 0:
        kw.fail("decay_steps", "The cosine_decay_schedule requires positive decay_steps, got "
                f"decay_steps={decay_steps - warmup} (decay_steps - warmup_steps: optax's decay_steps "
                "includes the warmup)")
    if kw.problems:
        return None
    alpha = 0.0 if peak == 0.0 else end / peak
    impl = _join_impls([_polynomial_impl(init, peak, 1, warmup, 0),
                        _cosine_decay_impl(peak, decay_steps - warmup, alpha, exponent)], [warmup])
    return Impl(impl.values, decay_steps + 1, phases=(("warmup", 0, warmup), ("decay", warmup, decay_steps)))


_WARMUP_COSINE_SIG = {"init_value": _R, "peak_value": _R, "warmup_steps": _R, "decay_steps": _R,
                      "end_value": 0.0, "exponent": 1.0}


def _warmup_cosine(kw: Kwargs) -> Impl:
    impl = _warmup_cosine_impl(kw)
    kw.done()
    return impl


def _exponential_impl(init, steps, rate, begin, staircase, end) -> Impl:
    if steps <= 0 or rate == 0:  # optax: a constant schedule at init_value
        return Impl(lambda k: np.full(k.shape, float(init)), 10)
    begin = max(begin, 0)

    def values(k):
        dec = k - begin
        p = dec / steps
        if staircase:
            p = np.floor(p)
        with np.errstate(over="ignore"):  # a growing rate capped by end_value may overflow before the cap
            out = np.where(dec <= 0, float(init), init * np.power(rate, p))
        if end is not None:
            out = np.maximum(out, end) if rate < 1.0 else np.minimum(out, end)
        return out

    return Impl(values, begin + 10 * steps)



def _exponential_args(kw: Kwargs) -> tuple:
    steps, rate = kw.integer("transition_steps"), kw.number("decay_rate")
    begin, staircase = kw.integer("transition_begin"), kw.boolean("staircase")
    return steps, rate, begin, staircase, kw.number("end_value", allow_none=True)


def _exponential(kw: Kwargs) -> Impl:
    init = kw.number("init_value")
    args = _exponential_args(kw)
    kw.done()
    return _exponential_impl(init, *args)


def _warmup_constant(kw: Kwargs) -> Impl:
    """``linear_schedule(init_value, peak_value, warmup_steps)``: the warmup, then ``peak_value`` held."""
    init, peak, warmup = kw.number("init_value"), kw.number("peak_value"), kw.integer("warmup_steps")
    kw.done()
    impl, start = _polynomial_impl(init, peak, 1, warmup, 0), max(warmup, 0)
    return Impl(impl.values, start + 10, phases=(("warmup", 0, start), ("constant", start, None)))


def _warmup_exponential(kw: Kwargs) -> Impl:
    """``join_schedules([linear_schedule(init, peak, warmup_steps), exponential_decay(peak, ...)], [warmup_steps])``:
    the decay sees the step since the warmup ended, so its ``transition_begin`` counts from there."""
    init, peak, warmup = kw.number("init_value"), kw.number("peak_value"), kw.integer("warmup_steps")
    args = _exponential_args(kw)
    kw.done()
    decay = _exponential_impl(peak, *args)
    impl = _join_impls([_polynomial_impl(init, peak, 1, warmup, 0), decay], [warmup])
    start = max(warmup, 0)
    return Impl(impl.values, impl.horizon, phases=(("warmup", 0, start), ("decay", start, None)))


def _scales(kw: Kwargs, name: str) -> list[tuple[int, float]] | None:
    raw = kw.raw_value(name)
    if raw is None:
        return []
    if not isinstance(raw, dict):
        kw.fail(name, f"must be a mapping of step -> scale (got {raw!r})")
        return None
    out = []
    for key, scale in raw.items():
        try:
            step = int(key)
            if isinstance(key, float) and not key.is_integer():
                raise ValueError
        except (TypeError, ValueError):
            kw.fail(name, f"keys must be step numbers (got {key!r})")
            return None
        if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not math.isfinite(scale):
            kw.fail(name, f"scales must be numbers (got {scale!r} at {key!r})")
            return None
        out.append((step, float(scale)))
    return sorted(out)


def _piecewise_constant(kw: Kwargs) -> Impl:
    init = kw.number("init_value")
    pairs = _scales(kw, "boundaries_and_scales")
    if pairs and not all(s >= 0.0 for _, s in pairs):
        kw.fail("boundaries_and_scales", "`piecewise_constant_schedule` expects non-negative scale factors")
    kw.done()

    def values(k):
        v = np.full(k.shape, float(init))
        for threshold, scale in pairs:
            # optax: scaled from count >= threshold on (sign(threshold - count) <= 0)
            v = np.where(k < threshold, v, scale * v)
        return v

    return Impl(values, steps_horizon(*(b * 5 // 4 + 1 for b, _ in pairs), 10))


def _interpolate_impl(kind: str, init: float, pairs: list[tuple[int, float]]) -> Impl:
    """optax's ``piecewise_interpolate_schedule``: on ``[b_i, b_{i+1})`` interpolate between the running
    products of the scales; ``values[-1]`` from the last boundary on. Each interval's length is taken as
    at least 1 (``jnp.maximum(..., 1)``), so a zero-length interval (coincident boundaries, or a
    boundary at 0) holds no step and the value jumps there."""
    bounds = np.asarray([0] + [b for b, _ in pairs], dtype=np.int64)
    vals = np.cumprod(np.asarray([init] + [s for _, s in pairs], dtype=np.float64))
    sizes = np.maximum(bounds[1:] - bounds[:-1], 1)

    def values(k):
        out = np.where(bounds[-1] <= k, vals[-1], 0.0)
        for i in range(sizes.size):
            sel = (bounds[i] <= k) & (k < bounds[i + 1])
            if sel.any():
                pct = (k[sel] - bounds[i]) / sizes[i]
                a, b = vals[i], vals[i + 1]
                if kind == "linear":
                    out[sel] += (b - a) * pct + a
                else:
                    out[sel] += b + (a - b) / 2.0 * (np.cos(math.pi * pct) + 1)
        return out

    phases = tuple((f"segment {i}", int(bounds[i]), int(bounds[i + 1])) for i in range(sizes.size)
                   if bounds[i + 1] > bounds[i])
    return Impl(values, max(int(bounds.max()), 0) + 1, phases=phases)


def _piecewise_interpolate(kw: Kwargs) -> Impl:
    kind = kw.raw_value("interpolate_type")
    init = kw.number("init_value")
    pairs = _scales(kw, "boundaries_and_scales")
    if kind not in ("linear", "cosine"):
        kw.fail("interpolate_type", f"`interpolate_type` must be either 'cosine' or 'linear' (got {kind!r})")
    if pairs and not all(s >= 0.0 for _, s in pairs):
        kw.fail("boundaries_and_scales", "`piecewise_interpolate_schedule` expects non-negative scale factors")
    kw.done()
    return _interpolate_impl(kind, init, pairs)


def _cosine_onecycle(kw: Kwargs) -> Impl:
    steps, peak = kw.integer("transition_steps"), kw.number("peak_value")
    pct, div, final = kw.number("pct_start"), kw.number("div_factor"), kw.number("final_div_factor")
    if steps is not None and steps <= 0:
        kw.fail("transition_steps", "A linear onecycle schedule was set with a non-positive `transition_steps`")
    kw.done()
    table = {int(pct * steps): div, int(steps): 1.0 / (div * final)}
    return _interpolate_impl("cosine", peak / div, sorted(table.items()))


def _linear_onecycle(kw: Kwargs) -> Impl:
    steps, peak = kw.integer("transition_steps"), kw.number("peak_value")
    pct, pct_final = kw.number("pct_start"), kw.number("pct_final")
    div, final = kw.number("div_factor"), kw.number("final_div_factor")
    if steps is not None and steps <= 0:
        kw.fail("transition_steps", "A linear onecycle schedule was set with a non-positive `transition_steps`")
    kw.done()
    table = {int(pct * steps): div, int(pct_final * steps): 1.0 / div, steps: 1.0 / final}
    return _interpolate_impl("linear", peak / div, sorted(table.items()))


def _children(kw: Kwargs, name: str) -> list[Impl] | None:
    raw = kw.raw_value(name)
    if not isinstance(raw, list) or not raw:
        kw.fail(name, "must be a non-empty list of {name, kwargs} mappings")
        return None
    out = []
    for i, child in enumerate(raw):
        where = f"{name}[{i}]"
        if not isinstance(child, dict) or "name" not in child or set(child) - {"name", "kwargs"}:
            kw.fail(where, f"must be a mapping {{name: FUNCTION, kwargs: {{...}}}} (got {child!r})")
            continue
        try:
            out.append(make(child["name"], child.get("kwargs") or {}))
        except CompatError as exc:
            for field, message in exc.problems:
                kw.fail(f"{where}.{field}" if field else where, message)
    return out


def _join(kw: Kwargs) -> Impl:
    impls = _children(kw, "schedules")
    boundaries = kw.integer_list("boundaries")
    if impls is not None and boundaries is not None and len(boundaries) != len(impls) - 1:
        kw.fail("boundaries", f"must have one entry fewer than schedules (got {len(boundaries)} for "
                f"{len(impls)} schedules)")
    kw.done()
    return _join_impls(impls, boundaries)


def _sgdr(kw: Kwargs) -> Impl:
    raw = kw.raw_value("cosine_kwargs")
    impls, boundaries, step = [], [], 0
    if not isinstance(raw, list) or not raw:
        kw.fail("cosine_kwargs", "must be a non-empty list of warmup_cosine_decay_schedule keyword mappings")
    else:
        for i, cycle in enumerate(raw):
            if not isinstance(cycle, dict):
                kw.fail(f"cosine_kwargs[{i}]", f"must be a mapping (got {cycle!r})")
                continue
            sub = Kwargs(cycle, _WARMUP_COSINE_SIG, "warmup_cosine_decay_schedule")
            impl = _warmup_cosine_impl(sub)
            for field, message in sub.problems:
                kw.fail(f"cosine_kwargs[{i}].{field.removeprefix('kwargs.')}", message)
            if impl is not None:
                impls.append(impl)
                step += cycle["decay_steps"]
                boundaries.append(step)
    kw.done()
    impl = _join_impls(impls, boundaries[:-1])
    starts = [0, *boundaries[:-1]]
    return Impl(impl.values, boundaries[-1] + 1,
                phases=tuple((f"cycle {i}", a, b) for i, (a, b) in enumerate(zip(starts, boundaries))))


OPTAX = {
    "constant_schedule": ({"value": _R}, _constant),
    "linear_schedule": ({"init_value": _R, "end_value": _R, "transition_steps": _R, "transition_begin": 0},
                        _linear),
    "polynomial_schedule": ({"init_value": _R, "end_value": _R, "power": _R, "transition_steps": _R,
                             "transition_begin": 0}, _polynomial),
    "cosine_decay_schedule": ({"init_value": _R, "decay_steps": _R, "alpha": 0.0, "exponent": 1.0},
                              _cosine_decay),
    "warmup_cosine_decay_schedule": (_WARMUP_COSINE_SIG, _warmup_cosine),
    "exponential_decay": ({"init_value": _R, "transition_steps": _R, "decay_rate": _R, "transition_begin": 0,
                           "staircase": False, "end_value": None}, _exponential),
    "warmup_constant_schedule": ({"init_value": _R, "peak_value": _R, "warmup_steps": _R}, _warmup_constant),
    "warmup_exponential_decay_schedule": ({"init_value": _R, "peak_value": _R, "warmup_steps": _R,
                                           "transition_steps": _R, "decay_rate": _R, "transition_begin": 0,
                                           "staircase": False, "end_value": None}, _warmup_exponential),
    "piecewise_constant_schedule": ({"init_value": _R, "boundaries_and_scales": None}, _piecewise_constant),
    "piecewise_interpolate_schedule": ({"interpolate_type": _R, "init_value": _R, "boundaries_and_scales": None},
                                       _piecewise_interpolate),
    "join_schedules": ({"schedules": _R, "boundaries": _R}, _join),
    "sgdr_schedule": ({"cosine_kwargs": _R}, _sgdr),
    "cosine_onecycle_schedule": ({"transition_steps": _R, "peak_value": _R, "pct_start": 0.3,
                                  "div_factor": 25.0, "final_div_factor": 1e4}, _cosine_onecycle),
    "linear_onecycle_schedule": ({"transition_steps": _R, "peak_value": _R, "pct_start": 0.3, "pct_final": 0.85,
                                  "div_factor": 25.0, "final_div_factor": 1e4}, _linear_onecycle),
}


def make(name: str, kwargs: dict) -> Impl:
    return build("optax", OPTAX, name, kwargs)
