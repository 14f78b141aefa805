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
  model (300 updates), three seeds. With ``optimizer="schedulefree"``
  (``--optimizer schedulefree``) also schedule-free AdamW (Defazio et al.
  2024) at 3e-3 and 6e-3, each after the same 30-update linear warmup, then
  constant: the alternative to a schedule, from the same command.
* ``cooldown``: the WSD claim on the character model (:func:`race_cooldown`):
  one WSD stable run per seed, a 1-sqrt cooldown branched from it for each of
  three budgets (100, 200 and 300 updates, each cooldown 20% of its budget),
  against a full warmup + cosine run per budget, three seeds.

Any run config races too: its own schedule plus ``--schedule`` files.

A raced schedule whose end differs from the race's length (a 20,000-step
schedule raced over 300 updates never leaves its warmup) is reported through
``warn``; ``fit=True`` stretches it to the race instead (:func:`stretch`).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import statistics
import time
import warnings
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .._rundir_schema import RUN_FILES
from ..config import build_schedule, load_schedule, spec_hash
from ..config._stretch import stretch
from ..schedules import Schedule, find_plateau

__all__ = ["Contender", "RaceResult", "PRESETS", "CONTENDER_OPTIMIZERS", "race_preset", "race_config", "stretch",
           "fit_contenders", "contender_name", "schedulefree_like", "COOLDOWN", "CooldownRace", "race_cooldown"]

#: progress callback: (units done, units in all, a note on the latest result)
ProgressFn = Callable[[int, int, str], None]


@dataclass(frozen=True)
class Contender:
    name: str
    schedule: Schedule
    #: settings over the race's optimizer section for this contender (``{"name": "schedulefree"}``), or None
    optimizer: dict | None = None


#: the optimizers a race can add as contenders of their own (``--optimizer``)
CONTENDER_OPTIMIZERS = ("schedulefree",)


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
    notes: list[str] = field(default_factory=list)  # lines the table ends with
    #: name -> per-seed log columns besides the curve (``lr``; ``grad_l2_norm`` and ``seconds`` when trained),
    #: one value per point of the curve: what the multi-run page of the race draws
    columns: dict[str, list[dict[str, list[float]]]] = field(default_factory=dict)
    hashes: dict[str, str] = field(default_factory=dict)  # name -> the schedule's spec_hash, where it has one

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
        return "\n".join(lines + self.notes)

    def to_json(self) -> dict[str, Any]:
        def summary(values):
            return {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0,
                    "values": values}

        final_label, best_label = self.labels()
        return {"title": self.title, "seeds": self.seeds, "metric": self.metric, "final_label": final_label,
                "best_label": best_label, "notes": self.notes,
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
            "extra": {"std of w, last 10 steps": float(np.std(ws[-10:]))}, "columns": {"lr": rates.tolist()}}


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
    return {"curve": curve, "final": curve[-1], "best": min(curve), "extra": {},
            "columns": {"lr": schedule.at(np.arange(30)).tolist()}}


def _schedulefree(name: str, peak: float, warmup_steps: int) -> Contender:
    """Schedule-free AdamW: a linear warmup from 0 to ``peak`` over ``warmup_steps`` updates, then constant."""
    spec: dict = {"type": "constant", "lr": peak}
    if warmup_steps:
        spec = {"type": "warmup", "warmup_steps": warmup_steps, "schedule": spec}
    return Contender(name, build_schedule(spec), {"name": "schedulefree"})


def _charlm_schedulefree() -> list[Contender]:
    return [_schedulefree(f"schedulefree {lr:g}", lr, 30) for lr in (3e-3, 6e-3)]


