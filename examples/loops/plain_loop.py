"""Your own PyTorch loop, writing the same run record as ``lrtempo train``.

    python examples/loops/plain_loop.py runs/plain --steps 200
    lrtempo analyze runs/plain
    lrtempo report runs/plain

A small regression model trained with AdamW under warmup + cosine, the rate set
by ``LRTempoScheduler``, the training-health signals measured by ``Monitor``,
and every file written through ``RunDir``: ``config.yaml``, ``run.json`` (with
the versions, device, seeds and git state that reproducing the run needs),
``log.csv``, ``events.jsonl``, ``layers.csv`` and ``summary.json``. See
docs/run-directory.md. ``examples/loops/torchrun_loop.py`` runs the same loop
under ``torchrun`` with these pieces.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import torch

from lrtempo import RunDir, build_schedule, schedule_to_spec, spec_hash
from lrtempo.config import format_config
from lrtempo.monitor import Monitor, MonitorSettings
from lrtempo.rundir import MONITOR_COLUMNS, environment
from lrtempo.torch import LRTempoScheduler

#: samples in each update's batch (all processes together)
BATCH = 32


def build(steps: int, seed: int):
    """The model, its data, the schedule, the optimizer and the scheduler: the same in every process."""
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(8, 32), torch.nn.Tanh(), torch.nn.Linear(32, 1))
    inputs = torch.randn(512, 8)
    targets = inputs @ torch.randn(8, 1) + 0.1 * torch.randn(512, 1)
    schedule = build_schedule({"type": "warmup_cosine", "peak_lr": 3e-3, "min_lr": 3e-5, "total_steps": steps,
                               "warmup": 0.1})
    optimizer = torch.optim.AdamW(model.parameters(), lr=schedule(0), weight_decay=0.01)
    scheduler = LRTempoScheduler(optimizer, schedule)  # sets the rate of update 0 now, each next one on step()
    return model, inputs, targets, schedule, optimizer, scheduler


class Record:
    """The run record, written by one process through ``RunDir``: ``with Record(...) as record:`` around the
    loop, ``record.observe(...)`` once per update, after ``backward()`` and before ``optimizer.step()``."""

    def __init__(self, run_dir: str | Path, schedule, *, steps: int, seed: int, world_size: int = 1):
        self.run, self.schedule, self.steps, self.world_size = RunDir(run_dir), schedule, steps, world_size
        self.settings = MonitorSettings(effective_every=10)
        # the config as the record of the run: analyze and report read its schedule (and monitor settings)
        self.config = {"name": self.run.path.name, "seed": seed, "steps": steps,
                       "schedule": schedule_to_spec(schedule), "optimizer": {"name": "adamw", "weight_decay": 0.01},
                       "monitor": self.settings.to_mapping()}
        self.best = math.inf
        self.row: dict = {}

    def __enter__(self) -> Record:
        self.lock = self.run.lock()  # one writer at a time
        strategy = "ddp" if self.world_size > 1 else "single"
        self.log = self.run.start(format_config(self.config, "yaml"), extra_columns=MONITOR_COLUMNS,
                                  meta={"spec_hash": spec_hash(self.schedule), "world_size": self.world_size},
                                  env=environment(device="cpu", dtype="float32", world_size=self.world_size,
                                                  strategy=strategy, seeds={"seed": self.config["seed"]}))
        self.monitor = Monitor(self.schedule, self.settings, total_steps=self.steps, run_dir=self.run)
        return self

    def observe(self, step: int, loss: torch.Tensor, model: torch.nn.Module, optimizer) -> dict:
        """Measure update ``step`` (its loss, the gradients and the rate it is about to use) and log its row."""
        self.row = self.monitor.observe(step, loss, model, optimizer)  # one read from the device
        self.log.append(step=step, **self.row)  # lr, grad_l2_norm, loss and the monitor's columns
        self.best = min(self.best, self.row["loss"])
        return self.row

    def __exit__(self, *exc) -> None:
        self.monitor.flush_layers()
        self.log.close()
        if exc[0] is None:
            self.run.write_summary({"status": "completed", "steps": self.steps, "final_loss": self.row["loss"],
                                    "best_loss": self.best, "skipped_updates": 0,
                                    "spec_hash": spec_hash(self.schedule), "world_size": self.world_size})
        self.lock.release()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="train a small model in a plain loop into RUN_DIR")
    parser.add_argument("run_dir", metavar="RUN_DIR")
    parser.add_argument("--steps", type=int, default=200, help="optimizer updates (default 200)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    model, inputs, targets, schedule, optimizer, scheduler = build(args.steps, args.seed)
    with Record(args.run_dir, schedule, steps=args.steps, seed=args.seed) as record:
        for step in range(args.steps):
            batch = torch.randint(0, inputs.shape[0], (BATCH,))
            loss = torch.nn.functional.mse_loss(model(inputs[batch]), targets[batch])
            optimizer.zero_grad()
            loss.backward()
            record.observe(step, loss, model, optimizer)  # after backward, before optimizer.step()
            optimizer.step()
            scheduler.step()
    print(f"{record.run.path}: {args.steps} updates, final loss {record.row['loss']:.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
