"""Branch evaluation speed: each kind of ``branch`` against its parent schedule alone, measured in the same run.

Prints, for a 2,000,000-step WSD parent (1-sqrt decay) branched at step 1,200,000, ns per value of
``schedule.at(np.arange(N + 1))`` for the parent and for each kind (a cooldown of 200,000 updates, an
extension to 3,000,000, a rewarm of 20,000 updates to a new peak from a step in the decay, a rewind to step
400,000), and each branch's ratio to the parent. An extension and a rewarm evaluate the parent twice per
stretched step (the two neighbours the stretch interpolates between). Interleaved rounds, the median
reported; machines are shared and noisy, so read the ratios.

    python benchmarks/bench_branch.py [--rounds 7]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from lrtempo.schedules import WSD, Branch

N, AT = 2_000_000, 1_200_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    parent = WSD(peak_lr=3e-4, min_lr=3e-5, total_steps=N, warmup_steps=20_000, decay_steps=400_000,
                 decay_shape="1-sqrt")
    schedules = {
        "parent (wsd)": parent,
        "cooldown": Branch(parent, at_step=AT, kind="cooldown", steps=200_000, shape="1-sqrt"),
        "extend": Branch(parent, at_step=AT, kind="extend", total_steps=3_000_000),
        "rewarm": Branch(parent, at_step=1_700_000, kind="rewarm", steps=20_000, peak_lr=2e-4),
        "rewind": Branch(parent, at_step=AT, kind="rewind", from_step=400_000),
    }
    steps = {name: np.arange(s.end_step + 1, dtype=np.int64) for name, s in schedules.items()}
    times: dict[str, list[float]] = {name: [] for name in schedules}
    for _ in range(args.rounds):
        for name, s in schedules.items():
            t0 = time.perf_counter()
            s.at(steps[name])
            times[name].append((time.perf_counter() - t0) / steps[name].size)
    base = statistics.median(times["parent (wsd)"])
    print(f"{'schedule':<14}{'values':>10}{'ns/value':>10}{'ratio':>8}")
    for name in schedules:
        t = statistics.median(times[name])
        print(f"{name:<14}{steps[name].size:>10}{t * 1e9:>10.1f}{t / base:>8.2f}")


if __name__ == "__main__":
    main()
