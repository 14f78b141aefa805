"""``flipnet``: a tiny ReLU network, 4 -> 3 -> 4, learning the diagonal flip of 2x2 images."""

from __future__ import annotations

import itertools

import torch

from ._base import DataFacts, Task, check_options

DEFAULTS = {"hidden": 3}


class FlipNet(torch.nn.Module):
    def __init__(self, hidden: int = 3):
        super().__init__()
        self.fc1 = torch.nn.Linear(4, hidden)
        self.fc2 = torch.nn.Linear(hidden, 4)

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(x)))


def flip_dataset() -> tuple[torch.Tensor, torch.Tensor]:
    """All sixteen 2x2 binary images (row-major ``[a, b, c, d]``) and their diagonal flips ``[a, c, b, d]``."""
    images = torch.tensor(list(itertools.product([0.0, 1.0], repeat=4)))
    return images, images[:, [0, 2, 1, 3]]


class FlipNetTask(Task):
    """MSE of FlipNet over all 16 images; one update = one full pass (an epoch)."""

    name = "flipnet"
    full_batch = True

    def __init__(self, options: dict, seed: int, rank: int = 0, world_size: int = 1):
        opts = check_options("flipnet", options, DEFAULTS)
        x, y = flip_dataset()
        if 16 % world_size:
            raise ValueError(f"flipnet's 16 images do not split evenly over {world_size} processes")
        share = 16 // world_size
        self.x, self.y = x[rank * share:(rank + 1) * share], y[rank * share:(rank + 1) * share]
        self.tokens_per_micro_batch = self.samples_per_micro_batch = share
        torch.manual_seed(seed)
        super().__init__(FlipNet(opts["hidden"]))

    @classmethod
    def data_facts(cls, options: dict) -> DataFacts:
        """The 16 images, every one in every update: an epoch is one update."""
        check_options("flipnet", options, DEFAULTS)
        return DataFacts(examples=16, update_batch=16, tokens_per_sample=1,
                         source={"examples": "task flipnet: its 16 images"})

    def micro_batches(self, n: int):
        return list(zip(self.x.chunk(n), self.y.chunk(n)))

    def loss(self, model, batch):
        x, y = batch
        return torch.nn.functional.mse_loss(model(x), y)
