"""Schedule races: one task, several schedules, the same initial weights and data order per seed.

For each seed every schedule starts from the same weights and sees the same
data; over the seeds the final and best losses are reported as mean ± std,
with a table and a PNG of the loss curves.

Presets:

* ``quadratic``: seed 001's noisy quadratic: minimise ``w ** 2`` from ``w = 5``
  with gradients ``2 w + N(0, 2 ** 2)`` over 50 plain gradient steps, under
  constant 0.08, cosine 0.08 -> 0.001, and seed 001's warmup + cosine (its
  warmup starts at ``0.08 * (step + 1) / 5``). Seed 42, as in seed 001, gives
  its table: final losses 0.151 / 0.133 / 0.130 and std of ``w`` over the last
  10 steps 0.118 / 0.004 / 0.005.
* ``flipnet``: seed 001's FlipNet: SGD with momentum 0.9, one update per
  image, 30 epochs, the rate set per epoch: constant 0.05, halving every 10
  epochs, cosine to 0.001. Seed 42 gives its epoch-29 losses 0.1516 / 0.1269 /
  0.1252.
* ``charlm``: constant, warmup + cosine, WSD and one-cycle on the character
  model (300 updates), three seeds.

Any run config races too: its own schedule plus ``--schedule`` files.
"""

from __future__ import annotations

import math
import os
import statistics
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..config import build_schedule, load_schedule
from ..schedules import Schedule

__all__ = ["Contender", "RaceResult", "PRESETS", "race_preset", "race_config"]


@dataclass(frozen=True)
class Contender:
    name: str
    schedule: Schedule


@dataclass
class RaceResult:
    title: str
    seeds: list[int]
    metric: str
    curves: dict[str, list[list[float]]] = field(default_factory=dict)  # name -> per-seed curve
    final: dict[str, list[float]] = field(default_factory=dict)
    best: dict[str, list[float]] = field(default_factory=dict)
    extra: dict[str, dict[str, list[float]]] = field(default_factory=dict)  # column -> name -> per-seed

    def _stat(self, values: list[float], digits: int) -> str:
        mean = statistics.fmean(values)
        if len(values) == 1:
            return f"{mean:.{digits}f}"
        return f"{mean:.{digits}f} ± {statistics.stdev(values):.{digits}f}"

    def table(self, digits: int = 4) -> str:
        names = list(self.final)
        cols = [f"final {self.metric}", f"best {self.metric}", *self.extra]
        width = max(len(n) for n in names) + 2
        cells = {n: [self._stat(self.final[n], digits), self._stat(self.best[n], digits),
                     *(self._stat(self.extra[c][n], digits) for c in self.extra)] for n in names}
        colw = [max(len(c), *(len(cells[n][i]) for n in names)) + 2 for i, c in enumerate(cols)]
        seeds = ", ".join(map(str, self.seeds))
        lines = [f"{self.title} (seed{'s' if len(self.seeds) > 1 else ''} {seeds})",
                 "schedule".ljust(width) + "".join(c.rjust(w) for c, w in zip(cols, colw))]
        for n in names:
            lines.append(n.ljust(width) + "".join(v.rjust(w) for v, w in zip(cells[n], colw)))
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        def summary(values):
            return {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0,
                    "values": values}

        return {"title": self.title, "seeds": self.seeds, "metric": self.metric,
                "schedules": {n: {"final": summary(self.final[n]), "best": summary(self.best[n]),
                                  **{c: summary(self.extra[c][n]) for c in self.extra}} for n in self.final}}


# -- the presets -------------------------------------------------------------------------------

def _quadratic_contenders() -> list[Contender]:
    peak, floor, total, warm = 0.08, 0.001, 50, 5
    return [
        Contender("constant", build_schedule({"type": "constant", "lr": peak})),
        Contender("cosine", build_schedule({"type": "cosine", "peak_lr": peak, "min_lr": floor,
                                            "decay_steps": total})),
        # seed 001's warmup: 0.08 * (step + 1) / 5 for steps 0..4, then the cosine over the remaining 45
        Contender("warmup+cosine", build_schedule({"type": "join", "pieces": [
            {"schedule": {"type": "linear", "start_lr": peak / warm, "end_lr": peak, "steps": warm - 1},
             "steps": warm},
            {"schedule": {"type": "cosine", "peak_lr": peak, "min_lr": floor, "decay_steps": total - warm}}]})),
    ]


def _quadratic_run(schedule: Schedule, seed: int) -> dict[str, Any]:
    rates = schedule.at(np.arange(50))
    np.random.seed(seed)  # seed 001 draws from NumPy's global generator
    w, ws = 5.0, []
    for step in range(50):
        noise = np.random.normal(0, 2.0)
        w = w - rates[step] * (2 * w + noise)
        ws.append(w)
    curve = [x * x for x in ws]
    return {"curve": curve, "final": curve[-1], "best": min(curve),
            "extra": {"std of w, last 10 steps": float(np.std(ws[-10:]))}}


