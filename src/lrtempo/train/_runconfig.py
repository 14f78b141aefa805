"""Run configs: a task, its schedule and the training settings, validated with field paths."""

from __future__ import annotations

import math
import numbers
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .._util import did_you_mean
from ..config import ConfigError, Problem, build_schedule, read_config_file, schedule_to_spec
from ..schedules import Schedule

__all__ = ["RunConfig", "OptimizerConfig", "DEFAULT_RUN", "parse_run_config", "load_run_config"]


@dataclass(frozen=True)
class OptimizerConfig:
    name: str = "adamw"
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    weight_decay: float = 0.0
    momentum: float = 0.0


@dataclass(frozen=True)
class RunConfig:
    """Everything ``lrtempo train`` needs; ``schedule`` is built, ``schedule_spec`` its canonical spec."""

    task: str
    schedule: Schedule = field(compare=False)
    schedule_spec: dict = field(default_factory=dict)
    name: str = "run"
    task_options: dict = field(default_factory=dict)
    seed: int = 0
    steps: int = 0
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    grad_clip: float | None = None
    accumulation_steps: int = 1
    bf16: bool = False
    checkpoint_every: int = 50
    eval_every: int = 50
    max_consecutive_skips: int = 5
    device: str = "cpu"
    #: monitor settings (see ``lrtempo.monitor.MonitorSettings``), or None for no monitor
    monitor: dict | None = field(default_factory=dict)
    #: the data's size and batching, for ``lrtempo lint`` (examples, batch_size, epochs, drop_last,
    #: world_size, steps_per_epoch); training itself does not read it
    data: dict = field(default_factory=dict)

    def to_mapping(self) -> dict[str, Any]:
        """The resolved config, as written to the run directory (and read back on resume)."""
        out = asdict(self)
        out.pop("schedule")
        out["schedule"] = out.pop("schedule_spec")
        out["optimizer"]["betas"] = list(out["optimizer"]["betas"])
        if out["grad_clip"] is None:
            out.pop("grad_clip")
        if out["monitor"] is None:
            out["monitor"] = False
        if not out["data"]:
            out.pop("data")
        return out


#: the main job's run: charlm under warmup+cosine, 300 updates
DEFAULT_RUN: dict[str, Any] = {
    "name": "charlm",
    "task": "charlm",
    "seed": 0,
    "schedule": {"type": "warmup_cosine", "peak_lr": 3e-3, "min_lr": 3e-4, "total_steps": 300, "warmup_steps": 30},
    "optimizer": {"name": "adamw", "betas": [0.9, 0.95], "weight_decay": 0.1},
    "grad_clip": 1.0,
    "eval_every": 50,
    "checkpoint_every": 50,
}

_KEYS = ("name", "task", "task_options", "seed", "steps", "schedule", "optimizer", "grad_clip",
         "accumulation_steps", "bf16", "checkpoint_every", "eval_every", "max_consecutive_skips", "device", "monitor",
         "data")
_OPT_KEYS = ("name", "betas", "eps", "weight_decay", "momentum")


class _Checker:
    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def fail(self, path: str, message: str) -> None:
        self.problems.append(Problem(path, message))

    def number(self, data: dict, key: str, default: Any, path: str, *, low: float | None = None,
               low_open: bool = False, high: float | None = None, integer: bool = False) -> Any:
        if key not in data or data[key] is None:
            return default
        value = data[key]
        where = f"{path}{key}"
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
            self.fail(where, f"must be a finite number (got {value!r})")
            return default
        if integer:
            if float(value) != int(value):
                self.fail(where, f"must be a whole number (got {value!r})")
                return default
            value = int(value)
        if low is not None and (value <= low if low_open else value < low):
            self.fail(where, f"must be {'>' if low_open else '>='} {low:g} (got {value!r})")
            return default
        if high is not None and value > high:
            self.fail(where, f"must be <= {high:g} (got {value!r})")
            return default
        return value


