"""Cost of reading other trainers' records exactly (``read_any_log``: every rule checked) against a bare read.

Three records of ``--updates`` updates, in the layouts their libraries write: a Hugging Face
``trainer_state.json`` (one ``log_history`` entry per update, an evaluation every 100), a Lightning
``metrics.csv`` (the rate and the training loss on separate lines of each step, a validation line every
100), and a TensorBoard folder written by ``torch.utils.tensorboard.SummaryWriter`` (``lr``,
``grad_l2_norm``, ``loss`` per update; skipped without torch and tensorboard). The baselines do the least any
reader does: ``json.loads`` and a pass over the entries; ``csv.reader`` and ``float()`` per cell; the
tensorboard package's own ``LegacyEventFileLoader`` (what ``read_any_log`` uses) over the events.
Medians of rounds.

    python benchmarks/bench_foreign_read.py [--updates 50000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import statistics
import tempfile
import time
from pathlib import Path

from lrtempo.analysis._foreign import read_any_log


def write_hf(path: Path, n: int) -> None:
    history = []
    for s in range(1, n + 1):
        history.append({"epoch": s / n, "grad_norm": 1.0 + 1 / s, "learning_rate": 1e-3 * (1 - s / n),
                        "loss": 3.0 - s / n, "step": s})
        if s % 100 == 0:
            history.append({"epoch": s / n, "eval_loss": 2.5, "eval_runtime": 0.1, "step": s})
    path.write_text(json.dumps({"global_step": n, "log_history": history}, indent=2, sort_keys=True) + "\n")


def write_lightning(path: Path, n: int) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("epoch,lr-AdamW,step,train_loss,val_loss\n")
        for s in range(n):
            fh.write(f",{1e-3 * (1 - s / n)!r},{s},,\n0,,{s},{3 - s / n!r},\n")
            if s % 100 == 99:
                fh.write(f"0,,{s},,{2.5!r}\n")


def write_tensorboard(folder: Path, n: int) -> bool:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return False
    writer = SummaryWriter(str(folder))
    for s in range(n):
        writer.add_scalar("lr", 1e-3 * (1 - s / n), s)
        writer.add_scalar("grad_l2_norm", 1.0 + 1 / (s + 1), s)
        writer.add_scalar("loss", 3.0 - s / n, s)
    writer.close()
    return True


def bare_hf(path: Path) -> int:
    history = json.loads(path.read_text())["log_history"]
    lr = [e["learning_rate"] for e in history if "learning_rate" in e]
    loss = [e["loss"] for e in history if "loss" in e]
    return len(lr) + len(loss)


def bare_csv(path: Path) -> int:
    with open(path, newline="") as fh:
        reader = csv.reader(fh)
        next(reader)
        cells = [(float(r[1]) if r[1] else math.nan, float(r[3]) if r[3] else math.nan) for r in reader]
    return len(cells)


def bare_tensorboard(folder: Path) -> int:
    from tensorboard.backend.event_processing.event_file_loader import LegacyEventFileLoader

    count = 0
    for path in folder.iterdir():
        for event in LegacyEventFileLoader(str(path)).Load():
            for value in event.summary.value:
                float(value.simple_value)
                count += 1
    return count


def median_seconds(func, arg, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        func(arg)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--updates", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    n = args.updates
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        cases = [("trainer_state.json", root / "hf" / "trainer_state.json", bare_hf),
                 ("Lightning metrics.csv", root / "pl" / "metrics.csv", bare_csv)]
        for _, path, _ in cases:
            path.parent.mkdir()
        write_hf(cases[0][1], n)
        write_lightning(cases[1][1], n)
        if write_tensorboard(root / "tb", n):
            cases.append(("TensorBoard (SummaryWriter)", root / "tb", bare_tensorboard))
        print(f"{n:,} updates, medians of {args.rounds}")
        for name, path, bare in cases:
            assert read_any_log(path).rows == n
            ours = median_seconds(read_any_log, path, args.rounds)
            base = median_seconds(bare, path, args.rounds)
            print(f"  {name:28s} read_any_log {ours:6.3f} s ({ours / n * 1e6:5.1f} us/update)   "
                  f"bare read {base:6.3f} s   ratio {ours / base:5.2f}x")


if __name__ == "__main__":
    main()
