"""Cost of the monitor on the default charlm model, and of the trap detector per update.

Interleaved rounds, medians:

* ms per update of ``TrainState.update`` over the whole default ``charlm`` run
  (300 updates, so the monitor's periodic and windowed work is counted at its
  real share) with no monitor, with the default monitor (gradient norm every
  update, effective rate every 50, alignment over the 100 updates after
  warmup), and with every signal every update (effective rates, update ratios,
  alignment and per-layer norms each update). Each round runs the next
  ``--updates`` steps of each variant in turn;
* µs per update of the trap detector alone at windows 100 and 10,000.

    python benchmarks/bench_monitor.py [--rounds 5] [--updates 20] [--trap-only]

``--trap-only`` times the trap detector alone (no model), e.g. to compare two
source trees in turn: ``PYTHONPATH=OTHER/src python benchmarks/bench_monitor.py
--trap-only``.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from lrtempo import build_schedule
from lrtempo.monitor import Monitor, MonitorSettings, TrapDetector
from lrtempo.train import DEFAULT_RUN, TrainState, build_optimizer
from lrtempo.train.tasks import CharLMTask

VARIANTS = ("no monitor", "default monitor", "every signal every update")


def make_state(variant: str):
    schedule = build_schedule(DEFAULT_RUN["schedule"])
    task = CharLMTask({}, seed=0)
    monitor = None
    if variant == "default monitor":
        monitor = Monitor(schedule, MonitorSettings(), total_steps=300)
    elif variant == "every signal every update":
        monitor = Monitor(schedule, MonitorSettings(every_signal=True, per_layer=True), total_steps=300)
    opt = build_optimizer(task.model, lr=0.0, betas=(0.9, 0.95), weight_decay=0.1)
    return task, TrainState(task.model, schedule, optimizer=opt, grad_clip=1.0, monitor=monitor)


def trap_cost_us(window: int, updates: int = 200_000) -> float:
    rng = np.random.default_rng(0)
    losses, norms = rng.random(updates).tolist(), rng.random(updates).tolist()
    det = TrapDetector(window)
    t0 = time.perf_counter()
    for k in range(updates):
        det.update(k, 1e-4, losses[k], norms[k], 1e-3, updates - k)
    return (time.perf_counter() - t0) / updates * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=15, help="rounds (15 x 20 updates covers the 300-update run)")
    parser.add_argument("--updates", type=int, default=20, help="updates per variant per round")
    parser.add_argument("--trap-only", action="store_true", help="time the trap detector alone")
    args = parser.parse_args()
    if args.trap_only:
        _print_trap({w: [trap_cost_us(w, 50_000) for _ in range(args.rounds)] for w in (100, 10_000)})
        return
    torch.manual_seed(0)
    states = {v: make_state(v) for v in VARIANTS}
    times: dict[str, list[float]] = {v: [] for v in VARIANTS}
    trap: dict[int, list[float]] = {100: [], 10_000: []}
    for _ in range(args.rounds):
        for v in VARIANTS:
            task, state = states[v]
            for _ in range(args.updates):
                batch = task.micro_batches(1)
                t0 = time.perf_counter()
                state.update(batch, task.loss)
                times[v].append((time.perf_counter() - t0) * 1e3)
        for w in trap:
            trap[w].append(trap_cost_us(w, 50_000))
    base = statistics.mean(times["no monitor"])
    print(f"monitor cost on the default charlm run, {args.rounds} interleaved rounds x {args.updates} updates; "
          "mean over the run (median per update)")
    for v in VARIANTS:
        mean, med = statistics.mean(times[v]), statistics.median(times[v])
        print(f"  {v:28s} {mean:8.2f} ms/update ({med:6.2f})   ({(mean / base - 1) * 100:+.1f}% vs no monitor)")
    print("  target: default monitor within 2% of no monitor")
    _print_trap(trap)


def _print_trap(trap: dict[int, list[float]]) -> None:
    print("trap detector alone, per update (medians)")
    for w, values in trap.items():
        print(f"  window {w:>6,}: {statistics.median(values):6.2f} us/update")
    print("  target: the same at both windows")


if __name__ == "__main__":
    main()
