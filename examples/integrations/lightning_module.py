"""A Lightning ``Trainer`` run with lrtempo's schedule, run record and monitor.

    python examples/integrations/lightning_module.py runs/lightning --steps 40
    lrtempo analyze runs/lightning
    lrtempo report runs/lightning

A small regression ``LightningModule`` trained on CPU by a real ``lightning.pytorch.Trainer`` with gradient
accumulation and clipping. The schedule is built from a config mapping (the same as a config file's
``schedule:``; ``lrtempo.load_schedule(path)`` reads one from a file) with ``total_steps`` equal to the
Trainer's ``max_steps``; ``configure_optimizers`` returns it as an ``LRTempoScheduler`` stepped once per
optimizer update (``"interval": "step"``), and ``LRTempoCallback`` writes RUN_DIR. See docs/integrations.md.
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import lightning.pytorch as pl
import torch

from lrtempo import build_schedule
from lrtempo.integrations.lightning import LRTempoCallback
from lrtempo.monitor import MonitorSettings
from lrtempo.schedules import Schedule
from lrtempo.torch import LRTempoScheduler


class Regressor(pl.LightningModule):
    def __init__(self, schedule: Schedule) -> None:
        super().__init__()
        self.schedule = schedule
        self.net = torch.nn.Sequential(torch.nn.Linear(8, 32), torch.nn.Tanh(), torch.nn.Linear(32, 1))

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, y = batch
        return torch.nn.functional.mse_loss(self.net(x), y)

    def configure_optimizers(self) -> dict:
        optimizer = torch.optim.AdamW(self.parameters(), lr=self.schedule(0), weight_decay=0.01)
        # "interval": "step" steps the scheduler once per optimizer update (Lightning's default is per epoch)
        return {"optimizer": optimizer,
                "lr_scheduler": {"scheduler": LRTempoScheduler(optimizer, self.schedule), "interval": "step"}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="train a small LightningModule into RUN_DIR")
    parser.add_argument("run_dir", metavar="RUN_DIR")
    parser.add_argument("--steps", type=int, default=40, help="optimizer updates (default 40)")
    parser.add_argument("--output-dir", help="the Trainer's checkpoints and logs (default: RUN_DIR/trainer)")
    args = parser.parse_args(argv)

    pl.seed_everything(0, verbose=False)
    x = torch.randn(256, 8)
    y = x @ torch.randn(8, 1) + 0.1 * torch.randn(256, 1)
    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=8, shuffle=True)

    # one optimizer update per accumulate_grad_batches micro-batches: the schedule counts updates
    schedule = build_schedule({"type": "warmup_cosine", "peak_lr": 3e-3, "min_lr": 3e-5,
                               "total_steps": args.steps, "warmup": 0.1})
    output_dir = Path(args.output_dir or Path(args.run_dir) / "trainer")
    trainer = pl.Trainer(
        max_steps=args.steps, accumulate_grad_batches=2, gradient_clip_val=1.0, accelerator="cpu", devices=1,
        default_root_dir=output_dir, logger=pl.loggers.CSVLogger(output_dir), log_every_n_steps=10,
        enable_progress_bar=False, enable_model_summary=False,
        callbacks=[LRTempoCallback(args.run_dir, monitor=MonitorSettings(effective_every=5))])
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", module="lightning")  # "the dataloader does not have many workers", ...
        trainer.fit(Regressor(schedule), train_dataloaders=data)
    print(f"{args.run_dir}: {trainer.global_step} updates, record written")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
