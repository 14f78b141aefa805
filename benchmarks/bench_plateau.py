"""What reduce-on-plateau costs: evaluation with a record, the adapter's update, and observe().

Prints, for a 2,000,000-step warmup_cosine base:

* ns per value of ``plateau.at(np.arange(N))`` with 0, 10 and 1000 recorded reductions, and the ratio to
  the base alone;
* ns per update of ``LRTempoScheduler.step()`` with the plateau schedule and with its base (the hot path
  is the same buffer: the ratio should be about 1);
* µs per ``observe(loss)`` without a reduction and with one (a reduction makes the schedule with one more
  recorded and drops the buffer of precomputed rates), over 200 calls on a fresh scheduler, against
  torch's ``ReduceLROnPlateau.step(loss)``.

Timings are the median of several interleaved rounds; machines are shared and noisy, so read the ratios.

    python benchmarks/bench_plateau.py [--rounds 7]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from lrtempo.schedules import Plateau, WarmupCosine

N = 2_000_000
BASE = WarmupCosine(peak_lr=3e-4, total_steps=N, warmup_steps=20_000, min_lr=3e-5)


def median_time(fn, rounds: int, setup=None) -> float:
    """The median wall time of ``fn()`` (of ``setup()()``, a fresh one each round, when ``setup`` is given)."""
    times = []
    for _ in range(rounds):
        run = setup() if setup is not None else fn
        t0 = time.perf_counter()
        run()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def evaluation(rounds: int) -> None:
    steps = np.arange(N, dtype=np.int64)
    base = median_time(lambda: BASE.at(steps), rounds)
    print(f"at(arange({N})): base {base / N * 1e9:.2f} ns/value")
    for count in (0, 10, 1000):
        record = [(int(s), 0.5) for s in np.linspace(30_000, N - 1, count)] if count else []
        p = Plateau(BASE).with_reductions(record)
        t = median_time(lambda p=p: p.at(steps), rounds)
        print(f"  plateau, {count:4d} reductions: {t / N * 1e9:.2f} ns/value  ({t / base:.2f} x the base)")


def adapter(rounds: int) -> None:
    import torch
    from torch.optim.lr_scheduler import ReduceLROnPlateau

    from lrtempo.torch import LRTempoScheduler

    updates = 100_000

    def stepping(schedule):
        opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.0)
        sched = LRTempoScheduler(opt, schedule, warn_order=False)

        def run():
            for _ in range(updates):
                sched.step()
        return run

    base = median_time(stepping(BASE), rounds)
    plateau = median_time(stepping(Plateau(BASE)), rounds)
    print(f"scheduler.step(): base {base / updates * 1e9:.0f} ns, plateau {plateau / updates * 1e9:.0f} ns "
          f"per update ({plateau / base:.2f} x)")

    calls = 200  # per round, on a fresh scheduler: a run with 200 reductions is already a long one

    def observing(losses):
        opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.0)
        sched = LRTempoScheduler(opt, Plateau(BASE, patience=0, factor=0.999, mode="max"), warn_order=False)
        for _ in range(30_000):
            sched.step()

        def run():
            for loss in losses:
                sched.observe(loss)
        return run

    def torch_observing(losses):
        opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=3e-4)
        ref = ReduceLROnPlateau(opt, patience=0, factor=0.999, mode="max")

        def run():
            for loss in losses:
                ref.step(loss)
        return run

    rising = [float(k) for k in range(calls)]  # mode max, rising: no reduction
    flat = [1.0] * calls  # no rise: a reduction each time
    for name, losses in (("no reduction", rising), ("a reduction each", flat)):
        ours = median_time(None, rounds, setup=lambda losses=losses: observing(losses))
        theirs = median_time(None, rounds, setup=lambda losses=losses: torch_observing(losses))
        print(f"observe(), {name}: {ours / calls * 1e6:.1f} us per call; torch's step(loss) "
              f"{theirs / calls * 1e6:.1f} us ({ours / theirs:.1f} x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    evaluation(args.rounds)
    adapter(args.rounds)


if __name__ == "__main__":
    main()