def schedulefree_like(schedule: Schedule, steps: int) -> Contender:
    """Schedule-free AdamW at ``schedule``'s peak over its first ``steps``, warmed up as fast as it reaches it.

    >>> c = schedulefree_like(build_schedule({"type": "warmup_cosine", "peak_lr": 1e-3, "total_steps": 100,
    ...                                       "warmup_steps": 10}), 100)
    >>> c.schedule(5), c.schedule(10), c.schedule(99), c.optimizer
    (0.0005, 0.001, 0.001, {'name': 'schedulefree'})
    """
    rates = schedule.at(np.arange(steps))
    first_peak = int(np.argmax(rates))
    return _schedulefree("schedulefree", float(rates[first_peak]), first_peak)


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
        if find_plateau(c.schedule) is not None:  # a race never evaluates mid-run: it would never reduce
            raise ConfigError([Problem("", f"schedule {c.name!r} reduces on plateau, which needs evaluations a race "
                                           "does not make: race its base schedule, or train it with lrtempo train")])
        if end is None or end == 0 or end == length:
            out.append(c)
        elif not fit:
            warn(f"schedule {c.name!r} ends at step {end} but the race sets the rate over {length} {unit}; "
                 f"pass --fit to stretch it to {length}")
            out.append(c)
        else:
            try:
                out.append(dataclasses.replace(c, schedule=stretch(c.schedule, length)))
            except ValueError as exc:
                raise ConfigError([Problem("", f"--fit: schedule {c.name!r} (ends at {end}) cannot be stretched "
                                               f"to {length} {unit}: {exc}")]) from None
    return out


def _unique(contenders: list[Contender]) -> list[Contender]:
    """Number the names (``0:cosine``, ``1:cosine``) when two contenders share one, so no result hides another."""
    names = [c.name for c in contenders]
    if len(set(names)) == len(names):
        return contenders
    return [dataclasses.replace(c, name=f"{i}:{c.name}") for i, c in enumerate(contenders)]


def _warn(message: str) -> None:
    warnings.warn(message, stacklevel=3)


# -- training races (charlm and run configs) --------------------------------------------------

def _train_one(args: tuple, on_update: Callable[[int], None] | None = None) -> dict[str, Any]:
    """One (schedule, seed) of a training race, in a worker process (``on_update(done)`` after each update)."""
    import torch

    from ._runconfig import parse_run_config
    from ._schedulefree import evaluation_weights
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
    curve, columns, start = [], {"lr": [], "grad_l2_norm": [], "seconds": []}, time.perf_counter()
    for k in range(config.steps):
        result = state.update(task.micro_batches(config.accumulation_steps), task.loss)
        curve.append(result.loss if not result.skipped else math.nan)
        columns["lr"].append(result.lr)
        columns["grad_l2_norm"].append(result.grad_l2_norm)
        columns["seconds"].append(time.perf_counter() - start)  # wall-clock since the first update began
        if on_update is not None:
            on_update(k + 1)
    with evaluation_weights(optimizer):  # schedule-free: validated at its average weights
        val = task.evaluate(task.model)
    final = val if val is not None else float(np.mean(curve[-10:]))
    smooth = [float(np.mean(curve[max(0, i - 9):i + 1])) for i in range(len(curve))]
    return {"curve": curve, "final": final, "best": min(smooth), "extra": {}, "columns": columns}


def _collect(result: RaceResult, contenders: list[Contender], seeds: list[int], outcomes: dict) -> RaceResult:
    for c in contenders:
        runs = [outcomes[(c.name, s)] for s in seeds]
        result.curves[c.name] = [r["curve"] for r in runs]
        result.final[c.name] = [r["final"] for r in runs]
        result.best[c.name] = [r["best"] for r in runs]
        result.columns[c.name] = [r.get("columns", {}) for r in runs]
        result.hashes[c.name] = spec_hash(c.schedule)
        for key in runs[0]["extra"]:
            result.extra.setdefault(key, {})[c.name] = [r["extra"][key] for r in runs]
    return result


