"""What ``bench_hf_callback.py`` and ``bench_lightning_callback.py`` share: their options, the sizes'
data, the interleaved rounds of the three variants and the printed medians against no callback."""

from __future__ import annotations

import argparse
import statistics
import tempfile
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import torch

#: no callback; the callback with the default monitor settings; the callback with monitor=False
VARIANTS = ("none", "monitor", "record")


def parse_args(description: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--skip", type=int, default=20, help="updates left out of the timing at the start")
    parser.add_argument("--sizes", default="512x32,1024x64", help="WIDTHxBATCH,... (batch per micro-batch)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    return args


def problems(args: argparse.Namespace) -> Iterator[tuple[int, int, torch.Tensor, torch.Tensor]]:
    """``(width, batch, x, y)`` of each ``--sizes`` entry: 64 micro-batches of a linear target, seed 0."""
    for text in args.sizes.split(","):
        width, batch = (int(v) for v in text.lower().split("x"))
        g = torch.Generator().manual_seed(0)
        x = torch.randn(64 * batch, 64, generator=g)
        yield width, batch, x, x @ torch.randn(64, 1, generator=g)


def rounds(run: Callable[[Path, int, str], dict], args: argparse.Namespace) -> dict[str, list[dict]]:
    """``run(folder, steps, variant)`` once per variant uncounted (imports, allocator and thread-pool warm-up),
    then ``--rounds`` interleaved rounds of every variant; each run's timings per variant."""
    times: dict[str, list[dict]] = {v: [] for v in VARIANTS}
    with warnings.catch_warnings(), tempfile.TemporaryDirectory() as tmp:
        warnings.simplefilter("ignore")
        for v in VARIANTS:
            run(Path(tmp) / f"{v}-warm", args.skip + 10, v)
        for r in range(args.rounds):
            for v in VARIANTS:
                times[v].append(run(Path(tmp) / f"{v}-{r}", args.steps, v))
    return times


def report(times: dict[str, list[dict]], args: argparse.Namespace, trainer: str, width: int, batch: int) -> None:
    """The medians per update of each variant, as ratios against no callback, and the CPU inside the hooks."""
    def med(v: str, key: str) -> float:
        return statistics.median(t[key] for t in times[v])

    base_wall, base_cpu = med("none", "wall"), med("none", "cpu")
    print(f"{trainer}, width {width}, batch {batch} x 2 micro-batches, {args.steps} updates (timed from update "
          f"{args.skip}), {args.threads} thread(s), {args.rounds} rounds, medians per update")
    for v in VARIANTS:
        line = (f"  {v:8s} wall {med(v, 'wall'):8.3f} ms x{med(v, 'wall') / base_wall:.3f}   "
                f"cpu {med(v, 'cpu'):8.3f} ms x{med(v, 'cpu') / base_cpu:.3f}")
        if v != "none":
            hooks = med(v, "hooks")
            line += (f"   in the callback {hooks:.3f} ms cpu ({100 * hooks / base_cpu:.2f}%), "
                     f"start+end {med(v, 'once'):.0f} ms cpu once")
        print(line)
    print("  target: the default monitor within 2% of no callback (x1.020) at an update of >= 20 ms")
