"""``torch.optim.lr_scheduler`` schedules, value for value, without importing torch.

Value at step ``k`` = the rate of update ``k`` in torch's documented loop
(``optimizer.step()`` then ``scheduler.step()``, no epoch argument): the
group's lr after ``k`` calls of ``scheduler.step()``. The values are torch's
closed forms (its own recursion differs from them by ~1e-14 relative), except
where torch's loop does something its closed form does not (``total_iters=0``).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from .._shapes import Shape, ramp_values
from ._common import MISSING, CompatError, Impl, Kwargs, build, steps_horizon

_COSINE = Shape("cosine")
_LINEAR = Shape("linear")


def _step_lr(kw: Kwargs, base: float) -> Impl:
    step_size, gamma = kw.integer("step_size"), kw.number("gamma")
    if step_size is not None and step_size <= 0:
        kw.fail("step_size", f"must be > 0 (torch divides by it; got {step_size})")
    kw.done()
    return Impl(lambda k: base * np.power(gamma, k // step_size), 4 * step_size)


def _multi_step_lr(kw: Kwargs, base: float) -> Impl:
    milestones, gamma = kw.integer_list("milestones"), kw.number("gamma")
    kw.done()
    marks = np.sort(np.asarray(milestones, dtype=np.int64))  # torch counts repeats
    return Impl(lambda k: base * np.power(gamma, np.searchsorted(marks, k, side="right")),
                steps_horizon(*(m * 5 // 4 + 1 for m in milestones)))


def _constant_lr(kw: Kwargs, base: float) -> Impl:
    factor, total = kw.number("factor"), kw.integer("total_iters")
    if factor is not None and not 0 <= factor <= 1:
        kw.fail("factor", f"Constant multiplicative factor expected to be between 0 and 1 (got {factor!r})")
    elif factor == 0 and total is not None and total > 0:
        kw.fail("factor", "0 makes torch divide by zero when total_iters is reached")
    kw.done()
    if total <= 0:  # torch's loop: the factor is applied at step 0 and never undone
        return Impl(lambda k: np.full(k.shape, base * factor), 2)
    return Impl(lambda k: base * (factor + (k >= total) * (1 - factor)), total + 2)


def _linear_lr(kw: Kwargs, base: float) -> Impl:
    start, end, total = kw.number("start_factor"), kw.number("end_factor"), kw.integer("total_iters")
    if start is not None and not 0 < start <= 1:
        kw.fail("start_factor", "Starting multiplicative factor expected to be greater than 0 and less "
                f"or equal to 1 (got {start!r})")
    if end is not None and not 0 <= end <= 1:
        kw.fail("end_factor", f"Ending multiplicative factor expected to be between 0 and 1 (got {end!r})")
    kw.done()
    if total <= 0:
        return Impl(lambda k: np.full(k.shape, base * start), 2)
    return Impl(lambda k: base * ramp_values(_LINEAR, start, end, np.minimum(k, total), total), total + 2)


def _exponential_lr(kw: Kwargs, base: float) -> Impl:
    gamma = kw.number("gamma")
    kw.done()
    return Impl(lambda k: base * np.power(gamma, k), 50)


def _polynomial_lr(kw: Kwargs, base: float) -> Impl:
    total, power = kw.integer("total_iters"), kw.number("power")
    kw.done()
    if total <= 0:
        return Impl(lambda k: np.full(k.shape, float(base)), 2)
    return Impl(lambda k: base * np.power((total - np.minimum(k, total)) / total, power), total + 2)


def _cosine_annealing_lr(kw: Kwargs, base: float) -> Impl:
    t_max, eta_min = kw.integer("T_max"), kw.number("eta_min")
    if t_max is not None and t_max <= 0:
        kw.fail("T_max", f"must be > 0 (torch divides by it on the first step; got {t_max})")
    kw.done()

    def values(k: np.ndarray) -> np.ndarray:
        # torch's cosine continues past T_max: period 2 T_max, back up to base_lr
        m = k % (2 * t_max)
        m = np.where(m > t_max, 2 * t_max - m, m)
        return ramp_values(_COSINE, float(base), float(eta_min), m, t_max)

    return Impl(values, t_max, phases=(("anneal", 0, t_max),))


def _sgdr_position(k: np.ndarray, t0: int, mult: int) -> tuple[np.ndarray, np.ndarray]:
    """(local step, cycle length) for cycles ``t0 * mult ** i``, by integer arithmetic."""
    if mult == 1:
        return k % t0, np.full(k.shape, t0, dtype=np.int64)
    top = int(k.max()) if k.size else 0
    starts = [0]
    while starts[-1] <= top:
        starts.append(starts[-1] + t0 * mult ** (len(starts) - 1))
    starts_arr = np.asarray(starts, dtype=np.int64)
    cycle = np.searchsorted(starts_arr, k, side="right") - 1
    return k - starts_arr[cycle], starts_arr[cycle + 1] - starts_arr[cycle]


def _cosine_warm_restarts(kw: Kwargs, base: float) -> Impl:
    t0, mult, eta_min = kw.integer("T_0"), kw.integer("T_mult"), kw.number("eta_min")
    if t0 is not None and t0 <= 0:
        kw.fail("T_0", f"Expected positive integer T_0, but got {t0}")
    if mult is not None and mult < 1:
        kw.fail("T_mult", f"Expected integer T_mult >= 1, but got {mult}")
    kw.done()

    def values(k: np.ndarray) -> np.ndarray:
        j, length = _sgdr_position(k, t0, mult)
        return ramp_values(_COSINE, float(base), float(eta_min), j, length)

    return Impl(values, t0 * (1 + mult + mult * mult))


def _cyclic_lr(kw: Kwargs, base: float) -> Impl:
    lo, hi = kw.number("base_lr"), kw.number("max_lr")
    up, down = kw.number("step_size_up"), kw.number("step_size_down", allow_none=True)
    mode, gamma = kw.raw_value("mode"), kw.number("gamma")
    if kw.raw_value("scale_fn") is not None:
        kw.fail("scale_fn", "is code and cannot be given in a config; use mode")
    if mode not in ("triangular", "triangular2", "exp_range"):
        kw.fail("mode", f"mode is invalid and scale_fn is None (got {mode!r}; valid: 'triangular', "
                "'triangular2', 'exp_range')")
    kw.string("scale_mode", ("cycle", "iterations"))
    cycle_momentum = kw.boolean("cycle_momentum")
    base_m, max_m = kw.number("base_momentum"), kw.number("max_momentum")
    if up is not None and up <= 0:
        kw.fail("step_size_up", f"must be > 0 (got {up!r})")
    if down is not None and down <= 0:
        kw.fail("step_size_down", f"must be > 0 (got {down!r})")
    kw.done()
    up = float(up)
    down = float(down) if down is not None else up
    total = up + down
    ratio = up / total

    def position(k: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(cycle, scale factor, the mode's scale) at each step, as torch's ``get_lr`` computes them."""
        cycle = np.floor(1 + k / total)
        x = 1.0 + k / total - cycle
        scale = np.where(x <= ratio, x / ratio, (x - 1) / (ratio - 1))
        if mode == "triangular":
            return cycle, scale, np.float64(1.0)
        if mode == "triangular2":
            return cycle, scale, 1 / (2.0 ** (cycle - 1))
        return cycle, scale, np.power(gamma, k)

    def values(k: np.ndarray) -> np.ndarray:
        _, scale, mode_scale = position(k)
        return lo + (hi - lo) * scale * mode_scale

    def momentum(k: np.ndarray) -> np.ndarray:
        # inverse to the rate: max_momentum at a cycle's ends, base_momentum at its peak
        _, scale, mode_scale = position(k)
        return max_m - (max_m - base_m) * scale * mode_scale

    return Impl(values, int(2 * total), momentum=momentum if cycle_momentum else None)