def _run_training(result: RaceResult, config_map: dict, contenders: list[Contender], jobs: int,
                  progress: ProgressFn) -> RaceResult:
    """Every (contender, seed) on the run config's task; progress counts updates over all of them."""
    import torch  # noqa: F401 - a missing torch is reported here, not inside a worker process

    from ..config import schedule_to_spec

    seeds, steps = result.seeds, int(config_map["steps"])
    tasks = [(c.name, s, (_with_optimizer(config_map, c), schedule_to_spec(c.schedule), s, 1 if jobs > 1 else 0))
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


def _with_optimizer(config_map: dict, contender: Contender) -> dict:
    """The race's run config with the contender's optimizer settings over its optimizer section."""
    if not contender.optimizer:
        return config_map
    return {**config_map, "optimizer": {**(config_map.get("optimizer") or {}), **contender.optimizer}}


def _check_optimizer(optimizer: str | None) -> None:
    """An optimizer contender the race knows, whose package is installed (else one line that says how)."""
    if optimizer is None:
        return
    if optimizer not in CONTENDER_OPTIMIZERS:
        raise ValueError(f"optimizer: must be one of {', '.join(CONTENDER_OPTIMIZERS)} (got {optimizer!r})")
    from ._schedulefree import require_package

    require_package(optimizer)


def _worker_context():
    """Fresh worker processes, never a fork of this one: forking a process whose threads (torch's
    intra-op pool, JAX's) hold locks can deadlock the child. ``forkserver`` where the platform has it."""
    import multiprocessing

    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")


def race_preset(name: str, *, seeds: int | None = None, extra: list[Contender] | None = None, jobs: int = 1,
                progress: ProgressFn = lambda done, total, note: None, fit: bool = False,
                warn: Callable[[str], None] = _warn, optimizer: str | None = None) -> tuple[RaceResult, int]:
    """Run a preset race; returns the result and the number of digits its table uses.

    ``extra`` schedules whose end differs from the preset's length are stretched to it (``fit``) or
    reported through ``warn``. ``optimizer="schedulefree"`` adds the preset's schedule-free AdamW contenders
    (charlm only: the other presets do not train with lrtempo's optimizers).
    """
    preset = PRESETS[name]
    _check_optimizer(optimizer)
    if optimizer is not None and preset.run is not None:
        raise ValueError(f"optimizer: the {name} preset runs its own update rule; {optimizer} races on charlm "
                         "or on a run config")
    chosen = list(preset.default_seeds)
    if seeds is not None:
        chosen = [chosen[0] + i for i in range(seeds)]
    own = preset.contenders() + (_charlm_schedulefree() if optimizer is not None else [])
    contenders = _unique(own + fit_contenders(list(extra or []), preset.length, preset.unit, fit=fit, warn=warn))
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
                warn: Callable[[str], None] = _warn, optimizer: str | None = None) -> RaceResult:
    """Race a run config's schedule against ``schedules`` (config files) on its task, over its ``steps``.

    Schedules whose end differs from ``steps`` are stretched to it (``fit``) or reported through ``warn``.
    ``optimizer="schedulefree"`` adds schedule-free AdamW at the config schedule's peak
    (:func:`schedulefree_like`).
    """
    _check_optimizer(optimizer)
    from ..config import read_config_file
    from ._runconfig import load_run_config

    config = load_run_config(path)
    config_map = {k: v for k, v in read_config_file(path).items() if k not in ("schedule", "name", "seed")}
    config_map.update(steps=config.steps, monitor=False)
    contenders = [Contender(contender_name(path), config.schedule)]
    contenders += [Contender(contender_name(f), load_schedule(f)) for f in schedules]
    contenders = fit_contenders(contenders, config.steps, "updates", fit=fit, warn=warn)
    if optimizer is not None:
        contenders.append(schedulefree_like(config.schedule, config.steps))
    contenders = _unique(contenders)
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


# -- the cooldown race: one WSD stable run, a cooldown branch per budget, against cosine per budget --------------

#: the cooldown race's name among the presets (it races run directories, not a list of schedules)
COOLDOWN = "cooldown"


