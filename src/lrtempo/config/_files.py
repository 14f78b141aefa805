"""Reading and writing config files: YAML, JSON or TOML, chosen by suffix.

Input is read exactly or refused:

* YAML is read with a safe loader under the YAML 1.2 core schema, exactly:
  ``0144`` is the integer 144, ``0o14`` is 12, ``0x1F`` is 31, ``1e3`` is the
  float 1000.0, ``.inf`` and ``.nan`` are floats, only ``true``/``false`` (in
  three spellings) are booleans, and everything else (``yes``, ``1:40``,
  ``1_000``, ``2001-12-14``) is a string. Only the core tags (``!!str``,
  ``!!int``, ``!!float``, ``!!bool``, ``!!null``, ``!!seq``, ``!!map``) exist.
* A number that does not fit a float64 (``1e400``, a 400-digit integer) or
  that is too small to be told from 0 (``1e-400``) is an error, not a rounded
  value; so is JSON's non-standard ``NaN``/``Infinity``.
* Duplicate keys are errors in every format; a mapping key must be a scalar.
* Only a regular file of at most :data:`MAX_CONFIG_BYTES` is read; data nested
  deeper than :data:`MAX_DEPTH` levels, or expanding (through YAML aliases) to
  more than :data:`MAX_VALUES` values, is refused.
"""

from __future__ import annotations

import errno
import json
import math
import os
import re
import stat
import sys
from pathlib import Path
from typing import Any

import yaml

from ._errors import ConfigError, Problem

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = ["SUFFIXES", "MAX_CONFIG_BYTES", "MAX_DEPTH", "MAX_VALUES", "read_config_file", "write_config_file",
           "parse_config_text", "format_config"]

SUFFIXES = {".yaml": "yaml", ".yml": "yaml", ".json": "json", ".toml": "toml"}

#: the largest config file read (1 MiB); a schedule spec is a few hundred bytes
MAX_CONFIG_BYTES = 1 << 20
#: the deepest nesting of mappings and lists in a config
MAX_DEPTH = 100
#: the most values (scalars, mappings, lists) a config may hold once YAML aliases are expanded
MAX_VALUES = 1_000_000


class _Refused(ValueError):
    """Input that is not read exactly: raised inside the parsers' hooks, reported as one problem."""


# -- numbers: one reading for every format ------------------------------------

_FLOAT_MAX_DIGITS = 309  # 10**309 > the largest float64 (about 1.8e308)


def _bounded_int(text: str, value: int | None = None) -> int:
    """An integer literal as an ``int``, refused when it lies outside the float64 range.

    >>> _bounded_int("-0144")
    -144
    """
    digits = text.lstrip("+-")
    if value is None:
        if len(digits) > _FLOAT_MAX_DIGITS:
            raise _Refused(f"the integer {_abbrev(text)} ({len(digits)} digits) is out of range "
                           "(a number must lie within -1.8e308..1.8e308)")
        value = int(text)
    if abs(value) > sys.float_info.max:
        raise _Refused(f"the integer {_abbrev(text)} is out of range (a number must lie within -1.8e308..1.8e308)")
    return value


_NONZERO_MANTISSA = re.compile(r"[1-9]")


def _bounded_float(text: str) -> float:
    """A decimal float literal read to the nearest float64; overflow and underflow to 0 are refused.

    >>> _bounded_float("3e-4"), _bounded_float("-0.0")
    (0.0003, -0.0)
    """
    value = float(text)
    if math.isinf(value):
        raise _Refused(f"the number {_abbrev(text)} is out of range (a number must lie within -1.8e308..1.8e308)")
    mantissa = re.split(r"[eE]", text, maxsplit=1)[0]
    if value == 0.0 and _NONZERO_MANTISSA.search(mantissa):
        raise _Refused(f"the number {_abbrev(text)} is too small to tell from 0 "
                       "(the smallest positive number is about 5e-324)")
    return value


def _abbrev(text: str) -> str:
    return text if len(text) <= 24 else f"{text[:10]}...{text[-6:]}"


# -- YAML: the 1.2 core schema ------------------------------------------------

# YAML 1.2.2, 10.3.2 "Tag Resolution" (\Z, not $: "12\n" is not an integer)
_CORE_NULL = re.compile(r"^(?:~|null|Null|NULL|)\Z")
_CORE_BOOL = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)\Z")
_CORE_INT = re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)\Z")
_CORE_FLOAT = re.compile(r"""^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?
                             |[-+]?\.(?:inf|Inf|INF)
                             |\.(?:nan|NaN|NAN))\Z""", re.X)