def parse_run_config(data: dict, source: str | None = None, *, default_name: str = "run") -> RunConfig:
    """Validate a run-config mapping (all problems at once) and build it."""
    c = _Checker()
    _check_keys(data, c)
    task, options = _parse_task(data, c)
    name = _parse_name(data, c, default_name)
    schedule, steps = _parse_schedule_and_steps(data, c)
    optimizer = _parse_optimizer(data, c)
    grad_clip = c.number(data, "grad_clip", None, "", low=0, low_open=True)
    bf16, device = _parse_precision_and_device(data, c)
    monitor = _parse_monitor(data.get("monitor", True), c)
    data_section = data.get("data") or {}
    if not isinstance(data_section, dict):
        c.fail("data", f"must be a mapping (examples, batch_size, epochs, ...) (got {data_section!r})")
        data_section = {}
    run = dict(
        data=dict(data_section),
        monitor=monitor,
        seed=c.number(data, "seed", 0, "", low=0, integer=True),
        accumulation_steps=c.number(data, "accumulation_steps", 1, "", low=1, integer=True),
        checkpoint_every=c.number(data, "checkpoint_every", 50, "", low=1, integer=True),
        eval_every=c.number(data, "eval_every", 50, "", low=0, integer=True),
        max_consecutive_skips=c.number(data, "max_consecutive_skips", 5, "", low=1, integer=True),
    )
    if c.problems:
        raise ConfigError(c.problems, source=source)
    return RunConfig(task=task, schedule=schedule, schedule_spec=schedule_to_spec(schedule), name=name,
                     task_options=dict(options), steps=int(steps), optimizer=optimizer,
                     grad_clip=None if grad_clip is None else float(grad_clip), bf16=bf16, device=device, **run)


def _check_keys(data: dict, c: _Checker) -> None:
    """Every top-level key is one a run config has."""
    for key in data:
        if key not in _KEYS:
            c.fail(str(key), f"unknown key in a run config{did_you_mean(key, _KEYS)} (valid keys: {', '.join(_KEYS)})")


def _parse_task(data: dict, c: _Checker) -> tuple[Any, dict]:
    """The task (a registered name) and its options (a mapping)."""
    from .tasks import TASKS

    task = data.get("task")
    if task is None:
        c.fail("task", f"missing: the task to train (one of: {', '.join(TASKS)})")
    elif task not in TASKS:
        c.fail("task", f"unknown task {task!r}{did_you_mean(task, TASKS)} (one of: {', '.join(TASKS)})")
    options = data.get("task_options") or {}
    if not isinstance(options, dict):
        c.fail("task_options", f"must be a mapping of the task's options (got {options!r})")
        options = {}
    return task, options


def _parse_name(data: dict, c: _Checker, default_name: str) -> str:
    """The run's name: a plain folder name (no separators, not ``.`` or ``..``)."""
    name = data.get("name", default_name)
    if not isinstance(name, str) or not name or any(ch in name for ch in "/\\\0") or name in (".", ".."):
        c.fail("name", f"must be a plain folder name (got {name!r})")
        name = default_name
    return name


def _parse_schedule_and_steps(data: dict, c: _Checker) -> tuple[Any, Any]:
    """The schedule (built from its spec) and the number of updates (given, or the schedule's end)."""
    schedule = None
    if "schedule" not in data:
        c.fail("schedule", "missing: a schedule spec (see `lrtempo schema`)")
    else:
        try:
            schedule = build_schedule(data["schedule"], "schedule")
        except ConfigError as exc:
            c.problems.extend(exc.problems)
    steps = c.number(data, "steps", None, "", low=1, integer=True)
    if steps is None and schedule is not None:
        if schedule.end_step is None or schedule.end_step < 1:
            c.fail("steps", "missing: this schedule never ends, so give the number of updates to run")
        else:
            steps = schedule.end_step
    return schedule, steps


