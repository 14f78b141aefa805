"""``linear``: the ``lrtempo demo`` task, a tiny ``nn.Linear`` fitted to one fixed batch."""

from __future__ import annotations

import torch

from ._base import DataFacts, Task, check_options

DEFAULTS = {"in_features": 8, "batch_size": 32, "noise_std": 0.1}


class LinearTask(Task):
    """Regress ``y = X w* + b* + noise`` with ``nn.Linear(in_features, 1)`` on one fixed batch (MSE).

    Every update sees the whole batch; under DDP each rank takes an equal
    share of its rows, so the averaged gradient is the full batch's.
    """

    name = "linear"
    full_batch = True

    def __init__(self, options: dict, seed: int, rank: int = 0, world_size: int = 1):
        opts = check_options("linear", options, DEFAULTS)
        if opts["batch_size"] % world_size:
            raise ValueError(f"task_options.batch_size: {opts['batch_size']} rows do not split evenly over "
                             f"{world_size} processes")
        gen = torch.Generator().manual_seed(seed)
        n, d = opts["batch_size"], opts["in_features"]
        x = torch.randn(n, d, generator=gen)
        w_true = torch.randn(d, 1, generator=gen)
        y = x @ w_true + 0.5 + opts["noise_std"] * torch.randn(n, 1, generator=gen)
        share = n // world_size
        self.x, self.y = x[rank * share:(rank + 1) * share], y[rank * share:(rank + 1) * share]
        self.tokens_per_micro_batch = self.samples_per_micro_batch = share
        torch.manual_seed(seed)
        super().__init__(torch.nn.Linear(d, 1))

    @classmethod
    def data_facts(cls, options: dict) -> DataFacts:
        """``batch_size`` rows, every one in every update: an epoch is one update."""
        n = check_options("linear", options, DEFAULTS)["batch_size"]
        return DataFacts(examples=n, update_batch=n, tokens_per_sample=1,
                         source={"examples": "task linear: task_options.batch_size rows"})

    def micro_batches(self, n: int):
        if n == 1:
            return [(self.x, self.y)]
        return list(zip(self.x.chunk(n), self.y.chunk(n)))

    def loss(self, model, batch):
        x, y = batch
        return torch.nn.functional.mse_loss(model(x), y)
