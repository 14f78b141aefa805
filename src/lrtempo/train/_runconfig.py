"""Run configs: a task, its schedule and the training settings, validated with field paths.

:class:`RunConfig` is a frozen dataclass whose fields are the run config's keys,
each with its default and a one-line doc; :func:`parse_run_config` reads a
mapping into it with the typed-settings walker (``lrtempo.config._typed``):
every problem at once, each with its field path and a "did you mean" for an
unknown key. The optimizer section is :class:`lrtempo.config.OptimizerConfig`,
the monitor section :class:`lrtempo.monitor.MonitorSettings`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar

from ..config import BatchRampConfig, ConfigError, OptimizerConfig, Problem, read_config_file, schedule_to_spec
from ..config._typed import missing_settings, read_settings, setting
from ..monitor import MonitorSettings
from ..schedules import Schedule

__all__ = ["RunConfig", "OptimizerConfig", "DEFAULT_RUN", "parse_run_config", "load_run_config",
           "run_config_schema"]


def _task_names() -> tuple[str, ...]:
    from .tasks import TASKS

    return tuple(TASKS)


def _folder_name(name: str) -> str | None:
    """None for a plain folder name (no separators, not ``.`` or ``..``), else what it must be."""
    if not name or any(ch in name for ch in "/\\\0") or name in (".", ".."):
        return "must be a plain folder name"
    return None


@dataclass(frozen=True, kw_only=True)
class RunConfig:
    """A run config for ``lrtempo train``: the task, its schedule and the training settings.

    The fields are the run config's keys, in the order a run's ``config.yaml``
    writes them; ``schedule`` is built, ``schedule_spec`` is its canonical spec.
    """

    config_title: ClassVar[str] = "a run config"
    config_path: ClassVar[str] = ""

    task: str = setting(doc="the task to train", choices=_task_names)
    schedule: Schedule = setting(doc="a schedule spec (see `lrtempo schema`)", compare=False)
    schedule_spec: dict = setting(factory=dict, doc="the schedule's canonical spec", derived=True)
    name: str = setting("run", doc="the run folder's name (default: the config file's stem)", check=_folder_name,
                       computed=True)
    task_options: dict = setting(factory=dict, doc="the task's own options (unknown ones are errors)")
    seed: int = setting(0, doc="the seed of the model's init, the data order and every RNG", minimum=0)
    steps: int = setting(0, doc="optimizer updates to run (default: the schedule's end)", minimum=1,
                        computed=True)
    optimizer: OptimizerConfig = setting(factory=OptimizerConfig, doc="the optimizer and its settings")
    grad_clip: float | None = setting(None, doc="clip the global gradient L2 norm to this (none: no clipping)",
                                      exclusive_minimum=0)
    accumulation_steps: int = setting(1, doc="micro-batches per optimizer update", minimum=1)
    batch_ramp: BatchRampConfig | None = setting(None, doc="grow the global batch from start_batch_size by "
                                                 "increment to the run's batch over ramp_samples samples (none: "
                                                 "no ramp)")
    bf16: bool = setting(False, doc="autocast the forward pass to bfloat16")
    checkpoint_every: int = setting(50, doc="updates between checkpoints (and one at the end)", minimum=1)
    eval_every: int = setting(50, doc="updates between validation losses (0: never)", minimum=0)
    max_consecutive_skips: int = setting(5, doc="non-finite updates in a row before the run stops", minimum=1)
    device: str = setting("cpu", doc="where to train: cpu, cuda or auto (cuda when there is one)",
                          choices=("cpu", "cuda", "auto"))
    #: monitor settings (see ``lrtempo.monitor.MonitorSettings``) as written, or None for no monitor
    monitor: dict | None = setting(factory=dict, doc="the monitor: true (its defaults), false (none) or a mapping "
                                                     "of its settings", section=MonitorSettings)
    data: dict = setting(factory=dict, doc="the data's size and batching, for `lrtempo lint` (examples, "
                                           "batch_size, epochs, drop_last, world_size, steps_per_epoch); "
                                           "training does not read it")

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
        if out["batch_ramp"] is None:
            out.pop("batch_ramp")
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


def parse_run_config(data: dict, source: str | None = None, *, default_name: str = "run") -> RunConfig:
    """Validate a run-config mapping (all problems at once, by :class:`RunConfig`'s fields) and build it.

    ``steps`` defaults to the schedule's end and ``name`` to ``default_name`` (a file's stem).
    """
    problems: list[Problem] = []
    values = read_settings(RunConfig, data, "", problems)
    missing_settings(RunConfig, {k: v for k, v in data.items() if v is not None}, "", problems)
    schedule = values.get("schedule")
    if data.get("steps") is None and schedule is not None:
        if schedule.unit != "steps":
            problems.append(Problem("steps", f"missing: this schedule counts {schedule.unit}, so its end is no "
                                             "number of updates; give the number of updates to run"))
        elif schedule.end_step is None or schedule.end_step < 1:
            problems.append(Problem("steps", "missing: this schedule never ends, so give the number of updates "
                                             "to run"))
        else:
            values["steps"] = schedule.end_step
    if problems:
        raise ConfigError(problems, source=source)
    values.setdefault("name", default_name)
    return RunConfig(schedule_spec=schedule_to_spec(schedule), **values)


def run_config_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a run config, generated from :class:`RunConfig`'s fields."""
    from ..config import settings_schema

    return settings_schema(RunConfig, title="lrtempo run config",
                           schema_id="https://lrtempo.invalid/schema/run_config.json")


def load_run_config(path: str | Path) -> RunConfig:
    """Read a run config file (YAML, JSON or TOML)."""
    path = Path(path)
    data = read_config_file(path)
    if "type" in data and "schedule" not in data:
        raise ConfigError([Problem("", "this is a schedule spec, not a run config: a run config has 'task' and "
                                       "'schedule' keys")], source=str(path))
    return parse_run_config(data, str(path), default_name=path.stem)
