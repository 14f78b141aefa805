"""Config files <-> schedule specs: parsing, validation, canonical form, hashing.

A config file (YAML, JSON or TOML, by suffix) is either a schedule spec, a
mapping with a ``type`` key, or a run config whose ``schedule`` key holds one.
The rest of a run config is typed settings: frozen dataclasses read field by
field by one walker (``_typed``), such as :class:`OptimizerConfig`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..schedules import Schedule
from ._build import REGISTRY, build_schedule, canonical_spec, known_types, schedule_to_spec, spec_hash, spec_hashes
from ._errors import SHOWN_PROBLEMS, ConfigError, Problem
from ._files import (
    MAX_CONFIG_BYTES,
    MAX_DEPTH,
    MAX_VALUES,
    SUFFIXES,
    format_config,
    parse_config_text,
    read_config_file,
    write_config_file,
)
from ._optimizer import OptimizerConfig
from ._ramp import BatchRamp, BatchRampConfig
from ._scale import Scaled, scale_rate, scale_spec
from ._schema import json_schema, settings_schema

__all__ = [
    "BatchRamp",
    "BatchRampConfig",
    "ConfigError",
    "MAX_CONFIG_BYTES",
    "MAX_DEPTH",
    "MAX_VALUES",
    "OptimizerConfig",
    "Problem",
    "SHOWN_PROBLEMS",
    "REGISTRY",
    "SUFFIXES",
    "Scaled",
    "build_schedule",
    "canonical_spec",
    "format_config",
    "json_schema",
    "known_types",
    "load_schedule",
    "load_spec",
    "parse_config_text",
    "read_config_file",
    "scale_rate",
    "scale_spec",
    "schedule_to_spec",
    "settings_schema",
    "spec_hash",
    "spec_hashes",
    "write_config_file",
]


def schedule_spec_of(data: dict, source: str | None = None) -> tuple[Any, str]:
    """The schedule spec inside a config mapping and its field path.

    A mapping with ``type`` is a schedule spec itself; one with ``schedule``
    is a run config.
    """
    if "type" in data:
        return data, ""
    if "schedule" in data:
        return data["schedule"], "schedule"
    keys = ", ".join(map(str, data)) or "none"
    raise ConfigError([Problem("", "not a schedule spec (no 'type' key) nor a run config (no 'schedule' key); "
                                   f"keys found: {keys}")], source=source)


def load_spec(path: str | Path) -> Any:
    """Read a config file and return the schedule spec in it (not yet validated)."""
    data = read_config_file(path)
    spec, _ = schedule_spec_of(data, str(path))
    return spec


def load_schedule(path: str | Path, task_facts: Any = None) -> Schedule:
    """Read a config file and build its schedule, reporting every problem at once.

    A run config's ``auto`` fields take its budget (``total``; see :mod:`lrtempo.config._horizon`), with a
    built-in task's data size from ``task_facts`` (``lrtempo.train.tasks.task_data_facts``) where given.
    """
    from ._horizon import run_budget

    data = read_config_file(path)
    spec, where = schedule_spec_of(data, str(path))
    problems: list[Problem] = []
    _, spec = run_budget(data if where else {}, spec, where, problems, task_facts)
    if problems:
        raise ConfigError(problems, source=str(path))
    return build_schedule(spec, where, source=str(path))
