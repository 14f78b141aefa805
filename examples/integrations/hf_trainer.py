"""A Hugging Face ``transformers.Trainer`` run with lrtempo's schedule, run record and monitor.

    python examples/integrations/hf_trainer.py runs/hf --steps 40
    lrtempo analyze runs/hf
    lrtempo report runs/hf

A small regression model (any ``torch.nn.Module`` whose forward returns
``{"loss": ...}``) trained on CPU by a real Trainer with gradient accumulation
and clipping. The schedule is built from a config mapping (the same as a
config file's ``schedule:``; ``lrtempo.load_schedule(path)`` reads one from a
file) with ``total_steps`` equal to the Trainer's ``max_steps``, applied by
``LRTempoScheduler`` passed as ``optimizers=(optimizer, scheduler)``;
``LRTempoCallback`` writes RUN_DIR. See docs/integrations.md.
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import torch
import transformers

from lrtempo import build_schedule
from lrtempo.integrations.hf import LRTempoCallback
from lrtempo.monitor import MonitorSettings
from lrtempo.torch import LRTempoScheduler


class Regressor(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Linear(8, 32), torch.nn.Tanh(), torch.nn.Linear(32, 1))

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"loss": torch.nn.functional.mse_loss(self.net(x), y)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="train a small model in a transformers.Trainer into RUN_DIR")
    parser.add_argument("run_dir", metavar="RUN_DIR")
    parser.add_argument("--steps", type=int, default=40, help="optimizer updates (default 40)")
    parser.add_argument("--output-dir", help="the Trainer's checkpoints (default: RUN_DIR/trainer)")
    args = parser.parse_args(argv)

    torch.manual_seed(0)
    x = torch.randn(256, 8)
    y = x @ torch.randn(8, 1) + 0.1 * torch.randn(256, 1)
    data = [{"x": x[i], "y": y[i]} for i in range(len(x))]
    model = Regressor()

    # one optimizer update per gradient_accumulation_steps micro-batches: the schedule counts updates
    schedule = build_schedule({"type": "warmup_cosine", "peak_lr": 3e-3, "min_lr": 3e-5,
                               "total_steps": args.steps, "warmup": 0.1})
    optimizer = torch.optim.AdamW(model.parameters(), lr=schedule(0), weight_decay=0.01)
    scheduler = LRTempoScheduler(optimizer, schedule)

    output_dir = Path(args.output_dir or Path(args.run_dir) / "trainer")
    training_args = transformers.TrainingArguments(
        output_dir=str(output_dir), max_steps=args.steps, per_device_train_batch_size=8,
        gradient_accumulation_steps=2, max_grad_norm=1.0, logging_steps=10, save_steps=20, report_to=[],
        use_cpu=True, disable_tqdm=True, seed=0)
    trainer = transformers.Trainer(
        model=model, args=training_args, train_dataset=data, optimizers=(optimizer, scheduler),
        callbacks=[LRTempoCallback(args.run_dir, monitor=MonitorSettings(effective_every=5))])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        trainer.train()
    print(f"{args.run_dir}: {trainer.state.global_step} updates, record written")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
