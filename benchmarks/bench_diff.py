"""Peak memory (max RSS) and wall time of ``lrtempo diff A B`` against the number of steps compared.

A is a ``warmup_cosine`` of N steps, B the same with a warmup one step longer
(so every step is compared and most differ); each run is a child process,
measured as ``bench_memory.py`` measures its commands (``os.wait4``'s max RSS).
``python -c 'import lrtempo'`` is the floor every command pays. Flat memory
down the column means the comparison streams; the steps per second say what a
long range costs. Medians of ``--rounds`` runs.

    python benchmarks/bench_diff.py [--max 1e8] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_memory import max_rss  # noqa: E402

LENGTHS = (10**6, 10**7, 10**8)


def configs(folder: Path, steps: int) -> tuple[Path, Path]:
    out = []
    for name, warmup in (("a", steps // 50), ("b", steps // 50 + 1)):
        path = folder / f"{name}_{steps}.yaml"
        path.write_text(f"type: warmup_cosine\npeak_lr: 3e-4\nmin_lr: 3e-5\ntotal_steps: {steps}\n"
                        f"warmup_steps: {warmup}\n")
        out.append(path)
    return out[0], out[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max", type=float, default=1e8, help="the longest range to compare (default 1e8)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")}
    floor = statistics.median(max_rss([sys.executable, "-c", "import lrtempo, lrtempo.cli"], env)[0]
                              for _ in range(args.rounds))
    print(f"import floor: {floor:.1f} MiB")
    print(f"{'steps':>12} {'max RSS MiB':>12} {'over floor':>11} {'wall s':>8} {'Msteps/s':>9}")
    with tempfile.TemporaryDirectory() as tmp:
        for steps in (n for n in LENGTHS if n <= args.max):
            a, b = configs(Path(tmp), steps)
            argv = [sys.executable, "-m", "lrtempo", "diff", str(a), str(b)]
            runs = [max_rss(argv, env) for _ in range(args.rounds)]
            rss, wall = statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)
            print(f"{steps:>12,} {rss:>12.1f} {rss - floor:>11.1f} {wall:>8.2f} {steps / wall / 1e6:>9.2f}")


if __name__ == "__main__":
    main()
