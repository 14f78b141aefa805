"""OLMo-core's schedulers (``olmo_core.optim.scheduler``), value for value, as OLMo-core's trainer applies them.

Every scheduler is ``get_lr(initial_lr, current, t_max)``: ``initial_lr`` is the
optimizer's lr (``base_lr``), ``t_max`` the trainer's ``max_steps``
(``context.t_max``). The trainer adds 1 to ``global_step`` *before* each batch
and sets the rate before ``optimizer.step()``, so update ``k`` (0-based) runs at
``get_lr(base_lr, k + 1, t_max)``. Its last update is ``k = t_max - 1``: the
trainer stops there, and compat raises past it (``SequentialScheduler`` asserts
``current <= t_max``; the others would keep their formula, which for ``WSD``
falls below ``decay_min_lr`` and then below 0).

Each scheduler below is a :class:`_Node`: its ``lr`` follows OLMo-core's
``get_lr`` branch for branch on an array of ``current`` (``initial`` and
``t_max`` are numbers, as they are for every child of a
``SequentialScheduler``), raising where OLMo-core asserts or divides by zero.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .._base import MAX_STEPS
from ._common import MISSING, CompatError, Context, Impl, Kwargs, build

_R = MISSING

_BASE = {"lr_field": "lr", "initial_lr_field": "initial_lr", "units": "steps"}
_WARMUP = {"warmup": None, "warmup_steps": None, "warmup_fraction": None, "warmup_min_lr": 0.0}
_DECAY = {"decay": None, "decay_steps": None, "decay_fraction": 0.1, "decay_min_lr": 0.0}


@dataclass(frozen=True)
class _Node:
    """One scheduler: ``lr(initial, current, t_max)`` and its phases for a given ``t_max`` (in updates)."""

    lr: Callable[[float, np.ndarray, int], np.ndarray]
    phases: Callable[[int], list[tuple[str, int, int | None]]]
    marks: Callable[[int], list[int]]  # values of ``current`` where a branch changes, for the checks on build


def _fail(field: str, message: str) -> None:
    raise CompatError([(f"kwargs.{field}" if field else "kwargs", message)])


def _linear_warmup(initial: float, current: np.ndarray, warmup: int, floor: float) -> np.ndarray:
    """``warmup_min_lr + (initial_lr - warmup_min_lr) * min(current, warmup) / warmup``."""
    if current.size:
        if not 0 <= floor < initial:
            _fail("warmup_min_lr", f"must be >= 0 and below the rate the warmup reaches ({initial!r}; OLMo-core "
                                   f"asserts 0 <= warmup_min_lr < initial_lr; got {floor!r})")
        if warmup == 0:
            _fail("warmup", "a warmup of 0 is reached at current 0, where OLMo-core divides by it")
    return floor + (initial - floor) * np.minimum(current, warmup) / warmup


def _linear_decay(initial: float, from_end: np.ndarray, decay: int, floor: float) -> np.ndarray:
    """``decay_min_lr + (initial_lr - decay_min_lr) * min(step_from_end, decay) / decay``."""
    if from_end.size:
        if not 0 <= floor < initial:
            _fail("decay_min_lr", f"must be >= 0 and below the rate the decay starts from ({initial!r}; "
                                  f"OLMo-core asserts 0 <= decay_min_lr < initial_lr; got {floor!r})")
        if decay == 0:
            _fail("decay", "a decay of 0 steps is reached at the last update (current == t_max), where "
                           "OLMo-core divides by it; give a decay of at least 1 step")
    return floor + (initial - floor) * np.minimum(from_end, decay) / decay


def _where(cond: np.ndarray, current: np.ndarray, out: np.ndarray, fn: Callable[[np.ndarray], np.ndarray]) -> None:
    """``out[cond] = fn(current[cond])`` (``fn`` sees only the steps of its branch, as OLMo-core's ``if`` does)."""
    if cond.any():
        out[cond] = fn(current[cond])


def _duration(kw: Kwargs, name: str, fraction_default: object) -> tuple[int | None, float | None]:
    """``name`` (steps; its deprecated ``NAME_steps`` alias) or ``NAME_fraction``: exactly one, as OLMo-core checks."""
    before = len(kw.problems)
    value = kw.integer(name, allow_none=True)
    alias = kw.integer(f"{name}_steps", allow_none=True)
    if value is None and alias is not None:
        value = alias
    fraction = kw.number(f"{name}_fraction", allow_none=True)
    if len(kw.problems) > before:
        return None, None
    if (fraction is None) == (value is None):
        kw.fail(f"{name}_fraction", f"give exactly one of {name!r} and '{name}_fraction' (OLMo-core raises: "
                f"\"Either '{name}_fraction' or '{name}' must be specified\")"
                + (f"; '{name}_fraction' defaults to {fraction_default}, so set it to null with {name!r}"
                   if fraction_default is not None else ""))
    elif fraction is not None and not 0 <= fraction <= 1:
        kw.fail(f"{name}_fraction", f"must be between 0 and 1 (OLMo-core raises; got {fraction})")
    return value, fraction


def _resolve(value: int | None, fraction: float | None, t_max: int) -> int:
    """OLMo-core's ``round(t_max * fraction)`` (Python's round: halves to even) unless steps are given."""
    return value if value is not None else round(t_max * fraction)


def _common(kw: Kwargs) -> None:
    kw.string("units", ("steps", "tokens"))
    if kw.raw_value("units") == "tokens":
        kw.fail("units", "tokens: the rate then follows the tokens seen, which depend on each batch; compat "
                "reproduces step-based schedules (units: steps)")
    for name in ("lr_field", "initial_lr_field"):
        kw._valid(name, lambda v: isinstance(v, str), lambda v: f"must be a string (got {v!r})")


def _spans(t_max: int, *marks: tuple[str, int]) -> list[tuple[str, int, int | None]]:
    """Phases from ``(name, first update)`` marks, each running to the next; empty ones dropped."""
    starts, low = [], 0
    for _, start in marks:
        low = max(low, min(max(start, 0), max(t_max, 0)))
        starts.append(low)
    out = []
    for i, (name, _) in enumerate(marks):
        stop = starts[i + 1] if i + 1 < len(marks) else None
        if stop is None or starts[i] < stop:
            out.append((name, starts[i], stop))
    return out


def _warmup_args(kw: Kwargs) -> tuple:
    warmup, fraction = _duration(kw, "warmup", None)
    return warmup, fraction, kw.number("warmup_min_lr")


def _constant(kw: Kwargs) -> _Node:
    _common(kw)
    kw.done()
    return _Node(lambda init, c, t: np.full(c.shape, float(init)), lambda t: [("constant", 0, None)], lambda t: [])


def _constant_with_warmup(kw: Kwargs) -> _Node:
    _common(kw)
    warmup, fraction, wmin = _warmup_args(kw)
    kw.done()

    def lr(init, c, t):
        w = _resolve(warmup, fraction, t)
        out = np.full(c.shape, float(init))
        _where(c <= w, c, out, lambda x: _linear_warmup(init, x, w, wmin))
        return out

    return _Node(lr, lambda t: _spans(t, ("warmup", 0), ("constant", _resolve(warmup, fraction, t))),
                 lambda t: [_resolve(warmup, fraction, t)])


def _wsd(kw: Kwargs, power: bool = False) -> _Node:
    _common(kw)
    warmup, wfrac, wmin = _warmup_args(kw)
    decay, dfrac = _duration(kw, "decay", 0.1)
    dmin = kw.number("decay_min_lr")
    b = kw.number("b") if power else None
    if power and b is not None and b >= 0:
        kw.fail("b", f"must be negative for a decaying power law (OLMo-core raises; got {b})")
    kw.done()

    def lr(init, c, t):
        w, d = _resolve(warmup, wfrac, t), _resolve(decay, dfrac, t)
        out = np.full(c.shape, float(init))
        late = c > w
        if power:
            _where(late, c, out, lambda x: init * _power(x, w, b))
            _where(late & (c >= t - d), c, out,
                   lambda x: _linear_decay(float(init * _power(np.asarray([t - d]), w, b)[0]), t - x, d, dmin))
        else:
            _where(late & (c >= t - d), c, out, lambda x: _linear_decay(init, t - x, d, dmin))
        _where(~late, c, out, lambda x: _linear_warmup(init, x, w, wmin))
        return out

    def phases(t):
        w, d = _resolve(warmup, wfrac, t), _resolve(decay, dfrac, t)
        return _spans(t, ("warmup", 0), ("power" if power else "stable", w), ("decay", t - d - 1))

    return _Node(lr, phases, lambda t: [_resolve(warmup, wfrac, t), t - _resolve(decay, dfrac, t)])


def _power(x: np.ndarray, warmup: int, b: float) -> np.ndarray:
    """``(current / warmup) ** b`` (PowerLR), refused where Python would divide by zero or go complex."""
    if x.size:
        if warmup == 0:
            _fail("warmup", "PowerLR divides the step by the warmup: a warmup of 0 raises ZeroDivisionError")
        if np.any(x <= 0):
            _fail("decay", "PowerLR's decay tail starts at or before step 0 (t_max - decay <= 0), where "
                           "(current / warmup) ** b is not a real number; give a shorter decay")
    return np.power(x / warmup, b)


def _cosine_like(kw: Kwargs, shape: str) -> _Node:
    """LinearWithWarmup, CosWithWarmup, HalfCosWithWarmup, InvSqrtWithWarmup: ``current < warmup`` warms up."""
    _common(kw)
    warmup, fraction, wmin = _warmup_args(kw)
    alpha = kw.number("alpha_f")
    own = kw.integer("t_max", allow_none=True) if shape != "inv_sqrt" else None
    kw.done()

    def lr(init, c, t):
        t = t if own is None else own
        eta, w = init * alpha, _resolve(warmup, fraction, t)
        out = np.full(c.shape, float(eta))
        if shape == "inv_sqrt":
            _where(c >= w, c, out, lambda x: eta + (init - eta) * np.sqrt(w / x))
        else:
            _where((c >= w) & (c < t), c, out, lambda x: _decay(shape, init, eta, x - w, t - w))
        top = eta + (init - eta) / 2 if shape == "half_cos" else init
        _where(c < w, c, out, lambda x: _linear_warmup(top, x, w, wmin))
        return out

    def phases(t):
        t = t if own is None else own
        w = _resolve(warmup, fraction, t)
        if shape == "inv_sqrt":
            return _spans(MAX_STEPS, ("warmup", 0), ("decay", w - 1))
        return _spans(t, ("warmup", 0), ("decay", w - 1), ("constant", t - 1))

    def marks(t):
        t = t if own is None else own
        return [_resolve(warmup, fraction, t), t]

    return _Node(lr, phases, marks)


def _decay(shape: str, init: float, eta: float, x: np.ndarray, span: int) -> np.ndarray:
    """The decay of LinearWithWarmup / CosWithWarmup / HalfCosWithWarmup, ``x`` steps after the warmup."""
    if shape == "linear":
        return init - (init - eta) * (x / span)
    if shape == "half_cos":
        x, span = x + span, span * 2
    return eta + (init - eta) * (1 + np.cos(math.pi * x / span)) / 2


def _cos_linear_decay(kw: Kwargs) -> _Node:
    """CosWithWarmupAndLinearDecay: CosWithWarmup, cut ``decay`` steps before ``t_max`` by a linear decay."""
    decay, dfrac = _duration(kw, "decay", 0.1)
    dmin = kw.number("decay_min_lr")
    cos = _cosine_like(Kwargs({k: v for k, v in kw.raw.items() if k not in _DECAY},
                              {k: v for k, v in kw.signature.items() if k not in _DECAY}, kw.where), "cos")

    def lr(init, c, t):
        d = _resolve(decay, dfrac, t)
        out = cos.lr(init, c, t)
        _where(c >= t - d, c, out,
               lambda x: _linear_decay(float(cos.lr(init, np.asarray([t - d]), t)[0]), t - x, d, dmin))
        return out

    def phases(t):
        d = _resolve(decay, dfrac, t)
        head = [(n, a) for n, a, _ in cos.phases(t) if a < t - d - 1]
        return _spans(t, *head, ("decay", t - d - 1))

    kw.done()
    return _Node(lr, phases, lambda t: [*cos.marks(t), t - _resolve(decay, dfrac, t)])


def _exponential(kw: Kwargs) -> _Node:
    """ExponentialScheduler: from ``lr_min`` at current 0 up to ``initial_lr`` at ``t_max``."""
    _common(kw)
    lr_min = kw.number("lr_min")
    if lr_min is not None and lr_min <= 0:
        kw.fail("lr_min", f"must be positive (OLMo-core raises; got {lr_min})")
    kw.done()

    def lr(init, c, t):
        out = np.where(c == 0, float(lr_min), lr_min * np.power(init / lr_min, c / t if t else 0.0))
        return np.where(c >= t, float(init), out)

    return _Node(lr, lambda t: _spans(t, ("ramp", 0), ("constant", t - 1)), lambda t: [t])


def _children(kw: Kwargs) -> list[tuple[str, _Node]] | None:
    """The ``schedulers`` of a SequentialScheduler, each ``{name, kwargs}``, built with their problems re-rooted."""
    raw = kw.raw_value("schedulers")
    if not isinstance(raw, list) or not raw:
        kw.fail("schedulers", "must be a non-empty list of {name: CLASS, kwargs: {...}} mappings "
                              f"(got {raw!r})"[:300])
        return None
    out = []
    for i, child in enumerate(raw):
        where = f"schedulers[{i}]"
        if not isinstance(child, dict) or "name" not in child or set(child) - {"name", "kwargs"}:
            kw.fail(where, f"must be a mapping {{name: CLASS, kwargs: {{...}}}} (got {child!r})"[:300])
            continue
        try:
            out.append((where, build("olmo-core", OLMO_CORE, child["name"], child.get("kwargs") or {})))
        except CompatError as exc:
            for field, message in exc.problems:
                kw.fail(f"{where}.{field}" if field else where, message)
    return out


def _override(kw: Kwargs) -> dict | None:
    """``override_decay: {start, duration, shape, end_lr | end_lr_fraction}``, checked as OLMo-core checks it."""
    raw = kw.raw_value("override_decay")
    if raw is None:
        return None
    sub = Kwargs(raw if isinstance(raw, dict) else {}, {"start": _R, "duration": _R, "shape": "linear",
                                                          "end_lr": None, "end_lr_fraction": None}, "override_decay")
    if not isinstance(raw, dict):
        sub.fail("", f"must be a mapping {{start, duration, shape, end_lr or end_lr_fraction}} (got {raw!r})"[:200])
    start, duration = sub.integer("start"), sub.integer("duration")
    shape = sub.string("shape", ("linear", "cosine"))
    end, fraction = sub.number("end_lr", allow_none=True), sub.number("end_lr_fraction", allow_none=True)
    if start is not None and start < 0:
        sub.fail("start", f"must be >= 0 (OLMo-core raises; got {start})")
    if duration is not None and duration <= 0:
        sub.fail("duration", f"must be > 0 (OLMo-core raises; got {duration})")
    if (end is None) == (fraction is None):
        sub.fail("end_lr", "give exactly one of 'end_lr' and 'end_lr_fraction' (OLMo-core raises)")
    for name, value in (("end_lr", end), ("end_lr_fraction", fraction)):
        if value is not None and value < 0:
            sub.fail(name, f"must be >= 0 (OLMo-core raises; got {value})")
    for field, message in sub.problems:
        kw.fail("override_decay" + field[len("kwargs"):], message)
    return {"start": start, "duration": duration, "shape": shape, "end_lr": end, "end_lr_fraction": fraction}


def _sequential(kw: Kwargs) -> _Node:
    _common(kw)
    children = _children(kw)
    maxes = kw.integer_list("schedulers_max") if kw.raw_value("schedulers_max") is not None else None
    if maxes is None and kw.raw_value("schedulers_max_steps") is not None:
        maxes = kw.integer_list("schedulers_max_steps")
    override = _override(kw)
    if maxes is None and not kw.problems:
        kw.fail("schedulers_max", "missing: OLMo-core requires it (the steps each scheduler but the last runs for)")
    if children is not None and maxes is not None and not kw.problems:
        if len(maxes) == len(children):
            maxes = maxes[:-1]  # OLMo-core drops the last scheduler's (it runs until the end)
        if len(maxes) + 1 != len(children):
            kw.fail("schedulers_max", f"must give the steps of every scheduler but the last (OLMo-core raises; got "
                                      f"{len(maxes)} for {len(children)} schedulers)")
    kw.done()
    nodes = [node for _, node in children]
    return _sequence(nodes, maxes, override)


def _sequence(nodes: list[_Node], maxes: list[int], override: dict | None) -> _Node:
    def main(init, c, t):
        out, todo, offset = np.empty(c.shape, dtype=np.float64), np.ones(c.shape, dtype=bool), 0
        for node, m in zip(nodes[:-1], maxes):
            local = c - offset
            _where(todo & (local <= m), local, out, lambda x: node.lr(init, x, min(t, m)))
            todo &= ~(local <= m)
            if not todo.any():
                return out
            init = float(node.lr(init, np.asarray([m]), m)[0])
            offset, t = offset + m, t - m
        if t <= 0:
            raise CompatError([("context.t_max", f"the last scheduler is reached with t_max - sum(schedulers_max) "
                                                 f"= {t} <= 0 (OLMo-core asserts t_max > 0 there)")])
        _where(todo, c - offset, out, lambda x: nodes[-1].lr(init, x, t))
        return out

    def lr(init, c, t):
        if c.size and (int(c.min()) < 0 or int(c.max()) > t):
            bad = int(c.max()) if int(c.max()) > t else int(c.min())
            raise ValueError(f"SequentialScheduler: current {bad} is outside 0..t_max = {t} (OLMo-core asserts "
                             f"0 <= current <= t_max; update k runs at current k + 1)")
        if override is None:
            return main(init, c, t)
        start, duration = override["start"], override["duration"]
        out = np.empty(c.shape, dtype=np.float64)
        early = c < start
        _where(early, c, out, lambda x: main(init, x, t))
        if (~early).any():
            first = float(main(init, np.asarray([start]), t)[0])
            end = override["end_lr"] if override["end_lr"] is not None else init * override["end_lr_fraction"]
            x = c[~early] - start
            if override["shape"] == "linear":
                ramp = first + (end - first) * x / duration
            else:
                ramp = end + (first - end) * (1 + np.cos(math.pi * x / duration)) / 2
            out[~early] = np.where(x < duration, ramp, float(end))
        return out

    def phases(t):
        out, offset = [], 0
        for i, node in enumerate(nodes):
            m = maxes[i] if i < len(maxes) else None
            local_t = min(t, m) if m is not None else t
            for name, a, b in node.phases(local_t):
                b = m if b is None or (m is not None and b > m) else b
                if m is None or a < m:
                    out.append((name, offset + a, None if b is None else offset + b))
            if m is None:
                break
            offset, t = offset + m, t - m
        if override is not None:
            cut = override["start"] - 1
            out = [(n, a, cut if b is None or b > cut else b) for n, a, b in out if a < cut]
            out += [("decay", max(override["start"] - 1, 0), override["start"] - 1 + override["duration"]),
                    ("constant", override["start"] - 1 + override["duration"], None)]
        return [p for p in out if p[2] is None or p[1] < p[2]]

    def marks(t):
        out, offset = [], 0
        for i, node in enumerate(nodes):
            m = maxes[i] if i < len(maxes) else None
            out += [offset + x for x in node.marks(min(t, m) if m is not None else t)]
            if m is None:
                break
            out += [offset, offset + m]
            offset, t = offset + m, t - m
        if override is not None:
            out += [override["start"], override["start"] + override["duration"]]
        return out

    return _Node(lr, phases, marks)


_SEQ = {"schedulers": _R, "schedulers_max": None, "schedulers_max_steps": None, "override_decay": None}

#: name -> (signature, builder of a _Node)
OLMO_CORE = {
    "ConstantScheduler": ({**_BASE}, _constant),
    "ConstantWithWarmup": ({**_BASE, **_WARMUP}, _constant_with_warmup),
    "LinearWithWarmup": ({**_BASE, "alpha_f": 0.1, "t_max": None, **_WARMUP},
                         lambda kw: _cosine_like(kw, "linear")),
    "CosWithWarmup": ({**_BASE, **_WARMUP, "alpha_f": 0.1, "t_max": None}, lambda kw: _cosine_like(kw, "cos")),
    "HalfCosWithWarmup": ({**_BASE, **_WARMUP, "alpha_f": 0.1, "t_max": None},
                          lambda kw: _cosine_like(kw, "half_cos")),
    "InvSqrtWithWarmup": ({**_BASE, "alpha_f": 0.1, **_WARMUP}, lambda kw: _cosine_like(kw, "inv_sqrt")),
    "CosWithWarmupAndLinearDecay": ({**_BASE, **_WARMUP, "alpha_f": 0.1, "t_max": None, **_DECAY},
                                    _cos_linear_decay),
    "WSD": ({**_BASE, **_WARMUP, **_DECAY}, _wsd),
    "PowerLR": ({**_BASE, "b": -0.51, **_WARMUP, **_DECAY}, lambda kw: _wsd(kw, power=True)),
    "ExponentialScheduler": ({**_BASE, "lr_min": 1e-9}, _exponential),
    "SequentialScheduler": ({**_BASE, **_SEQ}, _sequential),
}

#: OLMo-core's schedulers compat does not reproduce, and why
_ABSENT = {
    "WSDS": "compat does not reproduce OLMo-core's WSDS (periodic warmup-stable-decay); for one period use WSD",
    "ComposableScheduler": "compat does not reproduce OLMo-core's ComposableScheduler; its stages are a native "
                           "'join' of 'ramp' pieces",
}


def make(name: str, kwargs: dict, base: float, context: dict) -> Impl:
    if name in _ABSENT:
        raise CompatError([("name", _ABSENT[name])])
    ctx = Context(context, "olmo-core", {"t_max": "OLMo-core's schedulers need the trainer's max_steps "
                                                    "(context: {t_max: N})"})
    t_max = ctx.count("t_max")
    node = build("olmo-core", OLMO_CORE, name, kwargs)
    ctx.done()
    last = t_max - 1

    def values(k: np.ndarray) -> np.ndarray:
        if k.size and int(k.max()) > last:
            raise ValueError(f"{name}: step {int(k.max())} is past OLMo-core's last update, t_max - 1 = {last} "
                             "(its trainer stops after t_max updates)")
        return node.lr(base, k.astype(np.int64) + 1, t_max)

    probe = sorted({c + d for c in [1, t_max, *node.marks(t_max)] for d in (-1, 0, 1) if 1 <= c + d <= t_max})
    values(np.asarray(probe, dtype=np.int64) - 1)  # OLMo-core's assertions on the updates it runs: fail now
    return Impl(values, last, last_valid_step=last, phases=tuple(node.phases(t_max)))
