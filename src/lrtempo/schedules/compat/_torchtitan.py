"""torchtitan's learning-rate schedule (``torchtitan.components.optimizer.lr_scheduler``), value for value.

``LRSchedulersContainer.Config.build(optimizers, training_steps)`` wraps every
optimizer in a ``LambdaLR`` of one warmup-stable-decay lambda; torchtitan's
trainer calls ``optimizers.step()`` then ``lr_schedulers.step()``, so update
``k`` (0-based) runs at ``base_lr * lambda(k)``. With ``T = total_steps``
(``training_steps`` when unset), ``W = min(int(warmup_steps), T)``, ``D`` the
decay steps (``T - W``, or ``round(T * decay_ratio)`` capped at ``T - W``)
and ``S = T + 1 - W - D`` stable steps (one more than the gap: torchtitan's
"virtual last step", so the rate never reaches its floor within ``T``):

- ``k < W``: ``(k + 1) / W``;
- ``k < W + S``: 1;
- else ``p = (k + 1 - W - S) / D`` and ``m + (1 - m) * f(p)`` with ``m =
  min_lr_factor``, ``f`` linear ``1 - p``, sqrt ``1 - sqrt(p)``, cosine
  ``(1 + cos(pi p)) / 2``.

The trainer stops after ``training_steps`` updates; compat raises past update
``training_steps - 1``.
"""

from __future__ import annotations

import math

import numpy as np

from ._common import CompatError, Context, Impl, Kwargs, build

_SIGNATURE = {"warmup_steps": 200, "total_steps": None, "decay_ratio": None, "decay_type": "linear",
              "min_lr_factor": 0.0}


def _lengths(warmup_steps: float, total: int, decay_ratio: float | None) -> tuple[int, int, int]:
    """``(W, S, D)`` as ``build`` derives them (warmup capped at the total, the decay at what is left)."""
    warmup = min(int(warmup_steps), total)
    if decay_ratio is not None:
        decay = round(total * decay_ratio)
        if warmup + decay > total:
            decay = total - warmup
    else:
        decay = total - warmup
    return warmup, total + 1 - warmup - decay, decay


def _container(kw: Kwargs, base: float, context: dict) -> Impl:
    warmup_steps, total_steps = kw.number("warmup_steps"), kw.integer("total_steps", allow_none=True)
    ratio, m = kw.number("decay_ratio", allow_none=True), kw.number("min_lr_factor")
    decay_type = kw.string("decay_type", ("linear", "sqrt", "cosine"))
    ctx = Context(context, "torchtitan", {"training_steps": "torchtitan builds the schedule with the run's "
                                                            "training.steps (context: {training_steps: N})"})
    training = ctx.count("training_steps")
    kw.problems.extend(ctx.problems)
    kw.done()
    total = total_steps if total_steps is not None else training
    warmup, stable, decay = _lengths(warmup_steps, total, ratio)
    last = training - 1

    def factor(k: np.ndarray) -> np.ndarray:
        out = np.ones(k.shape, dtype=np.float64)
        late = k >= warmup + stable
        if late.any():
            if decay == 0:
                raise CompatError([("kwargs", f"the decay has 0 steps and is reached at update {int(k[late][0])} "
                                              "(torchtitan asserts decay_steps != 0 there)")])
            p = (k[late] + 1 - (warmup + stable)) / decay
            if decay_type == "sqrt" and np.any(p < 0):
                raise CompatError([("kwargs.decay_ratio", "a negative decay gives sqrt of a negative progress "
                                                          "(Python's math.sqrt raises)")])
            adj = 1 - p if decay_type == "linear" else (1 - np.sqrt(p) if decay_type == "sqrt"
                                                        else 0.5 * (1.0 + np.cos(math.pi * p)))
            out[late] = m + (1 - m) * adj
        early = k < warmup
        out[early] = (k[early] + 1) / warmup
        return out

    def values(k: np.ndarray) -> np.ndarray:
        if k.size and int(k.max()) > last:
            raise ValueError(f"LRSchedulersContainer: step {int(k.max())} is past torchtitan's last update, "
                             f"training_steps - 1 = {last} (its trainer stops after training.steps updates)")
        return base * factor(k)

    _check_sign(values, [0, warmup, warmup + stable, total, last], last)
    factor(np.asarray([last + 1]))  # the LambdaLR's step() after the last update computes it too: raise now
    phases = tuple(p for p in (("warmup", 0, warmup), ("stable", warmup, warmup + stable),
                               ("decay", warmup + stable, None)) if p[2] is None or 0 <= p[1] < p[2])
    return Impl(values, last, last_valid_step=last, phases=phases)


def _check_sign(values, marks: list[int], last: int) -> None:
    """Refuse a schedule whose rate goes negative on an update the trainer runs (a decay past its end with
    ``total_steps < training_steps``, or a negative ``min_lr_factor``); the rate's phases are monotone, so
    their ends and ``last`` are where it is lowest."""
    steps = sorted({min(max(x + d, 0), last) for x in marks for d in (-1, 0, 1)})
    got = values(np.asarray(steps, dtype=np.int64))
    if np.any(got < 0):
        k = steps[int(np.flatnonzero(got < 0)[0])]
        raise CompatError([("kwargs", f"the rate is negative at update {k} ({float(got[steps.index(k)])!r}): "
                                      "torchtitan would train with it there (a decay past total_steps, or a "
                                      "negative min_lr_factor); give total_steps >= training_steps - 1")])


TORCHTITAN = {"LRSchedulersContainer": (_SIGNATURE, _container)}


def make(name: str, kwargs: dict, base: float, context: dict) -> Impl:
    return build("torchtitan", TORCHTITAN, name, kwargs, base, context)
