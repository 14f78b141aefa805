"""Schedule races: one task, several schedules, the same initial weights and data order per seed.

For each seed every schedule starts from the same weights and sees the same
data; over the seeds the final and best losses are reported as mean ± std,
with a table and a PNG of the loss curves.

Presets:

* ``quadratic``: a noisy quadratic, the textbook picture of why a decaying
  rate helps SGD (the noise floor of the iterate scales with the rate):
  minimise ``w ** 2`` from ``w = 5`` with gradients ``2 w + N(0, 2 ** 2)``
  over 50 plain gradient steps, under constant 0.08, cosine 0.08 -> 0.001, and
  a warmup + cosine (its warmup starts at ``0.08 * (step + 1) / 5``). The
  extra column is the std of ``w`` over the last 10 steps.
* ``flipnet``: a small network that learns to flip 16 images; SGD with
  momentum 0.9, one update per image, 30 epochs, the rate set per epoch:
  constant 0.05, halving every 10 epochs, cosine to 0.001.
* ``charlm``: constant, warmup + cosine, WSD and one-cycle on the character
  model (300 updates), three seeds.

Any run config races too: its own schedule plus ``--schedule`` files.

A raced schedule whose end differs from the race's length (a 20,000-step
schedule raced over 300 updates never leaves its warmup) is reported through
``warn``; ``fit=True`` stretches it to the race instead (:func:`stretch`).
"""

from __future__ import annotations

import math
import os
import statistics
import warnings
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .._rundir_schema import RUN_FILES
from ..config import build_schedule, load_schedule
from ..config._stretch import stretch
from ..schedules import Schedule

__all__ = ["Contender", "RaceResult", "PRESETS", "race_preset", "race_config", "stretch", "fit_contenders",
           "contender_name"]

#: progress callback: (units done, units in all, a note on the latest result)
ProgressFn = Callable[[int, int, str], None]


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
    final_label: str = ""  # the table's column names: what the numbers are
    best_label: str = ""

    @property
    def x_label(self) -> str:
        """What one point of a curve is: an update, or an epoch for the races that log per epoch."""
        return "update" if "epoch" not in self.title else "epoch"

    def labels(self) -> tuple[str, str]:
        return self.final_label or f"final {self.metric}", self.best_label or f"best {self.metric}"

    def _stat(self, values: list[float], digits: int) -> str:
        mean = statistics.fmean(values)
        if len(values) == 1:
            return f"{mean:.{digits}f}"
        return f"{mean:.{digits}f} ± {statistics.stdev(values):.{digits}f}"

    def table(self, digits: int = 4) -> str:
        names = list(self.final)
        cols = [*self.labels(), *self.extra]
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

        final_label, best_label = self.labels()
        return {"title": self.title, "seeds": self.seeds, "metric": self.metric, "final_label": final_label,
                "best_label": best_label,
                "schedules": {n: {"final": summary(self.final[n]), "best": summary(self.best[n]),
                                  **{c: summary(self.extra[c][n]) for c in self.extra}} for n in self.final}}


# -- the presets -------------------------------------------------------------------------------

def _quadratic_contenders() -> list[Contender]:
    peak, floor, total, warm = 0.08, 0.001, 50, 5
    return [
        Contender("constant", build_schedule({"type": "constant", "lr": peak})),
        Contender("cosine", build_schedule({"type": "cosine", "peak_lr": peak, "min_lr": floor,
                                            "decay_steps": total})),
        # a warmup that starts above zero: 0.08 * (step + 1) / 5 for steps 0..4, then the cosine over the
        # remaining 45
        Contender("warmup+cosine", build_schedule({"type": "join", "pieces": [
            {"schedule": {"type": "linear", "start_lr": peak / warm, "end_lr": peak, "steps": warm - 1},
             "steps": warm},
            {"schedule": {"type": "cosine", "peak_lr": peak, "min_lr": floor, "decay_steps": total - warm}}]})),
    ]


def _quadratic_run(schedule: Schedule, seed: int) -> dict[str, Any]:
    rates = schedule.at(np.arange(50))
    np.random.seed(seed)  # NumPy's global generator, so one seed gives one noise sequence
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
    for epoch in range(30):  # the rate is set per epoch; one update per image
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
    length: int  # the steps (or epochs) over which the race sets the rate
    unit: str
    final_label: str
    best_label: str