def _one_cycle_lr(kw: Kwargs, base: float) -> Impl:
    max_lr = kw.number("max_lr")
    total = kw.integer("total_steps", allow_none=True)
    epochs = kw.integer("epochs", allow_none=True)
    per_epoch = kw.integer("steps_per_epoch", allow_none=True)
    pct = kw.raw_value("pct_start")
    anneal = kw.raw_value("anneal_strategy")
    div, final_div = kw.number("div_factor"), kw.number("final_div_factor")
    three = kw.boolean("three_phase")
    cycle_momentum = kw.boolean("cycle_momentum")
    base_m, max_m = kw.number("base_momentum"), kw.number("max_momentum")
    if total is not None:
        if total <= 0:
            kw.fail("total_steps", f"Expected positive integer total_steps, but got {total}")
    elif epochs is not None and per_epoch is not None:
        if epochs <= 0:
            kw.fail("epochs", f"Expected positive integer epochs, but got {epochs}")
        if per_epoch <= 0:
            kw.fail("steps_per_epoch", f"Expected positive integer steps_per_epoch, but got {per_epoch}")
        total = epochs * per_epoch
    else:
        kw.fail("total_steps", "You must define either total_steps OR (epochs AND steps_per_epoch)")
    if not isinstance(pct, float) or not 0 <= pct <= 1:
        kw.fail("pct_start", f"Expected float between 0 and 1 pct_start, but got {pct!r}")
    if anneal not in ("cos", "linear"):
        kw.fail("anneal_strategy", f"anneal_strategy must be one of 'cos' or 'linear', instead got {anneal!r}")
    kw.done()
    initial = max_lr / div
    final = initial / final_div
    # (end step, start lr, end lr, start momentum, end momentum) of each phase, as torch's _schedule_phases
    if three:
        phases = [(float(pct * total) - 1, initial, max_lr, max_m, base_m),
                  (float(2 * pct * total) - 2, max_lr, initial, base_m, max_m),
                  (total - 1, initial, final, max_m, max_m)]
    else:
        phases = [(float(pct * total) - 1, initial, max_lr, max_m, base_m), (total - 1, max_lr, final, base_m, max_m)]

    def anneal_fn(start, end, frac):
        if anneal == "cos":
            return end + (start - end) / 2.0 * (np.cos(math.pi * frac) + 1)
        return (end - start) * frac + start

    def curve(first: int) -> Callable[[np.ndarray], np.ndarray]:
        """The phases' anneal between their values ``first`` and ``first + 1`` (the rate: 1; momentum: 3)."""

        def values(k: np.ndarray) -> np.ndarray:
            if k.size and int(k.max()) > total:
                raise ValueError(f"OneCycleLR: step {int(k.max())} is past total_steps={total}; torch raises "
                                 f"'Tried to step {int(k.max())} times. The specified number of total steps is "
                                 f"{total}'")
            out = np.empty(k.shape, dtype=np.float64)
            done = np.zeros(k.shape, dtype=bool)
            start = 0.0
            for i, phase in enumerate(phases):
                end, a, b = phase[0], phase[first], phase[first + 1]
                sel = ~done if i == len(phases) - 1 else (~done & (k <= end))
                if sel.any():
                    if end == start:
                        raise ValueError("OneCycleLR: a phase of zero length is reached (torch raises "
                                         "ZeroDivisionError); change pct_start or total_steps")
                    out[sel] = anneal_fn(a, b, (k[sel] - start) / (end - start))
                done |= sel
                start = end
            return out

        return values

    return Impl(curve(1), total, last_valid_step=total, momentum=curve(3) if cycle_momentum else None)


