"""Cost of reading a log exactly (``read_log_file``: every rule checked) against a bare CSV-to-float read.

The baseline is the least any reader does: ``csv.reader`` and ``float()`` per
cell into NumPy columns, with no checks. Two logs of ``--rows`` rows with the
trainer's columns (two of them text): one in order, and one where a resumed run
went back 10% of the way three times. Medians of interleaved rounds.

    python benchmarks/bench_log_read.py [--rows 200000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import csv
import math
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from lrtempo.analysis import read_log_file

HEADER = ("step,lr,grad_l2_norm,loss,val_loss,tokens,seconds,skipped_updates,phase,trap_status,"
          "effective_lr_median,effective_lr_p90,effective_lr_max")


def write_log(path: Path, steps: list[int]) -> None:
    n = max(steps) + 1
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(HEADER + "\n")
        for s in steps:
            eff = f"{1e-3 * 30!r},{1e-3 * 90!r},{1e-3 * 1e4!r}" if s % 50 == 0 else ",,"
            fh.write(f"{s},{1e-3 * (1 - s / n)!r},{1 + s / n!r},{3 - s / n!r},{'' if s % 500 else repr(2.5)},"
                     f"{s * 4096},{s * 0.21!r},0,early_decay,normal,{eff}\n")


def bare_read(path: Path) -> dict[str, np.ndarray]:
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        rows = [r for r in reader if r]
    out = {}
    for i, name in enumerate(header):
        try:
            out[name] = np.asarray([float(r[i]) if r[i] else math.nan for r in rows])
        except ValueError:
            pass
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    n = args.rows
    back = n // 10
    resumed = list(range(n - 3 * back))
    for _ in range(3):  # each restart goes back `back` steps and carries on `2 * back` further
        start = resumed[-1] + 1 - back
        resumed += list(range(start, start + 2 * back))
    with tempfile.TemporaryDirectory() as tmp:
        logs = {"in order": Path(tmp) / "plain.csv", "resumed 3x": Path(tmp) / "resumed.csv"}
        write_log(logs["in order"], list(range(n)))
        write_log(logs["resumed 3x"], resumed)
        print(f"{n} rows, {args.rounds} rounds, medians")
        for label, path in logs.items():
            exact, bare = [], []
            for _ in range(args.rounds):
                t = time.perf_counter()
                log = read_log_file(path)
                exact.append(time.perf_counter() - t)
                t = time.perf_counter()
                bare_read(path)
                bare.append(time.perf_counter() - t)
            e, b = statistics.median(exact), statistics.median(bare)
            print(f"  {label:10s}: read_log_file {e:6.2f} s ({e / n * 1e6:.1f} µs/row), bare csv+float "
                  f"{b:6.2f} s, ratio {e / b:.2f}x; {log.rows} rows kept, notes: {list(log.notes) or 'none'}")


if __name__ == "__main__":
    main()
