"""Megatron's ``OptimizerParamScheduler`` (``megatron.core.optimizer_param_scheduler``), its learning rate.

Megatron's scheduler carries its own rates (``init_lr``, ``max_lr``,
``min_lr``) and counts ``num_steps``: ``step(increment)`` after every
successful update adds the samples of that update (the global batch size) when
Megatron's trainer drives it; ``context.increment`` (default 1) is that number.
Update ``k`` (0-based) runs at ``get_lr`` with ``num_steps = k * increment``
(the scheduler is built with ``step(0)``). With ``n = num_steps``, ``w =
lr_warmup_steps``, ``D = lr_decay_steps``:

- ``w > 0`` and ``n <= w``: ``init_lr + (max_lr - init_lr) * n / w``;
- ``lr_decay_style: constant``: ``max_lr``; any other style past ``D``: ``min_lr``;
- ``inverse-square-root``: ``max(min_lr, max_lr * sqrt(max(w, 1)) / sqrt(max(n, 1)))``;
- else ``min_lr + coeff * (max_lr - min_lr)`` with ``r = (n - w) / (D - w)``:
  linear ``1 - r``, cosine ``(cos(pi r) + 1) / 2``, ``WSD``: 1 until
  ``D - wsd_decay_steps``, then by ``lr_wsd_decay_style`` of ``s = (n - D +
  wsd_decay_steps) / wsd_decay_steps``: linear ``1 - s``, cosine ``(cos(pi s) +
  1) / 2``, exponential ``2 * 0.5**s - 1``, minus_sqrt ``1 - sqrt(s)``.
"""

from __future__ import annotations

import math

import numpy as np

from ._common import MISSING, CompatError, Context, Impl, Kwargs, build

_R = MISSING

_DECAY_STYLES = ("constant", "linear", "cosine", "inverse-square-root", "WSD")
_WSD_STYLES = ("exponential", "linear", "cosine", "minus_sqrt")
_WD_STYLES = ("constant", "linear", "cosine")

_SIGNATURE = {
    "init_lr": _R, "max_lr": _R, "min_lr": _R, "lr_warmup_steps": _R, "lr_decay_steps": _R, "lr_decay_style": _R,
    "start_wd": None, "end_wd": None, "wd_incr_steps": None, "wd_incr_style": None,
    "use_checkpoint_opt_param_scheduler": True, "override_opt_param_scheduler": False,
    "wsd_decay_steps": None, "lr_wsd_decay_style": None,
}


def _check_rates(kw: Kwargs, init, peak, floor) -> None:
    """The assertions of Megatron's constructor on the three rates."""
    if floor is not None and floor < 0:
        kw.fail("min_lr", f"must be >= 0 (Megatron asserts min_lr >= 0.0; got {floor})")
    if peak is not None and floor is not None and peak < floor:
        kw.fail("max_lr", f"must be >= min_lr (Megatron asserts it; got {peak} < {floor})")
    if init is not None and peak is not None and init > peak:
        kw.fail("init_lr", f"must be <= max_lr (Megatron asserts it; got {init} > {peak})")


def _check_weight_decay(kw: Kwargs) -> None:
    """The weight-decay arguments: optional here (compat gives the rate), checked as Megatron asserts them."""
    start, end = kw.number("start_wd", allow_none=True), kw.number("end_wd", allow_none=True)
    steps = kw.number("wd_incr_steps", allow_none=True)
    style = kw.raw_value("wd_incr_style")
    if style is not None:
        style = kw.string("wd_incr_style", _WD_STYLES)
    if start is not None and start < 0:
        kw.fail("start_wd", f"must be >= 0 (Megatron asserts start_wd >= 0.0; got {start})")
    if start is not None and end is not None and end < start:
        kw.fail("end_wd", f"must be >= start_wd (Megatron asserts it; got {end} < {start})")
    if style == "constant" and start is not None and end is not None and start != end:
        kw.fail("wd_incr_style", f"constant needs start_wd == end_wd (Megatron asserts it; got {start} and {end})")
    if style in ("linear", "cosine") and steps == 0:
        kw.fail("wd_incr_steps", f"must not be 0 with wd_incr_style {style!r} (Megatron divides by it when "
                                 "it is built)")
    own, override = kw.boolean("use_checkpoint_opt_param_scheduler"), kw.boolean("override_opt_param_scheduler")
    if own and override:
        kw.fail("override_opt_param_scheduler", "both override and use-checkpoint are set (Megatron asserts "
                                                "at most one; set use_checkpoint_opt_param_scheduler: false)")