_TRAIN_BEST = "best train loss (10-update mean)"

PRESETS = {
    "quadratic": _Preset("noisy quadratic, 50 steps", _quadratic_contenders, _quadratic_run, (42,), "loss", 3,
                         50, "steps", "final loss", "best loss"),
    "flipnet": _Preset("FlipNet, epoch-average loss over 30 epochs", _flipnet_contenders, _flipnet_run, (42,),
                       "loss", 4, 30, "epochs", "final loss", "best loss"),
    "charlm": _Preset("charlm, 300 updates, validation loss", _charlm_contenders, None, (0, 1, 2), "val_loss", 4,
                      300, "updates", "final val_loss", _TRAIN_BEST),
}


def fit_contenders(contenders: list[Contender], length: int, unit: str, *, fit: bool,
                   warn: Callable[[str], None]) -> list[Contender]:
    """Stretch (``fit``) or warn about every contender whose end differs from the race's ``length``."""
    from ..config import ConfigError, Problem

    out = []
    for c in contenders:
        end = c.schedule.end_step
        if c.schedule.unit != "steps":  # a race steps every contender by updates, one batch each
            raise ConfigError([Problem("", f"schedule {c.name!r} counts {c.schedule.unit}; a race compares "
                                           "schedules over updates: give it in steps")])
        if end is None or end == 0 or end == length:
            out.append(c)
        elif not fit:
            warn(f"schedule {c.name!r} ends at step {end} but the race sets the rate over {length} {unit}; "
                 f"pass --fit to stretch it to {length}")
            out.append(c)
        else:
            try:
                out.append(Contender(c.name, stretch(c.schedule, length)))
            except ValueError as exc:
                raise ConfigError([Problem("", f"--fit: schedule {c.name!r} (ends at {end}) cannot be stretched "
                                               f"to {length} {unit}: {exc}")]) from None
    return out


def _unique(contenders: list[Contender]) -> list[Contender]:
    """Number the names (``0:cosine``, ``1:cosine``) when two contenders share one, so no result hides another."""
    names = [c.name for c in contenders]
    if len(set(names)) == len(names):
        return contenders
    return [Contender(f"{i}:{c.name}", c.schedule) for i, c in enumerate(contenders)]


def _warn(message: str) -> None:
    warnings.warn(message, stacklevel=3)


# -- training races (charlm and run configs) --------------------------------------------------

def _train_one(args: tuple, on_update: Callable[[int], None] | None = None) -> dict[str, Any]:
    """One (schedule, seed) of a training race, in a worker process (``on_update(done)`` after each update)."""
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
    state = TrainState(task.model, config.schedule, optimizer=optimizer, grad_clip=config.grad_clip,
                       accumulation_steps=config.accumulation_steps)
    curve = []
    for k in range(config.steps):
        result = state.update(task.micro_batches(config.accumulation_steps), task.loss)
        curve.append(result.loss if not result.skipped else math.nan)
        if on_update is not None:
            on_update(k + 1)
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


def _run_training(result: RaceResult, config_map: dict, contenders: list[Contender], jobs: int,
                  progress: ProgressFn) -> RaceResult:
    """Every (contender, seed) on the run config's task; progress counts updates over all of them."""
    import torch  # noqa: F401 - a missing torch is reported here, not inside a worker process

    from ..config import schedule_to_spec

    seeds, steps = result.seeds, int(config_map["steps"])
    tasks = [(c.name, s, (config_map, schedule_to_spec(c.schedule), s, 1 if jobs > 1 else 0))
             for s in seeds for c in contenders]
    total = steps * len(tasks)
    outcomes: dict[tuple[str, int], dict] = {}

    def finished(name: str, seed: int, outcome: dict) -> None:
        outcomes[(name, seed)] = outcome
        progress(steps * len(outcomes), total, f"{name}, seed {seed}: {result.labels()[0]} {outcome['final']:.4f}")

    progress(0, total, "")
    if jobs > 1:
        with ProcessPoolExecutor(max_workers=jobs, mp_context=_worker_context()) as pool:
            futures = {pool.submit(_train_one, args): (name, seed) for name, seed, args in tasks}
            for fut in as_completed(futures):
                finished(*futures[fut], fut.result())
    else:
        for name, seed, args in tasks:
            before = steps * len(outcomes)
            finished(name, seed, _train_one(args, lambda k, b=before, n=name, s=seed:
                                            progress(b + k, total, f"{n}, seed {s}")))
    return _collect(result, contenders, seeds, outcomes)


