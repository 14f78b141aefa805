"""``quadratic``: minimise ``w ** 2`` from noisy gradients ``2 w + noise`` (the textbook noisy quadratic)."""

from __future__ import annotations

import numpy as np
import torch

from ._base import DataFacts, Task, check_options

DEFAULTS = {"w0": 5.0, "noise_std": 2.0}


class Quadratic(torch.nn.Module):
    def __init__(self, w0: float):
        super().__init__()
        self.w = torch.nn.Parameter(torch.tensor([w0], dtype=torch.float64))


class QuadraticTask(Task):
    """The loss ``w ** 2 + noise * w`` has gradient ``2 w + noise``, noise ~ N(0, noise_std ** 2).

    The noise is drawn with NumPy from a seeded generator whose state is the
    task's data position. The logged loss is the noisy objective of the update.
    """

    name = "quadratic"
    tokens_per_micro_batch = samples_per_micro_batch = 1

    def __init__(self, options: dict, seed: int, rank: int = 0, world_size: int = 1):
        self.opts = check_options("quadratic", options, DEFAULTS)
        self.rng = np.random.default_rng([seed, rank])
        super().__init__(Quadratic(self.opts["w0"]))

    @classmethod
    def data_facts(cls, options: dict) -> DataFacts:
        """One fresh noise draw a micro-batch and no finite data set (so no epochs)."""
        check_options("quadratic", options, DEFAULTS)
        return DataFacts(batch_size=1, tokens_per_sample=1,
                         source={"batch_size": "task quadratic: one noise draw a micro-batch"})

    def micro_batches(self, n: int):
        return [float(v) for v in self.rng.normal(0.0, self.opts["noise_std"], size=n)]

    def loss(self, model, noise):
        w = model.w if hasattr(model, "w") else model.module.w
        return (w * w + noise * w).sum()

    def state_dict(self):
        state = self.rng.bit_generator.state
        return {"bit_generator": state["bit_generator"], "state": {k: int(v) for k, v in state["state"].items()},
                "has_uint32": int(state["has_uint32"]), "uinteger": int(state["uinteger"])}

    def load_state_dict(self, state):
        self.rng.bit_generator.state = {"bit_generator": state["bit_generator"], "state": dict(state["state"]),
                                        "has_uint32": state["has_uint32"], "uinteger": state["uinteger"]}
