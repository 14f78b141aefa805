"""Cost of ``LRTempoCallback`` per update in a Lightning ``Trainer``, against the same Trainer without it.

An MLP regressor (three layers of ``WIDTH`` hidden units) on CPU with ``accumulate_grad_batches=2``,
``gradient_clip_val=1.0`` and a CSV logger at every 50th update, ``--steps`` updates per run, the
``LRTempoScheduler`` stepped per update in every variant, in two sizes (``--sizes``, each ``WIDTHxBATCH``, the
batch per micro-batch): the tiny default ``512x32`` (a few ms an update) and ``1024x64`` (tens of ms: an
update the size the 2% target is about). Variants, interleaved in rounds, each from the same seed: no
callback; the callback with the default monitor settings; the callback with ``monitor=False`` (the record
only).

The time of a run is its steady state: from the end of update ``--skip`` to the end of the last (the
callback's start, which writes the run directory and fsyncs it, and its end are one-off costs, printed
apart). Printed per size: the median ms per update of each variant (wall clock and this process's CPU time)
and its ratio to the run without the callback measured in the same rounds, and the median CPU ms per update
spent inside the callback's per-update hooks (``on_before_optimizer_step``, ``on_train_batch_end``), as a
share of the update's CPU time without the callback (which the machine's noise in the run times does not
blur). ``--threads`` sets torch's intra-op threads (default 1: on a machine whose cores are busy, more threads
than free cores make every variant wait on the others and bury the callback's cost in noise).

    python benchmarks/bench_lightning_callback.py [--rounds 5] [--steps 300] [--sizes 512x32,1024x64]
"""

from __future__ import annotations

import time
from pathlib import Path

import lightning.pytorch as pl
import torch
from _callback_rounds import parse_args, problems, report, rounds  # this folder: the run scripts share it

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
    """``LRTempoCallback`` adding up the CPU seconds spent in its hooks (the steady state's and the one-off)."""

    def __init__(self, run_dir, clock, **kwargs):
        super().__init__(run_dir, **kwargs)
        self.clock, self.seconds, self.once = clock, 0.0, 0.0

    def _timed(self, method, *args, once=False):
        start = time.thread_time()  # CPU time: a busy machine's waits do not count
        try:
            return method(self, *args)
        finally:
            spent = time.thread_time() - start
            if once:
                self.once += spent
            elif self.clock.start is not None:
                self.seconds += spent

    def on_train_start(self, trainer, pl_module):
        self._timed(LRTempoCallback.on_train_start, trainer, pl_module, once=True)

    def on_train_end(self, trainer, pl_module):
        self._timed(LRTempoCallback.on_train_end, trainer, pl_module, once=True)

    def on_before_optimizer_step(self, trainer, pl_module, optimizer):
        self._timed(LRTempoCallback.on_before_optimizer_step, trainer, pl_module, optimizer)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self._timed(LRTempoCallback.on_train_batch_end, trainer, pl_module, outputs, batch, batch_idx)


class Clock(pl.Callback):
    """Wall and CPU seconds from the end of update ``skip`` to the end of the last update."""

    def __init__(self, skip: int) -> None:
        self.skip, self.start, self.wall, self.cpu = skip, None, 0.0, 0.0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.global_step == self.skip and self.start is None:
            self.start = (time.perf_counter(), time.process_time())
        elif trainer.global_step == trainer.max_steps:
            self.wall, self.cpu = time.perf_counter() - self.start[0], time.process_time() - self.start[1]


def _run(folder: Path, steps: int, skip: int, width: int, data, variant: str) -> dict:
    pl.seed_everything(0, verbose=False)
    model = MLP(width, steps)
    clock = Clock(skip)
    callbacks: list = [clock]
    timed = TimedCallback(folder / "run", clock, monitor=variant == "monitor")
    if variant != "none":
        callbacks.insert(0, timed)
    trainer = pl.Trainer(
        max_steps=steps, accumulate_grad_batches=2, gradient_clip_val=1.0, accelerator="cpu", devices=1,
        logger=pl.loggers.CSVLogger(folder), log_every_n_steps=50, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, default_root_dir=folder, callbacks=callbacks)
    trainer.fit(model, train_dataloaders=data)
    n = steps - skip
    return {"wall": 1e3 * clock.wall / n, "cpu": 1e3 * clock.cpu / n, "hooks": 1e3 * timed.seconds / n,
            "once": 1e3 * timed.once}


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    for width, batch, x, y in problems(args):
        data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=batch, shuffle=True)
        times = rounds(lambda folder, steps, v: _run(folder, steps, args.skip, width, data, v), args)
        report(times, args, "Lightning Trainer", width, batch)


if __name__ == "__main__":
    main()
