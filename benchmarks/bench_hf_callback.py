"""Cost of ``LRTempoCallback`` per update in a ``transformers.Trainer``, against the same Trainer without it.

An MLP regressor (three layers of ``WIDTH`` hidden units) on CPU with gradient accumulation 2, clipping at 1.0
and the Trainer's logging every 50 updates, ``--steps`` updates per run, in two sizes (``--sizes``, each
``WIDTHxBATCH``, the batch per micro-batch): the tiny default ``512x32`` (a few ms an update) and
``1024x64`` (tens of ms: an update the size the 2% target is about). Variants, interleaved in rounds, each
from the same seed: no callback; the callback with the default monitor settings; the callback with
``monitor=False`` (the record only).

The time of a run is its steady state: from the end of update ``--skip`` to the end of the last (the
callback's start, which writes the run directory and fsyncs it, and its end, are one-off costs, printed
apart). Printed per size: the median ms per update of each variant (wall clock and this process's CPU time)
and its ratio to the run without the callback measured in the same rounds, and the median CPU ms per update
spent inside the callback's own hooks, as a share of the update's CPU time without the callback (which the
machine's noise in the run times does not blur).
``--threads`` sets torch's intra-op threads (default 1: on a machine whose cores are busy, more threads
than free cores make every variant wait on the others and bury the callback's cost in noise).

    python benchmarks/bench_hf_callback.py [--rounds 5] [--steps 300] [--sizes 512x32,1024x64] [--threads 1]
"""

from __future__ import annotations

import time
from pathlib import Path

import torch
import transformers
from _callback_rounds import parse_args, problems, report, rounds  # this folder: the run scripts share it

from lrtempo import build_schedule
from lrtempo.integrations.hf import LRTempoCallback
from lrtempo.torch import LRTempoScheduler

HOOKS = ("on_train_begin", "on_step_begin", "on_pre_optimizer_step", "on_step_end", "on_log", "on_train_end")


class MLP(torch.nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Linear(64, width), torch.nn.GELU(), torch.nn.Linear(width, width),
                                       torch.nn.GELU(), torch.nn.Linear(width, 1))

    def forward(self, x, y):
        return {"loss": torch.nn.functional.mse_loss(self.net(x), y)}


def _timed(name: str):
    def hook(self, *args, **kwargs):
        start = time.thread_time()  # CPU time: a busy machine's waits do not count
        try:
            return getattr(LRTempoCallback, name)(self, *args, **kwargs)
        finally:
            spent = time.thread_time() - start
            if name in ("on_train_begin", "on_train_end"):
                self.once += spent
            elif self.clock.start is not None:
                self.seconds += spent
    return hook


class TimedCallback(LRTempoCallback):
    """``LRTempoCallback`` adding up the seconds spent in its hooks (the steady state's and the one-off ones)."""

    def __init__(self, run_dir, clock, **kwargs):
        super().__init__(run_dir, **kwargs)
        self.clock, self.seconds, self.once = clock, 0.0, 0.0


for _name in HOOKS:
    setattr(TimedCallback, _name, _timed(_name))


class Clock(transformers.TrainerCallback):
    """Wall and CPU seconds from the end of update ``skip`` to the end of the last update."""

    def __init__(self, skip: int) -> None:
        self.skip, self.start, self.wall, self.cpu = skip, None, 0.0, 0.0

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.skip:
            self.start = (time.perf_counter(), time.process_time())
        elif state.global_step == state.max_steps:
            self.wall, self.cpu = time.perf_counter() - self.start[0], time.process_time() - self.start[1]


def _run(folder: Path, steps: int, skip: int, width: int, batch: int, data: list, variant: str) -> dict:
    torch.manual_seed(0)
    model = MLP(width)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.0)
    schedule = build_schedule({"type": "warmup_cosine", "peak_lr": 1e-3, "min_lr": 1e-5, "total_steps": steps,
                               "warmup": 0.05})
    args = transformers.TrainingArguments(
        output_dir=str(folder / "out"), max_steps=steps, per_device_train_batch_size=batch,
        gradient_accumulation_steps=2, max_grad_norm=1.0, logging_steps=50, save_strategy="no", report_to=[],
        use_cpu=True, disable_tqdm=True, seed=0)
    clock = Clock(skip)
    callbacks: list = [clock]
    timed = TimedCallback(folder / "run", clock, monitor=variant == "monitor")
    if variant != "none":
        callbacks.insert(0, timed)
    trainer = transformers.Trainer(model=model, args=args, train_dataset=data, callbacks=callbacks,
                                   optimizers=(optimizer, LRTempoScheduler(optimizer, schedule)))
    trainer.remove_callback(transformers.trainer_callback.PrinterCallback)  # the log lines, not the logging
    trainer.train()
    n = steps - skip
    return {"wall": 1e3 * clock.wall / n, "cpu": 1e3 * clock.cpu / n, "hooks": 1e3 * timed.seconds / n,
            "once": 1e3 * timed.once}


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    transformers.logging.set_verbosity_error()
    for width, batch, x, y in problems(args):
        data = [{"x": x[i], "y": y[i]} for i in range(len(x))]
        times = rounds(lambda folder, steps, v: _run(folder, steps, args.skip, width, batch, data, v), args)
        report(times, args, "HF Trainer", width, batch)


if __name__ == "__main__":
    main()
