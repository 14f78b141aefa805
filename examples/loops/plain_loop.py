"""Your own PyTorch loop, writing the same run record as ``lrtempo train``.

    python examples/loops/plain_loop.py runs/plain --steps 200
    lrtempo analyze runs/plain
    lrtempo report runs/plain

A small regression model trained with AdamW under warmup + cosine, the rate set
by ``LRTempoScheduler``, the training-health signals measured by ``Monitor``,
and every file written through ``RunDir``: ``config.yaml``, ``run.json`` (with
the versions, device, seeds and git state that reproducing the run needs),
``log.csv``, ``events.jsonl``, ``layers.csv`` and ``summary.json``. See
docs/run-directory.md.
"""

from __future__ import annotations

import argparse
import math

import torch

from lrtempo import RunDir, build_schedule, schedule_to_spec, spec_hash
from lrtempo.config import format_config
from lrtempo.monitor import Monitor, MonitorSettings
from lrtempo.rundir import MONITOR_COLUMNS, environment
from lrtempo.torch import LRTempoScheduler


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="train a small model in a plain loop into RUN_DIR")
    parser.add_argument("run_dir", metavar="RUN_DIR")
    parser.add_argument("--steps", type=int, default=200, help="optimizer updates (default 200)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    torch.manual_seed(args.seed)
    model = torch.nn.Sequential(torch.nn.Linear(8, 32), torch.nn.Tanh(), torch.nn.Linear(32, 1))
    inputs = torch.randn(512, 8)
    targets = inputs @ torch.randn(8, 1) + 0.1 * torch.randn(512, 1)
    schedule = build_schedule({"type": "warmup_cosine", "peak_lr": 3e-3, "min_lr": 3e-5,
                               "total_steps": args.steps, "warmup": 0.1})
    optimizer = torch.optim.AdamW(model.parameters(), lr=schedule(0), weight_decay=0.01)
    scheduler = LRTempoScheduler(optimizer, schedule)  # sets the rate of update 0 now, each next one on step()

    # the config as the record of the run: analyze and report read its schedule (and monitor settings)
    settings = MonitorSettings(effective_every=10)
    config = {"name": "plain", "seed": args.seed, "steps": args.steps, "schedule": schedule_to_spec(schedule),
              "optimizer": {"name": "adamw", "weight_decay": 0.01}, "monitor": settings.to_mapping()}
    run = RunDir(args.run_dir)
    with run.lock():  # one writer at a time
        log = run.start(format_config(config, "yaml"), extra_columns=MONITOR_COLUMNS,
                        meta={"spec_hash": spec_hash(schedule), "world_size": 1},
                        env=environment(device="cpu", dtype="float32", seeds={"seed": args.seed}))
        monitor = Monitor(schedule, settings, total_steps=args.steps, run_dir=run)
        best = math.inf
        for step in range(args.steps):
            batch = torch.randint(0, inputs.shape[0], (32,))
            loss = torch.nn.functional.mse_loss(model(inputs[batch]), targets[batch])
            optimizer.zero_grad()
            loss.backward()
            row = monitor.observe(step, loss, model, optimizer)  # after backward, before optimizer.step()
            optimizer.step()
            scheduler.step()
            log.append(step=step, **row)  # lr, grad_l2_norm, loss and the monitor's columns
            best = min(best, row["loss"])
        monitor.flush_layers()
        log.close()
        run.write_summary({"status": "completed", "steps": args.steps, "final_loss": row["loss"],
                           "best_loss": best, "skipped_updates": 0, "spec_hash": spec_hash(schedule)})
    print(f"{run.path}: {args.steps} updates, final loss {row['loss']:.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
