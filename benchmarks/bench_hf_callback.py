"""Cost of ``LRTempoCallback`` per update in a ``transformers.Trainer``, against the same Trainer without it.

A small MLP regressor (``--width`` hidden units, three layers) on CPU with gradient accumulation 2 and
clipping at 1.0 (so the callback keeps each gradient's norm before clipping), ``--steps`` updates per run.
Variants, interleaved in rounds, each from the same seed: no callback; the callback with the default monitor
settings; the callback with ``monitor=False`` (the record only). Printed: the median ms per update of each
(the Trainer's ``train_runtime`` over its updates) and the ratio to the run without the callback.

    python benchmarks/bench_hf_callback.py [--rounds 5] [--steps 200] [--width 512]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import warnings
from pathlib import Path

import torch
import transformers

from lrtempo import build_schedule
from lrtempo.integrations.hf import LRTempoCallback
from lrtempo.torch import LRTempoScheduler


class MLP(torch.nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Linear(64, width), torch.nn.GELU(), torch.nn.Linear(width, width),
                                       torch.nn.GELU(), torch.nn.Linear(width, 1))

    def forward(self, x, y):
        return {"loss": torch.nn.functional.mse_loss(self.net(x), y)}


def _run(folder: Path, steps: int, width: int, data: list, callback: str) -> float:
    torch.manual_seed(0)
    model = MLP(width)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.0)
    schedule = build_schedule({"type": "warmup_cosine", "peak_lr": 1e-3, "min_lr": 1e-5, "total_steps": steps,
                               "warmup": 0.05})
    args = transformers.TrainingArguments(
        output_dir=str(folder / "out"), max_steps=steps, per_device_train_batch_size=32,
        gradient_accumulation_steps=2, max_grad_norm=1.0, logging_steps=50, save_strategy="no", report_to=[],
        use_cpu=True, disable_tqdm=True, seed=0)
    callbacks = []
    if callback != "none":
        callbacks.append(LRTempoCallback(folder / "run", monitor=callback == "monitor"))
    trainer = transformers.Trainer(model=model, args=args, train_dataset=data,
                                   optimizers=(optimizer, LRTempoScheduler(optimizer, schedule)), callbacks=callbacks)
    trainer.remove_callback(transformers.trainer_callback.PrinterCallback)  # the log lines, not the logging
    result = trainer.train()
    return 1e3 * result.metrics["train_runtime"] / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--width", type=int, default=512)
    args = parser.parse_args()
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4096, 64, generator=g)
    y = x @ torch.randn(64, 1, generator=g)
    data = [{"x": x[i], "y": y[i]} for i in range(len(x))]
    variants = ("none", "monitor", "record")
    times: dict[str, list[float]] = {v: [] for v in variants}
    transformers.logging.set_verbosity_error()
    with warnings.catch_warnings(), tempfile.TemporaryDirectory() as tmp:
        warnings.simplefilter("ignore")
        for v in variants:  # a round not counted: first imports, allocator and thread-pool warm-up
            _run(Path(tmp) / f"{v}-warm", args.steps, args.width, data, v)
        for r in range(args.rounds):
            for v in variants:
                times[v].append(_run(Path(tmp) / f"{v}-{r}", args.steps, args.width, data, v))
    base = statistics.median(times["none"])
    print(f"{args.steps} updates, width {args.width}, {args.rounds} rounds (median ms per update)")
    for v in variants:
        m = statistics.median(times[v])
        print(f"  {v:8s} {m:8.3f} ms   x{m / base:.3f}")


if __name__ == "__main__":
    main()
