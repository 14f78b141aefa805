"""Cost of one scheduler step: LRTempoScheduler against torch's own schedulers.

Interleaved rounds, medians, for 1 and 10 param groups:

* ``LRTempoScheduler`` with warmup_cosine, alone and with a momentum schedule
  (and a weight-decay one: the cost of scheduling them, printed as a ratio);
* torch ``StepLR``, ``CosineAnnealingLR``, ``LambdaLR`` (warmup+cosine written
  as a Python lambda, the usual way), ``SequentialLR(LinearLR,
  CosineAnnealingLR)`` and ``OneCycleLR`` (which cycles momentum by default).

Only ``scheduler.step()`` is timed (the optimizer is not stepped, so torch's
"step order" warning is silenced and lrtempo's order check is switched off).

Then the same schedule counted in tokens (``unit: tokens``), advanced by
``step(consumed=N)``: a constant 4096 tokens per update (the precomputed
blocks of positions) and an alternating 4096 / 4000 (one position at a time),
against the steps schedule.

Last, one schedule per param group (a list of distinct schedules, one ``at()``
per schedule per block) and a tensor ``lr`` (filled in place), against
torch's ``LambdaLR`` with one lambda per group and with a tensor ``lr``.

    python benchmarks/bench_adapter.py [--rounds 7] [--steps 20000]
"""

from __future__ import annotations

import argparse
import functools
import itertools
import math
import statistics
import time
import warnings

import torch
from torch.optim import lr_scheduler as L

from lrtempo import Join, Linear, Piece, WarmupCosine
from lrtempo.schedules import InUnit
from lrtempo.torch import LRTempoScheduler

TOTAL, WARM, PEAK = 1_000_000, 10_000, 0.1
#: momentum 0.95 -> 0.85 over the warmup, back to 0.95 by the end (as OneCycleLR does); weight decay 0.1 -> 0.01
MOMENTUM = Join((Piece(Linear(0.95, 0.85, WARM), WARM), Piece(Linear(0.85, 0.95, TOTAL - WARM))))
DECAY = Linear(0.1, 0.01, TOTAL)
OURS = ("LRTempoScheduler", "LRTempoScheduler + momentum", "LRTempoScheduler + momentum + weight_decay")


def optimizer(groups: int) -> torch.optim.Optimizer:
    return torch.optim.SGD([{"params": [torch.nn.Parameter(torch.zeros(1))]} for _ in range(groups)], lr=PEAK,
                           momentum=0.9, weight_decay=0.1)


def warmup_cosine_lambda(k: int) -> float:
    if k < WARM:
        return k / WARM
    return 0.5 * (1 + math.cos(math.pi * (k - WARM) / (TOTAL - WARM)))


MAKERS = {
    "LRTempoScheduler": lambda opt: LRTempoScheduler(opt, WarmupCosine(PEAK, TOTAL, WARM), warn_order=False),
    OURS[1]: lambda opt: LRTempoScheduler(opt, WarmupCosine(PEAK, TOTAL, WARM), warn_order=False, momentum=MOMENTUM),
    OURS[2]: lambda opt: LRTempoScheduler(opt, WarmupCosine(PEAK, TOTAL, WARM), warn_order=False, momentum=MOMENTUM,
                                          weight_decay=DECAY),
    "StepLR": lambda opt: L.StepLR(opt, step_size=1000, gamma=0.5),
    "CosineAnnealingLR": lambda opt: L.CosineAnnealingLR(opt, T_max=TOTAL),
    "LambdaLR (warmup+cosine)": lambda opt: L.LambdaLR(opt, warmup_cosine_lambda),
    "SequentialLR (Linear, Cosine)": lambda opt: L.SequentialLR(
        opt, [L.LinearLR(opt, start_factor=1e-3, total_iters=WARM), L.CosineAnnealingLR(opt, T_max=TOTAL - WARM)],
        milestones=[WARM]),
    "OneCycleLR (cycle_momentum)": lambda opt: L.OneCycleLR(opt, max_lr=PEAK, total_steps=TOTAL),
}


TOKENS = 4096


def _tokens_scheduler(opt: torch.optim.Optimizer) -> LRTempoScheduler:
    schedule = InUnit(WarmupCosine(PEAK, TOTAL * TOKENS, WARM * TOKENS), "tokens")
    return LRTempoScheduler(opt, schedule, warn_order=False)


def _alternating(opt: torch.optim.Optimizer):
    sched, sizes = _tokens_scheduler(opt), itertools.cycle((TOKENS, TOKENS - 96))
    return lambda: sched.step(consumed=next(sizes))