def _flipnet_contenders() -> list[Contender]:
    return [
        Contender("constant", build_schedule({"type": "constant", "lr": 0.05})),
        Contender("step (halve every 10 epochs)", build_schedule({"type": "step", "base_lr": 0.05, "step_size": 10,
                                                                  "gamma": 0.5})),
        Contender("cosine to 0.001", build_schedule({"type": "cosine", "peak_lr": 0.05, "min_lr": 0.001,
                                                     "decay_steps": 30})),
    ]


def _flipnet_run(schedule: Schedule, seed: int) -> dict[str, Any]:
    import torch

    from .tasks.flipnet import FlipNet, flip_dataset

    x, y = flip_dataset()
    torch.manual_seed(seed)
    model = FlipNet()
    opt = torch.optim.SGD(model.parameters(), lr=schedule(0), momentum=0.9)
    curve = []
    for epoch in range(30):  # seed 001 sets the rate per epoch and updates once per image
        for group in opt.param_groups:
            group["lr"] = schedule(epoch)
        total = 0.0
        for i in range(16):
            loss = torch.mean((model(x[i]) - y[i]) ** 2)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item()
        curve.append(total / 16)
    return {"curve": curve, "final": curve[-1], "best": min(curve), "extra": {}}


def _charlm_contenders() -> list[Contender]:
    peak, total = 3e-3, 300
    return [
        Contender("constant", build_schedule({"type": "constant", "lr": 1e-3})),
        Contender("warmup_cosine", build_schedule({"type": "warmup_cosine", "peak_lr": peak, "min_lr": peak / 10,
                                                   "total_steps": total, "warmup_steps": 30})),
        Contender("wsd", build_schedule({"type": "wsd", "peak_lr": peak, "min_lr": peak / 100, "total_steps": total,
                                         "warmup_steps": 30, "decay_steps": 60, "decay_shape": "1-sqrt"})),
        Contender("one_cycle", build_schedule({"type": "one_cycle", "max_lr": peak, "total_steps": total})),
    ]


@dataclass(frozen=True)
class _Preset:
    title: str
    contenders: Callable[[], list[Contender]]
    run: Callable[[Schedule, int], dict[str, Any]] | None
    default_seeds: tuple[int, ...]
    metric: str
    digits: int


PRESETS = {
    "quadratic": _Preset("noisy quadratic (seed 001), 50 steps", _quadratic_contenders, _quadratic_run, (42,),
                         "loss", 3),
    "flipnet": _Preset("FlipNet (seed 001), epoch-average loss over 30 epochs", _flipnet_contenders, _flipnet_run,
                       (42,), "loss", 4),
    "charlm": _Preset("charlm, 300 updates, validation loss", _charlm_contenders, None, (0, 1, 2), "val_loss", 4),
}


# -- training races (charlm and run configs) --------------------------------------------------

def _train_one(args: tuple) -> dict[str, Any]:
    """One (schedule, seed) of a training race, in a worker process."""
    import torch

    from ._runconfig import parse_run_config
    from ._state import TrainState, build_optimizer
    from .tasks import TASKS

    config_map, spec, seed, threads = args
    if threads:
        torch.set_num_threads(threads)
    config = parse_run_config({**config_map, "schedule": spec, "seed": seed})
    task = TASKS[config.task](config.task_options, seed)
    opt = config.optimizer
    optimizer = build_optimizer(task.model, name=opt.name, lr=config.schedule(0), betas=opt.betas, eps=opt.eps,
                                weight_decay=opt.weight_decay, momentum=opt.momentum)
    state = TrainState(task.model, config.schedule, optimizer=optimizer, clip_grad_norm=config.grad_clip,
                       accumulation_steps=config.accumulation_steps)
    curve = []
    for _ in range(config.steps):
        result = state.update(task.micro_batches(config.accumulation_steps), task.loss)
        curve.append(result.loss if not result.skipped else math.nan)
    val = task.evaluate(task.model)
    final = val if val is not None else float(np.mean(curve[-10:]))
    smooth = [float(np.mean(curve[max(0, i - 9):i + 1])) for i in range(len(curve))]
    return {"curve": curve, "final": final, "best": min(smooth), "extra": {}}


def _collect(result: RaceResult, contenders: list[Contender], seeds: list[int], outcomes: dict) -> RaceResult:
    for c in contenders:
        runs = [outcomes[(c.name, s)] for s in seeds]
        result.curves[c.name] = [r["curve"] for r in runs]
        result.final[c.name] = [r["final"] for r in runs]
        result.best[c.name] = [r["best"] for r in runs]
        for key in runs[0]["extra"]:
            result.extra.setdefault(key, {})[c.name] = [r["extra"][key] for r in runs]
    return result


