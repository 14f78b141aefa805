"""Cost of ``lrtempo report A B C`` (one page of several runs) against one ``lrtempo report`` per run, and the
page's size.

``--runs`` logs of ``--rows`` rows each (the trainer's columns with ``seconds``, the monitor's effective rate
every 50 rows, validation loss every 500) are written once; then, in interleaved rounds, ``run_report`` of each
run in turn and ``run_multi_report`` of all of them are timed. The ratio is the multi-run page's cost over the
one-run pages of the same runs; medians of the rounds.

    python benchmarks/bench_report_multi.py [--rows 200000] [--runs 3] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from lrtempo.analysis import run_multi_report, run_report


def write_log(folder: Path, rows: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    steps = np.arange(rows)
    warm = rows // 20
    lr = np.where(steps < warm, 3e-3 * steps / warm, 1.5e-3 * (1 + np.cos(np.pi * (steps - warm) / (rows - warm))))
    norm = 1 + 0.1 * rng.random(rows)
    loss = 3 * np.exp(-steps / (rows / 4)) + 0.5 + 0.05 * rng.standard_normal(rows)
    seconds = np.cumsum(0.2 + 0.01 * rng.random(rows))
    lines = ["step,lr,grad_l2_norm,loss,val_loss,tokens,seconds,effective_lr_median"]
    for s, a, g, f, t in zip(steps.tolist(), lr.tolist(), norm.tolist(), loss.tolist(), seconds.tolist()):
        val = repr(f + 0.1) if s % 500 == 499 else ""
        eff = repr(a * 30) if s % 50 == 0 else ""
        lines.append(f"{s},{a!r},{g!r},{f!r},{val},,{round(t, 3)!r},{eff}")
    folder.mkdir(parents=True)
    (folder / "log.csv").write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folders = [Path(tmp) / f"run-{k}" for k in range(args.runs)]
        for k, folder in enumerate(folders):
            write_log(folder, args.rows, k)
        singles, multis, single_bytes = [], [], 0
        page = None
        for _ in range(args.rounds):
            t = time.perf_counter()
            single_bytes = sum(run_report(f).path.stat().st_size for f in folders)
            singles.append(time.perf_counter() - t)
            t = time.perf_counter()
            page = run_multi_report(folders, Path(tmp) / "compare.html")
            multis.append(time.perf_counter() - t)
        s, m = statistics.median(singles), statistics.median(multis)
        print(f"{args.runs} runs of {args.rows} rows, {args.rounds} rounds, medians")
        print(f"  run_report of each run : {s:7.2f} s, pages {single_bytes / 1e6:.2f} MB together")
        print(f"  run_multi_report       : {m:7.2f} s  ({m / (args.runs * args.rows) * 1e6:.1f} µs/row), "
              f"{m / s:.2f}x the one-run pages, page {page.path.stat().st_size / 1e6:.2f} MB")
        for note in page.notes:
            print(f"  note: {note}")


if __name__ == "__main__":
    main()
