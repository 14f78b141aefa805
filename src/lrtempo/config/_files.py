"""Reading and writing config files: YAML, JSON or TOML, chosen by suffix.

YAML is read with a safe loader only (nothing in a config is executed or
imported), with YAML 1.2 number rules: ``3e-4`` is a float, as people write
it (a plain YAML 1.1 parser reads it as a string). Duplicate keys are errors.
"""

from __future__ import annotations

import json
import math
import re
import sys
from pathlib import Path
from typing import Any

import yaml

from ._errors import ConfigError, Problem

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = ["SUFFIXES", "read_config_file", "write_config_file", "parse_config_text", "format_config"]

SUFFIXES = {".yaml": "yaml", ".yml": "yaml", ".json": "json", ".toml": "toml"}

_YAML12_FLOAT = re.compile(
    r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?\.[0-9][0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""",
    re.X,
)


class _Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 floats and duplicate-key detection."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:float"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
for _first in "-+0123456789.":
    _Loader.yaml_implicit_resolvers.setdefault(_first, []).insert(
        0, ("tag:yaml.org,2002:float", _YAML12_FLOAT)
    )


def _construct_mapping(loader: _Loader, node: yaml.MappingNode, deep: bool = False) -> dict:
    loader.flatten_mapping(node)
    seen: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            mark = key_node.start_mark
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", mark
            )
        seen[key] = loader.construct_object(value_node, deep=deep)
    return seen


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _format_of(path: Path) -> str:
    fmt = SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        valid = ", ".join(SUFFIXES)
        raise ConfigError([Problem("", f"unknown config file suffix {path.suffix!r}; use one of {valid}")],
                          source=str(path))
    return fmt


def parse_config_text(text: str, fmt: str, source: str = "<config>") -> dict:
    """Parse config text of format ``yaml``, ``json`` or ``toml`` into a mapping.

    >>> parse_config_text("peak_lr: 3e-4", "yaml")
    {'peak_lr': 0.0003}
    """
    if not text.strip():
        raise ConfigError([Problem("", "the file is empty; it must hold a mapping (a schedule spec "
                                        "with a 'type' key, or a run config with a 'schedule' key)")],
                          source=source)
    try:
        if fmt == "yaml":
            data = yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader
        elif fmt == "json":
            data = json.loads(text)
        else:
            data = tomllib.loads(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise ConfigError([Problem("", f"invalid YAML: {where}{exc.problem or exc}")], source=source) from None
    except yaml.YAMLError as exc:
        raise ConfigError([Problem("", f"invalid YAML: {exc}")], source=source) from None
    except json.JSONDecodeError as exc:
        raise ConfigError([Problem("", f"invalid JSON: line {exc.lineno}, column {exc.colno}: {exc.msg}")],
                          source=source) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([Problem("", f"invalid TOML: {exc}")], source=source) from None
    if data is None:
        raise ConfigError([Problem("", "the file holds no data; it must be a mapping")], source=source)
    if not isinstance(data, dict):
        raise ConfigError([Problem("", f"the top level must be a mapping (got a {type(data).__name__})")],
                          source=source)
    return data


def read_config_file(path: str | Path) -> dict:
    """Read a YAML, JSON or TOML config file into a mapping (format by suffix)."""
    path = Path(path)
    fmt = _format_of(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([Problem("", "no such file")], source=str(path)) from None
    except IsADirectoryError:
        raise ConfigError([Problem("", "is a directory, not a config file")], source=str(path)) from None
    except UnicodeDecodeError as exc:
        raise ConfigError([Problem("", f"not UTF-8 text ({exc.reason} at byte {exc.start})")],
                          source=str(path)) from None
    return parse_config_text(text, fmt, source=str(path))


# -- writing -----------------------------------------------------------------

def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"cannot write a non-finite number to TOML: {value!r}")
        text = repr(value)
        return text if any(ch in text for ch in ".en") else text + ".0"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def _toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key)


def format_config(data: dict, fmt: str) -> str:
    """Serialise a mapping as ``yaml``, ``json`` or ``toml`` text that reads back equal.

    >>> format_config({"type": "constant", "lr": 0.1}, "toml")
    'type = "constant"\\nlr = 0.1\\n'
    """
    if fmt == "json":
        return json.dumps(data, indent=2, allow_nan=False) + "\n"
    if fmt == "toml":
        return "".join(f"{_toml_key(k)} = {_toml_value(v)}\n" for k, v in data.items() if v is not None)
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False)


def write_config_file(data: dict, path: str | Path) -> None:
    """Write a mapping to a config file, format by suffix."""
    path = Path(path)
    path.write_text(format_config(data, _format_of(path)), encoding="utf-8")
