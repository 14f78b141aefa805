"""Cost of ``LRTempoCallback`` per update in a Lightning ``Trainer``, against the same Trainer without it.

A small MLP regressor (``--width`` hidden units, three layers) on CPU with ``accumulate_grad_batches=2``,
``gradient_clip_val=1.0`` and a CSV logger at every 50th update, ``--steps`` updates per run, the
``LRTempoScheduler`` stepped per update in every variant. Variants, interleaved in rounds, each from the same
seed: no callback; the callback with the default monitor settings; the callback with ``monitor=False`` (the
record only). The time of a run is taken from ``on_train_start`` to ``on_train_end`` (the Trainer's setup
left out). Printed: the median ms per update of each and the ratio to the run without the callback, and the
median ms per update spent inside the callback's two per-update hooks (``on_before_optimizer_step``,
``on_train_batch_end``), which a busy machine's noise in the run times does not blur.
``--threads`` sets torch's intra-op threads (default 1: on a machine whose cores are busy, more threads than
free cores make every variant wait on the others and bury the callback's cost in noise).

    python benchmarks/bench_lightning_callback.py [--rounds 5] [--steps 200] [--width 512] [--threads 1]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import lightning.pytorch as pl
import torch

from lrtempo import build_schedule
from lrtempo.integrations.lightning import LRTempoCallback
from lrtempo.torch import LRTempoScheduler


class MLP(pl.LightningModule):
    def __init__(self, width: int, steps: int) -> None:
        super().__init__()
        self.steps = steps
        self.net = torch.nn.Sequential(torch.nn.Linear(64, width), torch.nn.GELU(), torch.nn.Linear(width, width),
                                       torch.nn.GELU(), torch.nn.Linear(width, 1))

    def training_step(self, batch, batch_idx):
        x, y = batch
        return torch.nn.functional.mse_loss(self.net(x), y)

    def configure_optimizers(self):
        optimizer = torch.optim.AdamW(self.parameters(), lr=0.0)
        schedule = build_schedule({"type": "warmup_cosine", "peak_lr": 1e-3, "min_lr": 1e-5,
                                   "total_steps": self.steps, "warmup": 0.05})
        return {"optimizer": optimizer,
                "lr_scheduler": {"scheduler": LRTempoScheduler(optimizer, schedule), "interval": "step"}}


class TimedCallback(LRTempoCallback):
    """``LRTempoCallback`` adding up the seconds spent in its per-update hooks."""

    seconds = 0.0

    def on_before_optimizer_step(self, trainer, pl_module, optimizer):
        start = time.perf_counter()
        super().on_before_optimizer_step(trainer, pl_module, optimizer)
        self.seconds += time.perf_counter() - start

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        start = time.perf_counter()
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
        self.seconds += time.perf_counter() - start


class Clock(pl.Callback):
    """Seconds from ``on_train_start`` to ``on_train_end``."""

    def on_train_start(self, trainer, pl_module):
        self.start = time.perf_counter()

    def on_train_end(self, trainer, pl_module):
        self.seconds = time.perf_counter() - self.start


def _run(folder: Path, steps: int, width: int, data, callback: str) -> tuple[float, float]:
    """(ms per update, ms per update in the callback's hooks)."""
    pl.seed_everything(0, verbose=False)
    model = MLP(width, steps)
    clock = Clock()
    callbacks: list = [clock]
    timed = TimedCallback(folder / "run", monitor=callback == "monitor")
    if callback != "none":
        callbacks.insert(0, timed)
    trainer = pl.Trainer(
        max_steps=steps, accumulate_grad_batches=2, gradient_clip_val=1.0, accelerator="cpu", devices=1,
        logger=pl.loggers.CSVLogger(folder), log_every_n_steps=50, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, default_root_dir=folder, callbacks=callbacks)
    trainer.fit(model, train_dataloaders=data)
    return 1e3 * clock.seconds / steps, 1e3 * timed.seconds / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--width", type=int, default=512)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4096, 64, generator=g)
    y = x @ torch.randn(64, 1, generator=g)
    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=32, shuffle=True)
    variants = ("none", "monitor", "record")
    times: dict[str, list[float]] = {v: [] for v in variants}
    hooks: dict[str, list[float]] = {v: [] for v in variants}
    with warnings.catch_warnings(), tempfile.TemporaryDirectory() as tmp:
        warnings.simplefilter("ignore")
        for v in variants:  # a round not counted: first imports, allocator and thread-pool warm-up
            _run(Path(tmp) / f"{v}-warm", args.steps, args.width, data, v)
        for r in range(args.rounds):
            for v in variants:
                total, in_hooks = _run(Path(tmp) / f"{v}-{r}", args.steps, args.width, data, v)
                times[v].append(total)
                hooks[v].append(in_hooks)
    base = statistics.median(times["none"])
    print(f"{args.steps} updates, width {args.width}, {args.threads} thread(s), {args.rounds} rounds "
          "(median ms per update)")
    for v in variants:
        m, h = statistics.median(times[v]), statistics.median(hooks[v])
        print(f"  {v:8s} {m:8.3f} ms   x{m / base:.3f}   in the callback's hooks {h:.3f} ms ({100 * h / base:.1f}%)")


if __name__ == "__main__":
    main()
