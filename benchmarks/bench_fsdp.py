"""Cost of the monitor's full-parameter statistics under FSDP2, against DDP, on the default charlm model.

Run under torchrun (two processes over gloo on CPU; NCCL on GPUs with ``--device cuda``)::

    torchrun --nproc_per_node 2 benchmarks/bench_fsdp.py [--rounds 5] [--updates 10]

For each strategy (``ddp``: DDP, statistics on the replicated parameters, one all-reduce of the loss, the
norm and the monitor's values; ``fsdp``: FSDP2, statistics summed over the shards in one all-reduce, plus one
all-gather of the sampled effective rates when they are measured) and each monitor (none; the default:
effective rate every 50 updates; every signal every update, per-layer rows included), rank 0 prints the mean
ms per ``TrainState.update`` over interleaved rounds, the overhead against the same strategy without a
monitor, and, for FSDP, the floats its statistics all-reduce and all-gather per update. Then the statistics
alone (norm, loss and the monitor's values with their collectives, after one backward), median ms per call:
what sharding changes in the monitor's cost, without the forward and backward passes' noise.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch
import torch.distributed as dist

from lrtempo import build_schedule
from lrtempo.monitor import Monitor, MonitorSettings
from lrtempo.train import DEFAULT_RUN, TrainState, build_optimizer
from lrtempo.train._fsdp import ShardedStats, shard_model
from lrtempo.train._run import _to
from lrtempo.train.tasks import CharLMTask

MONITORS = {"no monitor": None, "default monitor": MonitorSettings(),
            "every signal every update": MonitorSettings(every_signal=True, per_layer=True)}


def make_state(strategy: str, monitor_name: str, device: torch.device):
    rank, world = dist.get_rank(), dist.get_world_size()
    schedule = build_schedule(DEFAULT_RUN["schedule"])
    task = CharLMTask({}, seed=0, rank=rank, world_size=world)
    settings = MONITORS[monitor_name]
    monitor = None if settings is None else Monitor(schedule, settings, total_steps=300, collect_layers=True)
    if strategy == "fsdp":
        model = bare = shard_model(task.model, device, world)
    else:
        bare = task.model.to(device)
        ids = [device.index] if device.type == "cuda" else None
        model = torch.nn.parallel.DistributedDataParallel(bare, device_ids=ids)
    opt = build_optimizer(bare, lr=0.0, betas=(0.9, 0.95), weight_decay=0.1)
    sharded = ShardedStats(monitor, world) if strategy == "fsdp" else None
    state = TrainState(model, schedule, optimizer=opt, grad_clip=1.0, monitor=monitor,
                       process_group=None if sharded else dist.group.WORLD, sharded=sharded)
    return task, state


def floats(state: TrainState) -> tuple[int, int]:
    """The floats FSDP's statistics all-reduce and (at a measuring update) all-gather, per rank."""
    params = [p for g in state.optimizer.param_groups for p in g["params"]]
    n = len(params)
    reduced = 2 + (2 * n + 3 + n if state.monitor is not None else 0)
    gathered = sum(min(p.numel(), 65_536) for p in params) if state.monitor is not None else 0
    return reduced, gathered


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--updates", type=int, default=10, help="updates per variant per round")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    args = parser.parse_args()
    device = torch.device("cpu")
    if args.device == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if args.device == "cuda" else "gloo")
    variants = [(s, m) for s in ("ddp", "fsdp") for m in MONITORS]
    states = {v: make_state(*v, device) for v in variants}
    times: dict[tuple[str, str], list[float]] = {v: [] for v in variants}
    for _ in range(args.rounds):
        for v in variants:
            task, state = states[v]
            for _ in range(args.updates):
                batches = [_to(b, device) for b in task.micro_batches(1)]
                dist.barrier()
                t0 = time.perf_counter()
                state.update(batches, task.loss)
                if device.type == "cuda":
                    torch.cuda.synchronize()
                times[v].append((time.perf_counter() - t0) * 1e3)
    if dist.get_rank() == 0:
        world = dist.get_world_size()
        print(f"charlm (default), {world} processes over {dist.get_backend()}, {args.rounds} interleaved rounds x "
              f"{args.updates} updates: mean ms per update (median)")
        for v in variants:
            base = statistics.mean(times[(v[0], "no monitor")])
            mean, med = statistics.mean(times[v]), statistics.median(times[v])
            print(f"  {v[0]:4s} {v[1]:26s} {mean:8.2f} ({med:7.2f})  {(mean / base - 1) * 100:+6.1f}% vs no monitor")
        reduced, gathered = floats(states[("fsdp", "every signal every update")][1])
        print(f"  fsdp statistics per update: all-reduce of {reduced} floats; at a measuring update also an "
              f"all-gather of {gathered} floats in all")
    stats = {v: stats_ms(*states[v], device, args.rounds * args.updates) for v in variants}
    if dist.get_rank() == 0:
        print("the statistics alone (after one backward; norm, loss and monitor values with their collectives), "
              "median ms per call")
        for v in variants:
            print(f"  {v[0]:4s} {v[1]:26s} {stats[v]:8.2f}")
    dist.destroy_process_group()


def stats_ms(task, state: TrainState, device: torch.device, calls: int) -> float:
    """Median ms of the statistics of one update (what runs between the backward and ``optimizer.step()``)."""
    loss = sum(task.loss(state.model, _to(b, device)) for b in task.micro_batches(1))
    loss.backward()
    step, loss_sum = state.step, loss.detach().float()
    out = []
    for _ in range(calls):
        dist.barrier()
        t0 = time.perf_counter()
        if state.sharded is not None:
            values = state.sharded.reduce(step, state.optimizer, loss_sum)[3]
        else:
            values = state._replicated_stats(step, loss_sum)[3]
        values.tolist()
        out.append((time.perf_counter() - t0) * 1e3)
    state.optimizer.zero_grad(set_to_none=True)
    return statistics.median(out)


if __name__ == "__main__":
    main()