_TAG = "tag:yaml.org,2002:"


class _CoreResolver(yaml.resolver.BaseResolver):
    """Plain scalars resolve by the YAML 1.2 core schema's regular expressions (and nothing else)."""

    yaml_implicit_resolvers: dict = {}


# first characters each expression can start with; int before float, so "12" is an int
_CORE_RESOLVERS = (
    ("null", _CORE_NULL, ["~", "n", "N", ""]),
    ("bool", _CORE_BOOL, list("tTfF")),
    ("int", _CORE_INT, list("-+0123456789")),
    ("float", _CORE_FLOAT, list("-+0123456789.")),
)
for _tag, _rx, _first in _CORE_RESOLVERS:
    _CoreResolver.add_implicit_resolver(_TAG + _tag, _rx, _first)


class _Dumper(yaml.SafeDumper):
    """SafeDumper that quotes every string a YAML 1.1 *or* 1.2 reader would take for another type.

    PyYAML decides quoting by the 1.1 rules alone, so it writes the string
    ``"1e3"`` plain, which the 1.2 core schema reads as the float 1000.0.
    """


for _tag, _rx, _first in _CORE_RESOLVERS:
    _Dumper.add_implicit_resolver(_TAG + _tag, _rx, _first)


def _scalar(loader: Any, node: yaml.Node, rx: re.Pattern, kind: str) -> str:
    text = loader.construct_scalar(node)
    if not isinstance(text, str) or not rx.match(text):
        raise yaml.constructor.ConstructorError(
            None, None, f"{text!r} is not a YAML 1.2 {kind}", node.start_mark)
    return text


def _number(node: yaml.Node, read: Any, text: str) -> Any:
    try:
        return read(text)
    except _Refused as exc:
        raise yaml.constructor.ConstructorError(None, None, str(exc), node.start_mark) from None


def _construct_null(loader: Any, node: yaml.Node) -> None:
    _scalar(loader, node, _CORE_NULL, "null")


def _construct_bool(loader: Any, node: yaml.Node) -> bool:
    return _scalar(loader, node, _CORE_BOOL, "boolean").lower() == "true"


def _read_core_int(text: str) -> int:
    base = {"0o": 8, "0x": 16}.get(text[:2])
    if base is None:
        return _bounded_int(text)
    return _bounded_int(text, int(text[2:], base))  # power-of-two bases: linear time, no digit limit


def _construct_int(loader: Any, node: yaml.Node) -> int:
    return _number(node, _read_core_int, _scalar(loader, node, _CORE_INT, "integer"))


def _read_core_float(text: str) -> float:
    body = text.lstrip("+-")
    if body.lower() == ".inf":
        return -math.inf if text.startswith("-") else math.inf
    if body.lower() == ".nan":
        return math.nan
    return _bounded_float(text)


def _construct_float(loader: Any, node: yaml.Node) -> float:
    return _number(node, _read_core_float, _scalar(loader, node, _CORE_FLOAT, "float"))


def _construct_mapping(loader: Any, node: yaml.MappingNode) -> dict:
    out: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if isinstance(key, (list, dict)):
            raise yaml.constructor.ConstructorError(
                None, None, f"a mapping key must be a scalar (got a {'list' if isinstance(key, list) else 'mapping'})",
                key_node.start_mark)
        if key in out:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        out[key] = loader.construct_object(value_node, deep=True)
    return out


def _construct_seq(loader: Any, node: yaml.SequenceNode) -> list:
    return [loader.construct_object(child, deep=True) for child in node.value]


class _CoreConstructor(yaml.constructor.BaseConstructor):
    """Builds only the YAML 1.2 core schema's types; any other tag is an error."""

    yaml_constructors: dict = {}


for _tag, _construct in (
    ("null", _construct_null), ("bool", _construct_bool), ("int", _construct_int),
    ("float", _construct_float), ("str", yaml.constructor.SafeConstructor.construct_yaml_str),
    ("seq", _construct_seq), ("map", _construct_mapping),
):
    _CoreConstructor.add_constructor(_TAG + _tag, _construct)
_CoreConstructor.add_constructor(None, yaml.constructor.SafeConstructor.construct_undefined)