#: classes whose ``step()`` multiplies the group's current lr by the ratio of their own closed form,
#: so that a ``ChainedScheduler`` of them gives ``base_lr`` times the product of their factors
CHAINABLE = ("StepLR", "MultiStepLR", "ConstantLR", "LinearLR", "ExponentialLR", "PolynomialLR")


def _child_specs(kw: Kwargs, owner: str) -> list[tuple[str, str, dict]] | None:
    """``(path, name, kwargs)`` of each ``{name, kwargs}`` mapping in ``kw['schedulers']``."""
    children = kw.raw_value("schedulers")
    if not isinstance(children, list) or not children:
        kw.fail("schedulers", f"{owner} expects at least one scheduler, given as a list of {{name, kwargs}} mappings")
        return None
    out = []
    for i, child in enumerate(children):
        where = f"schedulers[{i}]"
        if not isinstance(child, dict) or "name" not in child:
            kw.fail(where, f"must be a mapping {{name: CLASS, kwargs: {{...}}}} (got {child!r})"[:300])
            continue
        extra = set(child) - {"name", "kwargs"}
        if extra:
            kw.fail(where, f"unknown keys {sorted(extra)} (valid: name, kwargs)")
            continue
        out.append((where, child["name"], child.get("kwargs") or {}))
    return out


