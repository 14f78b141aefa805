"""Peak memory (max RSS) of ``lrtempo show``, ``lint`` and ``values -o FILE`` against the schedule's length.

Each command runs in a child process on a ``warmup_cosine`` schedule of N steps
(1e6, 1e7, 1e8 by default); its max RSS comes from ``os.wait4``'s resource
usage, the same number ``/usr/bin/time -v`` prints. ``python -c 'import
lrtempo'`` is measured too: the floor (the interpreter, NumPy, PyYAML) every
command pays. Memory that does not depend on the length is flat down a column.
Medians of ``--rounds`` runs.

    python benchmarks/bench_memory.py [--max 1e8] [--rounds 3] [--devnull] [--src PATH]

``--max`` drops the lengths above it (``values`` writes ~2.5 GB and takes a few
minutes at 1e8 steps); ``--devnull`` sends ``values`` to ``/dev/null`` instead
of a temp file; ``--src PATH`` runs another checkout's ``src`` folder (e.g. the
code before a change) with the same commands.
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

LENGTHS = (10**6, 10**7, 10**8)
COMMANDS = ("import", "show", "lint", "values")


def write_config(folder: Path, steps: int) -> Path:
    path = folder / f"warmup_cosine_{steps}.yaml"
    path.write_text(f"type: warmup_cosine\npeak_lr: 3e-4\nmin_lr: 3e-5\ntotal_steps: {steps}\nwarmup: 0.02\n")
    return path


def argv_of(command: str, config: Path, out: str) -> list[str]:
    if command == "import":
        return [sys.executable, "-c", "import lrtempo, lrtempo.cli"]
    if command == "values":
        return [sys.executable, "-m", "lrtempo", "values", str(config), "-o", out]
    return [sys.executable, "-m", "lrtempo", command, str(config)]


def max_rss(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(max RSS in MiB, wall seconds) of one child process; it must exit 0 or 1 (lint's warnings)."""
    with tempfile.TemporaryFile() as stderr:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=stderr, env=env)
        _, status, usage = os.wait4(proc.pid, 0)  # reaps the child: Popen must not wait for it again
        wall = time.perf_counter() - start
        proc.returncode = code = os.waitstatus_to_exitcode(status)
        stderr.seek(0)
        err = stderr.read().decode(errors="replace").strip()
    if code not in (0, 1) or err:
        raise SystemExit(f"{' '.join(argv)} failed (exit {code}): {err}")
    return usage.ru_maxrss / 1024, wall  # ru_maxrss is in KiB on Linux


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--max", type=float, default=1e8, help="the longest schedule to measure (default 1e8)")
    ap.add_argument("--rounds", type=int, default=3, help="runs per cell; the median is printed (default 3)")
    ap.add_argument("--devnull", action="store_true", help="values -o /dev/null instead of a temp file")
    ap.add_argument("--src", type=Path, default=None, help="a src folder to import lrtempo from instead")
    args = ap.parse_args()
    env = dict(os.environ)
    if args.src is not None:
        env["PYTHONPATH"] = str(args.src.resolve()) + os.pathsep + env.get("PYTHONPATH", "")
    lengths = [n for n in LENGTHS if n <= args.max]
    print(f"max RSS in MiB (wall s), warmup_cosine, {args.rounds} rounds, medians; lrtempo from "
          f"{args.src or 'the installed package'}")
    print(f"{'steps':>12s}" + "".join(f"{c:>20s}" for c in COMMANDS))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        out = "/dev/null" if args.devnull else str(folder / "values.csv")
        for n in lengths:
            config = write_config(folder, n)
            cells = []
            for command in COMMANDS:
                runs = [max_rss(argv_of(command, config, out), env) for _ in range(args.rounds)]
                rss = statistics.median(r for r, _ in runs)
                wall = statistics.median(w for _, w in runs)
                cells.append(f"{rss:9.1f} ({wall:6.1f})")
            print(f"{n:>12,d}" + "".join(f"{c:>20s}" for c in cells), flush=True)
            if not args.devnull:
                Path(out).unlink(missing_ok=True)


if __name__ == "__main__":
    main()