@dataclass(frozen=True)
class CooldownRace:
    """The cooldown race's settings: the budgets (updates), the cooldown's share of each and its shape, the
    rates (``peak_lr``, the common ``min_lr`` of both sides, ``warmup_steps``) and the task's options.

    For budget ``T`` the cooldown has ``N = round(cooldown_fraction * T)`` updates and starts at ``T - N``
    from the stable run's checkpoint there; the cosine contender is ``warmup_cosine`` over ``T``.
    """

    budgets: tuple[int, ...] = (100, 200, 300)
    cooldown_fraction: float = 0.2
    shape: str = "1-sqrt"
    peak_lr: float = 3e-3
    min_lr: float = 3e-4
    warmup_steps: int = 30
    task_options: dict = field(default_factory=dict)

    def cooldown(self, budget: int) -> int:
        return max(1, round(self.cooldown_fraction * budget))

    def stable_spec(self) -> dict[str, Any]:
        """The stable run's schedule: WSD over the largest budget, whose own decay is that budget's cooldown."""
        top = max(self.budgets)
        return {"type": "wsd", "peak_lr": self.peak_lr, "min_lr": self.min_lr, "total_steps": top,
                "warmup_steps": self.warmup_steps, "decay_steps": self.cooldown(top), "decay_shape": self.shape}

    def cosine_spec(self, budget: int) -> dict[str, Any]:
        return {"type": "warmup_cosine", "peak_lr": self.peak_lr, "min_lr": self.min_lr, "total_steps": budget,
                "warmup_steps": self.warmup_steps}

    def names(self, budget: int) -> tuple[str, str]:
        return f"T={budget}: wsd, {self.shape} cooldown", f"T={budget}: warmup_cosine"


def _cooldown_seed(args: tuple) -> dict[str, dict[str, Any]]:
    """One seed of the cooldown race, in run directories under ``folder``: the stable run with a checkpoint at
    each branch point, each cooldown made with :func:`~lrtempo.train._branch.make_branch` and trained by
    ``--resume``, and the cosine runs. Returns each contender's loss curve and final validation loss."""
    import torch

    from ..rundir import RunDir
    from ._branch import BranchTail, make_branch
    from ._run import train
    from ._runconfig import DEFAULT_RUN, parse_run_config

    race, seed, folder, threads = args
    if threads:
        torch.set_num_threads(threads)
    folder = Path(folder)
    top = max(race.budgets)
    base = {k: v for k, v in DEFAULT_RUN.items() if k not in ("schedule", "name")}
    base.update(seed=seed, monitor=False, eval_every=top, checkpoint_every=top, keep_checkpoints="all",
                task_options=dict(race.task_options))
    points = sorted({b - race.cooldown(b) for b in race.budgets})
    stable = {**base, "name": "stable", "schedule": race.stable_spec(), "steps": points[-1],
              "checkpoint_at": points[:-1]}
    _completed(train(parse_run_config(stable), folder, progress=False))
    out: dict[str, dict[str, Any]] = {}
    for budget in race.budgets:
        at, wsd_name, cos_name = budget - race.cooldown(budget), *race.names(budget)
        branch = folder / f"cooldown-{budget}"
        make_branch(folder / "stable", at, branch, BranchTail("cooldown", steps=race.cooldown(budget),
                                                              shape=race.shape))
        out[wsd_name] = _run_outcome(_completed(train(None, resume=branch, progress=False)), RunDir(branch))
        cosine = {**base, "name": f"cosine-{budget}", "schedule": race.cosine_spec(budget), "steps": budget}
        summary = _completed(train(parse_run_config(cosine), folder, progress=False))
        out[cos_name] = _run_outcome(summary, RunDir(folder / f"cosine-{budget}"))
    return out


def _completed(summary: Any) -> Any:
    """``summary`` of a run that completed; a run stopped by a signal stops the race (its numbers would be
    those of a shorter run)."""
    if summary.status != "completed":
        raise RuntimeError(f"{summary.run_dir}: {summary.status} after {summary.steps} updates; the cooldown race "
                           "stops (its results would not be the budgets')")
    return summary