def _run_training(title: str, metric: str, config_map: dict, contenders: list[Contender], seeds: list[int],
                  jobs: int, report: Callable[[str], None]) -> RaceResult:
    from ..config import schedule_to_spec

    tasks = [(c.name, s, (config_map, schedule_to_spec(c.schedule), s, 1 if jobs > 1 else 0))
             for s in seeds for c in contenders]
    outcomes: dict[tuple[str, int], dict] = {}
    t0 = time.perf_counter()
    if jobs > 1:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            futures = {pool.submit(_train_one, args): (name, seed) for name, seed, args in tasks}
            for k, fut in enumerate(as_completed(futures), 1):
                name, seed = futures[fut]
                outcomes[(name, seed)] = fut.result()
                report(f"[{k}/{len(tasks)}] {name}, seed {seed}: final {metric} "
                       f"{outcomes[(name, seed)]['final']:.4f} ({time.perf_counter() - t0:.0f} s)")
    else:
        for k, (name, seed, args) in enumerate(tasks, 1):
            outcomes[(name, seed)] = _train_one(args)
            report(f"[{k}/{len(tasks)}] {name}, seed {seed}: final {metric} "
                   f"{outcomes[(name, seed)]['final']:.4f} ({time.perf_counter() - t0:.0f} s)")
    return _collect(RaceResult(title, seeds, metric), contenders, seeds, outcomes)


def race_preset(name: str, *, seeds: int | None = None, extra: list[Contender] | None = None, jobs: int = 1,
                report: Callable[[str], None] = lambda s: None) -> tuple[RaceResult, int]:
    """Run a preset race; returns the result and the number of digits its table uses."""
    preset = PRESETS[name]
    chosen = list(preset.default_seeds)
    if seeds is not None:
        chosen = [chosen[0] + i for i in range(seeds)]
    contenders = preset.contenders() + list(extra or [])
    if preset.run is None:
        from ._runconfig import DEFAULT_RUN

        config_map = {k: v for k, v in DEFAULT_RUN.items() if k not in ("schedule", "name")}
        config_map.update(steps=300, eval_every=0, checkpoint_every=300, monitor=False)
        return _run_training(preset.title, preset.metric, config_map, contenders, chosen, jobs, report), \
            preset.digits
    outcomes = {}
    for s in chosen:
        for c in contenders:
            outcomes[(c.name, s)] = preset.run(c.schedule, s)
            report(f"{c.name}, seed {s}: final {preset.metric} {outcomes[(c.name, s)]['final']:.4f}")
    return _collect(RaceResult(preset.title, chosen, preset.metric), contenders, chosen, outcomes), preset.digits


def race_config(path: str | Path, *, schedules: list[str], seeds: int = 1, jobs: int = 1,
                report: Callable[[str], None] = lambda s: None) -> RaceResult:
    """Race a run config's schedule against ``schedules`` (config files) on its task."""
    from ..config import read_config_file
    from ._runconfig import load_run_config

    config = load_run_config(path)
    config_map = {k: v for k, v in read_config_file(path).items() if k not in ("schedule", "name", "seed")}
    config_map.update(steps=config.steps, monitor=False)
    contenders = [Contender(Path(path).stem, config.schedule)]
    contenders += [Contender(Path(f).stem, load_schedule(f)) for f in schedules]
    names = [c.name for c in contenders]
    if len(set(names)) != len(names):
        contenders = [Contender(f"{i}:{c.name}", c.schedule) for i, c in enumerate(contenders)]
    seed_list = [config.seed + i for i in range(seeds)]
    metric = "val_loss" if config.task == "charlm" else "loss"
    return _run_training(f"{config.task}, {config.steps} updates", metric, config_map, contenders, seed_list, jobs,
                         report)


def race_png(result: RaceResult, path: str | Path) -> Path:
    """Loss curves (mean over seeds, ± std shaded) of every schedule."""
    from ..plot._png import png_figure

    with png_figure(path, figsize=(10, 5)) as (fig, ax):
        for name, runs in result.curves.items():
            arr = np.asarray(runs, dtype=np.float64)
            mean = np.nanmean(arr, axis=0)
            x = np.arange(mean.size)
            ax.plot(x, mean, lw=1.4, label=name)
            if arr.shape[0] > 1:
                std = np.nanstd(arr, axis=0)
                ax.fill_between(x, mean - std, mean + std, alpha=0.2)
        ax.set_xlabel("update" if "epoch" not in result.title else "epoch")
        ax.set_ylabel("training loss")
        ax.set_yscale("log")
        ax.set_title(result.title)
        ax.grid(alpha=0.3, which="both")
        ax.legend()
    path = Path(path)
    return path


def default_jobs() -> int:
    return max(1, min(4, os.cpu_count() or 1))
