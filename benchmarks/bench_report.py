"""Cost of ``lrtempo report`` against ``lrtempo analyze`` on the same synthetic log, and the page's size.

A log of ``--rows`` rows with the monitor's columns (effective rate every 50
rows, validation loss every 500) is written once; then, in interleaved rounds,
``analyze_log`` (the analysis the page shows: reading the CSV, phases, the
detectors) and ``run_report`` (that analysis plus thinning, tables, the page
and its atomic write) are timed. The ratio is the report's cost over the
analysis alone; medians of the rounds.

    python benchmarks/bench_report.py [--rows 200000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from lrtempo.analysis import analyze_log, run_report


def write_log(folder: Path, rows: int) -> None:
    rng = np.random.default_rng(0)
    steps = np.arange(rows)
    warm = rows // 20
    lr = np.where(steps < warm, 3e-3 * steps / warm,
                  1.5e-3 * (1 + np.cos(np.pi * (steps - warm) / (rows - warm))))
    norm = 1 + 0.1 * rng.random(rows)
    loss = 3 * np.exp(-steps / (rows / 4)) + 0.5 + 0.05 * rng.standard_normal(rows)
    lines = ["step,lr,grad_l2_norm,loss,val_loss,effective_lr_median,effective_lr_p90,effective_lr_max"]
    for s, a, g, f in zip(steps.tolist(), lr.tolist(), norm.tolist(), loss.tolist()):
        val = repr(f + 0.1) if s % 500 == 499 else ""
        eff = f"{a * 30!r},{a * 90!r},{a * 1e4!r}" if s % 50 == 0 else ",,"
        lines.append(f"{s},{a!r},{g!r},{f!r},{val},{eff}")
    (folder / "log.csv").write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        write_log(folder, args.rows)
        analyze, report = [], []
        page = None
        for _ in range(args.rounds):
            t = time.perf_counter()
            analyze_log(folder)
            analyze.append(time.perf_counter() - t)
            t = time.perf_counter()
            page = run_report(folder)
            report.append(time.perf_counter() - t)
        a, r = statistics.median(analyze), statistics.median(report)
        size = page.path.stat().st_size
        print(f"{args.rows} rows, {args.rounds} rounds, medians")
        print(f"  analyze_log : {a:7.2f} s  ({a / args.rows * 1e6:.1f} µs/row)")
        print(f"  run_report  : {r:7.2f} s  ({r / args.rows * 1e6:.1f} µs/row), {r / a:.2f}x analyze_log")
        print(f"  page        : {size / 1e6:.2f} MB, {page.points} values drawn from ({page.rows} rows)")
        for note in page.notes:
            print(f"  note: {note}")


if __name__ == "__main__":
    main()