class _PyLoader(yaml.reader.Reader, yaml.scanner.Scanner, yaml.parser.Parser, yaml.composer.Composer,
               _CoreConstructor, _CoreResolver):
    """The pure-Python YAML 1.2 core-schema loader."""

    def __init__(self, stream: str) -> None:
        yaml.reader.Reader.__init__(self, stream)
        yaml.scanner.Scanner.__init__(self)
        yaml.parser.Parser.__init__(self)
        yaml.composer.Composer.__init__(self)
        _CoreConstructor.__init__(self)
        _CoreResolver.__init__(self)


try:
    from yaml.cyaml import CParser as _CParser
except ImportError:  # pragma: no cover - PyYAML built without libyaml
    _CParser = None

if _CParser is not None:

    class _CLoader(_CParser, _CoreConstructor, _CoreResolver):  # type: ignore[misc, valid-type]
        """The same loader on libyaml's parser (about five times faster)."""

        def __init__(self, stream: str) -> None:
            _CParser.__init__(self, stream)
            _CoreConstructor.__init__(self)
            _CoreResolver.__init__(self)

    _Loader: type = _CLoader
else:  # pragma: no cover - PyYAML built without libyaml
    _Loader = _PyLoader


def _load_yaml(text: str, loader_class: type | None = None) -> Any:
    loader = (loader_class or _Loader)(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


# -- JSON and TOML --------------------------------------------------------------

def _json_object(pairs: list[tuple[str, Any]]) -> dict:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _Refused(f"duplicate key {key!r}")
        out[key] = value
    return out


def _json_constant(text: str) -> float:
    raise _Refused(f"{text} is not a JSON number (JSON has no NaN or infinity)")


def _load_json(text: str) -> Any:
    return json.loads(text, object_pairs_hook=_json_object, parse_int=_bounded_int,
                      parse_float=_bounded_float, parse_constant=_json_constant)


def _toml_float(text: str) -> float:
    if text.lstrip("+-") in ("inf", "nan"):
        return float(text)
    return _bounded_float(text.replace("_", ""))


def _load_toml(text: str) -> Any:
    return tomllib.loads(text, parse_float=_toml_float)


# -- the shape of the data ---------------------------------------------------

def _check_shape(data: Any) -> str | None:
    """Why ``data`` is too deep, too big or holds an out-of-range integer; None when fine.

    Walks without recursion, counting every value reached (YAML aliases
    included, so an alias bomb stops at :data:`MAX_VALUES`).
    """
    stack = [(data, 1)]
    count = 0
    while stack:
        value, depth = stack.pop()
        count += 1
        if count > MAX_VALUES:
            return f"the data holds more than {MAX_VALUES} values (counting each use of a YAML alias)"
        if isinstance(value, dict):
            children = value.values()
        elif isinstance(value, list):
            children = value
        else:
            if isinstance(value, int) and not isinstance(value, bool) and abs(value) > sys.float_info.max:
                return f"the integer {_abbrev(str(value))} is out of range (a number must lie within -1.8e308..1.8e308)"
            continue
        if depth > MAX_DEPTH:
            return f"the data is nested deeper than {MAX_DEPTH} levels"
        stack.extend((child, depth + 1) for child in children)
    return None


def _format_of(path: Path) -> str:
    fmt = SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        valid = ", ".join(SUFFIXES)
        raise ConfigError([Problem("", f"unknown config file suffix {path.suffix!r}; use one of {valid}")],
                          source=str(path))
    return fmt


_LOADERS = {"yaml": _load_yaml, "json": _load_json, "toml": _load_toml}
_NAMES = {"yaml": "YAML", "json": "JSON", "toml": "TOML"}


def _parse(text: str, fmt: str) -> Any:
    """The data in ``text``, or a :class:`ConfigError`-ready message (raised as ``_Refused``)."""
    name = _NAMES[fmt]
    try:
        return _LOADERS[fmt](text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = (exc.problem or str(exc)).split("\n")[0]
        if "nesting depth" in problem:
            problem = f"the data is nested deeper than {MAX_DEPTH} levels"
        raise _Refused(f"invalid YAML: {where}{problem}") from None
    except yaml.YAMLError as exc:
        raise _Refused(f"invalid YAML: {exc}") from None
    except json.JSONDecodeError as exc:
        raise _Refused(f"invalid JSON: line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
    except tomllib.TOMLDecodeError as exc:
        raise _Refused(f"invalid TOML: {exc}") from None
    except RecursionError:
        raise _Refused(f"invalid {name}: the data is nested deeper than {MAX_DEPTH} levels") from None
    except _Refused as exc:
        raise _Refused(f"invalid {name}: {exc}") from None
    except ValueError as exc:  # the int-from-text digit limit inside tomllib, and the like
        raise _Refused(f"invalid {name}: {str(exc).split(';')[0]}") from None


def parse_config_text(text: str, fmt: str, source: str = "<config>") -> dict:
    """Parse config text of format ``yaml``, ``json`` or ``toml`` into a mapping.

    >>> parse_config_text("peak_lr: 3e-4", "yaml")
    {'peak_lr': 0.0003}
    >>> parse_config_text("steps: 0144", "yaml")
    {'steps': 144}
    """
    if not text.strip():
        raise ConfigError([Problem("", "the file is empty; it must hold a mapping (a schedule spec "
                                        "with a 'type' key, or a run config with a 'schedule' key)")],
                          source=source)
    try:
        data = _parse(text, fmt)
    except _Refused as exc:
        raise ConfigError([Problem("", str(exc))], source=source) from None
    why = _check_shape(data)
    if why is not None:
        raise ConfigError([Problem("", f"invalid {_NAMES[fmt]}: {why}")], source=source)
    if data is None:
        raise ConfigError([Problem("", "the file holds no data; it must be a mapping")], source=source)
    if not isinstance(data, dict):
        raise ConfigError([Problem("", f"the top level must be a mapping (got a {type(data).__name__})")],
                          source=source)
    return data


def _read_regular_file(path: Path) -> bytes:
    """The bytes of ``path`` if it is a regular file (symlinks followed) of at most the size limit.

    ``stat`` comes first, so a FIFO, device or socket is refused without being
    opened; the open itself is non-blocking and checked again, in case the
    path changed in between, and at most one byte past the limit is read.
    """
    def refuse(message: str) -> ConfigError:
        return ConfigError([Problem("", message)], source=str(path))

    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise refuse("no such file") from None
    except NotADirectoryError:
        raise refuse("no such file (a part of the path is not a directory)") from None
    except OSError as exc:
        raise refuse(f"cannot read: {exc.strerror}") from None
    kind = _file_kind(info.st_mode)
    if kind == "a directory":
        raise refuse("is a directory, not a config file")
    if kind is not None:
        raise refuse(f"is {kind}, not a regular file; a config must be a regular file")
    if info.st_size > MAX_CONFIG_BYTES:
        raise refuse(f"is {info.st_size} bytes; a config file may hold at most {MAX_CONFIG_BYTES} bytes (1 MiB)")
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    except OSError as exc:
        raise refuse(f"cannot read: {exc.strerror or errno.errorcode.get(exc.errno, exc)}") from None
    try:
        kind = _file_kind(os.fstat(fd).st_mode)
        if kind is not None:
            raise refuse(f"is {kind}, not a regular file; a config must be a regular file")
        chunks, size = [], 0
        while size <= MAX_CONFIG_BYTES:
            chunk = os.read(fd, MAX_CONFIG_BYTES + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    finally:
        os.close(fd)
    if size > MAX_CONFIG_BYTES:
        raise refuse(f"holds more than {MAX_CONFIG_BYTES} bytes; a config file may hold at most 1 MiB")
    return b"".join(chunks)


def _file_kind(mode: int) -> str | None:
    """None for a regular file, else what it is (``"a FIFO"``, ``"a directory"``, ...)."""
    if stat.S_ISREG(mode):
        return None
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a regular file"


def read_config_file(path: str | Path) -> dict:
    """Read a YAML, JSON or TOML config file into a mapping (format by suffix).

    Only a regular file (after following symlinks) of at most
    :data:`MAX_CONFIG_BYTES` is read; anything else is refused at once.
    """
    path = Path(path)
    fmt = _format_of(path)
    raw = _read_regular_file(path)
    try:
        text = raw.decode("utf-8")
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
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, default_flow_style=False)


def write_config_file(data: dict, path: str | Path) -> None:
    """Write a mapping to a config file, format by suffix."""
    path = Path(path)
    path.write_text(format_config(data, _format_of(path)), encoding="utf-8")