def _run_outcome(summary: Any, run: Any) -> dict[str, Any]:
    from ._log import read_log

    rows = read_log(run.log)
    curve = [float(r["loss"]) for r in rows]
    smooth = [float(np.mean(curve[max(0, i - 9):i + 1])) for i in range(len(curve))]
    columns = {c: [float(r[c]) if r.get(c) else math.nan for r in rows] for c in ("lr", "grad_l2_norm", "seconds")}
    recorded = json.loads(run.meta.read_text(encoding="utf-8")).get("spec_hash")
    return {"curve": curve, "final": summary.final_val_loss, "best": min(smooth), "extra": {}, "columns": columns,
            "spec_hash": recorded}


def race_cooldown(race: CooldownRace | None = None, *, seeds: int | None = None, jobs: int = 1,
                  folder: str | Path | None = None,
                  progress: ProgressFn = lambda done, total, note: None) -> RaceResult:
    """The cooldown race: for every seed, one WSD stable run serves every budget through cooldown branches
    (``lrtempo branch``), raced against a full cosine run per budget (Hägele et al. 2024 report that the two
    match at equal compute). Seeds 0, 1, 2 by default. The runs are kept under ``folder`` when given (else in
    a temporary folder). The table ends with the paired difference per budget, WSD minus cosine, per seed."""
    import tempfile

    race = race or CooldownRace()
    chosen = list(range(3 if seeds is None else seeds))
    keep = folder is not None
    root = Path(folder) if keep else Path(tempfile.mkdtemp(prefix="lrtempo-cooldown-race-"))
    result = RaceResult(f"charlm cooldown race, budgets {', '.join(map(str, race.budgets))} updates, validation "
                        "loss", chosen, "val_loss", final_label="final val_loss", best_label=_TRAIN_BEST)
    threads = 1 if jobs > 1 else 0
    tasks = [(race, s, str(root / f"seed-{s}"), threads) for s in chosen]
    outcomes: dict[tuple[str, int], dict] = {}
    progress(0, len(chosen), "")
    try:
        if jobs > 1:
            with ProcessPoolExecutor(max_workers=jobs, mp_context=_worker_context()) as pool:
                futures = {pool.submit(_cooldown_seed, args): args[1] for args in tasks}
                for fut in as_completed(futures):
                    outcomes.update({(name, futures[fut]): o for name, o in fut.result().items()})
                    progress(len(outcomes) // (2 * len(race.budgets)), len(chosen), f"seed {futures[fut]} done")
        else:
            for args in tasks:
                outcomes.update({(name, args[1]): o for name, o in _cooldown_seed(args).items()})
                progress(len(outcomes) // (2 * len(race.budgets)), len(chosen), f"seed {args[1]} done")
    finally:
        if not keep:
            import shutil

            shutil.rmtree(root, ignore_errors=True)
    for name in (n for b in race.budgets for n in race.names(b)):
        runs = [outcomes[(name, s)] for s in chosen]
        result.curves[name] = [r["curve"] for r in runs]
        result.final[name] = [r["final"] for r in runs]
        result.best[name] = [r["best"] for r in runs]
        result.columns[name] = [r["columns"] for r in runs]
        if runs[0]["spec_hash"]:
            result.hashes[name] = runs[0]["spec_hash"]
    result.notes.extend(_paired_notes(result, race))
    return result


def _paired_notes(result: RaceResult, race: CooldownRace) -> list[str]:
    """Per budget: the mean ± std over seeds of (WSD's final val_loss - cosine's), paired by seed."""
    lines = ["wsd - cosine, final val_loss paired by seed (negative: the cooldown branch is better):"]
    for budget in race.budgets:
        wsd, cos = race.names(budget)
        diffs = [a - b for a, b in zip(result.final[wsd], result.final[cos])]
        spread = f" ± {statistics.stdev(diffs):.4f}" if len(diffs) > 1 else ""
        lines.append(f"  T={budget}: {statistics.fmean(diffs):+.4f}{spread}")
    return lines
