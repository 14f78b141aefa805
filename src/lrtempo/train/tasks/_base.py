"""What a built-in task provides to the training loop."""

from __future__ import annotations

from typing import Any

import torch

from ...config._horizon import DataFacts

__all__ = ["Task", "check_options", "DataFacts"]


class Task:
    """A model, its data and its loss.

    ``micro_batches(n)`` returns the ``n`` micro-batches of the next update and
    advances the data position; ``state_dict()`` is that position (with any
    generator state), so a resumed run sees the same data. Under DDP each rank
    builds its task with its ``rank`` and ``world_size`` and reads its own shard.
    """

    name = "task"
    #: tokens (or examples) consumed per micro-batch, for the log's ``tokens`` column
    tokens_per_micro_batch = 0
    #: samples (examples, sequences) consumed per micro-batch on this process, for the log's ``samples`` column
    samples_per_micro_batch = 0
    #: True for a task whose update always takes its one fixed batch (``micro_batches(n)`` splits it ``n``
    #: ways): its batch size cannot ramp, and an update consumes the batch whatever ``n``
    full_batch = False

    def __init__(self, model: torch.nn.Module):
        self.model = model

    @classmethod
    def data_facts(cls, options: dict) -> DataFacts:
        """The task's training data as a run's budget reads it (``total: {epochs: 3}``): its examples, the
        samples a micro-batch takes, the tokens a sample holds; from the options alone, nothing is built.
        ValueError for bad options. The base class knows none of them."""
        return DataFacts()

    def micro_batches(self, n: int) -> list[Any]:
        raise NotImplementedError

    def loss(self, model: torch.nn.Module, batch: Any) -> torch.Tensor:
        raise NotImplementedError

    def consumed(self, n: int) -> tuple[int, int]:
        """``(samples, tokens)`` that ``n`` micro-batches of one update consume on this process."""
        if self.full_batch:
            return self.samples_per_micro_batch, self.tokens_per_micro_batch
        return n * self.samples_per_micro_batch, n * self.tokens_per_micro_batch

    def evaluate(self, model: torch.nn.Module) -> float | None:
        """Validation loss, or None for a task without a validation set."""
        return None

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


def check_options(task: str, options: dict, defaults: dict) -> dict:
    """Merge ``options`` over ``defaults``; unknown keys and wrong types are errors naming the option."""
    from ..._util import did_you_mean

    problems = []
    out = dict(defaults)
    for key, value in options.items():
        if key not in defaults:
            problems.append(f"task_options.{key}: unknown option for task {task!r}{did_you_mean(key, defaults)} "
                            f"(options: {', '.join(defaults)})")
            continue
        want = type(defaults[key])
        if want is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if want is int and isinstance(value, float) and value.is_integer():
            value = int(value)
        if not isinstance(value, want) or isinstance(value, bool) != (want is bool):
            problems.append(f"task_options.{key}: must be {want.__name__} (got {value!r})")
            continue
        if want in (int, float) and value <= 0 and key not in ("noise_std", "w0"):
            problems.append(f"task_options.{key}: must be > 0 (got {value!r})")
            continue
        out[key] = value
    if problems:
        raise ValueError("; ".join(problems))
    return out
