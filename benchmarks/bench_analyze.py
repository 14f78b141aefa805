"""``lrtempo analyze`` and ``lrtempo report`` on long logs, against ``np.loadtxt`` reading the same file.

For each size (default 10^5, 10^6 and 10^7 rows) and each column set (the
four schema columns; the trainer's full set with the monitor on: the schema,
``val_loss,tokens,seconds,skipped_updates`` and the monitor columns, two of them
text and the effective rates every 50th row), one log is written and then, in
child processes (so each starts cold and its peak memory is its own; max RSS from
``os.wait4``), interleaved for ``--rounds`` rounds:

* ``loadtxt``: ``np.loadtxt(FILE, delimiter=",", skiprows=1, usecols=...)`` of the
  columns it can read (the four schema columns: a blank cell stops it);
* ``analyze``: ``lrtempo analyze FILE --json``;
* ``analyze --png``: the same, writing the PNG;
* ``report``: ``lrtempo report FILE -o PAGE``.

Printed: the median wall time of each (start-up and imports included, as a user
waits for them) and its ratio to ``loadtxt``, the same for CPU time (user +
system, from ``os.wait4``: on a machine other jobs share, the CPU time moves far
less than the wall time, and for these single-threaded commands it is what the
wall time would be on an idle machine), and each one's largest max RSS. The
10^7-row logs are measured once (``--big-rounds``).

    python benchmarks/bench_analyze.py [--sizes 100000,1000000,10000000] [--rounds 3] [--big-rounds 1]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SCHEMA = "step,lr,grad_l2_norm,loss"
_PIECE = 200_000


def _fmt(values) -> list[str]:
    return list(map(repr, values.tolist()))


def write_log(path: Path, n: int, full: bool) -> None:
    """A run of ``n`` updates: warmup then cosine decay, a noisy falling loss, a few gradient-norm spikes."""
    import numpy as np

    from lrtempo.monitor import MONITOR_COLUMNS

    rng = np.random.default_rng(0)
    with open(path, "w", encoding="ascii") as fh:
        fh.write(",".join([SCHEMA, "val_loss", "tokens", "seconds", "skipped_updates", *MONITOR_COLUMNS]
                          if full else [SCHEMA]) + "\n")
        for lo in range(0, n, _PIECE):
            k = np.arange(lo, min(n, lo + _PIECE))
            warm = n // 50
            lr = np.where(k < warm, 1e-3 * (k + 1) / warm, 1e-3 * 0.5 * (1 + np.cos(np.pi * (k - warm) / (n - warm))))
            loss = 2.0 + np.exp(-k / (n / 10)) + 0.01 * rng.standard_normal(k.size)
            norm = (1.0 + 0.1 * rng.random(k.size)) * np.where(rng.random(k.size) < 1e-5, 50.0, 1.0)
            cols = [list(map(str, k.tolist())), _fmt(lr), _fmt(norm), _fmt(loss)]
            if full:
                every = k % 50 == 0
                blank = np.full(k.size, "", dtype=object)
                eff = lambda v: np.where(every, np.array(_fmt(v), dtype=object), blank).tolist()  # noqa: E731
                cols += [np.where(k % 1000 == 0, np.array(_fmt(loss + 0.1), dtype=object), blank).tolist(),
                         list(map(str, (k * 4096).tolist())), _fmt(k * 0.21), ["0"] * k.size,
                         ["early_decay"] * k.size, ["normal"] * k.size,
                         eff(lr * 30), eff(lr * 90), eff(lr * 1e4), eff(np.full(k.size, 30.0)),
                         eff(lr * 2), eff(np.full(k.size, 0.9))]
            fh.write("\n".join(map(",".join, zip(*cols))) + "\n")


def timed(argv: list[str]) -> tuple[float, float, int]:
    """Wall seconds, CPU seconds (user + system) and max RSS (MB) of a child process."""
    t = time.perf_counter()
    with open(os.devnull, "wb") as null:
        proc = subprocess.Popen(argv, stdout=null, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(proc.pid, 0)
        err = proc.stderr.read().decode()
        proc.stderr.close()
    if status != 0:
        raise SystemExit(f"{' '.join(argv)} failed: {err}")
    return time.perf_counter() - t, usage.ru_utime + usage.ru_stime, usage.ru_maxrss // 1024


def commands(log: Path, out: Path) -> dict[str, list[str]]:
    py, cli = sys.executable, [sys.executable, "-m", "lrtempo"]
    load = f"import numpy as np; np.loadtxt({str(log)!r}, delimiter=',', skiprows=1, usecols=(0, 1, 2, 3))"
    return {"loadtxt": [py, "-c", load], "analyze": [*cli, "analyze", str(log), "--json"],
            "analyze --png": [*cli, "analyze", str(log), "--json", "--png", str(out / "a.png")],
            "report": [*cli, "report", str(log), "-o", str(out / "r.html")]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000,10000000")
    parser.add_argument("--sets", default="schema,full")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--big-rounds", type=int, default=1, help="rounds for 10^7 rows and more")
    parser.add_argument("--write", nargs=3, metavar=("PATH", "ROWS", "SET"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.write:  # in a child, so this process stays small (a child's max RSS counts its parent's at fork)
        write_log(Path(args.write[0]), int(args.write[1]), args.write[2] == "full")
        return
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs; medians of child processes (start-up "
          "included); ratio to np.loadtxt of the same file")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        for n in map(int, args.sizes.split(",")):
            for which in args.sets.split(","):
                log = out / "log.csv"
                subprocess.run([sys.executable, __file__, "--write", str(log), str(n), which], check=True)
                size = log.stat().st_size / 2**20
                rounds = args.big_rounds if n >= 10**7 else args.rounds
                runs = {name: [] for name in commands(log, out)}
                for _ in range(rounds):
                    for name, argv in commands(log, out).items():
                        runs[name].append(timed(argv))
                base = statistics.median(t for t, _, _ in runs["loadtxt"])
                base_cpu = statistics.median(c for _, c, _ in runs["loadtxt"])
                print(f"{n:>10,} rows, {which} columns ({size:.0f} MB), {rounds} round(s):  wall, CPU")
                for name, got in runs.items():
                    t, c = statistics.median(x for x, _, _ in got), statistics.median(x for _, x, _ in got)
                    print(f"    {name:14s} {t:7.2f} s {t / base:5.2f}x   {c:7.2f} s {c / base_cpu:5.2f}x   "
                          f"max RSS {max(r for _, _, r in got):5d} MB")
                log.unlink()


if __name__ == "__main__":
    main()
