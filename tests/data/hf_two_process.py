"""A Hugging Face Trainer run under ``torchrun --nproc_per_node 2`` (CPU, gloo) with LRTempoCallback.

    torchrun --nproc_per_node 2 tests/data/hf_two_process.py OUT RUN

Accumulation 2, clipping at 0.5 (which bites), 6 updates. The main process writes the Trainer's log
history and the callback's warnings to ``OUT/result.json``; the test compares them with the record in RUN.
"""

import json
import sys
import warnings

import torch
import transformers

from lrtempo import build_schedule
from lrtempo.integrations.hf import LRTempoCallback, LRTempoIntegrationWarning
from lrtempo.torch import LRTempoScheduler

SPEC = {"type": "warmup_cosine", "peak_lr": 0.05, "min_lr": 0.001, "total_steps": 6, "warmup_steps": 2}


class Tiny(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1))

    def forward(self, x, y):
        return {"loss": torch.nn.functional.mse_loss(self.net(x), y)}


def main(out: str, run: str) -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 4, generator=g)
    y = x @ torch.randn(4, 1, generator=g) + 3.0
    torch.manual_seed(0)
    model = Tiny()
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.0)
    args = transformers.TrainingArguments(
        output_dir=out, per_device_train_batch_size=4, gradient_accumulation_steps=2, max_steps=6, max_grad_norm=0.5,
        save_strategy="no", logging_steps=1, report_to=[], use_cpu=True, seed=0, disable_tqdm=True,
        ddp_backend="gloo")
    trainer = transformers.Trainer(
        model=model, args=args, train_dataset=[{"x": x[i], "y": y[i]} for i in range(64)],
        optimizers=(optimizer, LRTempoScheduler(optimizer, build_schedule(SPEC))), callbacks=[LRTempoCallback(run)])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", LRTempoIntegrationWarning)
        trainer.train()
    if trainer.is_world_process_zero():
        mine = [str(w.message) for w in caught if issubclass(w.category, LRTempoIntegrationWarning)]
        with open(f"{out}/result.json", "w") as fh:
            json.dump({"history": trainer.state.log_history, "world_size": args.world_size, "warnings": mine}, fh)


if __name__ == "__main__":
    main(*sys.argv[1:3])