def _worker_context():
    """Fresh worker processes, never a fork of this one: forking a process whose threads (torch's
    intra-op pool, JAX's) hold locks can deadlock the child. ``forkserver`` where the platform has it."""
    import multiprocessing

    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")


def race_preset(name: str, *, seeds: int | None = None, extra: list[Contender] | None = None, jobs: int = 1,
                progress: ProgressFn = lambda done, total, note: None, fit: bool = False,
                warn: Callable[[str], None] = _warn) -> tuple[RaceResult, int]:
    """Run a preset race; returns the result and the number of digits its table uses.

    ``extra`` schedules whose end differs from the preset's length are stretched to it (``fit``) or
    reported through ``warn``.
    """
    preset = PRESETS[name]
    chosen = list(preset.default_seeds)
    if seeds is not None:
        chosen = [chosen[0] + i for i in range(seeds)]
    contenders = _unique(preset.contenders() + fit_contenders(list(extra or []), preset.length, preset.unit,
                                                              fit=fit, warn=warn))
    result = RaceResult(preset.title, chosen, preset.metric, final_label=preset.final_label,
                        best_label=preset.best_label)
    if preset.run is None:
        from ._runconfig import DEFAULT_RUN

        config_map = {k: v for k, v in DEFAULT_RUN.items() if k not in ("schedule", "name")}
        config_map.update(steps=preset.length, eval_every=0, checkpoint_every=preset.length, monitor=False)
        return _run_training(result, config_map, contenders, jobs, progress), preset.digits
    outcomes = {}
    total = len(chosen) * len(contenders)
    progress(0, total, "")
    for s in chosen:
        for c in contenders:
            outcomes[(c.name, s)] = preset.run(c.schedule, s)
            progress(len(outcomes), total, f"{c.name}, seed {s}: final {preset.metric} "
                                           f"{outcomes[(c.name, s)]['final']:.4f}")
    return _collect(result, contenders, chosen, outcomes), preset.digits


def race_config(path: str | Path, *, schedules: list[str], seeds: int = 1, jobs: int = 1,
                progress: ProgressFn = lambda done, total, note: None, fit: bool = False,
                warn: Callable[[str], None] = _warn) -> RaceResult:
    """Race a run config's schedule against ``schedules`` (config files) on its task, over its ``steps``.

    Schedules whose end differs from ``steps`` are stretched to it (``fit``) or reported through ``warn``.
    """
    from ..config import read_config_file
    from ._runconfig import load_run_config

    config = load_run_config(path)
    config_map = {k: v for k, v in read_config_file(path).items() if k not in ("schedule", "name", "seed")}
    config_map.update(steps=config.steps, monitor=False)
    contenders = [Contender(contender_name(path), config.schedule)]
    contenders += [Contender(contender_name(f), load_schedule(f)) for f in schedules]
    contenders = _unique(fit_contenders(contenders, config.steps, "updates", fit=fit, warn=warn))
    seed_list = [config.seed + i for i in range(seeds)]
    evaluates = config.task == "charlm"
    result = RaceResult(f"{config.task}, {config.steps} updates", seed_list, "val_loss" if evaluates else "loss",
                        final_label="final val_loss" if evaluates else "final train loss (last-10 mean)",
                        best_label=_TRAIN_BEST)
    return _run_training(result, config_map, contenders, jobs, progress)


def contender_name(path: str | Path) -> str:
    """A schedule's name in a race: its file's stem, or its run directory's name for ``RUN_DIR/config.yaml``."""
    p = Path(path)
    return p.parent.name if p.name == RUN_FILES.config else p.stem


def default_jobs() -> int:
    return max(1, min(4, os.cpu_count() or 1))
