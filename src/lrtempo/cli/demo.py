"""``lrtempo demo``: 20 updates of a tiny linear model under warmup+cosine, printed step by step."""

from __future__ import annotations

import argparse

HELP = "20 updates of a tiny nn.Linear under warmup+cosine, printing lr, gradient norm and loss"

DEMO_SCHEDULE = {"type": "warmup_cosine", "peak_lr": 0.1, "min_lr": 1e-3, "total_steps": 20, "warmup_steps": 4}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help=HELP, description=HELP + ", then the schedule's text plot.")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from ..config import build_schedule
    from ..plot import text_plot
    from ..train import TrainState, build_optimizer
    from ..train.tasks import LinearTask

    torch.manual_seed(0)
    schedule = build_schedule(DEMO_SCHEDULE)
    task = LinearTask({}, seed=0)
    state = TrainState(task.model, schedule, optimizer=build_optimizer(task.model, lr=schedule(0)))
    print(f"{'step':>4}  {'lr':>10}  {'grad_l2_norm':>12}  {'loss':>10}")
    for _ in range(20):
        r = state.update(task.micro_batches(1), task.loss)
        print(f"{r.step:>4}  {r.lr:>10.6f}  {r.grad_l2_norm:>12.6f}  {r.loss:>10.6f}")
    print()
    print(text_plot(schedule, last_step=20, width=60, height=12,
                    title="warmup_cosine: peak_lr 0.1, warmup_steps 4, total_steps 20, min_lr 0.001"))
    return 0
