"""Bounded work on hostile-but-valid schedules and configs: construction and evaluation times.

Each line is one case: how long building the schedule (or reading the file)
takes, and how long evaluating a few probe steps takes, in milliseconds
(median of ``--rounds``). These are the cases that once ran for minutes or
exhausted memory:

* ``restarts`` whose ``period_mult`` is close to 1 (every cycle start computed
  once, at construction, then found by bisection);
* an ``exponential`` decay with long staircase steps and an ``end_lr`` (end
  found by bisection, not by stepping);
* a ``multistep`` schedule with a million milestones (levels by bisection);
* a config of the maximum size (1 MiB) full of unknown keys (the error list
  is reported as the first 20 and a count).

    python benchmarks/bench_bounded_work.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from lrtempo.config import ConfigError, read_config_file
from lrtempo.schedules import MAX_CYCLES, ExponentialDecay, MultiStepDecay, Restarts

PROBE = np.asarray([0, 1, 2, 10**3, 10**6, 10**9, 10**12, 2**53], dtype=np.int64)


def timed(fn, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    rounds = ap.parse_args().rounds

    cases = {
        "restarts period 10, mult 1.1 (to 2**53)": lambda: Restarts(1.0, 10, period_mult=1.1),
        "restarts period 1000, mult 1.001 (to 2**53)": lambda: Restarts(1.0, 1000, period_mult=1.001),
        f"restarts period 1, mult 1.0000000001, {MAX_CYCLES} cycles":
            lambda: Restarts(1.0, 1, period_mult=1.0000000001, max_cycles=MAX_CYCLES),
        "exponential, stairs of 1e9 steps, end_lr": lambda: ExponentialDecay(
            1.0, 0.5, decay_steps=10**9, staircase=True, end_lr=1e-6),
        "multistep, 1e6 milestones": lambda: MultiStepDecay(1.0, tuple(range(3, 3 * 10**6 + 1, 3)), gamma=0.9999),
    }
    print(f"{'case':<58} {'build ms':>10} {'probe ms':>10}")
    for name, build in cases.items():
        schedule = build()
        build_ms = timed(build, rounds)
        probe_ms = timed(lambda s=schedule: s.at(PROBE), rounds)
        print(f"{name:<58} {build_ms:>10.2f} {probe_ms:>10.3f}")

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "keys.yaml"
        body = "type: constant\nlr: 0.1\n"
        keys, i = [], 0
        while len(body) + sum(map(len, keys)) < (1 << 20) - 20:
            keys.append(f"k{i}: 1\n")
            i += 1
        path.write_text(body + "".join(keys))

        def load() -> None:
            from lrtempo.config import build_schedule

            try:
                build_schedule(read_config_file(path))
            except ConfigError as exc:
                exc.one_line()

        label = f"1 MiB config with {i} unknown keys (read, build, report)"
        print(f"{label:<58} {timed(load, rounds):>10.2f}")


if __name__ == "__main__":
    main()