#: the schedule in tokens: name -> a maker of the callable that advances it by one update
UNIT_MAKERS = {
    "LRTempoScheduler (steps)": lambda opt: LRTempoScheduler(opt, WarmupCosine(PEAK, TOTAL, WARM),
                                                             warn_order=False).step,
    "tokens, consumed=4096 each": lambda opt: functools.partial(_tokens_scheduler(opt).step, consumed=TOKENS),
    "tokens, consumed=4096/4000": _alternating,
}


def _peaks(n: int) -> list[WarmupCosine]:
    return [WarmupCosine(PEAK * (i + 1), TOTAL, WARM) for i in range(n)]


def _tensor_lr(opt: torch.optim.Optimizer) -> torch.optim.Optimizer:
    for group in opt.param_groups:
        group["lr"] = torch.tensor(float(group["lr"]))
    return opt


#: name -> a maker of the scheduler (one schedule per group, a tensor lr)
GROUP_MAKERS = {
    "LRTempoScheduler (one schedule)": MAKERS["LRTempoScheduler"],
    "a list, one schedule per group": lambda opt: LRTempoScheduler(opt, _peaks(len(opt.param_groups)),
                                                                   warn_order=False),
    "tensor lr (filled in place)": lambda opt: MAKERS["LRTempoScheduler"](_tensor_lr(opt)),
    "LambdaLR, one lambda per group": lambda opt: L.LambdaLR(opt, [warmup_cosine_lambda] * len(opt.param_groups)),
    "LambdaLR, tensor lr": lambda opt: L.LambdaLR(_tensor_lr(opt), warmup_cosine_lambda),
}


def per_step_us(make, groups: int, steps: int, *, advance: bool = False) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        made = make(optimizer(groups))
        step = made if advance else made.step
        t0 = time.perf_counter()
        for _ in range(steps):
            step()
        return (time.perf_counter() - t0) / steps * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", type=int, default=20_000)
    args = parser.parse_args()
    results: dict[tuple[str, int], list[float]] = {}
    for _ in range(args.rounds):
        for groups in (1, 10):
            for name, make in MAKERS.items():
                results.setdefault((name, groups), []).append(per_step_us(make, groups, args.steps))
    print(f"scheduler.step() cost, {args.rounds} interleaved rounds of {args.steps:,} steps, medians (us/step)")
    for groups in (1, 10):
        ours = statistics.median(results[("LRTempoScheduler", groups)])
        torch_best = min(statistics.median(results[(n, groups)]) for n in MAKERS if n not in OURS)
        print(f"\n{groups} param group{'s' if groups > 1 else ''}")
        for name in MAKERS:
            med = statistics.median(results[(name, groups)])
            note = "" if name in OURS else f"   ours / this = {ours / med:.2f}"
            print(f"  {name:42s} {med:7.3f}{note}")
        print(f"  ours / torch's fastest = {ours / torch_best:.2f} (target <= 0.33)")
        for name in OURS[1:]:
            with_them = statistics.median(results[(name, groups)])
            onecycle = statistics.median(results[("OneCycleLR (cycle_momentum)", groups)])
            print(f"  {name} / LRTempoScheduler = {with_them / ours:.2f}; / OneCycleLR = {with_them / onecycle:.2f}")
    units: dict[tuple[str, int], list[float]] = {}
    for _ in range(args.rounds):
        for groups in (1, 10):
            for name, make in UNIT_MAKERS.items():
                units.setdefault((name, groups), []).append(per_step_us(make, groups, args.steps, advance=True))
    print("\nthe schedule counted in tokens, scheduler.step(consumed=N), medians (us/step)")
    for groups in (1, 10):
        base = statistics.median(units[("LRTempoScheduler (steps)", groups)])
        print(f"\n{groups} param group{'s' if groups > 1 else ''}")
        for name in UNIT_MAKERS:
            med = statistics.median(units[(name, groups)])
            print(f"  {name:30s} {med:7.3f}   this / steps = {med / base:.2f}")
    per_group: dict[tuple[str, int], list[float]] = {}
    for _ in range(args.rounds):
        for groups in (1, 10):
            for name, make in GROUP_MAKERS.items():
                per_group.setdefault((name, groups), []).append(per_step_us(make, groups, args.steps))
    print("\none schedule per param group, and a tensor lr, medians (us/step)")
    for groups in (1, 10):
        base = statistics.median(per_group[("LRTempoScheduler (one schedule)", groups)])
        print(f"\n{groups} param group{'s' if groups > 1 else ''}")
        for name in GROUP_MAKERS:
            med = statistics.median(per_group[(name, groups)])
            print(f"  {name:32s} {med:7.3f}   this / one schedule = {med / base:.2f}")


if __name__ == "__main__":
    main()
