"""Run configs: a task, its schedule and the training settings, validated with field paths.

:class:`RunConfig` is a frozen dataclass whose fields are the run config's keys,
each with its default and a one-line doc; :func:`parse_run_config` reads a
mapping into it with the typed-settings walker (``lrtempo.config._typed``):
every problem at once, each with its field path and a "did you mean" for an
unknown key. The optimizer section is :class:`lrtempo.config.OptimizerConfig`,
the monitor section :class:`lrtempo.monitor.MonitorSettings`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar

from ..config import BatchRampConfig, ConfigError, OptimizerConfig, Problem, read_config_file, schedule_to_spec
from ..config._horizon import Horizon, fill_auto, has_auto, run_horizon
from ..config._hyper import HYPER_NAMES, hyper_problem
from ..config._typed import missing_settings, read_settings, setting
from ..monitor import MonitorSettings
from ..schedules import Schedule

__all__ = ["RunConfig", "OptimizerConfig", "DEFAULT_RUN", "parse_run_config", "load_run_config",
           "run_config_schema"]


#: run-config keys that change how a run is carried out or shown, not what it computes: not in the config hash
UNHASHED = ("distributed", "tensorboard")

#: how many checkpoints a run keeps unless its config says otherwise (``keep_checkpoints``)
KEEP_CHECKPOINTS = 3


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
    momentum: Schedule | None = setting(None, doc="a schedule spec of the momentum (SGD's momentum, AdamW's "
                                                  "beta1), set before each update like the rate (none: the "
                                                  "optimizer's own)")
    weight_decay: Schedule | None = setting(None, doc="a schedule spec of the weight decay of the decayed groups, "
                                                      "set before each update (none: the optimizer's own)")
    name: str = setting("run", doc="the run folder's name (default: the config file's stem)", check=_folder_name,
                       computed=True)
    task_options: dict = setting(factory=dict, doc="the task's own options (unknown ones are errors)")
    seed: int = setting(0, doc="the seed of the model's init, the data order and every RNG", minimum=0)
    steps: int = setting(0, doc="optimizer updates to run (default: the budget's, else the schedule's end)",
                        minimum=1, computed=True)
    total: dict | None = setting(None, doc="the run's budget, one of {steps: N}, {epochs: N}, {samples: N}, "
                                           "{tokens: N}; schedules take it with auto (see docs/lifecycle.md)")
    #: the budget ``total`` resolved (``lrtempo.config._horizon.Horizon``), recorded in run.json as ``budget``
    budget: Any = setting(None, doc="the budget resolved from total, with its derivation", derived=True,
                          compare=False)
    optimizer: OptimizerConfig = setting(factory=OptimizerConfig, doc="the optimizer and its settings")
    grad_clip: float | None = setting(None, doc="clip the global gradient L2 norm to this (none: no clipping)",
                                      exclusive_minimum=0)
    accumulation_steps: int = setting(1, doc="micro-batches per optimizer update", minimum=1)
    batch_ramp: BatchRampConfig | None = setting(None, doc="grow the global batch from start_batch_size by "
                                                 "increment to the run's batch over ramp_samples samples (none: "
                                                 "no ramp)")
    bf16: bool = setting(False, doc="autocast the forward pass to bfloat16")
    checkpoint_every: int = setting(50, doc="updates between checkpoints (and one at the end)", minimum=1)
    #: an int, or the word ``all`` (the settings walker takes the words of ``words`` as themselves)
    keep_checkpoints: int = setting(KEEP_CHECKPOINTS, doc="checkpoints kept: the newest N, or all (those of "
                                                          "checkpoint_at are always kept)", minimum=1, words=("all",))
    checkpoint_at: tuple[int, ...] = setting((), doc="steps that also get a checkpoint, always kept (where a "
                                                     "branch may start: `lrtempo branch`)", minimum=1)
    eval_every: int = setting(50, doc="updates between validation losses (0: never)", minimum=0)
    max_consecutive_skips: int = setting(5, doc="non-finite updates in a row before the run stops", minimum=1)
    device: str = setting("cpu", doc="where to train: cpu, cuda or auto (cuda when there is one)",
                          choices=("cpu", "cuda", "auto"))
    distributed: str = setting("ddp", doc="how torchrun's processes share the model: ddp (a replica on each) or "
                                          "fsdp (sharded with FSDP2, see docs/training.md)", choices=("ddp", "fsdp"))
    #: monitor settings (see ``lrtempo.monitor.MonitorSettings``) as written, or None for no monitor
    monitor: dict | None = setting(factory=dict, doc="the monitor: true (its defaults), false (none) or a mapping "
                                                     "of its settings", section=MonitorSettings)
    tensorboard: bool = setting(False, doc="also write the log's rows to RUN_DIR/tensorboard/ as TensorBoard event "
                                           "files (needs the tensorboard package)")
    data: dict = setting(factory=dict, doc="the data's size and batching (examples, batch_size, epochs, drop_last, "
                                           "world_size, steps_per_epoch, tokens_per_sample), for `lrtempo lint` "
                                           "and the budget (`total`); training reads nothing else of it")

    def to_mapping(self) -> dict[str, Any]:
        """The resolved config, as written to the run directory (and read back on resume)."""
        out = asdict(self)
        out.pop("schedule")
        out["schedule"] = out.pop("schedule_spec")
        for name in HYPER_NAMES:  # after the schedule, in their canonical form, only when given
            out.pop(name)
            if getattr(self, name) is not None:
                out[name] = schedule_to_spec(getattr(self, name))
        out["optimizer"]["betas"] = list(out["optimizer"]["betas"])
        if out["grad_clip"] is None:
            out.pop("grad_clip")
        if out["monitor"] is None:
            out["monitor"] = False
        if not out["data"]:
            out.pop("data")
        out.pop("budget")
        if out["total"] is None:
            out.pop("total")
        if out["keep_checkpoints"] == KEEP_CHECKPOINTS:  # the defaults of these two are not written: a run's
            out.pop("keep_checkpoints")                  # config.yaml (and its hash) reads as before them
        if out["checkpoint_at"]:
            out["checkpoint_at"] = list(out["checkpoint_at"])
        else:
            out.pop("checkpoint_at")
        if out["batch_ramp"] is None:
            out.pop("batch_ramp")
        if not out["tensorboard"]:  # not written at its default: config.yaml reads as before the key
            out.pop("tensorboard")
        if out["distributed"] == "ddp":  # the default is not written (a run's config.yaml reads as before it)
            out.pop("distributed")
        return out

    @property
    def checkpoints_kept(self) -> int | None:
        """How many of the newest checkpoints retention keeps (besides ``checkpoint_at``'s); None: all."""
        return None if self.keep_checkpoints == "all" else self.keep_checkpoints


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
    horizon, data, skip = _resolve_budget(data, problems)
    values = read_settings(RunConfig, data, "", problems, skip=skip)
    if horizon is not None:
        values["total"] = dict(horizon.given)
    missing_settings(RunConfig, {k: v for k, v in data.items() if v is not None}, "", problems)
    schedule = values.get("schedule")
    if data.get("steps") is None and horizon is not None:
        values["steps"] = horizon.steps
    elif data.get("steps") is None and schedule is not None:
        if schedule.unit != "steps":
            problems.append(Problem("steps", f"missing: this schedule counts {schedule.unit}, so its end is no "
                                             "number of updates; give the number of updates to run"))
        elif schedule.end_step is None or schedule.end_step < 1:
            problems.append(Problem("steps", "missing: this schedule never ends, so give the number of updates "
                                             "to run"))
        else:
            values["steps"] = schedule.end_step
    _check_checkpoint_at(values, problems)
    _check_hypers(values, problems)
    _check_distributed(values, problems)
    if problems:
        raise ConfigError(problems, source=source)
    values.setdefault("name", default_name)
    return RunConfig(schedule_spec=schedule_to_spec(schedule), budget=horizon, **values)


def _resolve_budget(data: dict, problems: list[Problem]) -> tuple[Horizon | None, dict, tuple[str, ...]]:
    """The run's budget (from ``total``; None without one), ``data`` with the schedule's ``auto`` filled from
    it, and the keys the settings reader skips: ``total`` (read here), and the schedule when a problem with
    the budget left an ``auto`` in it (its message would only repeat the budget's)."""
    from .tasks import task_data_facts

    before = len(problems)
    horizon = run_horizon(data, problems, task_data_facts)
    if "schedule" not in data:
        return horizon, data, ("total",)
    if len(problems) > before:
        return None, data, ("total", "schedule") if has_auto(data["schedule"]) else ("total",)
    filled: list[tuple[str, int]] = []
    spec = fill_auto(data["schedule"], horizon, "schedule", problems, filled)
    if horizon is not None and filled:
        horizon = dataclasses.replace(horizon, filled=tuple(filled))
    skip = ("total", "schedule") if len(problems) > before and has_auto(spec) else ("total",)
    return horizon, {**data, "schedule": spec}, skip


def _check_checkpoint_at(values: dict[str, Any], problems: list[Problem]) -> None:
    """Each step of ``checkpoint_at`` within the run (a checkpoint after an update that never runs is none)."""
    steps = values.get("steps")
    for i, step in enumerate(values.get("checkpoint_at", ())):
        if steps is not None and step > steps:
            problems.append(Problem(f"checkpoint_at[{i}]", f"must be <= steps, the run's {steps} updates "
                                                           f"(got {step})"))


def _check_hypers(values: dict[str, Any], problems: list[Problem]) -> None:
    """A problem for a momentum or weight-decay schedule the optimizer cannot take at some step of the run."""
    steps = values.get("steps")
    optimizer = values.get("optimizer", OptimizerConfig()).name
    for name in HYPER_NAMES:
        if values.get(name) is not None and steps is not None:
            problem = hyper_problem(name, values[name], steps, optimizer)
            if problem is not None:
                problems.append(Problem(name, problem))


def _check_distributed(values: dict[str, Any], problems: list[Problem]) -> None:
    """FSDP2 and schedule-free AdamW: its evaluation weights are swapped in and saved whole, not by shard."""
    if values.get("distributed") == "fsdp" and values.get("optimizer", OptimizerConfig()).name == "schedulefree":
        problems.append(Problem("distributed", "fsdp does not take optimizer.name schedulefree (its evaluation "
                                               "weights are not sharded): use ddp, or adamw or sgd"))


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