def _child(kw: Kwargs, where: str, name: str, kwargs: dict, base: float) -> Impl | None:
    """A child scheduler's Impl, its problems re-rooted under ``where``."""
    try:
        return make(name, kwargs, base)
    except Exception as exc:  # CompatError from the child
        for field, message in getattr(exc, "problems", [("", str(exc))]):
            kw.fail(f"{where}.{field}" if field else where, message)
    return None


def _first_step_ratio(name: str, kwargs: dict) -> float:
    """The factor a chained child applies when its first ``step()`` runs outside torch's initial mode.

    Inside ``SequentialLR``, the ``ChainedScheduler`` is (re)initialised in initial mode but its
    children are stepped normally, so ``ExponentialLR`` and ``PolynomialLR`` (which skip only in
    initial mode) apply one step's factor at step 0; the others branch on ``last_epoch == 0``.
    """
    if name == "ExponentialLR":
        return float(kwargs["gamma"])
    if name == "PolynomialLR":
        total, power = kwargs.get("total_iters", 5), kwargs.get("power", 1.0)
        return (total / (total + 1)) ** power
    return 1.0


def _chained(kw: Kwargs, base: float, *, in_sequential: bool = False) -> Impl:
    """``base_lr * prod_i factor_i(k)``: each child multiplies the current lr by its own step ratio."""
    if kw.raw_value("optimizer") is not None:
        kw.fail("optimizer", "is the optimizer object; compat has none (leave it out)")
    factors: list[tuple[Impl, float]] = []
    for where, name, kwargs in _child_specs(kw, "ChainedScheduler") or []:
        if name not in CHAINABLE:
            kw.fail(f"{where}.name", f"{name!r} in ChainedScheduler is not supported by compat: torch chains a "
                    "scheduler by letting its step() change the current lr, and only these multiply it by their "
                    f"own ratio (so the chain is a product): {', '.join(CHAINABLE)}")
            continue
        impl = _child(kw, where, name, kwargs, 1.0)
        if impl is None:
            continue
        if in_sequential and name == "PolynomialLR" and kwargs.get("total_iters", 5) == 0:
            kw.fail(f"{where}.kwargs.total_iters", "0 inside a ChainedScheduler inside SequentialLR: torch "
                    "divides by it on the first step (ZeroDivisionError)")
            continue
        factors.append((impl, _first_step_ratio(name, kwargs) if in_sequential else 1.0))
    kw.done()

    def values(k: np.ndarray) -> np.ndarray:
        out = np.full(k.shape, float(base))
        for impl, ratio in factors:
            out = out * impl.values(k) * ratio if ratio != 1.0 else out * impl.values(k)
        return out

    return Impl(values, max(impl.horizon for impl, _ in factors))


def _chained_lr(kw: Kwargs, base: float) -> Impl:
    return _chained(kw, base)


def _sequential_lr(kw: Kwargs, base: float) -> Impl:
    milestones = kw.integer_list("milestones")
    children = _child_specs(kw, "SequentialLR")
    # the child SequentialLR initialises at step 0; the others start through _update_lr(0) at a milestone
    first = int(np.searchsorted(np.asarray(milestones or [], dtype=np.int64), 0, side="right"))
    impls: list[Impl] = []
    for i, (where, name, kwargs) in enumerate(children or []):
        if name in ("SequentialLR", "OneCycleLR", "CyclicLR"):
            kw.fail(f"{where}.name", f"{name} inside SequentialLR is not supported by compat: it resets "
                    "the optimizer's lr when constructed, so the result depends on construction order")
            continue
        if name == "ChainedScheduler":
            if milestones is not None and i != first:
                kw.fail(f"{where}.name", "ChainedScheduler inside SequentialLR works in torch only as the "
                        "scheduler running at step 0: SequentialLR starts any later one with _update_lr(0), "
                        "which ChainedScheduler does not implement (torch raises NotImplementedError)")
                continue
            if not isinstance(kwargs, dict):
                kw.fail(f"{where}.kwargs", f"must be a mapping (got {kwargs!r})"[:200])
                continue
            sub = Kwargs(kwargs, TORCH["ChainedScheduler"][0], "ChainedScheduler")
            try:
                impls.append(_chained(sub, base, in_sequential=True))
            except Exception as exc:
                for field, message in getattr(exc, "problems", [("", str(exc))]):
                    kw.fail(f"{where}.{field}" if field else where, message)
            continue
        impl = _child(kw, where, name, kwargs, base)
        if impl is not None:
            impls.append(impl)
    if milestones is not None and children is not None and len(milestones) != len(kw.raw_value("schedulers")) - 1:
        n = len(kw.raw_value("schedulers"))
        kw.fail("milestones", "Sequential Schedulers expects number of schedulers provided to be one more than "
                f"the number of milestone points, but got number of schedulers {n} and the number "
                f"of milestones to be equal to {len(milestones)}")
    kw.done()
    return _sequence(impls, list(milestones))