def _first_past(x: float, increment: int) -> int:
    """The first update ``k`` whose ``num_steps = k * increment`` exceeds ``x`` (0 when ``x < 0``)."""
    return 0 if x < 0 else min(math.floor(x / increment) + 1, 2**53)


def _scheduler(kw: Kwargs, context: dict) -> Impl:
    init, peak, floor = kw.number("init_lr"), kw.number("max_lr"), kw.number("min_lr")
    warmup, decay = kw.number("lr_warmup_steps"), kw.number("lr_decay_steps")
    style = kw.string("lr_decay_style", _DECAY_STYLES)
    wsd = kw.number("wsd_decay_steps", allow_none=True)
    wsd_style = kw.raw_value("lr_wsd_decay_style")
    _check_rates(kw, init, peak, floor)
    _check_weight_decay(kw)
    if decay is not None and not decay > 0:
        kw.fail("lr_decay_steps", f"must be > 0 (Megatron asserts it; got {decay})")
    if warmup is not None and decay is not None and not warmup < decay:
        kw.fail("lr_warmup_steps", f"must be < lr_decay_steps (Megatron asserts it; got {warmup} >= {decay})")
    if style == "WSD":
        if wsd is None:
            kw.fail("wsd_decay_steps", "missing: lr_decay_style WSD requires it (Megatron asserts it)")
        if wsd_style is None or wsd_style not in _WSD_STYLES:
            kw.string("lr_wsd_decay_style", _WSD_STYLES)  # Megatron's assertion fails once the anneal is reached
    ctx = Context(context, "megatron", {"increment": "samples per update"})
    increment = ctx.count("increment", default=1)
    kw.problems.extend(ctx.problems)
    kw.done()

    def values(k: np.ndarray) -> np.ndarray:
        n = k.astype(np.float64) * increment
        return _lr(n, float(init), float(peak), float(floor), warmup, decay, style, wsd, wsd_style)

    end = _first_past(decay, increment)
    warm_end = _first_past(warmup, increment) if warmup > 0 else 0
    if style == "constant":
        phases = (("warmup", 0, warm_end), ("constant", warm_end, None))
    elif style == "WSD":
        anneal = max(warm_end, min(_first_past(decay - wsd, increment), end))
        phases = (("warmup", 0, warm_end), ("stable", warm_end, anneal), ("decay", anneal, end),
                  ("constant", end, None))
    else:
        phases = (("warmup", 0, warm_end), ("decay", warm_end, end), ("constant", end, None))
    horizon = max(1, min(math.ceil(decay / increment), 2**53))
    return Impl(values, horizon, phases=tuple(p for p in phases if p[2] is None or p[1] < p[2]))


def _lr(n, init, peak, floor, warmup, decay, style, wsd, wsd_style):
    """``get_lr`` for an array of ``num_steps``, branch for branch as Megatron takes them."""
    delta = peak - floor
    if style == "constant":
        out = np.full(n.shape, peak)
    elif style == "inverse-square-root":
        out = np.maximum(floor, peak * max(warmup, 1) ** 0.5 / np.power(np.maximum(n, 1), 0.5))
    else:
        ratio = (n - warmup) / float(decay - warmup)
        if style == "linear":
            coeff = 1.0 - ratio
        elif style == "cosine":
            coeff = 0.5 * (np.cos(math.pi * ratio) + 1.0)
        else:
            start = decay - wsd
            with np.errstate(divide="ignore", invalid="ignore"):
                s = (n - start) / float(wsd)
                anneal = {"linear": lambda: 1.0 - s, "cosine": lambda: 0.5 * (np.cos(math.pi * s) + 1.0),
                          "exponential": lambda: 2.0 * np.power(0.5, s) - 1.0,
                          "minus_sqrt": lambda: 1.0 - np.sqrt(s)}[wsd_style]()
            coeff = np.where(n <= start, 1.0, anneal)
        out = floor + coeff * delta
    if style != "constant":
        out = np.where(n > decay, floor, out)
    if warmup > 0:
        out = np.where(n <= warmup, init + (peak - init) * n / float(warmup), out)
    return out


MEGATRON = {"OptimizerParamScheduler": (_SIGNATURE, _scheduler)}


def make(name: str, kwargs: dict, context: dict) -> Impl:
    if name == "OptimizerParamScheduler" and "optimizer" in (kwargs if isinstance(kwargs, dict) else {}):
        raise CompatError([("kwargs.optimizer", "leave it out: compat gives the rate the scheduler sets on the "
                                                "optimizer, not the optimizer")])
    return build("megatron", MEGATRON, name, kwargs, context)
