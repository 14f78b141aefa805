"""Your own loop under ``torchrun`` (DDP), writing the same run record as ``lrtempo train``.

    python -m torch.distributed.run --nproc_per_node 2 examples/loops/torchrun_loop.py runs/ddp --steps 200
    lrtempo analyze runs/ddp
    lrtempo report runs/ddp

The model, data, schedule and run record of ``examples/loops/plain_loop.py``,
with what DDP changes:

- every process builds the same model and the same ``LRTempoScheduler``, so
  every process applies the same rate, ``schedule(step)``, at every update;
- each update's global batch is drawn alike on every process, and each takes
  its share of it;
- DDP averages the gradients in ``backward()``, so the ``Monitor`` on rank 0
  measures the global gradient norm (and the optimizer's state, the same on
  every process); the logged loss is the mean over the processes (one
  all-reduce);
- only rank 0 takes the run directory's lock and writes the record.

Without ``torchrun`` it runs as one process on the same global batches and
writes the same record (to float rounding). Over gloo on CPU; on GPUs, NCCL
and the model on ``cuda:LOCAL_RANK``.
"""

from __future__ import annotations

import argparse
import contextlib
import os

import torch
import torch.distributed as dist
from plain_loop import BATCH, Record, build  # the plain loop's model, data, schedule and record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="train a small model with DDP under torchrun into RUN_DIR")
    parser.add_argument("run_dir", metavar="RUN_DIR")
    parser.add_argument("--steps", type=int, default=200, help="optimizer updates (default 200)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    world, rank = int(os.environ.get("WORLD_SIZE", "1")), int(os.environ.get("RANK", "0"))
    if world > 1:
        dist.init_process_group("gloo")
    model, inputs, targets, schedule, optimizer, scheduler = build(args.steps, args.seed)
    ddp = torch.nn.parallel.DistributedDataParallel(model) if world > 1 else model
    draws = torch.Generator().manual_seed(args.seed)  # the same global batches on every process
    record = Record(args.run_dir, schedule, steps=args.steps, seed=args.seed, world_size=world) if rank == 0 \
        else None
    with record or contextlib.nullcontext():
        for step in range(args.steps):
            batch = torch.randint(0, inputs.shape[0], (BATCH,), generator=draws)[rank::world]
            loss = torch.nn.functional.mse_loss(ddp(inputs[batch]), targets[batch])
            optimizer.zero_grad()
            loss.backward()  # DDP: every process now holds the mean gradient
            mean = loss.detach().clone()
            if world > 1:
                dist.all_reduce(mean)
                mean /= world
            if record is not None:
                record.observe(step, mean, model, optimizer)  # after backward, before optimizer.step()
            optimizer.step()
            scheduler.step()
    if record is not None:
        print(f"{record.run.path}: {args.steps} updates on {world} process(es), final loss {record.row['loss']:.4f}")
    if world > 1:
        dist.barrier()  # rank 0 has closed the record: every process leaves the group together
        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