def _sequence(impls: list[Impl], marks: list[int]) -> Impl:
    """Child ``i`` on ``[marks[i-1], marks[i])``, at its local step."""
    marks_arr = np.asarray(marks, dtype=np.int64)

    def values(k: np.ndarray) -> np.ndarray:
        idx = np.searchsorted(marks_arr, k, side="right")
        out = np.empty(k.shape, dtype=np.float64)
        for i, impl in enumerate(impls):
            sel = idx == i
            if sel.any():
                offset = marks[i - 1] if i > 0 else 0
                out[sel] = impl.values(k[sel] - offset)
        return out

    last = marks[-1] if marks else 0
    phases = tuple((f"scheduler {i}", (marks[i - 1] if i else 0), (marks[i] if i < len(marks) else None))
                   for i in range(len(impls)))
    return Impl(values, last + impls[-1].horizon, phases=phases)


_R = MISSING
#: class name -> (keyword signature with torch's defaults, builder)
TORCH = {
    "StepLR": ({"step_size": _R, "gamma": 0.1}, _step_lr),
    "MultiStepLR": ({"milestones": _R, "gamma": 0.1}, _multi_step_lr),
    "ConstantLR": ({"factor": 1.0 / 3, "total_iters": 5}, _constant_lr),
    "LinearLR": ({"start_factor": 1.0 / 3, "end_factor": 1.0, "total_iters": 5}, _linear_lr),
    "ExponentialLR": ({"gamma": _R}, _exponential_lr),
    "PolynomialLR": ({"total_iters": 5, "power": 1.0}, _polynomial_lr),
    "CosineAnnealingLR": ({"T_max": _R, "eta_min": 0.0}, _cosine_annealing_lr),
    "CosineAnnealingWarmRestarts": ({"T_0": _R, "T_mult": 1, "eta_min": 0.0}, _cosine_warm_restarts),
    "CyclicLR": ({"base_lr": _R, "max_lr": _R, "step_size_up": 2000, "step_size_down": None,
                  "mode": "triangular", "gamma": 1.0, "scale_fn": None, "scale_mode": "cycle",
                  "cycle_momentum": True, "base_momentum": 0.8, "max_momentum": 0.9}, _cyclic_lr),
    "OneCycleLR": ({"max_lr": _R, "total_steps": None, "epochs": None, "steps_per_epoch": None,
                    "pct_start": 0.3, "anneal_strategy": "cos", "cycle_momentum": True,
                    "base_momentum": 0.85, "max_momentum": 0.95, "div_factor": 25.0,
                    "final_div_factor": 1e4, "three_phase": False}, _one_cycle_lr),
    "SequentialLR": ({"schedulers": _R, "milestones": _R}, _sequential_lr),
    "ChainedScheduler": ({"schedulers": _R, "optimizer": None}, _chained_lr),
}

#: classes that overwrite the optimizer's lr with rates from their own kwargs (torch accepts any
#: optimizer lr with them; it has no effect)
OWN_RATE = {"CyclicLR", "OneCycleLR"}


#: classes compat cannot reproduce, and why
NOT_SUPPORTED = {
    "LambdaLR": "takes a function (code), which a config cannot hold; write the schedule as a native spec",
    "MultiplicativeLR": "takes a function (code), which a config cannot hold; write the schedule as a native spec",
    "ReduceLROnPlateau": "follows a metric, not the step (use lrtempo's plateau reductions, recorded in the run)",
}


#: classes that set the optimizer's momentum alongside the rate (with ``cycle_momentum``, their default)
MOMENTUM = ("CyclicLR", "OneCycleLR")


def make(name: str, kwargs: dict, base: float) -> Impl:
    if name in NOT_SUPPORTED:
        raise CompatError([("name", f"torch's {name} {NOT_SUPPORTED[name]}")])
    return build("torch", TORCH, name, kwargs, base)
