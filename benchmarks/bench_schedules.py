"""Schedule evaluation speed, against peers measured in the same run.

Prints, for a 2,000,000-step warmup_cosine and a WSD (1-sqrt decay):

* ns per value of ``schedule.at(np.arange(N + 1))``;
* ns per step of stepping a torch ``LambdaLR`` whose lambda is the same
  schedule written the usual way (plain Python ``math``), measured over a
  slice of the steps;
* ns per value of raw ``np.cos`` over a float64 ``np.arange`` of the same length;
* µs per scalar call ``schedule(step)``.

All timings are interleaved over several rounds and the median is reported;
machines are shared and noisy, so read the ratios.

    python benchmarks/bench_schedules.py [--rounds 7] [--torch-steps 100000]
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
import warnings

import numpy as np

from lrtempo import WSD, WarmupCosine

N = 2_000_000
PEAK, FLOOR, WARM = 3e-4, 3e-5, 20_000


def textbook_warmup_cosine(k: int) -> float:
    if k < WARM:
        return k / WARM
    p = (k - WARM) / (N - WARM)
    return (FLOOR + 0.5 * (PEAK - FLOOR) * (1 + math.cos(math.pi * p))) / PEAK


def textbook_wsd(k: int, decay: int = 400_000) -> float:
    if k < WARM:
        return k / WARM
    if k < N - decay:
        return 1.0
    return 1.0 - math.sqrt(min(1.0, (k - (N - decay)) / decay))


def time_once(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def torch_stepper(lam, steps: int):
    import torch

    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([param], lr=PEAK)

    def run():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sched = torch.optim.lr_scheduler.LambdaLR(opt, lam)
            for _ in range(steps):
                sched.step()

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--torch-steps", type=int, default=100_000,
                        help="LambdaLR steps timed per round (per-step cost is reported)")
    args = parser.parse_args()

    schedules = {
        "warmup_cosine": (WarmupCosine(PEAK, N, WARM, FLOOR), textbook_warmup_cosine),
        "wsd (1-sqrt)": (WSD(PEAK, N, decay_steps=400_000, warmup_steps=WARM, decay_shape="1-sqrt"),
                         textbook_wsd),
    }
    steps = np.arange(N + 1, dtype=np.int64)
    grid = steps.astype(np.float64) * (math.pi / N)
    try:
        import torch  # noqa: F401

        have_torch = True
    except ImportError:
        have_torch = False

    results: dict[str, dict[str, list[float]]] = {name: {} for name in schedules}
    raw_cos: list[float] = []
    for _ in range(args.rounds):
        raw_cos.append(time_once(lambda: np.cos(grid)) / (N + 1) * 1e9)
        for name, (s, lam) in schedules.items():
            r = results[name]
            r.setdefault("at", []).append(time_once(lambda s=s: s.at(steps)) / (N + 1) * 1e9)
            probe = [int(k) for k in np.linspace(0, N, 20_000)]
            r.setdefault("scalar", []).append(
                time_once(lambda s=s, probe=probe: [s(k) for k in probe]) / len(probe) * 1e6)
            if have_torch:
                r.setdefault("torch", []).append(
                    time_once(torch_stepper(lam, args.torch_steps)) / args.torch_steps * 1e9)

    cos_ns = statistics.median(raw_cos)
    print(f"lrtempo schedule benchmark: N = {N:,} steps, {args.rounds} interleaved rounds, medians")
    print(f"raw np.cos over np.arange: {cos_ns:.1f} ns/value")
    for name, r in results.items():
        at_ns = statistics.median(r["at"])
        scalar_us = statistics.median(r["scalar"])
        print(f"\n{name}")
        print(f"  at():                {at_ns:8.1f} ns/value   ({at_ns / cos_ns:.2f}x raw np.cos; target <= 2x)")
        if have_torch:
            torch_ns = statistics.median(r["torch"])
            print(f"  torch LambdaLR step: {torch_ns:8.1f} ns/step    (at() is {torch_ns / at_ns:.0f}x faster; "
                  "target >= 100x)")
        else:
            print("  torch LambdaLR step: torch not installed")
        print(f"  scalar call:         {scalar_us:8.3f} us/call    (target < 1 us)")


if __name__ == "__main__":
    main()
