"""A compat spec as a native spec: the same curve written with lrtempo's own families.

:func:`to_native` returns the native spec and whether it is the same formula at
every step (``exact``) or only the nearest native form (``exact`` is False and
``note`` says where they part, typically past the library's end, where native
schedules hold their floor and some libraries do not). Either way the two are
different float64 computations, so ``lrtempo convert`` measures the largest
difference and states it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import _composer, _keras, _megatron, _olmo_core, _optax, _timm, _torch, _torchtitan, _transformers

__all__ = ["Conversion", "NotConvertible", "to_native"]


class NotConvertible(ValueError):
    """A compat schedule with no native form (the message says why)."""


@dataclass(frozen=True)
class Conversion:
    """``spec`` is the native spec. ``exact``: the same formula at every step; else ``note`` says where
    the two part, and ``agrees_until`` the last step through which they are still the same formula
    (None: through the library's own end; -1: nowhere guaranteed)."""

    spec: dict
    exact: bool
    note: str = ""
    agrees_until: int | None = None


def _args(table: dict, name: str, kwargs: dict) -> dict:
    """The library's keyword arguments with its defaults filled in."""
    return {**table[name][0], **kwargs}


def _piece(spec: dict, steps: int | None = None) -> dict:
    return {"schedule": spec} if steps is None else {"schedule": spec, "steps": steps}


def _join(pieces: list[dict]) -> dict:
    return pieces[0]["schedule"] if len(pieces) == 1 else {"type": "join", "pieces": pieces}


def _constants(values: list[float], marks: list[int]) -> dict:
    """``values[i]`` on ``[marks[i-1], marks[i])``: a join of constants (marks ascending, repeats allowed)."""
    pieces, start = [], 0
    for value, mark in zip(values, marks):
        if mark > start:
            pieces.append(_piece({"type": "constant", "lr": value}, mark - start))
            start = mark
    pieces.append(_piece({"type": "constant", "lr": values[len(marks)]}))
    return _join(pieces)


# -- torch --------------------------------------------------------------------------------

def _torch_multistep(a: dict, base: float) -> Conversion:
    marks, gamma = sorted(a["milestones"]), a["gamma"]
    if marks and all(x < y for x, y in zip(marks, marks[1:])) and marks[0] > 0:
        return Conversion({"type": "multistep", "base_lr": base, "milestones": marks, "gamma": gamma}, True)
    return Conversion(_constants([base * gamma ** i for i in range(len(marks) + 1)], marks), True)


def _torch_linear(a: dict, base: float) -> Conversion:
    start, end, total = a["start_factor"], a["end_factor"], a["total_iters"]
    if total <= 0:
        return Conversion({"type": "constant", "lr": base * start}, True)
    return Conversion({"type": "linear", "start_lr": base * start, "end_lr": base * end, "steps": total}, True)


def _torch_constant(a: dict, base: float) -> Conversion:
    factor, total = a["factor"], a["total_iters"]
    if total <= 0:
        return Conversion({"type": "constant", "lr": base * factor}, True)
    return Conversion(_constants([base * factor, base], [total]), True)


def _torch_polynomial(a: dict, base: float) -> Conversion:
    if a["total_iters"] <= 0:
        return Conversion({"type": "constant", "lr": base}, True)
    return Conversion({"type": "polynomial", "peak_lr": base, "decay_steps": a["total_iters"], "min_lr": 0.0,
                       "power": a["power"]}, True)


def _torch_cosine(a: dict, base: float) -> Conversion:
    return Conversion({"type": "cosine", "peak_lr": base, "decay_steps": a["T_max"], "min_lr": a["eta_min"]}, False,
                      f"past T_max = {a['T_max']} torch's cosine climbs back to base_lr (period 2 T_max); the native "
                      "cosine holds eta_min")


def _torch_restarts(a: dict, base: float) -> Conversion:
    return Conversion({"type": "restarts", "peak_lr": base, "period": a["T_0"], "period_mult": a["T_mult"],
                       "min_lr": a["eta_min"], "shape": "cosine"}, True)


def _torch_cyclic(a: dict, base: float) -> Conversion:
    up, down = a["step_size_up"], a["step_size_down"]
    if any(v is not None and float(v) != int(v) for v in (up, down)):
        raise NotConvertible("CyclicLR with a fractional step_size_up or step_size_down has no native form "
                             "(the native cyclic counts whole steps)")
    spec = {"type": "cyclic", "base_lr": a["base_lr"], "max_lr": a["max_lr"], "step_size_up": int(up),
            "mode": a["mode"], "gamma": a["gamma"]}
    if down is not None:
        spec["step_size_down"] = int(down)
    return Conversion(spec, True)


def _torch_one_cycle(a: dict, base: float) -> Conversion:
    """torch's phases end at ``pct_start * total - 1`` (and ``2 pct_start * total - 2``) and reach the final
    rate at ``total - 1``: a join of ramps where those are whole steps, else the native ``one_cycle``."""
    total = a["total_steps"] if a["total_steps"] is not None else a["epochs"] * a["steps_per_epoch"]
    shape = {"cos": "cosine"}.get(a["anneal_strategy"], "linear")
    initial = a["max_lr"] / a["div_factor"]
    final = initial / a["final_div_factor"]
    ends = [float(a["pct_start"] * total) - 1]
    levels = [initial, a["max_lr"]]
    if a["three_phase"]:
        ends.append(float(2 * a["pct_start"] * total) - 2)
        levels.append(initial)
    ends.append(total - 1)
    levels.append(final)
    marks = [0.0, *ends]
    if all(float(e).is_integer() for e in ends) and all(y - x >= 1 for x, y in zip(marks, marks[1:])):
        pieces = [_piece({"type": "ramp", "start_lr": levels[i], "end_lr": levels[i + 1], "steps": int(y - x),
                          "shape": shape}, int(y - x)) for i, (x, y) in enumerate(zip(marks, marks[1:]))]
        pieces.append(_piece({"type": "constant", "lr": final}))
        return Conversion(_join(pieces), False, f"torch computes step total_steps = {total} by extending its "
                          "last phase past its end and raises after it; the native join holds the final rate "
                          f"from step {total - 1}", agrees_until=total - 1)
    spec = {"type": "one_cycle", "max_lr": a["max_lr"], "total_steps": total, "pct_start": a["pct_start"],
            "anneal": shape, "div_factor": a["div_factor"], "final_div_factor": a["final_div_factor"],
            "three_phase": a["three_phase"]}
    return Conversion(spec, False, f"torch ends its first phase at pct_start * total_steps - 1 = {ends[0]:g}, "
                      "not a whole step, and reaches the final rate at total_steps - 1; the native one_cycle "
                      "rounds pct_start * total_steps and reaches it at total_steps", agrees_until=-1)


def _torch_sequential(a: dict, base: float) -> Conversion:
    children, marks = a["schedulers"], list(a["milestones"])
    if any(c["name"] == "ChainedScheduler" for c in children):
        raise NotConvertible("ChainedScheduler has no native form (lrtempo has no product of schedules)")
    warm = _warmup_then_cosine(children, marks, base)
    if warm is not None:
        return warm
    parts = [_torch_child(c, base) for c in children]
    bounds = [0, *marks]
    pieces = [_piece(p.spec, bounds[i + 1] - bounds[i]) for i, p in enumerate(parts[:-1]) if bounds[i + 1] > bounds[i]]
    pieces.append(_piece(parts[-1].spec))
    return Conversion(_join(pieces), all(p.exact for p in parts), "; ".join(p.note for p in parts if p.note))


def _warmup_then_cosine(children: list, marks: list, base: float) -> Conversion | None:
    """``SequentialLR([LinearLR(s -> 1 over m), CosineAnnealingLR(T, eta_min)], [m])`` is ``warmup_cosine``."""
    if len(children) != 2 or [c["name"] for c in children] != ["LinearLR", "CosineAnnealingLR"]:
        return None
    lin = _args(_torch.TORCH, "LinearLR", children[0].get("kwargs") or {})
    cos = _args(_torch.TORCH, "CosineAnnealingLR", children[1].get("kwargs") or {})
    if lin["end_factor"] != 1.0 or lin["total_iters"] != marks[0] or marks[0] <= 0:
        return None
    spec = {"type": "warmup_cosine", "peak_lr": base, "total_steps": marks[0] + cos["T_max"],
            "warmup_steps": marks[0], "min_lr": cos["eta_min"], "warmup_start_lr": base * lin["start_factor"]}
    return Conversion(spec, False, f"past step {marks[0] + cos['T_max']} torch's cosine climbs back to base_lr; "
                                   "warmup_cosine holds min_lr")


def _torch_child(child: dict, base: float) -> Conversion:
    return convert("torch", child["name"], base, child.get("kwargs") or {})


TORCH: dict[str, Callable[[dict, float], Conversion]] = {
    "StepLR": lambda a, b: Conversion({"type": "step", "base_lr": b, "step_size": a["step_size"],
                                       "gamma": a["gamma"]}, True),
    "MultiStepLR": _torch_multistep,
    "ConstantLR": _torch_constant,
    "LinearLR": _torch_linear,
    "ExponentialLR": lambda a, b: Conversion({"type": "exponential", "base_lr": b, "decay_rate": a["gamma"]}, True),
    "PolynomialLR": _torch_polynomial,
    "CosineAnnealingLR": _torch_cosine,
    "CosineAnnealingWarmRestarts": _torch_restarts,
    "CyclicLR": _torch_cyclic,
    "OneCycleLR": _torch_one_cycle,
    "SequentialLR": _torch_sequential,
}


# -- transformers ---------------------------------------------------------------------------

def _hf_warmup(w: int, base: float, rest: dict) -> dict:
    return rest if w <= 0 else {"type": "warmup", "warmup_steps": w, "shape": "linear", "start_lr": 0.0,
                                "schedule": rest}


def _hf_cosine_like(a: dict, base: float, min_lr: float) -> Conversion:
    if a["num_cycles"] != 0.5:
        raise NotConvertible(f"num_cycles = {a['num_cycles']} has no native form (warmup_cosine is half a cosine, "
                             "num_cycles 0.5)")
    w, t = a["num_warmup_steps"], a["num_training_steps"]
    return Conversion({"type": "warmup_cosine", "peak_lr": base, "total_steps": t, "warmup_steps": w,
                       "min_lr": min_lr}, False,
                      f"past num_training_steps = {t} transformers' cosine climbs back up; warmup_cosine holds min_lr")


def _hf_min_lr(a: dict, base: float) -> Conversion:
    rate = a["min_lr_rate"] if a["min_lr"] is None else a["min_lr"] / base
    return _hf_cosine_like(a, base, base * rate)


def _hf_linear(a: dict, base: float) -> Conversion:
    w, t = a["num_warmup_steps"], a["num_training_steps"]
    return Conversion({"type": "wsd", "peak_lr": base, "total_steps": t, "decay_steps": t - w, "warmup_steps": w,
                       "min_lr": 0.0, "decay_shape": "linear"}, True)


def _hf_polynomial(a: dict, base: float) -> Conversion:
    w, t = a["num_warmup_steps"], a["num_training_steps"]
    rest = {"type": "polynomial", "peak_lr": base, "decay_steps": t - w, "min_lr": a["lr_end"], "power": a["power"]}
    return Conversion(_hf_warmup(w, base, rest), True)


def _hf_inverse_sqrt(a: dict, base: float) -> Conversion:
    w = a["num_warmup_steps"]
    ts = a["timescale"] if a["timescale"] is not None else (w or 10_000)
    return Conversion({"type": "inverse_sqrt", "peak_lr": base, "warmup_steps": w, "timescale": ts}, True)


def _hf_wsd(a: dict, base: float) -> Conversion:
    w, d = a["num_warmup_steps"], a["num_decay_steps"]
    s = a["num_stable_steps"] if a["num_stable_steps"] is not None else a["num_training_steps"] - w - d
    if a["warmup_type"] != "linear" or s < 0 or (a["decay_type"] == "cosine" and a["num_cycles"] != 0.5):
        raise NotConvertible("get_wsd_schedule converts with a linear warmup, a stable phase of >= 0 steps and "
                             "(for a cosine decay) num_cycles 0.5")
    ratio = a["min_lr_ratio"]
    return Conversion({"type": "wsd", "peak_lr": base, "total_steps": w + s + d, "decay_steps": d,
                       "warmup_steps": w, "min_lr": base * ratio, "decay_shape": a["decay_type"],
                       "warmup_start_lr": base * ratio}, True)


def _hf_get_scheduler(a: dict, base: float) -> Conversion:
    function = _transformers.SCHEDULER_TYPES[a["name"]]
    passed = {"num_warmup_steps": a["num_warmup_steps"], "num_training_steps": a["num_training_steps"],
              **(a["scheduler_specific_kwargs"] or {})}
    signature = _transformers.TRANSFORMERS[function][0]
    return convert("transformers", function, base, {k: v for k, v in passed.items() if k in signature})


TRANSFORMERS: dict[str, Callable[[dict, float], Conversion]] = {
    "get_constant_schedule": lambda a, b: Conversion({"type": "constant", "lr": b}, True),
    "get_constant_schedule_with_warmup": lambda a, b: Conversion(
        _hf_warmup(a["num_warmup_steps"], b, {"type": "constant", "lr": b}), True),
    "get_linear_schedule_with_warmup": _hf_linear,
    "get_cosine_schedule_with_warmup": lambda a, b: _hf_cosine_like(a, b, 0.0),
    "get_cosine_with_min_lr_schedule_with_warmup": _hf_min_lr,
    "get_polynomial_decay_schedule_with_warmup": _hf_polynomial,
    "get_inverse_sqrt_schedule": _hf_inverse_sqrt,
    "get_wsd_schedule": _hf_wsd,
    "get_scheduler": _hf_get_scheduler,
}


# -- optax ------------------------------------------------------------------------------------

def _ox_linear(a: dict, _: Any) -> Conversion:
    init, end, steps, begin = a["init_value"], a["end_value"], a["transition_steps"], max(a["transition_begin"], 0)
    if steps <= 0:
        return Conversion({"type": "constant", "lr": init}, True)
    ramp = {"type": "linear", "start_lr": init, "end_lr": end, "steps": steps}
    return Conversion(_join([_piece({"type": "constant", "lr": init}, begin), _piece(ramp)]) if begin else ramp, True)


def _ox_polynomial(a: dict, _: Any) -> Conversion:
    init, end, steps, begin = a["init_value"], a["end_value"], a["transition_steps"], max(a["transition_begin"], 0)
    if steps <= 0:
        return Conversion({"type": "constant", "lr": init}, True)
    if init < end:
        raise NotConvertible("polynomial_schedule rising from init_value to a larger end_value has no native form "
                             "(the native polynomial decays)")
    decay = {"type": "polynomial", "peak_lr": init, "decay_steps": steps, "min_lr": end, "power": a["power"]}
    return Conversion(_join([_piece({"type": "constant", "lr": init}, begin), _piece(decay)]) if begin else decay,
                      True)


def _ox_join(a: dict, _: Any) -> Conversion:
    """``join_schedules``: each schedule from its boundary on, at the step since that boundary."""
    parts = [convert("optax", c["name"], None, c.get("kwargs") or {}) for c in a["schedules"]]
    bounds = [0, *a["boundaries"]]
    pieces = [_piece(p.spec, bounds[i + 1] - bounds[i]) for i, p in enumerate(parts[:-1]) if bounds[i + 1] > bounds[i]]
    if any(y < x for x, y in zip(bounds, bounds[1:])):
        raise NotConvertible("join_schedules with boundaries that are not ascending has no native form")
    pieces.append(_piece(parts[-1].spec))
    return Conversion(_join(pieces), all(p.exact for p in parts), "; ".join(p.note for p in parts if p.note))


def _ox_sgdr(a: dict, _: Any) -> Conversion:
    """``sgdr_schedule``: a join of warmup-cosine cycles, each ``decay_steps`` long."""
    cycles = [{**_args(_optax.OPTAX, "warmup_cosine_decay_schedule", c)} for c in a["cosine_kwargs"]]
    pieces = [_piece(_ox_warmup_cosine(c, None).spec, c["decay_steps"]) for c in cycles[:-1]]
    pieces.append(_piece(_ox_warmup_cosine(cycles[-1], None).spec))
    return Conversion(_join(pieces), True)


def _ox_cosine(a: dict, _: Any) -> Conversion:
    if a["exponent"] != 1.0:
        raise NotConvertible("cosine_decay_schedule with an exponent other than 1 has no native form")
    init = a["init_value"]
    return Conversion({"type": "cosine", "peak_lr": init, "decay_steps": a["decay_steps"],
                       "min_lr": init * a["alpha"]}, True)


def _ox_warmup_cosine(a: dict, _: Any) -> Conversion:
    if a["exponent"] != 1.0:
        raise NotConvertible("warmup_cosine_decay_schedule with an exponent other than 1 has no native form")
    return Conversion({"type": "warmup_cosine", "peak_lr": a["peak_value"], "total_steps": a["decay_steps"],
                       "warmup_steps": a["warmup_steps"], "min_lr": a["end_value"],
                       "warmup_start_lr": a["init_value"]}, True)


def _ox_exponential(a: dict, _: Any) -> Conversion:
    rate, steps = a["decay_rate"], a["transition_steps"]
    if steps <= 0 or rate == 0:
        return Conversion({"type": "constant", "lr": a["init_value"]}, True)
    if rate >= 1.0:
        raise NotConvertible("exponential_decay with decay_rate >= 1 (a growing rate) has no native form")
    return Conversion({"type": "exponential", "base_lr": a["init_value"], "decay_rate": rate, "decay_steps": steps,
                       "staircase": a["staircase"], "start_step": max(a["transition_begin"], 0),
                       "end_lr": a["end_value"] or 0.0}, True)


def _ox_piecewise_constant(a: dict, _: Any) -> Conversion:
    pairs = sorted((int(k), float(v)) for k, v in (a["boundaries_and_scales"] or {}).items())
    values = [float(a["init_value"])]
    for _, scale in pairs:
        values.append(values[-1] * scale)
    return Conversion(_constants(values, [max(b, 0) for b, _ in pairs]), True)


OPTAX: dict[str, Callable[[dict, Any], Conversion]] = {
    "constant_schedule": lambda a, _: Conversion({"type": "constant", "lr": a["value"]}, True),
    "linear_schedule": _ox_linear,
    "warmup_constant_schedule": lambda a, _: _ox_linear({"init_value": a["init_value"], "end_value": a["peak_value"],
                                                         "transition_steps": a["warmup_steps"],
                                                         "transition_begin": 0}, None),
    "polynomial_schedule": _ox_polynomial,
    "cosine_decay_schedule": _ox_cosine,
    "warmup_cosine_decay_schedule": _ox_warmup_cosine,
    "join_schedules": _ox_join,
    "sgdr_schedule": _ox_sgdr,
    "exponential_decay": _ox_exponential,
    "piecewise_constant_schedule": _ox_piecewise_constant,
}


# -- timm --------------------------------------------------------------------------------------

def _timm_cosine(a: dict, base: float) -> Conversion:
    if a["t_in_epochs"] or a["cycle_limit"] != 1 or a["k_decay"] != 1.0 or (a["warmup_t"] and not a["warmup_prefix"]):
        raise NotConvertible("CosineLRScheduler converts per update (t_in_epochs: false), with one cycle, "
                             "k_decay 1 and any warmup as a prefix (warmup_prefix: true)")
    w, t = a["warmup_t"], a["t_initial"]
    start = a["warmup_lr_init"] if w else base
    return Conversion({"type": "warmup_cosine", "peak_lr": base, "total_steps": w + t, "warmup_steps": w,
                       "min_lr": a["lr_min"], "warmup_start_lr": start}, True)


def _timm_step(a: dict, base: float) -> Conversion:
    if a["t_in_epochs"] or a["warmup_t"] or float(a["decay_t"]) != int(a["decay_t"]):
        raise NotConvertible("StepLRScheduler converts per update (t_in_epochs: false), without a warmup and with "
                             "a whole decay_t")
    return Conversion({"type": "step", "base_lr": base, "step_size": int(a["decay_t"]),
                       "gamma": a["decay_rate"]}, True)


TIMM: dict[str, Callable[[dict, float], Conversion]] = {
    "CosineLRScheduler": _timm_cosine,
    "StepLRScheduler": _timm_step,
}

# -- keras --------------------------------------------------------------------------------

def _whole(a: dict, *names: str) -> None:
    if any(a[n] is not None and float(a[n]) != int(a[n]) for n in names):
        raise NotConvertible(f"Keras' {' and '.join(names)} convert when whole (the native spec counts whole steps)")


def _keras_exponential(a: dict, base: None) -> Conversion:
    _whole(a, "decay_steps")
    return Conversion({"type": "exponential", "base_lr": a["initial_learning_rate"], "decay_rate": a["decay_rate"],
                       "decay_steps": int(a["decay_steps"]), "staircase": a["staircase"]}, True)


def _keras_cosine(a: dict, base: None) -> Conversion:
    _whole(a, "decay_steps", "warmup_steps")
    d, init, alpha = int(a["decay_steps"]), a["initial_learning_rate"], a["alpha"]
    if a["warmup_target"] is None:
        return Conversion({"type": "cosine", "peak_lr": init, "decay_steps": d, "min_lr": alpha * init}, True)
    w, target = int(a["warmup_steps"]), a["warmup_target"]
    if w < 0:
        raise NotConvertible("CosineDecay converts with warmup_steps >= 0")
    return Conversion(_warmup_cosine(target, w + d, w, alpha * target, init), True)


def _keras_polynomial(a: dict, base: None) -> Conversion:
    _whole(a, "decay_steps")
    if a["cycle"]:
        raise NotConvertible("PolynomialDecay with cycle: true restarts over growing spans; lrtempo has no native "
                             "form of that")
    return Conversion({"type": "polynomial", "peak_lr": a["initial_learning_rate"],
                       "decay_steps": int(a["decay_steps"]), "min_lr": a["end_learning_rate"], "power": a["power"]},
                      True)


def _keras_piecewise(a: dict, base: None) -> Conversion:
    """A boundary belongs to the range below it: ``values[i + 1]`` from ``trunc(boundaries[i]) + 1`` on."""
    marks = [int(b) + 1 for b in a["boundaries"]]
    if any(x >= y for x, y in zip(marks, marks[1:])):
        raise NotConvertible("PiecewiseConstantDecay converts with increasing boundaries (Keras sums the values "
                             "of overlapping ranges)")
    return Conversion(_constants([float(v) for v in a["values"]], marks), True)


KERAS: dict[str, Callable[[dict, Any], Conversion]] = {
    "ExponentialDecay": _keras_exponential,
    "CosineDecay": _keras_cosine,
    "PolynomialDecay": _keras_polynomial,
    "PiecewiseConstantDecay": _keras_piecewise,
}


# -- libraries with a context: their rules take (kwargs with defaults, base_lr, context) -----------------

def _wsd(peak: float, total: int, decay: int, warmup: int, floor: float, shape: str, start: float) -> dict:
    return {"type": "wsd", "peak_lr": peak, "total_steps": total, "decay_steps": decay, "warmup_steps": warmup,
            "min_lr": floor, "decay_shape": shape, "warmup_start_lr": start}


def _warmup_cosine(peak: float, total: int, warmup: int, floor: float, start: float) -> dict:
    return {"type": "warmup_cosine", "peak_lr": peak, "total_steps": total, "warmup_steps": warmup,
            "min_lr": floor, "warmup_start_lr": start}


def _from_megatron(a: dict, base: float | None, context: dict) -> Conversion:
    """Megatron's counts in updates (each divided by the increment): warmup_cosine, or wsd for linear and WSD."""
    inc, style, wsd_style = context.get("increment", 1), a["lr_decay_style"], a["lr_wsd_decay_style"]
    w, d, wsd = a["lr_warmup_steps"], a["lr_decay_steps"], a["wsd_decay_steps"]
    counts = [w, d] + ([wsd] if style == "WSD" else [])
    if any(float(c) != int(c) or int(c) % inc for c in counts) or w < 0:
        raise NotConvertible("Megatron's step counts convert when each is a whole number of updates (a multiple of "
                             "context.increment) and the warmup is >= 0")
    w, d = int(w) // inc, int(d) // inc
    init, peak, floor = a["init_lr"], a["max_lr"], a["min_lr"]
    if style == "cosine":
        return Conversion(_warmup_cosine(peak, d, w, floor, init), True)
    if style == "linear":
        return Conversion(_wsd(peak, d, d - w, w, floor, "linear", init), True)
    shape = {"linear": "linear", "cosine": "cosine", "minus_sqrt": "1-sqrt"}.get(wsd_style)
    if style == "WSD" and shape is not None and 1 <= int(wsd) // inc <= d - w:
        return Conversion(_wsd(peak, d, int(wsd) // inc, w, floor, shape, init), True)
    raise NotConvertible("OptimizerParamScheduler converts with lr_decay_style cosine, linear, or WSD with a linear, "
                         "cosine or minus_sqrt anneal that starts after the warmup")


def _olmo_warmup(a: dict, base: float, t: int, strict: bool) -> tuple[int, float]:
    """OLMo-core's warmup (update k at current k + 1, the peak at current w) as a native one of w - 1 steps
    from ``warmup_min_lr + (base - warmup_min_lr) / w``."""
    warmup = a["warmup"] if a["warmup"] is not None else a["warmup_steps"]
    w = warmup if warmup is not None else round(t * a["warmup_fraction"])
    if w < 1 or (w >= t if strict else w > t):
        raise NotConvertible("OLMo-core's schedules convert with a warmup of at least 1 step that ends before t_max "
                             "(its first update is one step into the warmup)")
    wmin = a["warmup_min_lr"]
    return w, wmin + (base - wmin) / w


def _from_olmo(a: dict, base: float, context: dict, name: str) -> Conversion:
    t = context["t_max"] if a.get("t_max") is None else a["t_max"]
    if name == "WSD":
        w, start = _olmo_warmup(a, base, context["t_max"], strict=False)
        t = context["t_max"]
        decay = a["decay"] if a["decay"] is not None else a["decay_steps"]
        d = decay if decay is not None else round(t * a["decay_fraction"])
        if d < 1 or w + d > t:
            raise NotConvertible("WSD converts with a decay of at least 1 step that starts after the warmup")
        return Conversion(_wsd(base, t - 1, d, w - 1, a["decay_min_lr"], "linear", start), True)
    w, start = _olmo_warmup(a, base, t, strict=True)
    floor = base * a["alpha_f"]
    if name == "CosWithWarmup":
        return Conversion(_warmup_cosine(base, t - 1, w - 1, floor, start), True)
    return Conversion(_wsd(base, t - 1, t - w, w - 1, floor, "linear", start), True)


def _from_torchtitan(a: dict, base: float, context: dict) -> Conversion:
    """torchtitan's warmup (k + 1) / W is a native one of W - 1 steps from base_lr / W; its decay reaches the
    floor at T, one step after a run of T updates (the "virtual last step")."""
    training = context["training_steps"]
    total = a["total_steps"] if a["total_steps"] is not None else training
    warmup, _, decay = _torchtitan._lengths(a["warmup_steps"], total, a["decay_ratio"])
    if decay < 1 or warmup < 0 or not 0 <= a["min_lr_factor"] <= 1:
        raise NotConvertible("LRSchedulersContainer converts with a decay of at least 1 step, a warmup >= 0 and "
                             "min_lr_factor in 0..1")
    shape = {"sqrt": "1-sqrt"}.get(a["decay_type"], a["decay_type"])
    spec = _wsd(base, total, decay, max(warmup - 1, 0), base * a["min_lr_factor"], shape,
                base / warmup if warmup else base)
    if training - 1 <= total:
        return Conversion(spec, True)
    return Conversion(spec, False, f"past total_steps = {total} torchtitan's decay keeps its formula (the run has "
                                   f"{training} updates); the native wsd holds min_lr", agrees_until=total)


def _from_composer(a: dict, base: float, context: dict, name: str) -> Conversion:
    """Batch k runs at the factor for k - 1 (batch 0 at the factor for 0): one step at the factor for 0, then
    the native form of the factor."""
    clock = _composer._Clock(context)
    kw = _composer.Kwargs(a, a, name)
    w, t = clock.batches(kw, "t_warmup", a["t_warmup"]), clock.batches(kw, "t_max", a["t_max"])
    if not 0 <= w < t:
        raise NotConvertible(f"{name} converts with 0 <= t_warmup < t_max")
    if name == "CosineAnnealingWithWarmupScheduler":
        spec, first = _warmup_cosine(base, t, w, base * a["alpha_f"], 0.0), 0.0 if w else base
    else:
        top, floor = base * a["alpha_i"], base * a["alpha_f"]
        if floor > top:
            raise NotConvertible("LinearWithWarmupScheduler converts with alpha_f <= alpha_i (a decay)")
        spec, first = _wsd(top, t, t - w, w, floor, "linear", 0.0), 0.0 if w else top
    return Conversion(_join([_piece({"type": "constant", "lr": first}, 1), _piece(spec)]), True)


#: the rules of the libraries whose specs have a context: name -> rule(kwargs, base_lr, context)
WITH_CONTEXT: dict[str, dict[str, Callable[[dict, Any, dict], Conversion]]] = {
    "megatron": {"OptimizerParamScheduler": _from_megatron},
    "olmo-core": {n: (lambda a, b, c, n=n: _from_olmo(a, b, c, n))
                  for n in ("CosWithWarmup", "LinearWithWarmup", "WSD")},
    "torchtitan": {"LRSchedulersContainer": _from_torchtitan},
    "composer": {n: (lambda a, b, c, n=n: _from_composer(a, b, c, n))
                 for n in ("CosineAnnealingWithWarmupScheduler", "LinearWithWarmupScheduler")},
}
_CONTEXT_TABLES = {"megatron": _megatron.MEGATRON, "olmo-core": _olmo_core.OLMO_CORE,
                   "torchtitan": _torchtitan.TORCHTITAN, "composer": _composer.COMPOSER}

_TABLES = {"torch": (TORCH, _torch.TORCH), "transformers": (TRANSFORMERS, _transformers.TRANSFORMERS),
           "optax": (OPTAX, _optax.OPTAX), "timm": (TIMM, _timm.TIMM), "keras": (KERAS, _keras.KERAS),
           **{lib: (WITH_CONTEXT[lib], table) for lib, table in _CONTEXT_TABLES.items()}}


def convert(library: str, name: str, base_lr: float | None, kwargs: dict, context: dict | None = None) -> Conversion:
    if library not in _TABLES:
        raise NotConvertible(f"{library} schedules have no native form in lrtempo yet; keep the compat spec")
    rules, table = _TABLES[library]
    if name not in rules:
        raise NotConvertible(f"{library} {name} has no native form in lrtempo; keep the compat spec "
                             f"(convertible: {', '.join(rules)})")
    args = _args(table, name, dict(kwargs))
    if library in WITH_CONTEXT:
        return rules[name](args, base_lr, dict(context or {}))
    return rules[name](args, base_lr)


def to_native(schedule: Any) -> Conversion:
    """The native spec for a built :class:`~lrtempo.schedules.compat.Compat` schedule.

    >>> from lrtempo.schedules.compat import Compat
    >>> to_native(Compat("torch", "StepLR", base_lr=0.1, kwargs={"step_size": 3})).spec
    {'type': 'step', 'base_lr': 0.1, 'step_size': 3, 'gamma': 0.1}
    """
    if schedule.context and schedule.library == "timm":
        raise NotConvertible("timm's epoch mode holds the rate for a whole epoch; lrtempo has no native form of "
                             "that (keep the compat spec)")
    return convert(schedule.library, schedule.name, schedule.base_lr, schedule.kwargs, schedule.context)