def _parse_optimizer(data: dict, c: _Checker) -> OptimizerConfig:
    """The ``optimizer`` section: name (adamw or sgd), betas, eps, weight_decay, momentum."""
    opt = data.get("optimizer") or {}
    if not isinstance(opt, dict):
        c.fail("optimizer", f"must be a mapping (got {opt!r})")
        opt = {}
    for key in opt:
        if key not in _OPT_KEYS:
            c.fail(f"optimizer.{key}",
                   f"unknown key{did_you_mean(key, _OPT_KEYS)} (valid keys: {', '.join(_OPT_KEYS)})")
    opt_name = opt.get("name", "adamw")
    if opt_name not in ("adamw", "sgd"):
        c.fail("optimizer.name",
               f"must be 'adamw' or 'sgd' (got {opt_name!r}){did_you_mean(opt_name, ('adamw', 'sgd'))}")
    betas = opt.get("betas", [0.9, 0.999])
    if not (isinstance(betas, (list, tuple)) and len(betas) == 2 and all(
            isinstance(b, numbers.Real) and not isinstance(b, bool) and 0 <= b < 1 for b in betas)):
        c.fail("optimizer.betas", f"must be two numbers in [0, 1) (got {betas!r})")
        betas = [0.9, 0.999]
    return OptimizerConfig(
        name=opt_name, betas=(float(betas[0]), float(betas[1])),
        eps=float(c.number(opt, "eps", 1e-8, "optimizer.", low=0, low_open=True)),
        weight_decay=float(c.number(opt, "weight_decay", 0.0, "optimizer.", low=0)),
        momentum=float(c.number(opt, "momentum", 0.0, "optimizer.", low=0, high=1)),
    )


def _parse_precision_and_device(data: dict, c: _Checker) -> tuple[bool, str]:
    """``bf16`` (true or false) and ``device`` (cpu, cuda or auto)."""
    bf16 = data.get("bf16", False)
    if not isinstance(bf16, bool):
        c.fail("bf16", f"must be true or false (got {bf16!r})")
        bf16 = False
    device = data.get("device", "cpu")
    if device not in ("cpu", "cuda", "auto"):
        c.fail("device", f"must be 'cpu', 'cuda' or 'auto' (got {device!r})")
        device = "cpu"
    return bf16, device


def _parse_monitor(value: Any, c: _Checker) -> dict | None:
    from ..monitor import MonitorSettings

    if value is False or value is None:
        return None
    if value is True:
        return {}
    if not isinstance(value, dict):
        c.fail("monitor", f"must be true, false or a mapping of monitor settings (got {value!r})")
        return {}
    out = {}
    for key, v in value.items():
        if key not in MonitorSettings.KEYS:
            c.fail(f"monitor.{key}", f"unknown setting{did_you_mean(key, MonitorSettings.KEYS)} "
                   f"(settings: {', '.join(MonitorSettings.KEYS)})")
        elif key in ("per_layer", "every_signal"):
            if not isinstance(v, bool):
                c.fail(f"monitor.{key}", f"must be true or false (got {v!r})")
            else:
                out[key] = v
        else:
            integer = key in ("effective_every", "trap_window", "spike_window", "staleness_window", "restart_window")
            num = c.number(value, key, None, "monitor.", low=0, low_open=True, integer=integer)
            if num is not None:
                if integer and key == "trap_window" and num < 2:
                    c.fail("monitor.trap_window", f"must be >= 2 (got {num})")
                    continue
                out[key] = num
    return out


def load_run_config(path: str | Path) -> RunConfig:
    """Read a run config file (YAML, JSON or TOML)."""
    path = Path(path)
    data = read_config_file(path)
    if "type" in data and "schedule" not in data:
        raise ConfigError([Problem("", "this is a schedule spec, not a run config: a run config has 'task' and "
                                       "'schedule' keys")], source=str(path))
    return parse_run_config(data, str(path), default_name=path.stem)
