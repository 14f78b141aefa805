"""Cost of ``tensorboard: true`` per update of ``lrtempo train``.

Interleaved rounds, medians:

* µs per row of writing ``log.csv`` alone (``RunLog.append``) and of writing it
  with the row's TensorBoard event (``TensorBoardLog.append``), over
  ``--rows`` rows of the default run's shape (the monitor's columns, a
  validation loss every 50th), each round ending with the flush and fsync a
  checkpoint does, so the writer thread's work is counted too;
* ms per update of ``TrainState.update`` on the default ``charlm`` run with
  the default monitor, and the extra cost of the events as a share of it.

    python benchmarks/bench_tensorboard.py [--rounds 5] [--rows 2000] [--updates 20]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from lrtempo import build_schedule
from lrtempo.monitor import Monitor, MonitorSettings
from lrtempo.rundir import RunDir
from lrtempo.train import DEFAULT_RUN, TrainState, build_optimizer, parse_run_config
from lrtempo.train._rundir import columns
from lrtempo.train._tensorboard import TensorBoardLog
from lrtempo.train.tasks import CharLMTask


def rows(n: int) -> list[dict]:
    """Rows shaped like the default run's: every column filled as ``lrtempo train`` fills it."""
    out = []
    for step in range(n):
        measured = step % 50 == 0
        out.append({"step": step, "lr": 3e-3 * (1 - step / (n + 1)), "grad_l2_norm": 0.5 + step * 1e-4,
                    "loss": 2.0 - step * 1e-4, "val_loss": 2.1 if measured else None, "tokens": 4096 * (step + 1),
                    "seconds": 0.01 * step, "skipped_updates": 0, "samples": 64 * (step + 1), "phase": "mid_decay",
                    "trap_status": "ok", "effective_lr_median": 1e-4 if measured else None,
                    "effective_lr_p90": 2e-4 if measured else None, "effective_lr_max": 3e-4 if measured else None,
                    "effective_lr_ratio": 0.03 if measured else None, "update_ratio": 1e-3 if measured else None,
                    "momentum_alignment": None})
    return out


def per_row_us(folder: Path, data: list[dict], tensorboard: bool) -> float:
    """µs per row of appending ``data`` and syncing once (a fresh run directory under ``folder``)."""
    run = RunDir(Path(tempfile.mkdtemp(dir=folder)))
    extra = columns(parse_run_config(DEFAULT_RUN))
    log = run.open_log(extra)
    if tensorboard:
        log = TensorBoardLog(log, run.tensorboard)
    t0 = time.perf_counter()
    for row in data:
        log.append(**row)
    log.sync()
    spent = time.perf_counter() - t0
    log.close()
    return spent / len(data) * 1e6


def update_ms(updates: int, rounds: int) -> float:
    """ms per update of the default charlm run's ``TrainState.update`` with the default monitor."""
    schedule = build_schedule(DEFAULT_RUN["schedule"])
    task = CharLMTask({}, seed=0)
    opt = build_optimizer(task.model, lr=0.0, betas=(0.9, 0.95), weight_decay=0.1)
    state = TrainState(task.model, schedule, optimizer=opt, grad_clip=1.0,
                       monitor=Monitor(schedule, MonitorSettings(), total_steps=300))
    state.update(task.micro_batches(1), task.loss)  # warm up
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(updates):
            state.update(task.micro_batches(1), task.loss)
        times.append((time.perf_counter() - t0) / updates * 1e3)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--updates", type=int, default=20)
    args = parser.parse_args()
    torch.set_num_threads(1)
    data = rows(args.rows)
    plain, with_tb = [], []
    with tempfile.TemporaryDirectory() as tmp:
        per_row_us(Path(tmp), data[:100], True)  # imports and first writes, not counted
        for _ in range(args.rounds):
            plain.append(per_row_us(Path(tmp), data, False))
            with_tb.append(per_row_us(Path(tmp), data, True))
    a, b = statistics.median(plain), statistics.median(with_tb)
    ms = update_ms(args.updates, args.rounds)
    extra_ms = (b - a) / 1e3
    print(f"log.csv alone:            {a:8.1f} µs per row")
    print(f"log.csv + TensorBoard:    {b:8.1f} µs per row   (+{b - a:.1f} µs)")
    print(f"default charlm update:    {ms:8.2f} ms (TrainState.update, default monitor)")
    print(f"TensorBoard's share:      {extra_ms / ms:8.2%} of an update")


if __name__ == "__main__":
    main()
